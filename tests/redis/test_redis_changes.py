"""The change feed of RedisStore (a Redis Stream under the globals) on plain Redis 8, through
Sentinel, and on a 3-node Cluster (where writes go through per-slot outboxes)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis_servers import RedisClusterServers, RedisSentinel, RedisServer

from tela_memory.errors import InvalidMessageError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError
from tela_memory.testing.store_suite import ChangeFeedConformance
from tela_memory_redis import RedisStore
from tela_memory_redis._driver import Script, run_sync

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def _node_clients(client: Any) -> list[Any]:
    if hasattr(client, "get_primaries"):
        return [client.get_redis_connection(n) for n in client.get_primaries()]
    return [client]


def _keys(store: RedisStore) -> list[bytes]:
    out: list[bytes] = []
    for node in _node_clients(store.client):
        out += list(node.scan_iter(match=f"{store.prefix}:*", count=1000))  # test only
    return out


def _cleanup(store: RedisStore) -> None:
    client = store.client
    for key in _keys(store):
        client.delete(key)
    store.close()


@pytest.fixture(params=["plain", "cluster"])
def url(request: pytest.FixtureRequest) -> str:
    if request.param == "plain":
        server: RedisServer = request.getfixturevalue("redis_plain")
        return server.url
    cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
    return cluster.url


@pytest.fixture
def store(url: str) -> Iterator[RedisStore]:
    s = RedisStore(url, prefix=_prefix())
    yield s
    _cleanup(s)


def _all(store: RedisStore, since: str | None = None) -> tuple[list[Change], str]:
    out: list[Change] = []
    while True:
        batch = store.changes(since)
        out += batch.changes
        since = batch.cursor
        if not batch.more:
            return out, since


def _kinds(changes: list[Change]) -> list[tuple[str, str, str | None, str | None]]:
    return [(c.kind, c.user_id, c.thread_id, c.message_id) for c in changes]


def test_every_kind_of_event(store: RedisStore) -> None:
    a, b = store.append("t1", [Message.user("hi"), Message.assistant("hello")], user_id="ada")
    store.update_message(a.model_copy(update={"metadata": {"edited": 1}}), user_id="ada")
    side = store.fork("t1", a.id, user_id="ada", name="side")
    (c,) = store.append("t1", Message.user("other way"), user_id="ada", branch=side.name)
    assert store.delete_branch("t1", "side", user_id="ada") == 1
    old = store.append("t2", [Message.user(f"m{i}") for i in range(3)], user_id="ada")
    assert store.apply_retention(max_messages=2).messages == 1
    assert store.delete_thread("t2", user_id="ada") == 2
    (bob,) = store.append("t1", Message.user("bob's"), user_id="bob")
    store.erase_user("bob")

    changes, _ = _all(store)
    assert _kinds(changes) == [
        ("append", "ada", "t1", a.id),
        ("append", "ada", "t1", b.id),
        ("update", "ada", "t1", a.id),
        ("append", "ada", "t1", c.id),
        ("delete", "ada", "t1", c.id),
        *[("append", "ada", "t2", m.id) for m in old],
        ("delete", "ada", "t2", old[0].id),
        ("thread_deleted", "ada", "t2", None),
        ("user_erased", "bob", None, None),  # bob's append left the feed with him
    ]
    assert bob.id not in {c.message_id for c in changes}
    ats = [c.at for c in changes]
    assert ats == sorted(ats)
    assert ats[0].tzinfo is not None


def test_cursor_resumes_and_is_stable_when_idle(store: RedisStore) -> None:
    empty = store.changes()
    assert empty.changes == []
    assert not empty.more
    assert store.changes(empty.cursor).cursor == empty.cursor
    first = store.append("t", [Message.user("a"), Message.user("b")], user_id="u")
    batch = store.changes(empty.cursor)
    assert [c.message_id for c in batch.changes] == [m.id for m in first]
    idle = store.changes(batch.cursor)
    assert idle.changes == []
    assert idle.cursor == batch.cursor
    (m,) = store.append("t", Message.user("c"), user_id="u")
    assert [c.message_id for c in store.changes(batch.cursor).changes] == [m.id]


def test_limit_pages_with_more(store: RedisStore) -> None:
    msgs = store.append("t", [Message.user(f"m{i}") for i in range(25)], user_id="u")
    seen: list[str | None] = []
    cursor: str | None = None
    pages = 0
    while True:
        batch = store.changes(cursor, limit=10)
        pages += 1
        assert len(batch.changes) <= 10
        seen += [c.message_id for c in batch.changes]
        cursor = batch.cursor
        if not batch.more:
            break
    assert pages == 3
    assert seen == [m.id for m in msgs]
    exact = store.changes(None, limit=25)
    assert len(exact.changes) == 25
    assert not exact.more


@pytest.mark.parametrize("limit", [0, -1, 10_001, True, 2.5])
def test_bad_limit_is_a_value_error(store: RedisStore, limit: Any) -> None:
    with pytest.raises(InvalidMessageError) as info:
        store.changes(limit=limit)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TelaMemoryError)


@pytest.mark.parametrize(
    "cursor", ["", "garbage", "0-0", "0123456789abcdef.x-1", "0123456789abcdef.1-1", "{}"]
)
def test_garbage_cursor_is_a_gap(store: RedisStore, cursor: str) -> None:
    store.append("t", Message.user("a"), user_id="u")
    store.changes()  # the feed exists and has its epoch
    with pytest.raises(ChangeFeedGapError):
        store.changes(cursor)


def test_cursor_of_another_feed_is_a_gap(store: RedisStore, url: str) -> None:
    other = RedisStore(url, prefix=_prefix())
    try:
        other.append("t", Message.user("a"), user_id="u")
        foreign = other.changes().cursor
        store.append("t", Message.user("a"), user_id="u")
        with pytest.raises(ChangeFeedGapError):
            store.changes(foreign)
    finally:
        _cleanup(other)


def test_trim_makes_older_cursors_a_gap(store: RedisStore) -> None:
    start = store.changes().cursor
    store.append("t", [Message.user(f"m{i}") for i in range(4)], user_id="u")
    half = store.changes(start, limit=2)
    (late,) = store.append("t", Message.user("late"), user_id="u")
    assert store.trim_changes(half.cursor) == 2
    with pytest.raises(ChangeFeedGapError):
        store.changes(start)
    rest = store.changes(half.cursor)  # the cursor trimmed up to still reads on
    assert [c.message_id for c in rest.changes][-1] == late.id
    assert len(rest.changes) == 3
    assert len(store.changes().changes) == 3  # since=None: from what is retained
    with pytest.raises(ChangeFeedGapError):
        store.trim_changes("nonsense")
    epoch = half.cursor.split(".")[0]
    with pytest.raises(ChangeFeedGapError):  # past the end: would trim what nobody read
        store.trim_changes(f"{epoch}.99999999999999-0")
    assert len(store.changes().changes) == 3


def test_feed_survives_a_new_client(url: str) -> None:
    prefix = _prefix()
    first = RedisStore(url, prefix=prefix)
    first.append("t", Message.user("a"), user_id="u")
    cursor = first.changes().cursor
    (b,) = first.append("t", Message.user("b"), user_id="u")
    first.close()
    again = RedisStore(url, prefix=prefix)
    try:
        assert [c.message_id for c in again.changes(cursor).changes] == [b.id]
    finally:
        _cleanup(again)


async def test_async_twins(url: str) -> None:
    s = RedisStore(url, prefix=_prefix())
    try:
        start = await s.achanges()
        (m,) = await s.aappend("t", Message.user("a"), user_id="u")
        await s.aupdate_message(m.model_copy(update={"metadata": {"edited": 1}}), user_id="u")
        await s.adelete_thread("t", user_id="u")
        batch = await s.achanges(start.cursor, limit=2)
        assert [c.kind for c in batch.changes] == ["append", "update"]
        assert batch.more
        tail = await s.achanges(batch.cursor)
        assert [c.kind for c in tail.changes] == ["thread_deleted"]
        assert not tail.more
        assert await s.atrim_changes(tail.cursor) == 3
        with pytest.raises(ChangeFeedGapError):
            await s.achanges(start.cursor)
        with pytest.raises(InvalidMessageError):
            await s.achanges(limit=0)
    finally:
        await s.aclose()
        _cleanup(RedisStore(url, prefix=s.prefix))


def _dump(client: Any, key: bytes) -> bytes:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        return bytes(client.get(key) or b"")
    if kind == "hash":
        return repr(client.hgetall(key)).encode()
    if kind == "list":
        return repr(client.lrange(key, 0, -1)).encode()
    if kind == "zset":
        return repr(client.zrange(key, 0, -1)).encode()
    if kind == "stream":
        return repr(client.xrange(key)).encode()
    return repr(client.smembers(key)).encode()


def test_erasure_leaves_no_trace_in_the_feed(store: RedisStore) -> None:
    marker = f"mk{uuid.uuid4().hex[:8]}"
    user = f"{marker}-user"
    mine = store.append(f"{marker}-t", Message.user(f"{marker} secret"), user_id=user)
    store.update_message(mine[0].model_copy(update={"metadata": {"edited": 1}}), user_id=user)
    store.append(f"{marker}-t2", Message.user("more"), user_id=user)
    store.delete_thread(f"{marker}-t2", user_id=user)
    (kept,) = store.append("t", Message.user("someone else"), user_id="ada")
    cursor_before = store.changes().cursor
    store.erase_user(user)

    changes, _ = _all(store)
    assert _kinds(changes) == [("append", "ada", "t", kept.id), ("user_erased", user, None, None)]
    assert [c.kind for c in store.changes(cursor_before).changes] == ["user_erased"]
    client = store.client
    for key in _keys(store):  # the user id stays only in the user_erased event
        blob = key + _dump(client, key)
        assert blob.count(marker.encode()) == (1 if key.endswith(b"changes") else 0), key
        assert f"{marker}-t".encode() not in blob
        assert mine[0].id.encode() not in blob


def test_concurrent_writers_one_event_per_message(store: RedisStore) -> None:
    errors: list[BaseException] = []
    ids: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        try:
            for i in range(20):
                tid = f"t{(w + i) % 3}"  # writers share threads (and, on a cluster, slots)
                (m,) = store.append(tid, Message.user(f"w{w} m{i}"), user_id=f"u{w % 2}")
                with lock:
                    ids.append(m.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    changes, _ = _all(store)
    assert sorted(c.message_id or "" for c in changes) == sorted(ids)
    assert all(c.kind == "append" for c in changes)


def test_cluster_writer_that_dies_before_relaying(redis_cluster: RedisClusterServers) -> None:
    """On a cluster the event is written with the thread (the slot's outbox) and relayed to the
    feed right after; a writer that stops in between leaves it to the next reader."""
    s = RedisStore(redis_cluster.url, prefix=_prefix())
    try:
        start = s.changes().cursor
        m = Message.user("half done")
        op = s._ops.append("t", m, "u", None)
        reply: Any = None
        while True:  # run the real operation up to and including its thread script, then stop
            req = op.send(reply)
            reply = run_sync(s.client, _one(req), s.address)
            if isinstance(req, Script) and req.keys[0].endswith("meta"):
                break
        op.close()
        assert s.read("t", user_id="u")[0].id == m.id
        batch = s.changes(start)
        assert [(c.kind, c.message_id) for c in batch.changes] == [("append", m.id)]
        (n,) = s.append("t", Message.user("next"), user_id="u")  # relays again: no duplicate
        assert [c.message_id for c in s.changes(batch.cursor).changes] == [n.id]
    finally:
        _cleanup(s)


def test_cluster_writer_that_dies_before_trimming_its_outbox(
    redis_cluster: RedisClusterServers,
) -> None:
    """A writer that relayed its outbox but died before trimming it: the next relay of that
    slot sees the entry again and the watermark keeps it from being copied twice."""
    s = RedisStore(redis_cluster.url, prefix=_prefix())
    try:
        start = s.changes().cursor
        m = Message.user("relayed, not trimmed")
        op = s._ops.append("t", m, "u", None)
        reply: Any = None
        while True:
            req = op.send(reply)
            reply = run_sync(s.client, _one(req), s.address)
            if isinstance(req, Script) and req.keys[0] == s._ops.changes_key:  # the relay
                break
        op.close()
        (n,) = s.append("t", Message.user("next"), user_id="u")  # same slot: relays again
        assert [c.message_id for c in s.changes(start).changes] == [m.id, n.id]
    finally:
        _cleanup(s)


def _one(req: Any) -> Any:
    return (yield req)


def test_sentinel_store_has_the_feed(redis_sentinel: RedisSentinel) -> None:
    s = RedisStore(redis_sentinel.url, prefix=_prefix())
    try:
        (m,) = s.append("t", Message.user("a"), user_id="u")
        assert [c.message_id for c in s.changes().changes] == [m.id]
    finally:
        _cleanup(s)


@pytest.mark.parametrize("ttl", [0, -1, 0.0, timedelta(0), float("nan")])
def test_non_positive_ttl_is_a_value_error(ttl: Any) -> None:
    with pytest.raises(InvalidMessageError) as info:
        RedisStore("redis://127.0.0.1:1", ttl=ttl)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TelaMemoryError)


def test_batches_are_change_batches(store: RedisStore) -> None:
    assert isinstance(store.changes(), ChangeBatch)
    assert asyncio.run(store.achanges()).cursor == store.changes().cursor


def test_cursor_store_survives_a_new_client(url: str) -> None:
    prefix = _prefix()
    first = RedisStore(url, prefix=prefix)
    first.append("t", Message.user("a"), user_id="u")
    cursors = first.cursor_store()
    assert cursors.get("indexer") is None
    cursors.set("indexer", first.changes().cursor)
    first.close()
    again = RedisStore(url, prefix=prefix)
    try:
        saved = again.cursor_store().get("indexer")
        assert saved is not None
        assert again.changes(saved).changes == []
        again.cursor_store().set("indexer", None)
        assert again.cursor_store().get("indexer") is None
        with pytest.raises(InvalidMessageError):
            again.cursor_store().set("", "x")
    finally:
        _cleanup(again)


class TestPlainRedisChangeFeed(ChangeFeedConformance):
    @pytest.fixture
    def store(self, redis_plain: RedisServer) -> Iterator[RedisStore]:
        s = RedisStore(redis_plain.url, prefix=_prefix())
        yield s
        _cleanup(s)


class TestClusterChangeFeed(ChangeFeedConformance):
    @pytest.fixture
    def store(self, redis_cluster: RedisClusterServers) -> Iterator[RedisStore]:
        s = RedisStore(redis_cluster.url, prefix=_prefix())
        yield s
        _cleanup(s)
