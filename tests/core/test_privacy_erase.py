"""``tela_memory.privacy.erase_user``: a SQLite store, its embedded index, a separate Qdrant
index (local mode), a two-level embedding cache and a token-count cache, all real."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tela_memory.context import ContextEngine, ContextPolicy
from tela_memory.errors import InvalidMessageError, NotFoundError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.privacy import (
    EmbeddingCacheEntries,
    UserData,
    aerase_user,
    erase_user,
    user_data,
)
from tela_memory.recall.cache import (
    BaseCache,
    CacheChain,
    CachedEmbedder,
    MemoryCache,
    SQLiteCache,
    text_key,
)
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.stores.base import ErasureReceipt, MessageStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens import ApproxCounter, CachedCounter
from tela_memory_qdrant import QdrantIndex

ALICE_TEXTS = ["I live in Lisbon", "Lisbon is sunny", "my cat is Mia", "Mia likes tuna"]
BOB_TEXTS = ["I live in Oslo", "Oslo is cold"]


@dataclass
class World:
    store: SQLiteStore
    embedded: SQLiteIndex
    qdrant: QdrantIndex
    embedder: CachedEmbedder
    memory: MemoryCache
    disk: SQLiteCache
    counter: CachedCounter
    alice: list[Message]
    bob: list[Message]

    @property
    def components(self) -> tuple[object, ...]:
        return (self.qdrant, self.embedded, self.counter)

    def close(self) -> None:
        self.qdrant.close()
        self.embedded.close()
        self.disk.close()
        self.store.close()


def _build(root: Path) -> World:
    store = SQLiteStore(root / "tela.db")
    memory, disk = MemoryCache(), SQLiteCache(root / "cache.db")
    embedder = CachedEmbedder(HashEmbedder(16), CacheChain(memory, disk))
    qdrant = QdrantIndex(location=":memory:", embedder=embedder)
    embedded = SQLiteIndex.for_store(store, follow=False)  # fed by write-through below
    counter = CachedCounter(ApproxCounter())
    a1 = store.append(
        "a1",
        [Message.user(ALICE_TEXTS[0], name="alice"), Message.assistant(ALICE_TEXTS[1])],
        user_id="alice",
    )
    branch = store.fork("a1", a1[0].id, name="alt", user_id="alice")
    alt = store.append(
        "a1", Message.assistant("Lisbon has trams"), branch=branch.name, user_id="alice"
    )
    a2 = store.append(
        "a2", [Message.user(ALICE_TEXTS[2]), Message.assistant(ALICE_TEXTS[3])], user_id="alice"
    )
    b1 = store.append(
        "b1", [Message.user(BOB_TEXTS[0]), Message.assistant(BOB_TEXTS[1])], user_id="bob"
    )
    alice, bob = a1 + alt + a2, b1
    for index in (qdrant, embedded):
        index.upsert(alice + bob)  # what a write-through integration does
    qdrant.search(ALICE_TEXTS[2], filter={"user_id": "alice"})  # a recall query, cached
    qdrant.search(BOB_TEXTS[0], filter={"user_id": "bob"})
    counter.count_messages(alice + bob)
    return World(store, embedded, qdrant, embedder, memory, disk, counter, alice, bob)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = _build(tmp_path)
    yield w
    w.close()


# keys as written: documents are embedded led by the speaker's name when they have one
ALICE_DOC_KEYS = [
    text_key("alice: " + ALICE_TEXTS[0]),
    *(text_key(t) for t in [*ALICE_TEXTS[1:], "Lisbon has trams"]),
]
ALICE_QUERY_KEYS = [text_key(ALICE_TEXTS[2], kind="q")]
BOB_KEYS = [*(text_key(t) for t in BOB_TEXTS), text_key(BOB_TEXTS[0], kind="q")]


def _model(w: World) -> str:
    return w.embedder.model_id


def _assert_alice_gone(w: World) -> None:
    assert w.store.list_threads("alice").threads == ()
    for m in w.alice:
        with pytest.raises(NotFoundError):
            w.store.get(m.id, user_id="alice")
    for index in (w.qdrant, w.embedded):
        assert index.count({"user_id": "alice"}) == 0
        assert index.count() == len(w.bob)
        assert not index.search("Lisbon Mia tuna", mode="lexical")
    for cache in (w.memory, w.disk):
        assert cache.get_many(_model(w), ALICE_DOC_KEYS + ALICE_QUERY_KEYS) == {}
    assert len(w.counter) == len(w.bob)


def _assert_bob_intact(w: World) -> None:
    assert [m.id for m in w.store.read("b1", user_id="bob")] == [m.id for m in w.bob]
    for index in (w.qdrant, w.embedded):
        assert index.count({"user_id": "bob"}) == len(w.bob)
        hits = index.search("Oslo", filter={"user_id": "bob"}, mode="lexical")
        assert {h.message.id for h in hits} == {m.id for m in w.bob}
    for cache in (w.memory, w.disk):
        assert set(cache.get_many(_model(w), BOB_KEYS)) == set(BOB_KEYS)
    misses = w.counter.misses
    w.counter.count_messages(w.bob)
    assert w.counter.misses == misses  # bob's counts were kept


def test_setup_holds_alice_everywhere(world: World) -> None:
    """The premise of the other tests: every component holds alice's data before erasure."""
    assert world.qdrant.count({"user_id": "alice"}) == 5
    assert world.embedded.count({"user_id": "alice"}) == 5
    for cache in (world.memory, world.disk):
        assert len(cache.get_many(_model(world), ALICE_DOC_KEYS + ALICE_QUERY_KEYS)) == 6
    assert len(world.counter) == 7


