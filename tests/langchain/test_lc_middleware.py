"""``TelaContextMiddleware`` in real ``create_agent`` agents, next to SummarizationMiddleware."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from lc_fakes import call, scripted

from tela_memory.context.policy import ContextPolicy
from tela_memory.context.report import Decision
from tela_memory.errors import InvalidMessageError, ScopeError, TelaMemoryError
from tela_memory.stores.base import MessageStore
from tela_memory.tokens import ApproxCounter
from tela_memory_langchain.convert import messages_to_core
from tela_memory_langchain.middleware import TelaContextMiddleware


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _policy(budget: int) -> ContextPolicy:
    return ContextPolicy(budget, counter=ApproxCounter())


def _cfg(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _pairs_intact(messages: list[BaseMessage]) -> bool:
    """Every tool result follows its call, every call has all its results."""
    open_calls: set[str] = set()
    for m in messages:
        if isinstance(m, AIMessage):
            if open_calls:
                return False
            open_calls = {c["id"] for c in m.tool_calls if c["id"]}
        elif isinstance(m, ToolMessage):
            if m.tool_call_id not in open_calls:
                return False
            open_calls.discard(m.tool_call_id)
        elif open_calls:
            return False
    return not open_calls


def _long_history(turns: int) -> list[BaseMessage]:
    out: list[BaseMessage] = [SystemMessage("You are Tela. Always answer in French.", id="sys")]
    for i in range(turns):
        filler = " ".join(f"word{i}_{j}" for j in range(40))
        out.append(HumanMessage(f"question {i}: {filler}", id=f"h{i}"))
        if i % 3 == 1:
            out.append(
                AIMessage(
                    "",
                    id=f"c{i}",
                    tool_calls=[
                        {"name": "add", "args": {"a": i, "b": 1}, "id": f"call{i}a"},
                        {"name": "add", "args": {"a": i, "b": 2}, "id": f"call{i}b"},
                    ],
                )
            )
            out.append(ToolMessage(str(i + 1), tool_call_id=f"call{i}a", id=f"r{i}a"))
            out.append(ToolMessage(str(i + 2), tool_call_id=f"call{i}b", id=f"r{i}b"))
        out.append(AIMessage(f"answer {i}: {filler}", id=f"a{i}"))
    return out


def test_agent_turns_are_persisted_and_remembered(store: MessageStore, thread: str) -> None:
    model = scripted(call("add", "c1", a=2, b=2), "4", "Still 4.")
    middleware = TelaContextMiddleware(store, policy=_policy(4000), user_id="u1")
    agent = create_agent(model, tools=[add], system_prompt="Be terse.", middleware=[middleware])
    out = agent.invoke({"messages": [HumanMessage("2+2?")]}, config=_cfg(thread))
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
    # No checkpointer: the second run knows the first one through the store alone.
    agent.invoke({"messages": [HumanMessage("And again?")]}, config=_cfg(thread))
    assert [m.text for m in store.read(thread, user_id="u1")] == [
        "2+2?",
        "",
        "4",
        "4",
        "And again?",
        "Still 4.",
    ]
    assert {m.user_id for m in store.read(thread, user_id="u1")} == {"u1"}
    assert [m.text for m in model.seen[-1]] == ["Be terse.", "2+2?", "", "4", "4", "And again?"]


async def test_async_agent(store: MessageStore, thread: str) -> None:
    model = scripted(call("add", "c1", a=1, b=1), "2")
    middleware = TelaContextMiddleware(store, policy=_policy(4000), user_id="u1")
    agent = create_agent(model, tools=[add], middleware=[middleware])
    out = await agent.ainvoke({"messages": [HumanMessage("1+1?")]}, config=_cfg(thread))
    assert out["messages"][-1].text == "2"
    assert [m.role.value for m in await store.aread(thread, user_id="u1")] == [
        "user",
        "assistant",
        "tool",
        "assistant",
    ]


def test_with_a_checkpointer_nothing_is_stored_twice(store: MessageStore, thread: str) -> None:
    model = scripted(*[f"reply {i}" for i in range(12)])
    middleware = TelaContextMiddleware(store, policy=_policy(4000), user_id="u1")
    agent = create_agent(model, middleware=[middleware], checkpointer=InMemorySaver())
    for i in range(12):  # the state grows past the first tail reads (8, then 32 messages)
        agent.invoke({"messages": [HumanMessage(f"q{i}")]}, config=_cfg(thread))
    expected = [t for i in range(12) for t in (f"q{i}", f"reply {i}")]
    assert [m.text for m in store.read(thread, user_id="u1")] == expected


def test_view_fits_the_budget_keeps_pairs_and_pins_the_system(
    store: MessageStore, thread: str
) -> None:
    history = _long_history(12)
    model = scripted("fin")
    policy = _policy(900)
    middleware = TelaContextMiddleware(store, policy=policy, user_id="u1")
    agent = create_agent(model, tools=[add], middleware=[middleware])
    agent.invoke(
        {"messages": [*history, HumanMessage("last question", id="hq")]}, config=_cfg(thread)
    )
    sent = model.seen[-1]
    assert sent[0] == history[0]  # the system message is pinned, unchanged
    assert sent[-1].text == "last question"
    assert _pairs_intact(sent)
    ctx = middleware.last_context(thread)
    assert ctx is not None
    assert ctx.report.tokens_out <= 900
    assert ctx.report.ids(Decision.SUMMARISED) or ctx.report.ids(Decision.DROPPED)
    assert len(store.read(thread, user_id="u1")) == len(history) + 2  # the store keeps everything


def test_compared_with_summarization_middleware(store: MessageStore, thread: str) -> None:
    """Same history, same trigger size: SummarizationMiddleware summarises the user's system
    message away and rewrites the agent state; Tela keeps the system message pinned, keeps
    tool pairs whole and leaves the state (and the store) complete."""
    history = [*_long_history(12), HumanMessage("last question", id="hq")]
    theirs = scripted("fin")
    summarizer = scripted("A SUMMARY.")
    if "trigger" in inspect.signature(SummarizationMiddleware).parameters:
        summarization = SummarizationMiddleware(
            summarizer, trigger=("tokens", 900), keep=("messages", 6)
        )
    else:  # langchain 1.0's arguments
        summarization = SummarizationMiddleware(
            summarizer, max_tokens_before_summary=900, messages_to_keep=6
        )
    summarizing = create_agent(theirs, tools=[add], middleware=[summarization])
    out_theirs = summarizing.invoke({"messages": history})
    ours = scripted("fin")
    tela = TelaContextMiddleware(store, policy=_policy(900), user_id="u1")
    out_ours = create_agent(ours, tools=[add], middleware=[tela]).invoke(
        {"messages": history}, config=_cfg(thread)
    )

    sent_theirs, sent_ours = theirs.seen[-1], ours.seen[-1]
    assert not any(isinstance(m, SystemMessage) for m in sent_theirs)  # instructions lost
    assert sent_ours[0].text == "You are Tela. Always answer in French."
    assert _pairs_intact(sent_theirs)
    assert _pairs_intact(sent_ours)
    # SummarizationMiddleware rewrote the state: the original turns are gone from it.
    assert len(out_theirs["messages"]) < len(history)
    assert out_ours["messages"][: len(history)] == history
    assert len(store.read(thread, user_id="u1")) == len(history) + 1


def test_orphan_tool_result_in_the_state_is_rejected(store: MessageStore, thread: str) -> None:
    agent = create_agent(
        scripted("x"), middleware=[TelaContextMiddleware(store, policy=_policy(900), user_id="u1")]
    )
    broken = [HumanMessage("hi"), ToolMessage("42", tool_call_id="never_called")]
    with pytest.raises(InvalidMessageError, match="orphan tool result"):
        agent.invoke({"messages": broken}, config=_cfg(thread))
    assert store.read(thread, user_id="u1") == []


def test_interrupted_tool_call_is_left_out_of_the_view(store: MessageStore, thread: str) -> None:
    # A call whose result never came (a crashed run) is stored but never sent.
    lost = messages_to_core([HumanMessage("hi"), call("add", "lost", a=1, b=2)])
    store.append(thread, lost, user_id="u1")
    model = scripted("ok")
    agent = create_agent(
        model, middleware=[TelaContextMiddleware(store, policy=_policy(900), user_id="u1")]
    )
    agent.invoke({"messages": [HumanMessage("hello?")]}, config=_cfg(thread))
    assert _pairs_intact(model.seen[-1])
    assert [m.text for m in model.seen[-1]] == ["hi", "hello?"]


def test_a_thread_is_required(store: MessageStore) -> None:
    agent = create_agent(
        scripted("x"), middleware=[TelaContextMiddleware(store, policy=_policy(900), user_id="u1")]
    )
    with pytest.raises(TelaMemoryError, match="thread_id"):
        agent.invoke({"messages": [HumanMessage("hi")]})


def test_prefix_stays_stable_between_turns(store: MessageStore, thread: str) -> None:
    """Most turns only append to what the previous call sent (prompt caches keep hitting);
    the prefix changes only when the window is folded back (to ``low_water``), not on every
    turn as with a sliding window."""
    filler = " ".join(f"w{j}" for j in range(30))
    model = scripted(*[f"reply {i}: {filler}" for i in range(30)])
    middleware = TelaContextMiddleware(store, policy=_policy(800), user_id="u1")
    agent = create_agent(model, middleware=[middleware])
    first = [SystemMessage("House rules."), HumanMessage("start")]
    agent.invoke({"messages": first}, config=_cfg(thread))
    budgets = []
    for i in range(29):
        agent.invoke({"messages": [HumanMessage(f"turn {i}: {filler}")]}, config=_cfg(thread))
        ctx = middleware.last_context(thread)
        assert ctx is not None
        budgets.append(ctx.report.tokens_out)
    pairs = list(zip(model.seen, model.seen[1:], strict=False))
    stable = sum(after[: len(before)] == before for before, after in pairs)
    assert all(m[0].text == "House rules." for m in model.seen)
    assert max(budgets) <= 800
    assert (
        len(store.read(thread, user_id="u1")) == 61
    )  # the store has every turn, the view does not
    assert len(model.seen[-1]) < 40
    assert 22 <= stable < len(pairs), f"{stable} of {len(pairs)} requests extended the previous"


class _UserRecall:
    """The engine's recall slot filled by the core ``Recaller`` over one user's history."""

    def __init__(self, recaller: Any, user_id: str) -> None:
        self.recaller, self.user_id = recaller, user_id

    def recall(self, query: str, thread: str | None, budget: int) -> list[Any]:
        return list(self.recaller.recall(query, user_id=self.user_id, budget=budget).messages)


def test_recalled_turns_from_another_thread(tmp_path: Any) -> None:
    from tela_memory.context import PinnedPrefix, Recall
    from tela_memory.recall import SQLiteIndex
    from tela_memory.recall.recaller import Recaller
    from tela_memory.stores.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "r.db") as store, SQLiteIndex.for_store(store) as index:
        policy = ContextPolicy(
            2000,
            counter=ApproxCounter(),
            recall=Recall(_UserRecall(Recaller(index), "ada"), share=0.3),
            # With the default first_turns=1 the engine pins the newest question of a new
            # thread, and the recalled turns would come after it (reported to the engine).
            pinned=PinnedPrefix(first_turns=0),
        )
        model = scripted("Noted.", "Biscuit.")
        middleware = TelaContextMiddleware(store, policy=policy, user_id="ada", index=index)
        agent = create_agent(model, middleware=[middleware])
        agent.invoke({"messages": [HumanMessage("My dog is named Biscuit.")]}, config=_cfg("a"))
        agent.invoke({"messages": [HumanMessage("What is my dog called?")]}, config=_cfg("b"))
        sent = [m.text for m in model.seen[-1]]
        assert sent == ["My dog is named Biscuit.", "Noted.", "What is my dog called?"]
        assert index.count({"user_id": "ada"}) == 4  # every persisted message was indexed


async def test_sync_and_async_hooks_send_the_same_views(store: MessageStore) -> None:
    def script() -> Any:
        replies: list[AIMessage | str] = []
        for i in range(6):
            replies += [call("add", f"c{i}", a=i, b=i), f"sum {i}: " + "x " * 120]
        return scripted(*replies)

    sync_model, async_model = script(), script()
    sync_agent = create_agent(
        sync_model,
        tools=[add],
        middleware=[TelaContextMiddleware(store, policy=_policy(600), user_id="u1")],
    )
    async_agent = create_agent(
        async_model,
        tools=[add],
        middleware=[TelaContextMiddleware(store, policy=_policy(600), user_id="u1")],
    )
    for i in range(6):
        question = {"messages": [HumanMessage(f"add {i} and {i}", id=f"q{i}")]}
        sync_agent.invoke(question, config=_cfg("sync-thread"))
        await async_agent.ainvoke(question, config=_cfg("async-thread"))

    def shape(calls: list[list[BaseMessage]]) -> list[list[tuple[str, str]]]:
        return [[(m.type, m.text) for m in sent] for sent in calls]

    assert shape(sync_model.seen) == shape(async_model.seen)
    assert len(sync_model.seen) == 12
    assert len(sync_model.seen[-1]) < 23  # the budget pruned the view
    u1 = store.for_user("u1")
    assert len(u1.read("sync-thread")) == len(u1.read("async-thread")) == 24


@dataclass
class _Ctx:
    user_id: str


def test_the_acting_user_comes_from_the_run(store: MessageStore, thread: str) -> None:
    """One middleware for every user: each run names its user in ``context=`` (a mapping or
    a ``context_schema`` object) or in ``configurable.user_id``."""
    model = scripted("to ada", "to bob", "to cy")
    middleware = TelaContextMiddleware(store, policy=_policy(900))
    agent = create_agent(model, middleware=[middleware], context_schema=_Ctx)
    agent.invoke({"messages": [HumanMessage("ada here")]}, config=_cfg(thread), context=_Ctx("ada"))
    plain = create_agent(model, middleware=[middleware])
    plain.invoke(
        {"messages": [HumanMessage("bob here")]}, config=_cfg(thread), context={"user_id": "bob"}
    )
    by_config = {"configurable": {"thread_id": thread, "user_id": "cy"}}
    plain.invoke({"messages": [HumanMessage("cy here")]}, config=by_config)
    assert [[m.text for m in sent] for sent in model.seen] == [
        ["ada here"],
        ["bob here"],
        ["cy here"],
    ]
    for user, text in [("ada", "to ada"), ("bob", "to bob"), ("cy", "to cy")]:
        assert [m.text for m in store.read(thread, user_id=user)][-1] == text
        assert middleware.last_context(thread, user_id=user) is not None
    with pytest.raises(ScopeError, match="user_id"):
        middleware.last_context(thread)


def test_no_user_is_a_scope_error_never_everyone(store: MessageStore, thread: str) -> None:
    store.append(thread, messages_to_core([HumanMessage("ada's secret")]), user_id="ada")
    model = scripted("x")
    agent = create_agent(model, middleware=[TelaContextMiddleware(store, policy=_policy(900))])
    for messages in ([HumanMessage("hi")], []):
        with pytest.raises(ScopeError, match="user_id"):
            agent.invoke({"messages": messages}, config=_cfg(thread))
    assert model.seen == []
    assert [m.text for m in store.read(thread, user_id="ada")] == ["ada's secret"]


async def test_a_run_cannot_switch_a_bound_middleware_to_another_user(
    store: MessageStore, thread: str
) -> None:
    agent = create_agent(
        scripted("x"), middleware=[TelaContextMiddleware(store, policy=_policy(900), user_id="bob")]
    )
    with pytest.raises(ScopeError, match="another"):
        agent.invoke(
            {"messages": [HumanMessage("hi")]}, config=_cfg(thread), context={"user_id": "ada"}
        )
    with pytest.raises(ScopeError, match="another"):
        await agent.ainvoke(
            {"messages": [HumanMessage("hi")]},
            config={"configurable": {"thread_id": thread, "user_id": "ada"}},
        )
    both = {"configurable": {"thread_id": thread, "user_id": "cy"}}
    free = create_agent(
        scripted("x"), middleware=[TelaContextMiddleware(store, policy=_policy(900))]
    )
    with pytest.raises(ScopeError, match="two different users"):
        free.invoke({"messages": [HumanMessage("hi")]}, config=both, context={"user_id": "dee"})
    assert store.list_threads("ada").threads == store.list_threads("bob").threads == ()
