"""``TelaMemory`` with real LlamaIndex chat engines and agents, on real stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.chat_engine import CondensePlusContextChatEngine, SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.memory import StaticMemoryBlock
from llama_index.core.tools import FunctionTool

from tela_memory.errors import TelaMemoryError, UnsupportedOperation
from tela_memory.messages import Role
from tela_memory.recall import SQLiteIndex
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.blocks import TelaFactsBlock, TelaRecallBlock
from tela_memory_llamaindex.convert import to_core
from tela_memory_llamaindex.memory import TelaMemory, default_counter
from tela_memory_llamaindex.retriever import TelaRetriever

COUNTER = default_counter()


def _tokens(messages: list[ChatMessage]) -> int:
    """What the messages cost as one request (reply priming included), 0 for none."""
    return COUNTER.count_messages([to_core(m) for m in messages]) if messages else 0


def _turns(n: int, words: int = 30) -> list[ChatMessage]:
    body = " ".join(["lorem"] * words)
    return [
        ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"turn {i} {body}")
        for i in range(n)
    ]


def test_full_history_kept_view_fits(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(store, session_id="s", token_limit=300, user_id="u")
    memory.set([ChatMessage(role="system", content="You are terse."), *_turns(200)])
    assert len(memory.get_all()) == 201
    view = memory.get()
    assert _tokens(view) <= 300
    assert view[0].content == "You are terse."  # pinned prefix
    assert view[-1].content.startswith("turn 199")  # type: ignore[union-attr]
    assert 2 < len(view) < 20


def test_chat_history_loaded_at_once_is_still_fitted(store: MessageStore) -> None:
    """LlamaIndex's Memory returns a history set with chat_history= unfitted; ours fits."""
    memory = TelaMemory.from_defaults(
        store, session_id="big", token_limit=8_000, chat_history=_turns(2_000), user_id="u"
    )
    assert len(memory.get_all()) == 2_000
    assert _tokens(memory.get()) <= 8_000


def test_initial_token_count_is_respected(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(store, session_id="s", token_limit=400, user_id="u")
    memory.put_messages(_turns(50))
    assert _tokens(memory.get(initial_token_count=300)) <= 100
    assert memory.get(initial_token_count=10_000) == []


@st.composite
def _histories(draw: st.DrawFn) -> list[ChatMessage]:
    out: list[ChatMessage] = []
    if draw(st.booleans()):
        out.append(ChatMessage(role="system", content=draw(st.text(max_size=60))))
    for i in range(draw(st.integers(0, 25))):
        out.append(ChatMessage(role="user", content=draw(st.text(max_size=80))))
        if draw(st.booleans()):
            ids = [f"c{i}-{j}" for j in range(draw(st.integers(1, 3)))]
            out.append(
                ChatMessage(
                    role="assistant",
                    blocks=[
                        ToolCallBlock(tool_call_id=c, tool_name="f", tool_kwargs={}) for c in ids
                    ],
                )
            )
            out.extend(
                ChatMessage(
                    role="tool",
                    content="r" * draw(st.integers(0, 200)),
                    additional_kwargs={"tool_call_id": c},
                )
                for c in ids
            )
        out.append(ChatMessage(role="assistant", content=draw(st.text(max_size=80))))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histories(), st.integers(1, 600))
def test_view_invariants(history: list[ChatMessage], limit: int) -> None:
    """Never over budget; a tool call never without its results; the newest turns kept."""
    with InMemoryStore() as backend:
        memory = TelaMemory.from_defaults(backend, session_id="p", token_limit=limit, user_id="u")
        memory.set(history)
        view = memory.get()
        assert _tokens(view) <= limit
        assert memory.get_all() == history
        open_calls: set[str] = set()
        for m in view:
            call_id = m.additional_kwargs.get("tool_call_id")
            if m.role == "tool":
                assert call_id in open_calls
            open_calls |= {b.tool_call_id for b in m.blocks if isinstance(b, ToolCallBlock)}
        answered = {m.additional_kwargs.get("tool_call_id") for m in view if m.role == "tool"}
        assert open_calls <= answered
        if view and view[-1].role != "system":
            assert view[-1] == history[-1]  # the window ends at the newest message


