"""``tela_memory.privacy.erase_user`` on real Redis: RedisStore, RedisIndex (search module),
a memory + Redis embedding cache chain and the Redis token-count cache, sync and async."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from redis_servers import RedisClusterServers, RedisServer

from redis import Redis
from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message, ThinkingBlock, ToolCallBlock
from tela_memory.privacy import EmbeddingCacheEntries, TokenCountEntries, aerase_user, erase_user
from tela_memory.recall.cache import CacheChain, CachedEmbedder, MemoryCache, text_key
from tela_memory.stores.base import ErasureReceipt
from tela_memory.stores.memory import InMemoryStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_redis import RedisStore
from tela_memory_redis.cache import RedisEmbeddingCache, RedisTokenCountCache
from tela_memory_redis.index import RedisIndex

pytestmark = pytest.mark.integration

COUNTER = "approx"


@dataclass
class World:
    store: RedisStore
    index: RedisIndex
    embedder: CachedEmbedder
    redis_cache: RedisEmbeddingCache
    counts: RedisTokenCountCache
    alice: list[Message]
    bob: list[Message]

    @property
    def components(self) -> tuple[object, ...]:
        return (self.index, TokenCountEntries(self.counts, COUNTER))

    def keys_of(self, messages: list[Message]) -> list[str]:
        return [text_key(m.text) for m in messages]


def _open(server: RedisServer) -> World:
    tag = uuid.uuid4().hex[:10]
    store = RedisStore(server.url, prefix=f"e-{tag}")
    redis_cache = RedisEmbeddingCache(server.url, prefix=f"e-{tag}")
    embedder = CachedEmbedder(HashEmbedder(16), CacheChain(MemoryCache(), redis_cache))
    index = RedisIndex(server.url, embedder=embedder, name=f"e-{tag}-idx")
    counts = RedisTokenCountCache(server.url, prefix=f"e-{tag}")
    return World(store, index, embedder, redis_cache, counts, [], [])


def _fill(w: World) -> None:
    w.alice = w.store.append(
        "a1",
        [Message.user("I live in Lisbon"), Message.assistant("Lisbon is sunny")],
        user_id="alice",
    ) + w.store.append("a2", Message.user("my cat is Mia"), user_id="alice")
    w.bob = w.store.append("b1", Message.user("I live in Oslo"), user_id="bob")
    w.index.upsert(w.alice + w.bob)
    w.counts.put_many(COUNTER, [(m, 5) for m in w.alice + w.bob])


async def _afill(w: World) -> None:
    w.alice = await w.store.aappend(
        "a1",
        [Message.user("I live in Lisbon"), Message.assistant("Lisbon is sunny")],
        user_id="alice",
    ) + await w.store.aappend("a2", Message.user("my cat is Mia"), user_id="alice")
    w.bob = await w.store.aappend("b1", Message.user("I live in Oslo"), user_id="bob")
    await w.index.aupsert(w.alice + w.bob)
    await w.counts.aput_many(COUNTER, [(m, 5) for m in w.alice + w.bob])


def _close(w: World) -> None:
    w.index.drop()
    w.index.close()
    w.store.close()
    w.redis_cache.close()
    w.counts.close()


@pytest.fixture
def world(redis_stack: RedisServer) -> Iterator[World]:
    w = _open(redis_stack)
    _fill(w)
    yield w
    _close(w)


@pytest.fixture
async def aworld(redis_stack: RedisServer) -> AsyncIterator[World]:
    w = _open(redis_stack)
    await _afill(w)
    yield w
    await w.store.aclose()
    await w.redis_cache.aclose()
    await w.counts.aclose()
    _close(w)


EXPECTED = ErasureReceipt(
    user_id="alice",
    threads=2,
    messages=3,
    branches=2,
    extra={
        "index:RedisIndex": 3,
        "embedding_cache:CacheChain": 6,  # three texts in each of two levels
        "token_counts:RedisTokenCountCache": 3,
    },
)
ZERO = ErasureReceipt(user_id="alice", extra=dict.fromkeys(EXPECTED.extra, 0))


def _check(w: World) -> None:
    model = w.embedder.model_id
    assert w.store.list_threads("alice").threads == ()
    assert w.index.count({"user_id": "alice"}) == 0
    assert not w.index.search("Lisbon Mia", mode="lexical")
    assert w.redis_cache.get_many(model, w.keys_of(w.alice)) == {}
    assert w.counts.get_many(COUNTER, w.alice) == {}
    # bob is intact
    assert [m.id for m in w.store.read("b1", user_id="bob")] == [m.id for m in w.bob]
    assert w.index.count({"user_id": "bob"}) == 1
    assert set(w.redis_cache.get_many(model, w.keys_of(w.bob))) == set(w.keys_of(w.bob))
    assert w.counts.get_many(COUNTER, w.bob) == {w.bob[0].id: 5}


def test_before_erasure_alice_is_everywhere(world: World) -> None:
    assert world.index.count({"user_id": "alice"}) == 3
    model = world.embedder.model_id
    assert len(world.redis_cache.get_many(model, world.keys_of(world.alice))) == 3
    assert len(world.counts.get_many(COUNTER, world.alice)) == 3


def test_erase_store_index_and_caches(world: World) -> None:
    assert erase_user("alice", world.store, *world.components) == EXPECTED
    _check(world)
    assert erase_user("alice", world.store, *world.components) == ZERO
    _check(world)


async def test_async_twin_parity(aworld: World) -> None:
    assert await aerase_user("alice", aworld.store, *aworld.components) == EXPECTED
    _check(aworld)
    assert await aerase_user("alice", aworld.store, *aworld.components) == ZERO


def test_caches_on_a_cluster_beside_an_in_memory_store(redis_cluster: RedisClusterServers) -> None:
    """The cache entries of one model share a hash tag, so one DEL per chunk works on a
    cluster; the store here is the in-process one (read through the public API)."""
    store = InMemoryStore()
    alice = store.append("a1", [Message.user("hi there"), Message.assistant("hello")], user_id="a")
    bob = store.append("b1", Message.user("good bye"), user_id="b")
    prefix = f"e-{uuid.uuid4().hex[:10]}"
    emb = RedisEmbeddingCache(redis_cluster.url, prefix=prefix)
    counts = RedisTokenCountCache(redis_cluster.url, prefix=prefix)
    embedder = CachedEmbedder(HashEmbedder(8), emb)
    embedder.embed([m.text for m in alice + bob])
    counts.put_many(COUNTER, [(m, 3) for m in alice + bob])
    parts = (EmbeddingCacheEntries(emb, embedder.model_id), TokenCountEntries(counts, COUNTER))
    receipt = erase_user("a", store, *parts)
    assert (receipt.threads, receipt.messages) == (1, 2)
    assert receipt.extra == {
        "embedding_cache:RedisEmbeddingCache": 2,
        "token_counts:RedisTokenCountCache": 2,
    }
    assert emb.get_many(embedder.model_id, [text_key(m.text) for m in alice]) == {}
    assert list(emb.get_many(embedder.model_id, [text_key("good bye")])) == [text_key("good bye")]
    assert counts.get_many(COUNTER, alice + bob) == {bob[0].id: 3}
    with pytest.raises(TelaMemoryError, match="model_id"):
        EmbeddingCacheEntries(emb)  # Redis keeps models apart
    emb.close()
    counts.close()


def test_a_cache_of_the_other_kind_is_refused_before_anything_is_erased(
    redis_plain: RedisServer,
) -> None:
    prefix = f"swap-{uuid.uuid4().hex[:8]}"
    vectors = RedisEmbeddingCache(redis_plain.url, prefix=prefix)
    counts = RedisTokenCountCache(redis_plain.url, prefix=prefix)
    with pytest.raises(TelaMemoryError, match="cannot delete entries"):
        EmbeddingCacheEntries(counts, "m")  # type: ignore[arg-type]
    with pytest.raises(TelaMemoryError, match="not a token-count cache"):
        TokenCountEntries(vectors, "c")
    vectors.close()
    counts.close()


def test_no_trace_in_an_rdb_snapshot_after_erasure(redis_stack: RedisServer) -> None:
    """Markers everywhere Alice's data goes (text, metadata, tool call, thinking, title, tag,
    name, the index and the caches); after the erasure a fresh RDB snapshot (uncompressed, so
    the scan sees every string) holds none of them, and still holds Bob's."""
    w = _open(redis_stack)
    markers = ["zqvtextqx", "vqzmetaqx", "xjkargsqx", "kzqthoughtqx", "qzvtitleqx", "zjqtagqx"]
    try:
        alice = w.store.for_user("alice")
        alice.append("a1", Message.user(f"secret {markers[0]}", name="jqzvnameqx"))
        call = ToolCallBlock(id="c1", name="lookup", arguments={"q": markers[2]})
        alice.append(
            "a1",
            Message.assistant(
                [ThinkingBlock(text=f"about {markers[3]}"), call], metadata={"m": markers[1]}
            ),
        )
        alice.update_thread("a1", title=markers[4], tags=[markers[5]])
        bob = w.store.for_user("bob").append("b1", Message.user("bob says bobuniqueqx"))
        everything = alice.read("a1") + bob
        w.index.upsert(everything)
        w.embedder.embed([m.text for m in everything])
        erase_user("alice", w.store, *w.components, w.embedder)
        raw = Redis.from_url(redis_stack.url)
        try:
            raw.config_set("rdbcompression", "no")
            raw.save()
        finally:
            raw.close()
        snapshot = (redis_stack.dir / "dump.rdb").read_bytes()
        assert b"bobuniqueqx" in snapshot  # the control: the scan sees stored strings
        assert [m for m in [*markers, "jqzvnameqx"] if m.encode() in snapshot] == []
    finally:
        _close(w)


