"""Lossless conversion between LlamaIndex ``ChatMessage`` and the core ``Message``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from li_strategies import chat_messages, paired_histories
from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ToolCallBlock,
    VideoBlock,
)

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import (
    BLOCKS_ADAPTER,
    Message,
    OpaqueBlock,
    Role,
    ToolResultBlock,
)
from tela_memory.messages import (
    ImageBlock as CoreImage,
)
from tela_memory.messages import (
    ToolCallBlock as CoreToolCall,
)
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.convert import SOURCE, from_core, to_core


@settings(max_examples=300, deadline=None)
@given(chat_messages())
def test_round_trip_llamaindex_core_llamaindex(message: ChatMessage) -> None:
    core = to_core(message)
    assert from_core(core) == message


@settings(max_examples=150, deadline=None)
@given(chat_messages())
def test_round_trip_survives_json(message: ChatMessage) -> None:
    """What a store writes (JSON) is enough to give the message back."""
    core = to_core(message)
    again = Message.parse(core.model_dump_json())
    assert from_core(again) == message


@settings(max_examples=100, deadline=None)
@given(chat_messages())
def test_core_side_is_stable(message: ChatMessage) -> None:
    """core -> LlamaIndex -> core gives the same content, role, name and metadata."""
    core = to_core(message)
    back = to_core(from_core(core))
    assert (back.role, back.content, back.name, back.metadata) == (
        core.role,
        core.content,
        core.name,
        core.metadata,
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(paired_histories())
def test_round_trip_through_sqlite(history: list[ChatMessage]) -> None:
    with SQLiteStore(":memory:") as store:
        store.append("t", [to_core(m) for m in history], user_id="u")
        assert [from_core(m) for m in store.read("t", user_id="u")] == history


def test_typed_blocks_for_what_the_core_models() -> None:
    msg = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="hi"),
            ImageBlock(url="https://example.com/x.png"),
            ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs={"a": 1}),
        ],
    )
    core = to_core(msg)
    assert [b.type for b in core.content] == ["text", "image", "tool_call"]
    assert core.tool_calls == [CoreToolCall(id="c1", name="f", arguments={"a": 1})]


def test_tool_message_becomes_tool_result() -> None:
    msg = ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "c1"})
    core = to_core(msg)
    assert core.role is Role.TOOL
    assert core.content == [ToolResultBlock(tool_call_id="c1", content="42")]
    assert core.metadata == {}


def test_unknown_blocks_are_opaque_and_come_back() -> None:
    video = VideoBlock(url="https://example.com/v.mp4", fps=24)
    core = to_core(ChatMessage(role="user", blocks=[video]))
    (block,) = core.content
    assert isinstance(block, OpaqueBlock)
    assert block.source == SOURCE
    assert from_core(core).blocks == [video]


def test_foreign_roles_kept() -> None:
    for role in (MessageRole.CHATBOT, MessageRole.MODEL):
        core = to_core(ChatMessage(role=role, content="x"))
        assert core.role is Role.ASSISTANT
        assert from_core(core).role is role


def test_openai_kwarg_tool_calls_are_typed_and_raw_kept() -> None:
    raw = [{"id": "c7", "type": "function", "function": {"name": "f", "arguments": '{ "a":1 }'}}]
    msg = ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": raw})
    core = to_core(msg)
    assert core.tool_calls == [CoreToolCall(id="c7", name="f", arguments={"a": 1})]
    assert from_core(core) == msg


def test_core_message_from_elsewhere_converts() -> None:
    core = Message.assistant("sure", tool_calls=[CoreToolCall(id="c", name="f", arguments={})])
    li = from_core(core)
    assert li.role is MessageRole.ASSISTANT
    assert li.content == "sure"
    assert li.blocks[1] == ToolCallBlock(tool_call_id="c", tool_name="f", tool_kwargs={})
    foreign = Message.user([OpaqueBlock(source="langchain", data={"k": 1})])
    assert from_core(foreign).blocks == []


def test_unstorable_kwargs_raise_clear_error() -> None:
    msg = ChatMessage(role="user", content="x", additional_kwargs={"bad": object()})
    with pytest.raises(InvalidMessageError, match="additional_kwargs"):
        to_core(msg)


def test_not_a_chat_message() -> None:
    with pytest.raises(InvalidMessageError, match="ChatMessage"):
        to_core("hello")  # type: ignore[arg-type]


def test_blocks_serialise_with_core_adapter() -> None:
    core = to_core(ChatMessage(role="user", blocks=[VideoBlock(url="https://e.com/v.mp4")]))
    assert BLOCKS_ADAPTER.validate_json(BLOCKS_ADAPTER.dump_json(core.content)) == core.content


def test_function_role_and_name() -> None:
    msg = ChatMessage(role="function", content="72F", additional_kwargs={"name": "weather"})
    core = to_core(msg, thread_id="t", user_id="u")
    assert core.role is Role.TOOL
    assert core.name == "weather"
    assert (core.thread_id, core.user_id) == ("t", "u")
    assert from_core(core) == msg


def test_core_media_by_ref_comes_back_as_path(tmp_path: Path) -> None:
    from tela_memory.messages import AudioBlock as CoreAudio
    from tela_memory.messages import DocumentBlock as CoreDoc

    present = tmp_path / "a.png"
    present.write_bytes(b"\x89PNG")
    core = Message.user(
        [
            CoreImage(ref=str(present), mime_type="image/png"),
            CoreImage(ref="/gone/b.png"),  # the file moved: still converts
            CoreAudio(url="https://e.com/a.mp3", mime_type="audio/mpeg", transcript="hi"),
            CoreDoc(text="extracted text only"),
        ]
    )
    image, gone, audio, doc = from_core(core).blocks
    assert isinstance(image, ImageBlock)
    assert str(image.path) == str(present)
    assert str(gone.path) == "/gone/b.png"  # type: ignore[union-attr]
    assert audio.format == "mpeg"  # type: ignore[union-attr]
    assert doc == TextBlock(text="extracted text only")


def test_tool_result_with_many_blocks_keeps_them() -> None:
    msg = ChatMessage(
        role="tool",
        blocks=[TextBlock(text="a"), ImageBlock(url="https://e.com/x.png"), TextBlock(text="b")],
        additional_kwargs={"tool_call_id": "c1"},
    )
    core = to_core(msg)
    (result,) = core.tool_results
    assert isinstance(result.content, list)
    assert len(result.content) == 3
    assert from_core(core) == msg