def test_user_data_reads_every_branch(world: World) -> None:
    data = user_data(world.store, "alice")
    assert data.thread_ids == ("a1", "a2")
    assert sorted(data.message_ids) == sorted(m.id for m in world.alice)


def test_the_default_user_data_agrees_with_the_sqlite_one(world: World) -> None:
    """``MessageStore.user_data`` (list threads, read every branch) and SQLite's two-query
    override give the same threads and messages; privacy uses whichever the store has."""
    for user in ("alice", "bob", "nobody"):
        fast = world.store.user_data(user)
        slow = MessageStore.user_data(world.store, user)
        assert set(fast.thread_ids) == set(slow.thread_ids)
        assert {m.id: m for m in fast.messages} == {m.id: m for m in slow.messages}
        assert user_data(world.store, user) == fast


def test_erase_everywhere_with_exact_receipt(world: World) -> None:
    receipt = erase_user("alice", world.store, *world.components, world.embedder)
    assert (receipt.user_id, receipt.threads, receipt.messages) == ("alice", 2, 5)
    assert receipt.branches == 3
    assert receipt.extra == {
        "index:QdrantIndex": 5,
        "embedding_cache:CacheChain": 12,  # 6 entries in each of the two levels
        "index:SQLiteIndex": 5,
        "token_counts:CachedCounter": 5,
    }
    _assert_alice_gone(world)
    _assert_bob_intact(world)


def test_second_run_is_a_no_op_with_zero_counts(world: World) -> None:
    erase_user("alice", world.store, *world.components)
    again = erase_user("alice", world.store, *world.components)
    assert (again.threads, again.messages, again.branches) == (0, 0, 0)
    assert again.extra == dict.fromkeys(
        [
            "index:QdrantIndex",
            "embedding_cache:CacheChain",
            "index:SQLiteIndex",
            "token_counts:CachedCounter",
        ],
        0,
    )
    _assert_alice_gone(world)
    _assert_bob_intact(world)


def test_async_twin_gives_the_same_receipt(tmp_path: Path) -> None:
    sync_world, async_world = _build(tmp_path / "s"), _build(tmp_path / "a")
    try:
        expected = erase_user("alice", sync_world.store, *sync_world.components)
        got = asyncio.run(aerase_user("alice", async_world.store, *async_world.components))
        assert got == expected
        _assert_alice_gone(async_world)
        _assert_bob_intact(async_world)
        again = asyncio.run(aerase_user("alice", async_world.store, *async_world.components))
        assert again.messages == 0
        assert set(again.extra.values()) == {0}
    finally:
        sync_world.close()
        async_world.close()


class FailsOnce:
    """A component whose backend is down on the first attempt."""

    def __init__(self) -> None:
        self.calls = 0

    def erase_user_data(self, user: UserData) -> int:
        self.calls += 1
        if self.calls == 1:
            raise TelaMemoryError("backend down")
        return len(user.messages)


