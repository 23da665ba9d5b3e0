"""``TelaMemory`` driven by the core context engine, and its summaries in the episodic block."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM

from tela_memory.context import ContextPolicy, Summary
from tela_memory.stores.base import MessageStore
from tela_memory_llamaindex.blocks import TelaEpisodicBlock
from tela_memory_llamaindex.convert import to_core
from tela_memory_llamaindex.memory import TelaMemory, default_counter

COUNTER = default_counter()


def _tokens(view: list[ChatMessage]) -> int:
    return COUNTER.count_messages([to_core(m) for m in view]) if view else 0


def _policy(budget: int) -> ContextPolicy:
    return ContextPolicy(budget=budget, counter=COUNTER, summary=Summary())


def test_engine_view_fits_and_summarises(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(
        store, session_id="s", user_id="u", token_limit=400, policy=_policy(400)
    )
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=6), memory=memory)
    for i in range(40):
        engine.chat(f"Question {i}: tell me about topic {i} " + "detail " * 12)
    view = memory.get()
    assert _tokens(view) <= 400
    assert len(memory.get_all()) == 80
    assert any("Summary of the earlier conversation" in (m.content or "") for m in view)
    assert view[-1] == memory.get_all()[-1]


def test_engine_prefix_is_stable_between_turns(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(
        store, session_id="p", token_limit=600, policy=_policy(600), user_id="u"
    )
    memory.put(ChatMessage(role="system", content="You are a tutor."))
    for i in range(30):
        memory.put(ChatMessage(role="user", content=f"q{i} " + "x " * 30))
        memory.put(ChatMessage(role="assistant", content=f"a{i} " + "y " * 30))
    first = memory.get()
    memory.put(ChatMessage(role="user", content="one more"))
    second = memory.get()
    assert first[0].content == "You are a tutor."
    # the pinned head (system + first turns) is byte-identical between turns
    assert [m.model_dump_json() for m in first[:3]] == [m.model_dump_json() for m in second[:3]]
    assert _tokens(second) <= 600


def test_token_limit_still_caps_a_larger_policy(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(
        store, session_id="c", token_limit=150, policy=_policy(5_000), user_id="u"
    )
    memory.set([ChatMessage(role="user", content=f"m{i} " + "z " * 20) for i in range(50)])
    assert _tokens(memory.get()) <= 150
    assert _tokens(memory.get(initial_token_count=100)) <= 50


async def test_async_engine_view(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(
        store, session_id="a", token_limit=300, policy=_policy(300), user_id="u"
    )
    await memory.aput_messages(
        [ChatMessage(role="user", content=f"turn {i} " + "w " * 25) for i in range(40)]
    )
    view = await memory.aget(input="what now?")
    assert _tokens(view) <= 300
    assert view == memory.get(input="what now?")


async def test_episodic_block_shows_engine_summaries(store: MessageStore) -> None:
    old = TelaMemory.from_defaults(
        store, session_id="trip-planning", user_id="u", token_limit=250, policy=_policy(250)
    )
    for i in range(30):
        old.put(ChatMessage(role="user", content=f"For the Kyoto trip, item {i}: " + "plan " * 10))
    old.get()  # the engine summarises what left the window and persists it in the thread
    block = TelaEpisodicBlock(store=store, user_id="u")
    text = await block.aget(session_id="today")
    assert text.startswith("[trip-planning] ")
    assert "Kyoto" in text
    assert await block.aget(session_id="trip-planning") == ""  # not its own thread
