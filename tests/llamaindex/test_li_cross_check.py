"""The same history reads back identically through LlamaIndex, LangChain and the core."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage, ImageBlock, TextBlock, ToolCallBlock

from tela_memory.messages import ImageBlock as CoreImage
from tela_memory.messages import Message, ThinkingBlock
from tela_memory.messages import ToolCallBlock as CoreCall
from tela_memory.stores.base import MessageStore
from tela_memory_langchain.convert import messages_to_core as lc_to_core
from tela_memory_langchain.history import TelaChatMessageHistory
from tela_memory_llamaindex.chat_store import TelaChatStore
from tela_memory_llamaindex.convert import to_core


def _shape(messages: list[Message]) -> list[tuple[str, list[dict[str, object]], str | None]]:
    return [(m.role.value, [b.model_dump() for b in m.content], m.name) for m in messages]


def _three_views(store: MessageStore, thread: str) -> tuple[list[Message], ...]:
    core = store.read(thread, user_id="u")
    via_llamaindex = [to_core(m) for m in TelaChatStore(store, user_id="u").get_messages(thread)]
    via_langchain = lc_to_core(TelaChatMessageHistory(thread, store=store, user_id="u").messages)
    return core, via_llamaindex, via_langchain


def test_history_written_by_the_core(store: MessageStore) -> None:
    store.append(
        "t",
        [
            Message.system("You are helpful."),
            Message.user(
                [
                    {"type": "text", "text": "What is in this picture?"},
                    CoreImage(url="https://example.com/cat.png", mime_type="image/png"),
                ]
            ),
            Message.assistant(
                [ThinkingBlock(text="look up", signature="c2ln")],
                tool_calls=[CoreCall(id="call_1", name="describe", arguments={"x": 1})],
            ),
            Message.tool("call_1", "a cat on a mat"),
            Message.assistant("A cat sitting on a mat."),
        ],
        user_id="u",
    )
    core, li, lc = _three_views(store, "t")
    assert _shape(li) == _shape(core)
    assert _shape(lc) == _shape(core)


def test_history_written_by_llamaindex(store: MessageStore) -> None:
    chat = TelaChatStore(store, user_id="u")
    history = [
        ChatMessage(
            role="user", blocks=[TextBlock(text="hi"), ImageBlock(url="https://e.com/a.png")]
        ),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="c9", tool_name="look", tool_kwargs={"q": "a"})],
        ),
        ChatMessage(role="tool", content="found", additional_kwargs={"tool_call_id": "c9"}),
        ChatMessage(role="assistant", content="Found it."),
    ]
    chat.set_messages("w", history)
    core, li, lc = _three_views(store, "w")
    assert [(m.role, m.content) for m in li] == [(m.role, m.content) for m in core]
    assert [(m.role, m.content) for m in lc] == [(m.role, m.content) for m in core]
    assert chat.get_messages("w") == history