def test_a_crash_half_way_leaves_the_store_and_a_rerun_finishes(world: World) -> None:
    flaky = FailsOnce()
    parts = (world.embedded, flaky, world.qdrant, world.counter)
    with pytest.raises(TelaMemoryError, match="backend down"):
        erase_user("alice", world.store, *parts)
    # the component before the failure was erased, the rest and the store were not: alice's
    # texts are still there, so the content-addressed caches can be found on the second run
    assert world.embedded.count({"user_id": "alice"}) == 0
    assert world.qdrant.count({"user_id": "alice"}) == 5
    assert len(user_data(world.store, "alice").messages) == 5
    receipt = erase_user("alice", world.store, *parts)
    assert receipt.messages == 5
    assert receipt.extra == {
        "index:SQLiteIndex": 0,
        "FailsOnce": 5,
        "index:QdrantIndex": 5,
        "embedding_cache:CacheChain": 12,
        "token_counts:CachedCounter": 5,
    }
    _assert_alice_gone(world)
    _assert_bob_intact(world)


class WriteThrough:
    """Another worker appending a turn for alice (store + index) while erasure runs."""

    def __init__(self, w: World) -> None:
        self.w = w

    def erase_user_data(self, user: UserData) -> int:
        stored = self.w.store.append("a3", Message.user("late turn in Lisbon"), user_id="alice")
        self.w.qdrant.upsert(stored)
        return 0


def test_index_is_swept_after_the_store_for_turns_written_meanwhile(world: World) -> None:
    receipt = erase_user("alice", world.store, world.qdrant, WriteThrough(world))
    assert (receipt.threads, receipt.messages) == (3, 6)  # the late turn went with the store
    assert receipt.extra["index:QdrantIndex"] == 6  # five, then the late one in the sweep
    assert world.qdrant.count({"user_id": "alice"}) == 0
    assert world.store.list_threads("alice").threads == ()


def test_a_bare_cache_needs_no_model_but_redis_like_ones_do(world: World) -> None:
    receipt = erase_user("alice", world.store, EmbeddingCacheEntries(world.disk))
    assert receipt.extra == {"embedding_cache:SQLiteCache": 6}
    assert world.disk.get_many(_model(world), ALICE_DOC_KEYS) == {}
    assert len(world.memory.get_many(_model(world), ALICE_DOC_KEYS)) == 5  # not given

    class NoDelete(BaseCache):
        pass

    class ByModel(BaseCache):
        def delete_many(self, model_id: str, keys: list[str]) -> int:
            return 0

    with pytest.raises(TelaMemoryError, match="cannot delete entries"):
        EmbeddingCacheEntries(CacheChain(MemoryCache(), NoDelete()), "m")
    with pytest.raises(TelaMemoryError, match="model_id"):
        EmbeddingCacheEntries(CacheChain(MemoryCache(), ByModel()))
    EmbeddingCacheEntries(ByModel(), "m")  # fine with a model id


