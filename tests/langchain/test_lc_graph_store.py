"""``TelaStore``: the LangGraph ``BaseStore`` contract, checked against InMemoryStore."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from langchain.agents import create_agent
from langchain.tools import ToolRuntime
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langgraph.store.base import GetOp, ListNamespacesOp, MatchCondition, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore as GraphMemoryStore
from lc_fakes import call, scripted

from tela_memory.errors import BackendUnavailable, InvalidMessageError
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_langchain.graph_store import TelaStore

labels = st.sampled_from(["users", "u1", "u2", "memories", "prefs", "x"])
namespaces = st.lists(labels, min_size=1, max_size=3).map(tuple)
keys = st.sampled_from(["a", "b", "c", "d"])
values = st.fixed_dictionaries(
    {"n": st.integers(0, 5), "tag": st.sampled_from(["red", "blue"]), "text": st.text(max_size=8)}
)


class AgreesWithLangGraph(RuleBasedStateMachine):
    """Any sequence of puts and deletes: get, list_namespaces and filtered search agree with
    LangGraph's own InMemoryStore (the reference implementation).

    One documented difference: InMemoryStore keeps listing a namespace after its last item is
    deleted; TelaStore (like LangGraph's Postgres store) lists namespaces that hold items.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ours = TelaStore(":memory:", user_id="u1")
        self.ref = GraphMemoryStore()
        self.live: dict[tuple[str, ...], set[str]] = {}

    @rule(ns=namespaces, key=keys, value=values)
    def put(self, ns: tuple[str, ...], key: str, value: dict[str, Any]) -> None:
        self.ours.put(ns, key, value)
        self.ref.put(ns, key, value)
        self.live.setdefault(ns, set()).add(key)

    @rule(ns=namespaces, key=keys)
    def delete(self, ns: tuple[str, ...], key: str) -> None:
        self.ours.delete(ns, key)
        self.ref.delete(ns, key)
        self.live.get(ns, set()).discard(key)

    def _expected(self, depth: int | None = None, **args: Any) -> list[tuple[str, ...]]:
        found = self.ref.list_namespaces(**args, limit=10_000)
        kept = [ns for ns in found if self.live.get(ns)]
        return sorted({ns[:depth] if depth else ns for ns in kept})

    @rule(ns=namespaces, key=keys)
    def get(self, ns: tuple[str, ...], key: str) -> None:
        mine, theirs = self.ours.get(ns, key), self.ref.get(ns, key)
        assert (mine and (mine.namespace, mine.key, mine.value)) == (
            theirs and (theirs.namespace, theirs.key, theirs.value)
        )

    @rule(
        prefix=st.lists(labels, max_size=2).map(tuple),
        flt=st.none() | st.sampled_from([{"tag": "red"}, {"n": {"$gte": 3}}, {"n": {"$ne": 1}}]),
    )
    def search(self, prefix: tuple[str, ...], flt: dict[str, Any] | None) -> None:
        mine = self.ours.search(prefix, filter=flt, limit=100)
        theirs = self.ref.search(prefix, filter=flt, limit=100)
        assert sorted((i.namespace, i.key) for i in mine) == sorted(
            (i.namespace, i.key) for i in theirs
        )

    @rule(
        prefix=st.none() | st.lists(labels | st.just("*"), min_size=1, max_size=2).map(tuple),
        suffix=st.none() | st.lists(labels, min_size=1, max_size=1).map(tuple),
        depth=st.none() | st.integers(1, 3),
    )
    def list_namespaces(
        self, prefix: tuple[str, ...] | None, suffix: tuple[str, ...] | None, depth: int | None
    ) -> None:
        mine = self.ours.list_namespaces(prefix=prefix, suffix=suffix, max_depth=depth, limit=1000)
        assert mine == self._expected(depth, prefix=prefix, suffix=suffix)

    @invariant()
    def all_namespaces_agree(self) -> None:
        assert self.ours.list_namespaces(limit=1000) == self._expected()


AgreesWithLangGraph.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestAgreesWithLangGraph = AgreesWithLangGraph.TestCase


@pytest.fixture
def graph_store(tmp_path: Path) -> TelaStore:
    return TelaStore(tmp_path / "tela.db", user_id="u1")


def test_batch_runs_ops_in_order(graph_store: TelaStore) -> None:
    ns = ("u1", "memories")
    results = graph_store.batch(
        [
            PutOp(ns, "a", {"text": "likes tea"}),
            GetOp(ns, "a"),
            PutOp(ns, "a", None),
            GetOp(ns, "a"),
            PutOp(ns, "b", {"text": "likes coffee"}),
            SearchOp(("u1",), limit=10),
            ListNamespacesOp(match_conditions=(MatchCondition("prefix", ("u1",)),)),
        ]
    )
    assert results[1].value == {"text": "likes tea"}
    assert results[3] is None
    assert [i.key for i in results[5]] == ["b"]
    assert results[6] == [ns]


async def test_async_batch_matches_sync(graph_store: TelaStore) -> None:
    await graph_store.aput(("u1",), "k", {"v": 1})
    assert (await graph_store.aget(("u1",), "k")).value == {"v": 1}
    assert [i.key for i in await graph_store.asearch(("u1",))] == ["k"]
    assert await graph_store.alist_namespaces() == [("u1",)]
    await graph_store.adelete(("u1",), "k")
    assert graph_store.get(("u1",), "k") is None


def test_update_keeps_created_at(graph_store: TelaStore) -> None:
    graph_store.put(("n",), "k", {"v": 1})
    first = graph_store.get(("n",), "k")
    graph_store.put(("n",), "k", {"v": 2})
    second = graph_store.get(("n",), "k")
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


def test_semantic_search_with_an_embedder(tmp_path: Path) -> None:
    store = TelaStore(
        tmp_path / "s.db",
        user_id="u1",
        index={"embed": HashEmbedder(64), "dims": 64, "fields": ["text"]},
    )
    ns = ("u1", "memories")
    store.put(ns, "1", {"text": "prefers green tea in the morning", "kind": "drink"})
    store.put(ns, "2", {"text": "works as a marine biologist", "kind": "job"})
    store.put(ns, "3", {"text": "allergic to peanuts", "kind": "health"}, index=False)
    hits = store.search(ns, query="which tea does the user drink?", limit=3)
    assert hits[0].key == "1"
    assert hits[0].score is not None
    assert hits[0].score > (hits[1].score or 0)
    assert [h.key for h in store.search(ns, query="tea", filter={"kind": "job"})] == ["2"]


def test_langchain_embeddings_are_accepted(tmp_path: Path) -> None:
    store = TelaStore(
        tmp_path / "e.db",
        user_id="u1",
        index={"embed": DeterministicFakeEmbedding(size=8), "dims": 8},
    )
    store.put(("n",), "k", {"text": "hello"})
    assert store.search(("n",), query="anything")[0].key == "k"


def test_lexical_ranking_without_an_embedder(graph_store: TelaStore) -> None:
    graph_store.put(("n",), "1", {"text": "the cat sat"})
    graph_store.put(("n",), "2", {"text": "quantum chromodynamics lecture"})
    assert graph_store.search(("n",), query="quantum lecture")[0].key == "2"


def test_ttl_expires_and_refreshes(graph_store: TelaStore) -> None:
    ttl = 0.5 / 60  # half a second, in minutes
    graph_store.put(("n",), "short", {"v": 1}, ttl=ttl)
    graph_store.put(("n",), "kept", {"v": 2})
    assert graph_store.get(("n",), "short") is not None
    time.sleep(0.3)
    assert graph_store.get(("n",), "short") is not None  # a read refreshes the TTL
    time.sleep(0.3)
    assert graph_store.get(("n",), "short", refresh_ttl=False) is not None
    time.sleep(0.6)
    assert graph_store.get(("n",), "short") is None
    assert [i.key for i in graph_store.search(("n",))] == ["kept"]
    assert graph_store.sweep_ttl() == 0  # expired rows were already swept by that batch


def test_default_ttl_from_config(tmp_path: Path) -> None:
    store = TelaStore(
        tmp_path / "t.db", user_id="u1", ttl={"default_ttl": 0.2 / 60, "refresh_on_read": False}
    )
    store.put(("n",), "k", {"v": 1})
    time.sleep(0.4)
    assert store.get(("n",), "k") is None


def test_bad_values_are_refused(graph_store: TelaStore) -> None:
    with pytest.raises(InvalidMessageError, match="JSON"):
        graph_store.put(("n",), "k", {"when": object()})
    graph_store.put(("n",), "k", {"v": 1})
    with pytest.raises(InvalidMessageError, match="operator"):
        graph_store.search(("n",), filter={"v": {"$in": [1]}})
    with pytest.raises(ValueError, match=r"[Nn]amespace"):
        graph_store.put(("a.b",), "k", {"v": 1})


def test_shares_the_message_store_file(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "one.db") as messages:
        messages.append("t", [], user_id="u")
        store = TelaStore.for_store(messages, user_id="u")
        store.put(("u",), "k", {"v": 1})
        assert store._path == str(tmp_path / "one.db")
        store.close()
    assert TelaStore(tmp_path / "one.db", user_id="u").get(("u",), "k").value == {"v": 1}


@given(st.lists(st.tuples(namespaces, keys, values), max_size=10))
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_values_round_trip(items: list[tuple[tuple[str, ...], str, dict[str, Any]]]) -> None:
    store = TelaStore(":memory:", user_id="u1")
    last: dict[tuple[tuple[str, ...], str], dict[str, Any]] = {}
    for ns, key, value in items:
        store.put(ns, key, value)
        last[(ns, key)] = value
    for (ns, key), value in last.items():
        assert store.get(ns, key).value == value


@tool
def remember(fact: str, runtime: ToolRuntime) -> str:
    """Save a fact about the user."""
    assert runtime.store is not None
    runtime.store.put(
        ("user", "memories"), str(len(runtime.store.search(("user",)))), {"text": fact}
    )
    return "saved"


@tool
def recall(query: str, runtime: ToolRuntime) -> str:
    """Look up saved facts."""
    assert runtime.store is not None
    return "; ".join(i.value["text"] for i in runtime.store.search(("user",), query=query))


def test_usable_as_create_agent_store(graph_store: TelaStore) -> None:
    writer = create_agent(
        scripted(call("remember", "c1", fact="likes green tea"), "Noted."),
        tools=[remember, recall],
        store=graph_store,
    )
    writer.invoke({"messages": [HumanMessage("I like green tea")]})
    reader_model = scripted(call("recall", "c2", query="tea"), "You like green tea.")
    reader = create_agent(reader_model, tools=[remember, recall], store=graph_store)
    out = reader.invoke({"messages": [HumanMessage("What do I drink?")]})
    tool_message = out["messages"][2]
    assert tool_message.content == "likes green tea"
    assert out["messages"][-1].content == "You like green tea."


def test_usable_in_a_langgraph_graph(graph_store: TelaStore) -> None:
    from typing import TypedDict

    from langgraph.config import get_store
    from langgraph.graph import END, START, StateGraph

    class State(TypedDict):
        fact: str
        seen: list[str]

    def save(state: State) -> dict[str, Any]:
        get_store().put(("user", "facts"), state["fact"][:8], {"text": state["fact"]})
        return {}

    def look(state: State) -> dict[str, Any]:
        return {"seen": [i.value["text"] for i in get_store().search(("user",))]}

    graph = StateGraph(State)
    graph.add_node("save", save)
    graph.add_node("look", look)
    graph.add_edge(START, "save")
    graph.add_edge("save", "look")
    graph.add_edge("look", END)
    app = graph.compile(store=graph_store)
    app.invoke({"fact": "speaks Portuguese", "seen": []})
    out = app.invoke({"fact": "plays the cello", "seen": []})
    assert sorted(out["seen"]) == ["plays the cello", "speaks Portuguese"]


class _ScaledEmbedder:
    """An ``Embedder`` (the protocol, not ``BaseEmbedder``) whose vectors are not unit
    length: the store must normalise them the same way on the sync and the async side."""

    model_id = "scaled-hash"
    dimension = 16

    def __init__(self) -> None:
        self._inner = HashEmbedder(16)

    def embed(self, texts: Any) -> Any:
        return self._inner.embed(texts) * 7.0

    async def aembed(self, texts: Any) -> Any:
        return self.embed(texts)

    def embed_query(self, text: str) -> Any:
        return self._inner.embed_query(text) * 3.0

    async def aembed_query(self, text: str) -> Any:
        return self.embed_query(text)


async def test_async_search_scores_match_sync_with_unnormalised_embedder(tmp_path: Path) -> None:
    store = TelaStore(
        tmp_path / "n.db", user_id="u1", index={"embed": _ScaledEmbedder(), "dims": 16}
    )
    ns = ("u1",)
    await store.aput(ns, "1", {"text": "green tea in the morning"})
    store.put(ns, "2", {"text": "marine biologist"})
    sync_hits = store.search(ns, query="green tea")
    async_hits = await store.asearch(ns, query="green tea")
    assert [(h.key, h.score) for h in async_hits] == [(h.key, h.score) for h in sync_hits]
    assert all(h.score is not None and h.score <= 1.0 + 1e-5 for h in sync_hits)


def test_sqlite_failure_mid_batch_is_a_tela_error_and_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    store = TelaStore(path, user_id="u1")
    store.put(("n",), "a", {"v": 1})
    other = sqlite3.connect(path)
    other.execute("DROP TABLE lgstore_vectors")  # damaged by something else
    other.close()
    with pytest.raises(BackendUnavailable, match="lgstore_vectors"):
        store.batch([PutOp(("n",), "b", {"v": 2}), PutOp(("n",), "a", {"v": 3})])
    store.close()
    with sqlite3.connect(path) as check:  # nothing of the failed batch stayed
        rows = check.execute("SELECT key, value FROM lgstore_items ORDER BY key").fetchall()
    assert rows == [("a", '{"v": 1}')]
