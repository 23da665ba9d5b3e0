"""Ownership through every LangChain read path: Ada's data never reaches Bob or a hostile id.

Ada is seeded with a unique marker in every field (``tela_memory.testing.ownership``); then
each path (the chat history with and without a context policy, a real
``RunnableWithMessageHistory`` with a fake chat model, a real ``create_agent`` with
``TelaContextMiddleware``, ``TelaRetriever``, LangGraph ``TelaStore`` alone and as an agent's
``store=``) runs as Bob and as users with hostile ids, each passing his own user the way the
docs show, and everything he could see (return values, errors, the model's input) is scanned
for markers. Every path is paired with Ada's control through the same code, so an empty
result cannot pass vacuously. On the SQLite and in-memory stores, and Redis (integration).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import ConfigurableFieldSpec
from langchain_core.runnables.history import RunnableWithMessageHistory
from langchain_core.tools import tool
from lc_fakes import ScriptedChatModel, call, scripted

from tela_memory.context.policy import ContextPolicy
from tela_memory.errors import ScopeError
from tela_memory.recall import SQLiteIndex
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.ownership import Victim, leaks, seed_victim
from tela_memory.tokens import ApproxCounter
from tela_memory_langchain.graph_store import TelaStore
from tela_memory_langchain.history import TelaChatMessageHistory
from tela_memory_langchain.middleware import TelaContextMiddleware
from tela_memory_langchain.retriever import TelaRetriever

pytestmark = pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")

ATTACKERS = ("bob", "ada' OR '1'='1", "*", ".", "ADA", "ada ", "%", "@user_id:{ada}")
"""Bob, and ids that would widen a scope if anything parsed them."""


@dataclass
class Env:
    """A backend with Ada seeded in it: threads, a recall index, LangGraph items."""

    store: MessageStore
    victim: Victim
    index: SQLiteIndex
    graph: TelaStore  # the all-users view; users get theirs with graph.for_user(...)
    seen: list[Any] = field(default_factory=list)

    @property
    def thread(self) -> str:
        return self.victim.thread_ids[0]


def _graph_seed(graph: TelaStore, victim: Victim) -> None:
    ada = graph.for_user(victim.user_id)
    for i, marker in enumerate(victim.markers):
        ada.put(("memories",), f"m{i}", {"text": f"fact {marker}"})
        ada.put(("memories", "ada"), f"m{i}", {"text": f"note {marker}"})
    ada.put(("profile", "ada", "private"), "pin", {"text": victim.markers[0]})
    ada.put(("memories", victim.branch), "named", {"text": "x"})  # a marker in a namespace label


@pytest.fixture(params=["sqlite", "memory", pytest.param("redis", marks=pytest.mark.integration)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    store: MessageStore
    if request.param == "sqlite":
        store = SQLiteStore(tmp_path / "tela.db")
    elif request.param == "memory":
        store = InMemoryStore()
    else:
        from tela_memory_redis import RedisStore

        url = request.getfixturevalue("redis_url")
        store = RedisStore.from_url(url, prefix=f"own{uuid.uuid4().hex[:8]}")
    with store:
        victim = seed_victim(store.for_user("ada"))
        ada = store.for_user("ada")
        with SQLiteIndex(":memory:") as index:
            for tid in victim.thread_ids:
                index.upsert(ada.read(tid))
                index.upsert(ada.read(tid, branch=victim.branch))
            graph = TelaStore.for_store(store, all_users=True)
            _graph_seed(graph, victim)
            yield Env(store, victim, index, graph)
            graph.close()


def _policy() -> ContextPolicy:
    return ContextPolicy(4000, counter=ApproxCounter())


async def _outcome(run: Callable[[], Awaitable[Any]]) -> Any:
    """What the caller could see: the result, or the error raised."""
    try:
        return await run()
    except Exception as exc:  # an error message is scanned too
        return exc


# -- the read paths ---------------------------------------------------------------------------


def _history(env: Env, user: str, **kw: Any) -> TelaChatMessageHistory:
    return TelaChatMessageHistory(
        kw.pop("session", env.thread), store=env.store, user_id=user, **kw
    )


async def history_messages(env: Env, user: str) -> Any:
    return _history(env, user).messages


async def history_aget_messages(env: Env, user: str) -> Any:
    return await _history(env, user).aget_messages()


async def history_messages_with_policy(env: Env, user: str) -> Any:
    history = _history(env, user, policy=_policy())
    return history.messages, history.last_context


async def history_aget_messages_with_policy(env: Env, user: str) -> Any:
    history = _history(env, user, policy=_policy())
    return await history.aget_messages(), history.last_context


async def history_branch_session(env: Env, user: str) -> Any:
    history = _history(env, user, session=f"{env.thread}#{env.victim.branch}")
    return history.messages, await history.astored()


async def history_add_then_read(env: Env, user: str) -> Any:
    history = _history(env, user)
    history.add_messages([HumanMessage("what did I say?")])
    await history.aadd_messages([AIMessage("let me look")])
    return history.messages


async def history_clear_then_read(env: Env, user: str) -> Any:
    history = _history(env, user, session=env.victim.thread_ids[1])
    before = history.messages
    history.clear()
    await history.aclear()
    return before


def _chain(env: Env, user: str, model: ScriptedChatModel) -> RunnableWithMessageHistory:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    return RunnableWithMessageHistory(
        prompt | model,
        lambda session_id: TelaChatMessageHistory(session_id, store=env.store, user_id=user),
        input_messages_key="question",
        history_messages_key="history",
    )


async def runnable_with_message_history(env: Env, user: str) -> Any:
    model = scripted("Sure.")
    config: Any = {"configurable": {"session_id": env.thread}}
    out = _chain(env, user, model).invoke({"question": "What is my PIN?"}, config=config)
    env.seen.extend(model.seen)
    return out, model.seen


async def runnable_with_message_history_async(env: Env, user: str) -> Any:
    model = scripted("Sure.")
    config: Any = {"configurable": {"session_id": env.thread}}
    out = await _chain(env, user, model).ainvoke({"question": "My PIN?"}, config=config)
    env.seen.extend(model.seen)
    return out, model.seen


async def runnable_with_message_history_user_in_config(env: Env, user: str) -> Any:
    """LangChain's own way to pass the user: ``history_factory_config`` fields."""
    model = scripted("Sure.")
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    chain = RunnableWithMessageHistory(
        prompt | model,
        lambda user_id, session_id: TelaChatMessageHistory(
            session_id, store=env.store, user_id=user_id
        ),
        input_messages_key="question",
        history_messages_key="history",
        history_factory_config=[
            ConfigurableFieldSpec(id="user_id", annotation=str, is_shared=True),
            ConfigurableFieldSpec(id="session_id", annotation=str, is_shared=True),
        ],
    )
    config: Any = {"configurable": {"user_id": user, "session_id": env.thread}}
    out = chain.invoke({"question": "What is my PIN?"}, config=config)
    env.seen.extend(model.seen)
    return out, model.seen


