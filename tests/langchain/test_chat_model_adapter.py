"""Any LangChain chat model behind a Session, with LangChain's own fake models and a small
real ``BaseChatModel`` subclass that streams tool-call chunks, reasoning and usage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModelError,
    GenericFakeChatModel,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    message_chunk_to_message,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from tela_memory import Message, Role, ThinkingBlock, UnsupportedOperation
from tela_memory.models import (
    InvalidToolCallError,
    ModelError,
    ProviderFamily,
    ToolSpec,
    Usage,
)
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_langchain.chat_model import LangChainChatModel, chunk_from_langchain

WEATHER = ToolSpec("weather", "Weather in a city", {"type": "object"})


class StreamingToolChat(BaseChatModel):
    """A minimal provider: streams reasoning, text, a tool call in pieces and usage per chunk;
    ``fail_after`` raises after that many chunks. ``seen`` keeps the inputs."""

    pieces: list[AIMessageChunk]
    fail_after: int | None = None
    seen: list[list[BaseMessage]] = []  # noqa: RUF012 - pydantic copies the default
    bound: list[Any] = []  # noqa: RUF012

    @property
    def _llm_type(self) -> str:
        return "streaming-tool-chat"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound.append(tools)
        return self.bind(tools=tools, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        total: AIMessageChunk | None = None
        for chunk in self._stream(messages):
            total = chunk.message if total is None else total + chunk.message  # type: ignore[assignment]
        assert total is not None
        return ChatResult(generations=[ChatGeneration(message=message_chunk_to_message(total))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self.seen.append(list(messages))
        for i, piece in enumerate(self.pieces):
            if self.fail_after is not None and i == self.fail_after:
                raise ConnectionError("provider connection reset")
            yield ChatGenerationChunk(message=piece)


def _tool_stream() -> list[AIMessageChunk]:
    usage = {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11}
    return [
        AIMessageChunk(
            content=[{"type": "thinking", "thinking": "Need the weather. ", "index": 0}],
            usage_metadata=usage,
        ),
        AIMessageChunk(
            content=[{"type": "thinking", "thinking": "Call it.", "signature": "sig1", "index": 0}]
        ),
        AIMessageChunk(content="Checking"),
        AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": "weather", "args": '{"city":', "id": "tc1", "index": 0}],
        ),
        AIMessageChunk(
            content="",
            tool_call_chunks=[{"name": None, "args": ' "Oslo"}', "id": None, "index": 0}],
            usage_metadata={"input_tokens": 0, "output_tokens": 6, "total_tokens": 6},
            response_metadata={"finish_reason": "tool_calls", "model_name": "fake-1"},
        ),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "lc.db") as s:
        yield s


def test_generic_fake_model_streams_into_the_store(store: SQLiteStore) -> None:
    fake = GenericFakeChatModel(messages=iter([AIMessage(content="hello from langchain")]))
    session = Session(
        store, LangChainChatModel(fake), flush=FlushPolicy(max_chunks=2), user_id="u1"
    )
    chunks = list(session.stream("hi"))
    assert [c.text for c in chunks] == ["hello", " ", "from", " ", "langchain"]
    reply = session.history()[-1]
    assert reply.text == "hello from langchain"
    assert reply.metadata["incomplete"] is False
    assert reply.metadata["chunks"] == 5


def test_send_uses_invoke_with_tool_calls_and_usage(store: SQLiteStore) -> None:
    reply = AIMessage(
        content="",
        tool_calls=[{"name": "weather", "args": {"city": "Rome"}, "id": "t1", "type": "tool_call"}],
        usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
        response_metadata={"finish_reason": "tool_calls"},
    )
    fake = GenericFakeChatModel(messages=iter([reply, AIMessage(content="Sunny.")]))
    session = Session(store, LangChainChatModel(fake), user_id="u1")
    stored = session.send("Weather in Rome?")
    assert stored.tool_calls[0].name == "weather"
    assert stored.tool_calls[0].arguments == {"city": "Rome"}
    assert stored.metadata["usage"] == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert stored.metadata["finish_reason"] == "tool_calls"
    session.add_tool_result("t1", "sunny")
    assert session.send().text == "Sunny."


def test_streamed_tool_call_reasoning_and_additive_usage(store: SQLiteStore) -> None:
    chat = StreamingToolChat(pieces=_tool_stream())
    session = Session(store, LangChainChatModel(chat), tools=[WEATHER], user_id="u1")
    list(session.stream("Weather in Oslo?"))
    reply = session.history()[-1]
    assert reply.content[0] == ThinkingBlock(text="Need the weather. Call it.", signature="sig1")
    assert reply.text == "Checking"
    assert reply.tool_calls[0].id == "tc1"
    assert reply.tool_calls[0].arguments == {"city": "Oslo"}
    # LangChain usage chunks add up: 10 in, 1 + 6 out
    assert reply.metadata["usage"]["input_tokens"] == 10
    assert reply.metadata["usage"]["output_tokens"] == 7
    assert reply.metadata["model"] == "fake-1"
    assert chat.bound[-1] == [WEATHER.to_openai()]


def test_model_failure_mid_stream_keeps_partial(store: SQLiteStore) -> None:
    chat = StreamingToolChat(pieces=_tool_stream(), fail_after=3)
    session = Session(store, LangChainChatModel(chat), user_id="u1")
    with pytest.raises(ModelError, match="connection reset") as info:
        list(session.stream("go"))
    assert isinstance(info.value.provider_error, ConnectionError)
    reply = session.history()[-1]
    assert reply.text == "Checking"
    assert reply.metadata["status"] == "error"
    assert reply.metadata["incomplete"] is True


def test_invalid_tool_json_from_langchain(store: SQLiteStore) -> None:
    bad = AIMessage(
        content="",
        invalid_tool_calls=[
            {
                "name": "weather",
                "args": '{"city": Oslo',
                "id": "x1",
                "error": "bad json",
                "type": "invalid_tool_call",
            }
        ],
    )
    session = Session(
        store, LangChainChatModel(GenericFakeChatModel(messages=iter([bad]))), user_id="u1"
    )
    with pytest.raises(InvalidToolCallError):
        session.send("go")
    stored = session.history()[-1]
    assert stored.metadata["invalid_tool_calls"][0]["arguments"] == '{"city": Oslo'
    assert stored.metadata["incomplete"] is True


def test_provider_error_is_wrapped(store: SQLiteStore) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    fake = FakeListChatModel(responses=["a"], error_on_chunk_number=0)
    session = Session(store, LangChainChatModel(fake), user_id="u1")
    with pytest.raises(ModelError) as info:
        list(session.stream("go"))
    assert isinstance(info.value.provider_error, FakeListChatModelError)


def test_tools_on_a_model_without_bind_tools_fail_clearly(store: SQLiteStore) -> None:
    fake = GenericFakeChatModel(messages=iter([AIMessage(content="x")]))
    session = Session(store, LangChainChatModel(fake), tools=[WEATHER], user_id="u1")
    with pytest.raises(UnsupportedOperation, match="cannot bind tools"):
        session.send("go")


def test_developer_role_follows_the_family(store: SQLiteStore) -> None:
    history = [Message(role=Role.DEVELOPER, content="be formal"), Message.user("hi")]
    for family, expect_dev in [("openai", True), ("anthropic", False)]:
        chat = StreamingToolChat(pieces=[AIMessageChunk(content="ok")], seen=[])
        LangChainChatModel(chat, family=family).generate(history)
        first = chat.seen[-1][0]
        assert isinstance(first, SystemMessage)
        assert (first.additional_kwargs.get("__openai_role__") == "developer") is expect_dev


def test_family_is_guessed_from_the_class() -> None:
    fake = GenericFakeChatModel(messages=iter([]))
    assert LangChainChatModel(fake).family is ProviderFamily.OPENAI_COMPATIBLE


def test_chunk_conversion_rejects_non_ai_messages() -> None:
    with pytest.raises(ModelError, match="not an AIMessage"):
        chunk_from_langchain(SystemMessage(content="x"))


def test_v1_reasoning_blocks_and_reasoning_content_kwarg() -> None:
    chunk = chunk_from_langchain(
        AIMessageChunk(
            content=[{"type": "reasoning", "reasoning": "abc"}, {"type": "text", "text": "T"}],
            additional_kwargs={"reasoning_content": "def"},
        )
    )
    assert (chunk.reasoning, chunk.text) == ("abcdef", "T")


async def test_async_stream_and_send(store: SQLiteStore) -> None:
    fake = GenericFakeChatModel(
        messages=iter([AIMessage(content="async one"), AIMessage(content="two")])
    )
    session = Session(store, LangChainChatModel(fake), user_id="u1")
    text = "".join([c.text async for c in session.astream("a")])
    assert text == "async one"
    assert (await session.asend("b")).text == "two"
    assert [m.role for m in await session.ahistory()] == [Role.USER, Role.ASSISTANT] * 2


async def test_async_failure_is_wrapped(store: SQLiteStore) -> None:
    chat = StreamingToolChat(pieces=_tool_stream(), fail_after=1)
    session = Session(store, LangChainChatModel(chat), user_id="u1")
    with pytest.raises(ModelError):
        async for _ in session.astream("go"):
            pass
    assert (await session.ahistory())[-1].metadata["status"] == "error"


def test_usage_helper_totals() -> None:
    assert Usage(1, 2) + Usage(3, 4) == Usage(4, 6)