def test_simple_chat_engine_across_restarts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    llm = MockLLM(max_tokens=8)
    memory = TelaMemory.from_defaults(url, session_id="conv-1", token_limit=500, user_id="u")
    engine = SimpleChatEngine.from_defaults(llm=llm, memory=memory, system_prompt="Be brief.")
    engine.chat("My name is Ada.")
    engine.chat("What is my name?")
    memory.store.close()

    again = TelaMemory.from_defaults(url, session_id="conv-1", token_limit=500, user_id="u")
    history = again.get_all()
    assert [m.role.value for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0].content == "My name is Ada."
    engine2 = SimpleChatEngine.from_defaults(llm=llm, memory=again)
    engine2.chat("Still there?")
    assert len(again.get_all()) == 6
    again.store.close()


async def test_simple_chat_engine_async(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(store, session_id="a", token_limit=200, user_id="u")
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4), memory=memory)
    for i in range(15):
        await engine.achat(f"question {i} " + "word " * 20)
    assert len(await memory.aget_all()) == 30
    assert _tokens(await memory.aget()) <= 200


def test_condense_plus_context_engine(sqlite_store: SQLiteStore, index: SQLiteIndex) -> None:
    earlier = sqlite_store.append(
        "old", [to_core(ChatMessage(role="user", content="My cat is named Miso."))], user_id="u"
    )
    index.upsert(earlier)
    memory = TelaMemory.from_defaults(
        sqlite_store, session_id="new", user_id="u", token_limit=1_000, index=index
    )
    llm = MockLLM(max_tokens=10)
    engine = CondensePlusContextChatEngine.from_defaults(
        retriever=TelaRetriever(index, user_id="u", k=2), llm=llm, memory=memory
    )
    response = engine.chat("What is my cat named?")
    assert any("Miso" in (n.node.get_content()) for n in response.source_nodes)
    engine.chat("And again?")
    assert [m.role.value for m in memory.get_all()] == ["user", "assistant"] * 2
    assert index.count({"thread_ids": ["new"]}) == 4  # what the memory stored is indexed


def _weather(city: str = "Paris") -> str:
    """Weather for a city."""
    return f"sunny in {city}"