async def _agent_run(
    env: Env, user: str, *, via: str, messages: list[BaseMessage], is_async: bool = False
) -> Any:
    model = scripted("Here is what I know.")
    bound = user if via == "constructor" else None
    middleware = TelaContextMiddleware(env.store, policy=_policy(), user_id=bound)
    agent = create_agent(model, middleware=[middleware])
    configurable: dict[str, Any] = {"thread_id": env.thread}
    kwargs: dict[str, Any] = {}
    if via == "context":
        kwargs["context"] = {"user_id": user}
    elif via == "configurable":
        configurable["user_id"] = user
    state = {"messages": messages}
    config: Any = {"configurable": configurable}
    if is_async:
        out = await agent.ainvoke(state, config=config, **kwargs)
    else:
        out = agent.invoke(state, config=config, **kwargs)
    env.seen.extend(model.seen)
    return out, model.seen, middleware.last_context(env.thread, user_id=user)


async def agent_no_new_message_constructor_user(env: Env, user: str) -> Any:
    return await _agent_run(env, user, via="constructor", messages=[])


async def agent_no_new_message_context_user(env: Env, user: str) -> Any:
    return await _agent_run(env, user, via="context", messages=[])


async def agent_no_new_message_configurable_user(env: Env, user: str) -> Any:
    return await _agent_run(env, user, via="configurable", messages=[])