def test_bad_input_is_refused_before_anything_is_erased(world: World) -> None:
    with pytest.raises(TelaMemoryError, match="cannot take part"):
        erase_user("alice", world.store, world.qdrant, object())
    with pytest.raises(TelaMemoryError, match="one store"):
        erase_user("alice", world.store, SQLiteStore(":memory:"))
    with pytest.raises(TelaMemoryError, match="non-empty string"):
        erase_user("", world.store, world.qdrant)
    assert world.qdrant.count({"user_id": "alice"}) == 5
    assert len(user_data(world.store, "alice").messages) == 5


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "tela-memory"
    env = {**os.environ, "HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("TELA_MEMORY_DB", None)
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_cli_erase_reports_the_embedded_index_and_cache(tmp_path: Path) -> None:
    path = tmp_path / "cli.db"
    with SQLiteStore(path) as store:
        alice = store.append("a1", [Message.user("hi"), Message.assistant("hello")], user_id="al")
        bob = store.append("b1", Message.user("bye"), user_id="bob")
        embedder = CachedEmbedder(HashEmbedder(8), SQLiteCache(path))  # cache in the same file
        with SQLiteIndex.for_store(store, embedder=embedder) as index:
            index.upsert(alice + bob)
    db = f"sqlite:///{path}"
    out = _cli("erase", "--user", "al", "--yes", "--db", db, home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert " ".join(out.stdout.split()) == (
        "Erased user al: 1 threads, 2 messages, 1 branches, 2 recall index entries,"
        " 2 cached embeddings."
    )
    again = _cli("erase", "--user", "al", "--yes", "--json", "--db", db, home=tmp_path)
    assert json.loads(again.stdout)["extra"] == {
        "index:SQLiteIndex": 0,
        "embedding_cache:SQLiteCache": 0,
    }
    with SQLiteStore(path) as store, SQLiteIndex.for_store(store) as index:
        assert index.count() == 1
        assert [m.id for m in store.read("b1", user_id="bob")] == [bob[0].id]
    cache = SQLiteCache(path)
    assert list(cache.get_many(embedder.model_id, [text_key("bye")])) == [text_key("bye")]
    cache.close()


def test_context_engine_state_and_counts_go(world: World) -> None:
    engine = ContextEngine(world.store, ContextPolicy(budget=1_000, counter=ApproxCounter()))
    for tid, user in (("a1", "alice"), ("a2", "alice"), ("b1", "bob")):
        assert engine.build(tid, user_id=user).messages
    receipt = erase_user("alice", world.store, engine)
    # the engine's state of a1 and a2, and the counts of the 4 messages it built them from
    # (the fork's turn was never built)
    assert receipt.extra == {"context_state:ContextEngine": 2, "token_counts:CachedCounter": 4}
    # nor do the per-thread lock maps name her threads any more (Bob's stay)
    assert {key[0] for key in (*engine._locks, *engine._alocks)} == {"bob"}
    # read again from the store: nothing left
    assert engine.build("a1", user_id="alice").messages == []
    assert [m.id for m in engine.build("b1", user_id="bob").messages] == [m.id for m in world.bob]


def test_engine_state_rebuilt_while_erasing_goes_too(tmp_path: Path) -> None:
    # a request builds alice's context after the engine forgot it but before the store erased
    # her: the sweep after the store must drop that state (it holds her messages)
    store = SQLiteStore(tmp_path / "race.db")
    store.append("a1", [Message.user("my PIN is 0000")], user_id="alice")
    engine = ContextEngine(store, ContextPolicy(budget=1_000, counter=ApproxCounter()))

    class RebuildFirst(SQLiteStore):
        def erase_user(self, user_id: str) -> ErasureReceipt:
            # the concurrent request, at the worst moment
            assert engine.build("a1", user_id="alice").messages
            return store.erase_user(user_id)

    racing = RebuildFirst(tmp_path / "race.db")
    receipt = erase_user("alice", racing, engine)
    assert engine.forget("a1", user_id="alice") == 0  # nothing of alice left in the engine
    assert receipt.extra["context_state:ContextEngine"] == 1
    racing.close()
    store.close()


def test_another_users_thread_of_the_same_id_is_left_alone(world: World) -> None:
    """Thread ids are per user: Bob's own "a1" (and its index entries, embeddings and engine
    state) survive Alice's erasure; only Alice's "a1" goes."""
    bob_a1 = world.store.append("a1", Message.user("Bergen is rainy"), user_id="bob")
    for index in (world.qdrant, world.embedded):
        index.upsert(bob_a1)
    engine = ContextEngine(world.store, ContextPolicy(budget=1_000, counter=ApproxCounter()))
    assert engine.build("a1", user_id="bob").messages == bob_a1
    assert engine.build("a1", user_id="alice").messages  # the control: hers is built too
    data = user_data(world.store, "alice")
    assert bob_a1[0].id not in data.message_ids
    assert user_data(world.store, "bob").thread_ids == ("b1", "a1")
    receipt = erase_user("alice", world.store, *world.components, engine)
    assert (receipt.threads, receipt.messages) == (2, 5)
    assert receipt.extra["context_state:ContextEngine"] == 1  # hers; Bob's "a1" state stays
    assert world.store.read("a1", user_id="bob") == bob_a1
    assert world.store.read("a1", user_id="alice") == []
    for index in (world.qdrant, world.embedded):
        assert index.count({"user_id": "bob", "thread_ids": ["a1"]}) == 1
        assert index.count({"user_id": "alice"}) == 0
        hits = index.search("Bergen", filter={"user_id": "bob"}, mode="lexical")
        assert [h.message.id for h in hits] == [bob_a1[0].id]
    assert engine.build("a1", user_id="bob").messages == bob_a1


def test_user_ids_are_checked_like_the_store_checks_them(world: World) -> None:
    for bad in ("alice\x00", "\ud800", "x" * 201):
        with pytest.raises(InvalidMessageError):
            erase_user(bad, world.store, world.qdrant)
    for hostile in ("alice' OR '1'='1", "*", "%"):  # opaque ids: nobody of that name
        receipt = erase_user(hostile, world.store, *world.components)
        assert (receipt.threads, receipt.messages) == (0, 0)
        assert set(receipt.extra.values()) == {0}
    assert world.qdrant.count({"user_id": "alice"}) == 5
    assert len(user_data(world.store, "alice").messages) == 5