@pytest.fixture(scope="module")
def redis_aof() -> Iterator[RedisServer]:
    """A server that logs every write to its append-only file (``appendfsync always``)."""
    server = RedisServer(persistent=True).start()
    raw = Redis.from_url(server.url)
    raw.config_set("rdbcompression", "no")  # the AOF's RDB preamble, scanned uncompressed
    raw.close()
    yield server
    server.stop()


def _files(server: RedisServer) -> bytes:
    """Every byte the server wrote to its data folder (the AOF parts and any snapshot)."""
    parts = sorted(p for p in server.dir.rglob("*") if p.is_file() and p.suffix != ".log")
    return b"".join(p.read_bytes() for p in parts)


def _wait_for_rewrites(server: RedisServer) -> None:
    raw = Redis.from_url(server.url)
    try:
        for _ in range(600):
            info = raw.info("persistence")
            busy = ("aof_rewrite_in_progress", "aof_rewrite_scheduled", "rdb_bgsave_in_progress")
            if not any(int(info[k]) for k in busy):
                return
            time.sleep(0.05)  # polling for completion (bounded), not a timing assertion
        raise AssertionError("the rewrite did not finish")
    finally:
        raw.close()


@pytest.mark.parametrize("compact", [False, True], ids=["reported", "compacted"])
def test_the_append_only_file_is_reported_or_rewritten(
    redis_aof: RedisServer, compact: bool
) -> None:
    store = RedisStore(
        redis_aof.url, prefix=f"aof-{uuid.uuid4().hex[:8]}", compact_on_erase=compact
    )
    try:
        store.for_user("alice").append("a1", Message.user("secret zqvaofqx"))
        store.for_user("bob").append("b1", Message.user("bob says bobaofqx"))
        assert b"zqvaofqx" in _files(redis_aof)  # the control: the AOF holds the write
        receipt = erase_user("alice", store)
        assert receipt.messages == 1
        if not compact:
            assert [t for t in receipt.traces_left if "append-only file" in t]
            assert b"zqvaofqx" in _files(redis_aof)  # what the receipt warns of is real
            return
        assert "redis: append-only file rewrite started (BGREWRITEAOF)" in receipt.scrubbed
        assert receipt.traces_left == ()
        _wait_for_rewrites(redis_aof)
        raw = _files(redis_aof)
        assert b"zqvaofqx" not in raw
        assert b"bobaofqx" in raw  # only Alice went
        assert store.for_user("bob").read("b1")[0].text == "bob says bobaofqx"
    finally:
        store.close()


async def test_the_async_erasure_reports_the_same(redis_aof: RedisServer) -> None:
    store = RedisStore(redis_aof.url, prefix=f"aof-{uuid.uuid4().hex[:8]}")
    try:
        await store.for_user("alice").aappend("a1", Message.user("x"))
        receipt = await aerase_user("alice", store)
        assert [t for t in receipt.traces_left if "append-only file" in t]
    finally:
        await store.aclose()