async def agent_new_message(env: Env, user: str) -> Any:
    return await _agent_run(env, user, via="context", messages=[HumanMessage("my PIN?")])


async def agent_async_no_new_message(env: Env, user: str) -> Any:
    return await _agent_run(env, user, via="constructor", messages=[], is_async=True)


def _queries(env: Env) -> list[str]:
    return [*env.victim.markers, "PIN", "lookup", "noted thinking"]


async def retriever_invoke(env: Env, user: str) -> Any:
    retriever = TelaRetriever(index=env.index, user_id=user, k=50, mode="lexical")
    return [retriever.invoke(q) for q in _queries(env)]


async def retriever_ainvoke_hybrid(env: Env, user: str) -> Any:
    retriever = TelaRetriever(index=env.index, user_id=user, k=50)
    return [await retriever.ainvoke(q) for q in _queries(env)]


async def retriever_her_thread_ids(env: Env, user: str) -> Any:
    retriever = TelaRetriever(index=env.index, user_id=user, thread_ids=list(env.victim.thread_ids))
    return [retriever.invoke(q, k=50) for q in _queries(env)]


async def retriever_filter_names_ada(env: Env, user: str) -> Any:
    retriever = TelaRetriever(index=env.index, user_id=user, k=50)
    return await _outcome(lambda: retriever.ainvoke("PIN", filter={"user_id": "ada"}))


async def graph_get_her_namespaces(env: Env, user: str) -> Any:
    mine = env.graph.for_user(user)
    keys = [f"m{i}" for i in range(len(env.victim.markers))]
    got = [mine.get(ns, k) for ns in [("memories",), ("memories", "ada")] for k in keys]
    return [*got, mine.get(("profile", "ada", "private"), "pin")]


async def graph_search_her_namespace(env: Env, user: str) -> Any:
    return env.graph.for_user(user).search(("memories", "ada"), limit=100)


async def graph_search_memories(env: Env, user: str) -> Any:
    return env.graph.for_user(user).search(("memories",), limit=100)


async def graph_search_root(env: Env, user: str) -> Any:
    return env.graph.for_user(user).search((), limit=100)


async def graph_search_query(env: Env, user: str) -> Any:
    mine = env.graph.for_user(user)
    return [mine.search((), query=q, limit=100) for q in _queries(env)]


async def graph_list_namespaces(env: Env, user: str) -> Any:
    mine = env.graph.for_user(user)
    return mine.list_namespaces(limit=1000), mine.list_namespaces(prefix=("memories",))


async def graph_async(env: Env, user: str) -> Any:
    mine = env.graph.for_user(user)
    return await mine.asearch((), limit=100), await mine.alist_namespaces()


@tool
def recall_memories(query: str, runtime: ToolRuntime) -> str:
    """Look up saved facts about the user."""
    assert runtime.store is not None
    return "; ".join(i.value["text"] for i in runtime.store.search(("memories",), limit=100))


async def graph_as_agent_store(env: Env, user: str) -> Any:
    model = scripted(call("recall_memories", "c1", query="PIN"), "Done.")
    agent = create_agent(model, tools=[recall_memories], store=env.graph.for_user(user))
    out = agent.invoke({"messages": [HumanMessage("what do you remember about me?")]})
    env.seen.extend(model.seen)
    return out, model.seen


