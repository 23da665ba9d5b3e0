"""Any LlamaIndex LLM behind a Session: LlamaIndex's own mock LLMs and a small CustomLLM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.llms.mock import (
    MockFunctionCallingLLM,
    MockFunctionCallingLLMWithChatMemoryOfLastCall,
)

from tela_memory import Message, Role, UnsupportedOperation
from tela_memory import ThinkingBlock as CoreThinking
from tela_memory.models import InvalidToolCallError, ModelError, ToolSpec
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.base import MessageStore
from tela_memory_llamaindex.llm import LlamaIndexChatModel, SpecTool

WEATHER = ToolSpec(
    "weather",
    "Weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


class FlakyLLM(CustomLLM):
    """Streams ``words`` one by one and raises after ``fail_after`` of them."""

    words: list[str]
    fail_after: int | None = None

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="flaky-1")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="".join(self.words))

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        def gen() -> Iterator[CompletionResponse]:
            text = ""
            for i, word in enumerate(self.words):
                if self.fail_after is not None and i == self.fail_after:
                    raise TimeoutError("upstream timed out")
                text += word
                yield CompletionResponse(text=text, delta=word)

        return gen()


def test_mock_llm_streams_into_the_store(store: MessageStore) -> None:
    session = Session(
        store,
        LlamaIndexChatModel(MockLLM(max_tokens=6)),
        flush=FlushPolicy(max_chunks=2),
        user_id="u",
    )
    chunks = list(session.stream("hello"))
    assert "".join(c.text for c in chunks) == ("text " * 6).strip()
    reply = session.history()[-1]
    assert reply.text == ("text " * 6).strip()
    assert reply.metadata["incomplete"] is False
    assert reply.metadata["finish_reason"] == "stop"


def test_send_and_resume(store: MessageStore) -> None:
    llm = MockFunctionCallingLLMWithChatMemoryOfLastCall()
    first = Session(store, LlamaIndexChatModel(llm), system="be kind", user_id="u")
    assert first.send("hi there").text == "hi there"
    again = Session(store, LlamaIndexChatModel(llm), thread_id=first.thread_id, user_id="u")
    again.send("second")
    seen = llm.last_chat_messages
    assert seen is not None
    assert [m.role for m in seen] == [
        MessageRole.SYSTEM,
        MessageRole.USER,
        MessageRole.ASSISTANT,
        MessageRole.USER,
    ]


def test_tools_through_chat_with_tools(store: MessageStore) -> None:
    session = Session(
        store, LlamaIndexChatModel(MockFunctionCallingLLM()), tools=[WEATHER], user_id="u"
    )
    reply = session.send("weather?")
    call = reply.tool_calls[0]
    assert call.name == "weather"
    assert reply.metadata["finish_reason"] == "tool_calls"
    session.add_tool_result(call.id, "sunny")
    assert session.send().text == "Tool calls complete."


def test_streamed_tool_call(store: MessageStore) -> None:
    session = Session(
        store, LlamaIndexChatModel(MockFunctionCallingLLM()), tools=[WEATHER], user_id="u"
    )
    chunks = list(session.stream("weather?"))
    assert chunks[-1].tool_calls[0].name == "weather"
    assert session.history()[-1].tool_calls[0].name == "weather"


def test_spec_tool_keeps_the_json_schema() -> None:
    tool = SpecTool(WEATHER)
    assert tool.metadata.get_parameters_dict() == WEATHER.parameters
    assert tool.metadata.to_openai_tool()["function"]["name"] == "weather"
    with pytest.raises(UnsupportedOperation, match="add_tool_result"):
        tool({"city": "x"})


def test_tools_need_a_function_calling_llm(store: MessageStore) -> None:
    session = Session(store, LlamaIndexChatModel(MockLLM()), tools=[WEATHER], user_id="u")
    with pytest.raises(UnsupportedOperation, match="not a FunctionCallingLLM"):
        session.send("x")


def _pieces(*messages: ChatMessage):  # a response generator yielding growing messages
    def generator(_messages: Any, **_: Any) -> Iterator[ChatMessage]:
        yield from messages

    return generator


def test_thinking_and_text_from_growing_messages(store: MessageStore) -> None:
    growing = [
        ChatMessage(role="assistant", blocks=[ThinkingBlock(content="Let")]),
        ChatMessage(role="assistant", blocks=[ThinkingBlock(content="Let me see")]),
        ChatMessage(
            role="assistant",
            blocks=[ThinkingBlock(content="Let me see"), TextBlock(text="Seven.")],
        ),
    ]
    llm = MockFunctionCallingLLM(response_generator=_pieces(*growing))
    session = Session(store, LlamaIndexChatModel(llm), user_id="u")
    list(session.stream("3+4?"))
    reply = session.history()[-1]
    assert reply.content[0] == CoreThinking(text="Let me see")
    # MockFunctionCallingLLM sends each message's whole content as its delta
    assert reply.text == "Seven."


def test_invalid_tool_json_is_stored_marked(store: MessageStore) -> None:
    bad = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="Calling."),
            ToolCallBlock(tool_call_id="t1", tool_name="weather", tool_kwargs='{"city": '),
        ],
    )
    llm = MockFunctionCallingLLM(response_generator=lambda *_a, **_k: bad)
    session = Session(store, LlamaIndexChatModel(llm), user_id="u")
    with pytest.raises(InvalidToolCallError):
        session.send("x")
    stored = session.history()[-1]
    assert stored.text == "Calling."
    assert stored.metadata["invalid_tool_calls"][0]["arguments"] == '{"city": '
    assert stored.metadata["incomplete"] is True


def test_failure_mid_stream_keeps_partial(store: MessageStore) -> None:
    llm = FlakyLLM(words=["a ", "b ", "c ", "d "], fail_after=2)
    session = Session(store, LlamaIndexChatModel(llm), user_id="u")
    with pytest.raises(ModelError, match="timed out") as info:
        list(session.stream("go"))
    assert isinstance(info.value.provider_error, TimeoutError)
    reply = session.history()[-1]
    assert reply.text == "a b "
    assert reply.metadata["status"] == "error"
    assert reply.metadata["model"] == "flaky-1"


def test_developer_role_follows_the_family(store: MessageStore) -> None:
    history = [Message(role=Role.DEVELOPER, content="formal"), Message.user("hi")]
    for family, role in [("openai", MessageRole.DEVELOPER), ("gemini", MessageRole.SYSTEM)]:
        llm = MockFunctionCallingLLMWithChatMemoryOfLastCall()
        LlamaIndexChatModel(llm, family=family).generate(history)
        assert llm.last_chat_messages is not None
        assert llm.last_chat_messages[0].role == role


async def test_async_stream_send_and_failure(store: MessageStore) -> None:
    session = Session(store, LlamaIndexChatModel(MockLLM(max_tokens=3)), user_id="u")
    text = "".join([c.text async for c in session.astream("a")])
    assert text == "text text text"
    assert (await session.asend("b")).text == "text text text"
    flaky = Session(
        store, LlamaIndexChatModel(FlakyLLM(words=["x ", "y "], fail_after=1)), user_id="u"
    )
    with pytest.raises(ModelError):
        async for _ in flaky.astream("go"):
            pass
    assert (await flaky.ahistory())[-1].text == "x "


async def test_async_tools(store: MessageStore) -> None:
    session = Session(
        store, LlamaIndexChatModel(MockFunctionCallingLLM()), tools=[WEATHER], user_id="u"
    )
    reply = await session.asend("weather?")
    assert reply.tool_calls[0].name == "weather"
    chunks = [c async for c in session.astream("again?")]
    assert chunks[-1].tool_calls