async def test_function_agent_keeps_tool_pairs(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(store, session_id="agent", token_limit=2_000, user_id="u")
    agent = FunctionAgent(
        tools=[FunctionTool.from_defaults(_weather)],
        llm=MockFunctionCallingLLM(),
        system_prompt="You help with weather.",
    )
    await agent.run(user_msg="Weather?", memory=memory)
    stored = store.read("agent", user_id="u")
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    assert stored[1].tool_calls[0].name == "_weather"
    assert stored[2].tool_results[0].tool_call_id == stored[1].tool_calls[0].id
    assert "sunny in Paris" in stored[2].text
    await agent.run(user_msg="And tomorrow?", memory=memory)  # the mock answers without tools
    assert [m.role for m in store.read("agent", user_id="u")][4:] == [Role.USER, Role.ASSISTANT]


async def test_agent_workflow_with_memory_blocks(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    old = sqlite_store.append(
        "trip",
        [to_core(ChatMessage(role="user", content="I am flying to Oslo in May."))],
        user_id="u",
    )
    index.upsert(old)
    facts = TelaFactsBlock(store=sqlite_store, user_id="u")
    await facts.add_fact("prefers window seats")
    memory = TelaMemory.from_defaults(
        sqlite_store,
        session_id="today",
        user_id="u",
        token_limit=3_000,
        index=index,
        memory_blocks=[
            TelaRecallBlock(index=index, user_id="u", session_scope="others", k=3),
            facts,
        ],
    )
    with pytest.raises(UnsupportedOperation, match="aget"):
        memory.get()
    llm = MockFunctionCallingLLM()
    workflow = AgentWorkflow(
        agents=[FunctionAgent(name="planner", description="plans", tools=[], llm=llm)]
    )
    await workflow.run(user_msg="When am I flying to Oslo?", memory=memory)
    view = await memory.aget()
    memory_msg = next(m for m in view if m.role == "system" and "<memory>" in (m.content or ""))
    assert "flying to Oslo in May" in memory_msg.content  # type: ignore[operator]
    assert "window seats" in memory_msg.content  # type: ignore[operator]
    assert _tokens(view) <= 3_000
    assert [m.role.value for m in memory.get_all()] == ["user", "assistant"]


def test_prefix_found_after_history_was_replaced(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(store, session_id="r", token_limit=200, user_id="u")
    memory.set(_turns(10))
    memory.set([])
    memory.put(ChatMessage(role="system", content="Rules."))
    memory.put_messages(_turns(300, words=5))
    view = memory.get()
    assert view[0].content == "Rules."
    assert _tokens(view) <= 200
    memory.set([ChatMessage(role="system", content="New rules."), *_turns(300, words=5)])
    assert memory.get()[0].content == "New rules."


async def test_agent_context_serialisation_round_trip(tmp_path: Path) -> None:
    """An agent ``Context`` holding the memory survives to_dict / from_dict."""
    from llama_index.core.workflow import Context, JsonSerializer

    memory = TelaMemory.from_defaults(
        f"sqlite:///{tmp_path / 'agent.db'}", session_id="ctx", user_id="ana", token_limit=900
    )
    agent = FunctionAgent(tools=[], llm=MockFunctionCallingLLM())
    ctx = Context(agent)
    await agent.run(user_msg="hello", memory=memory, ctx=ctx)
    data = ctx.to_dict(serializer=JsonSerializer())
    restored = Context.from_dict(agent, data, serializer=JsonSerializer())
    await agent.run(user_msg="again", ctx=restored)
    assert [m.content for m in memory.get_all()][::2] == ["hello", "again"]
    memory.store.close()


def test_restore_needs_a_reopenable_store() -> None:
    with InMemoryStore() as backend:
        memory = TelaMemory.from_defaults(backend, session_id="m", user_id="u")
        assert memory.store_url is None
        with pytest.raises(TelaMemoryError, match="cannot be reopened"):
            TelaMemory.from_dict(memory.to_dict())
    in_sqlite_memory = TelaMemory.from_defaults("sqlite:///:memory:", session_id="m", user_id="u")
    assert in_sqlite_memory.store_url is None


async def test_blocks_are_cut_to_their_share(sqlite_store: SQLiteStore) -> None:
    facts = TelaFactsBlock(store=sqlite_store, user_id="u", max_entries=120)
    for i in range(120):
        await facts.add_fact(f"fact {i}: the user mentioned preference number {i}")
    memory = TelaMemory.from_defaults(
        sqlite_store, session_id="cut", user_id="u", token_limit=500, memory_blocks=[facts]
    )
    await memory.aput_messages(_turns(60))
    view = await memory.aget()
    assert _tokens(view) <= 500
    note = next(m.content for m in view if m.content and "<facts>" in m.content)
    assert "fact 119:" in note  # the newest facts stay
    assert "fact 0:" not in note  # the oldest went first
    assert _tokens([ChatMessage(role="system", content=note)]) <= 0.3 * 500 + 10
    assert view[-1] == (await memory.aget_all())[-1]


def test_edits_through_the_chat_store_refresh_the_view(store: MessageStore) -> None:
    memory = TelaMemory.from_defaults(store, session_id="e", token_limit=300, user_id="u")
    memory.set([ChatMessage(role="system", content="Old rules."), *_turns(200, words=5)])
    assert memory.get()[0].content == "Old rules."
    memory.chat_store.delete_message("e", 0)
    memory.chat_store.add_message("e", ChatMessage(role="system", content="New rules."), idx=0)
    view = memory.get()
    assert view[0].content == "New rules."
    assert _tokens(view) <= 300


class _UncuttableBlock(StaticMemoryBlock):
    """A block whose ``atruncate`` cannot make it smaller."""

    async def atruncate(self, content: Any, tokens_to_truncate: int) -> Any:
        return content


async def test_over_budget_blocks_drop_priority_zero_last(store: MessageStore) -> None:
    """Priority 0 means "never truncate" in LlamaIndex: when blocks must be dropped to fit,
    the others go first."""
    core = StaticMemoryBlock(name="core", static_content="User name: Ada.", priority=0)
    notes = _UncuttableBlock(name="notes", static_content=" ".join(["note"] * 400), priority=1)
    memory = TelaMemory.from_defaults(
        store, session_id="p0", token_limit=300, memory_blocks=[core, notes], user_id="u"
    )
    await memory.aput_messages(_turns(4, words=5))
    view = await memory.aget()
    assert _tokens(view) <= 300
    note = next(m.content for m in view if m.content and "<memory>" in m.content)
    assert "User name: Ada." in note
    assert "<notes>" not in note