PATHS: dict[str, Callable[[Env, str], Awaitable[Any]]] = {
    f.__name__: f
    for f in (
        history_messages,
        history_aget_messages,
        history_messages_with_policy,
        history_aget_messages_with_policy,
        history_branch_session,
        history_add_then_read,
        history_clear_then_read,
        runnable_with_message_history,
        runnable_with_message_history_async,
        runnable_with_message_history_user_in_config,
        agent_no_new_message_constructor_user,
        agent_no_new_message_context_user,
        agent_no_new_message_configurable_user,
        agent_new_message,
        agent_async_no_new_message,
        retriever_invoke,
        retriever_ainvoke_hybrid,
        retriever_her_thread_ids,
        retriever_filter_names_ada,
        graph_get_her_namespaces,
        graph_search_her_namespace,
        graph_search_memories,
        graph_search_root,
        graph_search_query,
        graph_list_namespaces,
        graph_async,
        graph_as_agent_store,
    )
}
MUTATING = {"history_add_then_read", "history_clear_then_read"}


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("attacker", ATTACKERS)
async def test_nothing_of_ada_reaches_another_user(env: Env, path: str, attacker: str) -> None:
    seen = await _outcome(lambda: PATHS[path](env, attacker))
    assert leaks(seen, env.victim.markers) == []
    assert leaks(env.seen, env.victim.markers) == []  # nor any model's input
    if path in MUTATING:  # and nothing of hers was changed
        assert await history_messages(env, "ada") != []
        assert leaks(await history_clear_then_read(env, "ada"), env.victim.markers)


@pytest.mark.parametrize("path", PATHS)
async def test_control_ada_sees_her_markers_through_the_same_path(env: Env, path: str) -> None:
    seen = await _outcome(lambda: PATHS[path](env, "ada"))
    assert not isinstance(seen, Exception), seen
    assert leaks([seen, env.seen], env.victim.markers) != []


async def test_bobs_turn_is_stored_in_his_namespace(env: Env) -> None:
    model = scripted("Hello Bob.")
    config: Any = {"configurable": {"session_id": env.thread}}
    out = _chain(env, "bob", model).invoke({"question": "Hi, I am Bob."}, config=config)
    assert out.content == "Hello Bob."
    assert [m.text for m in model.seen[0]] == ["You are helpful.", "Hi, I am Bob."]
    bob = env.store.for_user("bob")
    assert [m.text for m in bob.read(env.thread)] == ["Hi, I am Bob.", "Hello Bob."]
    assert {m.user_id for m in bob.read(env.thread)} == {"bob"}
    ada = env.store.for_user("ada").read(env.thread)
    assert len(ada) == 4  # hers untouched
    assert "Hello Bob." not in [m.text for m in ada]


async def test_bobs_agent_turn_is_stored_in_his_namespace(env: Env) -> None:
    await agent_new_message(env, "bob")
    bob = env.store.for_user("bob").read(env.thread)
    assert [m.text for m in bob] == ["my PIN?", "Here is what I know."]
    assert len(env.store.for_user("ada").read(env.thread)) == 4


async def test_no_user_is_a_scope_error_with_nothing_of_ada_in_it(env: Env) -> None:
    errors: list[BaseException] = []
    for build in (
        lambda: TelaChatMessageHistory(env.thread, store=env.store),
        lambda: TelaRetriever(index=env.index),
        lambda: TelaRetriever(index=env.index, filter={"user_id": None}),
        lambda: TelaStore.for_store(env.store),
    ):
        with pytest.raises(ScopeError) as caught:
            build()
        errors.append(caught.value)
    model = scripted("x")
    agent = create_agent(model, middleware=[TelaContextMiddleware(env.store, policy=_policy())])
    for messages in ([], [HumanMessage("hi")]):
        with pytest.raises(ScopeError) as caught:
            agent.invoke({"messages": messages}, config={"configurable": {"thread_id": env.thread}})
        errors.append(caught.value)
    assert model.seen == []
    assert leaks(errors, env.victim.markers) == []
    assert all("ada" not in str(e) for e in errors)
