"""Lossless conversion between LangChain messages and the core ``Message``."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from lc_strategies import content_items, conversations, lc_messages

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import (
    ImageBlock,
    Message,
    OpaqueBlock,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_langchain.convert import (
    SOURCE,
    block_to_core,
    block_to_langchain,
    messages_to_core,
    messages_to_langchain,
    to_core,
    to_langchain,
)


@settings(max_examples=300, deadline=None)
@given(lc_messages)
def test_round_trip_langchain_core_langchain(message: BaseMessage) -> None:
    core = to_core(message)
    assert to_langchain(core) == message
    # and through JSON, as every store keeps it
    assert to_langchain(Message.parse(core.model_dump_json())) == message


@settings(max_examples=300, deadline=None)
@given(content_items)
def test_every_block_round_trips(item: object) -> None:
    block, hint = block_to_core(item)  # type: ignore[arg-type]
    assert block_to_langchain(block, hint) == item


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conversations())
def test_history_round_trips_through_sqlite(tmp_path: Path, history: list[BaseMessage]) -> None:
    with SQLiteStore(tmp_path / "rt.db") as store:
        thread = f"t-{uuid.uuid4().hex}"
        store.append(thread, messages_to_core(history), user_id="u1")
        assert messages_to_langchain(store.read(thread, user_id="u1")) == history


def test_known_blocks_become_typed_core_blocks() -> None:
    msg = HumanMessage(
        content=[
            "plain",
            {"type": "text", "text": "with id", "id": "b1"},
            {
                "type": "image_url",
                "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
            },
            {"type": "image", "url": "https://x/y.png"},
            {"type": "reasoning", "reasoning": "because"},
        ]
    )
    core = to_core(msg)
    assert [type(b) for b in core.content] == [
        TextBlock,
        TextBlock,
        ImageBlock,
        ImageBlock,
        ThinkingBlock,
    ]
    image = core.content[2]
    assert isinstance(image, ImageBlock)
    assert (image.data, image.mime_type, image.detail) == ("AAAA", "image/png", "low")
    assert core.text == "plain\nwith id"


def test_unknown_block_is_kept_opaque_and_returned_as_it_came() -> None:
    weird = {"type": "hologram", "frames": [1, 2, {"x": None}]}
    msg = AIMessage(content=[{"type": "text", "text": "look"}, weird])
    core = to_core(msg)
    assert core.content[1] == OpaqueBlock(source=SOURCE, data=weird)
    assert to_langchain(core).content[1] == weird  # type: ignore[index]


def test_tool_calls_and_results_are_typed() -> None:
    ai = AIMessage(
        content=[{"type": "tool_use", "id": "c1", "name": "add", "input": {"a": 1}}],
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "c1"}],
    )
    core = to_core(ai)
    assert core.tool_calls == [ToolCallBlock(id="c1", name="add", arguments={"a": 1})]
    assert isinstance(core.content[0], OpaqueBlock)  # the provider's copy, not a second call
    tool = to_core(ToolMessage("boom", tool_call_id="c1", status="error"))
    assert tool.role is Role.TOOL
    assert tool.tool_results == [ToolResultBlock(tool_call_id="c1", content="boom", is_error=True)]


def test_tool_call_without_id_is_kept() -> None:
    ai = AIMessage(content="", tool_calls=[{"name": "f", "args": {}, "id": None}])
    core = to_core(ai)
    assert core.tool_calls == []  # no id: cannot be paired, kept opaque
    assert to_langchain(core) == ai


def test_document_artifact_round_trips() -> None:
    docs = [Document(page_content="hello", metadata={"source": "a"}, id="d1")]
    msg = ToolMessage("found", tool_call_id="c9", artifact=docs)
    assert to_langchain(Message.parse(to_core(msg).model_dump_json())) == msg


def test_non_json_data_is_refused_with_a_clear_error() -> None:
    with pytest.raises(InvalidMessageError, match="artifact"):
        to_core(ToolMessage("x", tool_call_id="c", artifact=object()))
    with pytest.raises(InvalidMessageError, match="JSON"):
        to_core(HumanMessage("x", additional_kwargs={"when": object()}))
    with pytest.raises(InvalidMessageError, match="RemoveMessage"):
        to_core(RemoveMessage(id="x"))


def test_developer_role() -> None:
    dev = SystemMessage("rules", additional_kwargs={"__openai_role__": "developer"})
    assert to_core(dev).role is Role.DEVELOPER
    assert to_langchain(Message(role=Role.DEVELOPER, content="r")).additional_kwargs == {
        "__openai_role__": "developer"
    }


def test_chunks_are_merged_into_one_message() -> None:
    chunks = [
        AIMessageChunk(content="Hel", id="run-1"),
        AIMessageChunk(
            content="lo",
            id="run-1",
            tool_call_chunks=[{"name": "f", "args": '{"a": ', "id": "c1", "index": 0}],
        ),
        AIMessageChunk(content="", id="run-1", tool_call_chunks=[{"args": "2}", "index": 0}]),
    ]
    (core,) = messages_to_core(chunks)
    assert core.text == "Hello"
    assert core.tool_calls == [ToolCallBlock(id="c1", name="f", arguments={"a": 2})]
    back = to_langchain(core)
    assert type(back) is AIMessage
    assert back.tool_calls == [{"name": "f", "args": {"a": 2}, "id": "c1", "type": "tool_call"}]


def test_core_native_messages_convert_best_effort() -> None:
    core = [
        Message.system("be brief"),
        Message.user([TextBlock(text="see"), ImageBlock(url="https://x/a.png")]),
        Message.assistant("calling", tool_calls=[ToolCallBlock(id="c1", name="f")]),
        Message(
            role=Role.TOOL,
            content=[
                ToolResultBlock(tool_call_id="c1", content="one"),
                ToolResultBlock(tool_call_id="c2", content="two"),
            ],
        ),
    ]
    out = messages_to_langchain(core)
    assert [m.type for m in out] == ["system", "human", "ai", "tool", "tool"]
    assert out[1].content == [
        {"type": "text", "text": "see"},
        {"type": "image", "url": "https://x/a.png"},
    ]
    assert out[2].tool_calls[0]["id"] == "c1"  # type: ignore[attr-defined]
    assert [m.tool_call_id for m in out[3:]] == ["c1", "c2"]  # type: ignore[attr-defined]
    assert out[0].id == core[0].id
    with pytest.raises(InvalidMessageError, match="messages_to_langchain"):
        to_langchain(core[3])


@given(st.lists(lc_messages, max_size=4))
@settings(max_examples=50, deadline=None)
def test_core_fields_can_be_set(messages: list[BaseMessage]) -> None:
    out = messages_to_core(messages, user_id="u1", metadata={"app": 1})
    assert all(m.user_id == "u1" and m.metadata["app"] == 1 for m in out)


@pytest.mark.integration
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(conversations())
def test_history_round_trips_through_redis(redis_url: str, history: list[BaseMessage]) -> None:
    from tela_memory import open_store

    with open_store(redis_url) as store:
        thread = f"t-{uuid.uuid4().hex}"
        store.append(thread, messages_to_core(history), user_id="u1")
        assert messages_to_langchain(store.read(thread, user_id="u1")) == history
        store.delete_thread(thread, user_id="u1")
