"""The chat store and memory on a real Redis server (the same code as on SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM

from tela_memory_llamaindex import TelaChatStore, TelaMemory
from tela_memory_redis import RedisStore

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_store(redis_server: Any) -> Iterator[RedisStore]:
    with RedisStore(redis_server.url, prefix=f"li-{uuid.uuid4().hex[:10]}") as store:
        yield store


def test_chat_store_on_redis(redis_store: RedisStore) -> None:
    chat = TelaChatStore(redis_store, user_id="ana")
    history = [
        ChatMessage(role="user", content="q"),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="c1", tool_name="f", tool_kwargs={"a": 1})],
        ),
        ChatMessage(role="tool", content="r", additional_kwargs={"tool_call_id": "c1"}),
        ChatMessage(role="assistant", content="done"),
    ]
    chat.set_messages("k", history)
    assert chat.get_messages("k") == history
    assert chat.get_messages("missing") == []
    assert chat.get_keys() == ["k"]
    assert chat.delete_message("k", 0) == history[0]
    assert chat.delete_last_message("k") == history[3]
    chat.add_message("k", ChatMessage(role="user", content="again"), idx=0)
    assert [m.content for m in chat.get_messages("k")] == ["again", None, "r"]


def test_memory_on_redis(redis_store: RedisStore) -> None:
    memory = TelaMemory.from_defaults(redis_store, session_id="s", token_limit=200, user_id="ana")
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=5), memory=memory)
    for i in range(20):
        engine.chat(f"question {i} " + "word " * 10)
    assert len(memory.get_all()) == 40
    assert 0 < len(memory.get()) < 40
