"""Redis-specific behaviour of RedisStore: round trips, key layout, TTL, bad input, outages."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis.cluster
from redis_servers import RedisClusterServers, RedisSentinel, RedisServer

import redis
from tela_memory import open_store
from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidMessageError,
    NotFoundError,
    SchemaError,
    TelaMemoryError,
)
from tela_memory.messages import Message, ToolCallBlock
from tela_memory_redis import RedisStore

pytestmark = pytest.mark.integration

ODD_IDS = ["a{b}c", "{x}", "}{", "a|b@c*d:e-f g", "x:*", "тред 🧵", "%41", "a" * 190]
U = "u"


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


class CountingRedis(redis.Redis):
    """A real redis-py client that counts the commands it sends (one per round trip here)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        self.sent.append("PIPELINE")
        return super().pipeline(transaction, shard_hint)


@pytest.fixture
def counting(redis_plain: RedisServer) -> Iterator[tuple[RedisStore, CountingRedis]]:
    client = CountingRedis(host="127.0.0.1", port=redis_plain.port)
    store = RedisStore(client=client, prefix=_prefix())
    yield store, client
    client.close()


@pytest.fixture
def store(redis_plain: RedisServer) -> Iterator[RedisStore]:
    with RedisStore(redis_plain.url, prefix=_prefix()) as s:
        yield s


@pytest.fixture
def redis_store(store: RedisStore) -> RedisStore:
    return store


# -- round trips and key layout ---------------------------------------------------------------


def test_append_and_reads_are_one_round_trip(counting: tuple[RedisStore, CountingRedis]) -> None:
    store, client = counting
    tid = "rt"
    ada = store.for_user("ada")
    ada.append(tid, Message.system("warm up"))  # checks the layout and loads the script once
    ada.read(tid)
    for _ in range(3):
        client.sent.clear()
        ada.append(tid, [Message.user("q"), Message.assistant("a")])
        assert client.sent == ["EVALSHA"]
    client.sent.clear()
    assert len(ada.read(tid, last=2)) == 2
    assert client.sent == ["EVALSHA"]
    client.sent.clear()
    assert len(ada.read(tid)) == 7
    assert client.sent == ["EVALSHA"]
    client.sent.clear()
    ada.fork(tid, ada.read(tid)[2].id, name="alt")
    client.sent.clear()
    ada.append(tid, Message.user("on alt"), branch="alt")
    assert client.sent == ["EVALSHA"]
    client.sent.clear()
    assert store.read(tid, user_id="bob") == []  # a foreign thread: one round trip, nothing
    assert client.sent == ["EVALSHA"]


def test_tool_result_after_its_call_is_still_one_round_trip(
    counting: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counting
    mine = store.for_user(U)
    mine.append("tools", Message.user("weather?"))
    mine.append("tools", Message.assistant("", tool_calls=[ToolCallBlock(id="c1", name="wx")]))
    client.sent.clear()
    mine.append("tools", Message.tool("c1", "sunny"))
    assert client.sent == ["EVALSHA"]
    assert mine.read("tools")[-1].tool_results[0].tool_call_id == "c1"


def test_a_page_of_threads_is_two_round_trips(
    counting: tuple[RedisStore, CountingRedis],
) -> None:
    store, client = counting
    for i in range(30):
        store.append(f"page-{i}", Message.user("hi"), user_id="pager")
    client.sent.clear()
    page = store.list_threads("pager", limit=25)
    assert len(page.threads) == 25
    assert client.sent == ["ZRANGE", "PIPELINE"]
    assert [t.id for t in page.threads] == [f"page-{i}" for i in range(29, 4, -1)]


def test_no_keyspace_scans(counting: tuple[RedisStore, CountingRedis]) -> None:
    store, client = counting
    for i in range(5):
        store.append(f"th-{i}", Message.user("hi"), user_id="scan-user")
    store.list_threads("scan-user", limit=2)
    store.erase_user("scan-user")
    from datetime import timedelta

    store.apply_retention(max_age=timedelta(days=1), max_messages=10)
    assert not {"SCAN", "KEYS"} & set(client.sent)


def test_keys_of_a_thread_share_one_slot_on_the_cluster(redis_cluster: RedisClusterServers) -> None:
    prefix = _prefix()
    with RedisStore(redis_cluster.url, prefix=prefix) as redis_store:
        store = redis_store.for_user("u:{x}")
        for tid in ODD_IDS:
            stored = store.append(tid, [Message.user(f"in {tid}"), Message.assistant("ok")])
            store.fork(tid, stored[0].id, name="b")
            store.append(tid, Message.assistant("alt"), branch="b")
            assert [m.text for m in store.read(tid, branch="b")] == [f"in {tid}", "alt"]
            assert store.get(stored[1].id) == stored[1]
        client = redis_store.client
        slots: dict[str, set[int]] = {}
        for node in client.get_primaries():
            conn = client.get_redis_connection(node)
            for key in conn.scan_iter(match=f"{prefix}:t:*"):  # test inspection only
                tag = key.decode().split("{", 1)[1].split("}", 1)[0]
                slots.setdefault(tag, set()).add(redis.cluster.key_slot(key))
        assert len(slots) == len(ODD_IDS)
        assert all(len(s) == 1 for s in slots.values())
        assert len(set().union(*slots.values())) > 1  # threads do spread over the nodes


def test_odd_ids_are_escaped(store: RedisStore) -> None:
    for tid in ODD_IDS:
        store.append(tid, Message.user(tid), user_id=f"user {tid}")
    for tid in ODD_IDS:
        assert [m.text for m in store.read(tid, user_id=f"user {tid}")] == [tid]
        page = store.list_threads(f"user {tid}")
        assert [t.id for t in page.threads] == [tid]
    keys = [k.decode() for k in store.client.scan_iter(match=f"{store.prefix}:*")]
    for key in keys:  # exactly one hash tag per key, and it is the escaped id
        assert key.count("{") == 1
        assert key.count("}") == 1


def test_open_store_by_url_and_unix_socket(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    with open_store(redis_plain.url, prefix=prefix) as s:
        assert isinstance(s, RedisStore)
        s.append("u1", Message.user("over tcp"), user_id=U)
    with open_store(f"unix://{redis_plain.socket_path}", prefix=prefix) as s:
        assert [m.text for m in s.read("u1", user_id=U)] == ["over tcp"]


def test_constructor_does_no_io_and_errors_name_the_address() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        store.read("x", user_id=U)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        store.append("x", Message.user("y"), user_id=U)
    store.close()
    with pytest.raises(TelaMemoryError, match="must name the service"):
        RedisStore("redis+sentinel://h:26379").read("x", user_id=U)
    with pytest.raises(TelaMemoryError, match="prefix"):
        RedisStore("redis://h", prefix="a{b}")


# -- TTL ----------------------------------------------------------------------------------------


def test_thread_ttl_expires_and_refreshes(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    with RedisStore(redis_plain.url, prefix=prefix, ttl=100, refresh_ttl_on_read=True) as store:
        store.append("ttl", [Message.user("a"), Message.assistant("b")], user_id=U)
        meta = f"{prefix}:t:{{u:ttl}}:meta"
        assert 90_000 < store.client.pttl(meta) <= 100_000
        store.client.pexpire(meta, 5_000)
        store.read("ttl", user_id=U)
        assert store.client.pttl(meta) > 90_000  # the read restarted the clock
        with pytest.raises(NotFoundError):  # another user's "ttl" does not exist
            store.set_ttl("ttl", 0.3, user_id="someone-else")
        assert store.client.pttl(meta) > 90_000
        store.set_ttl("ttl", 0.3, user_id=U)
        assert 0 < store.client.pttl(meta) <= 300
        time.sleep(0.5)
        assert store.read("ttl", user_id=U) == []
        with pytest.raises(NotFoundError):
            store.get_thread("ttl", user_id=U)
    with RedisStore(redis_plain.url, prefix=prefix) as plain:
        plain.append("forever", Message.user("x"), user_id=U)
        assert plain.client.pttl(f"{prefix}:t:{{u:forever}}:meta") == -1


def test_expired_threads_leave_no_ghosts_in_listings(redis_plain: RedisServer) -> None:
    with RedisStore(redis_plain.url, prefix=_prefix(), ttl=0.2) as store:
        store.append("gone", Message.user("x"), user_id="ghost")
        (m,) = store.append("gone2", Message.user("y"), user_id="ghost")
        time.sleep(0.4)
        assert store.list_threads("ghost").threads == ()
        with pytest.raises(NotFoundError):
            store.get(m.id, user_id="ghost")
        store.append("again", Message.user("reuse id", id=m.id), user_id="ghost")
        assert store.get(m.id, user_id="ghost").thread_id == "again"


# -- bad input ----------------------------------------------------------------------------------


def test_wrong_type_key_gives_a_clear_error_and_spares_other_threads(store: RedisStore) -> None:
    store.append("fine", Message.user("ok"), user_id=U)
    store.client.set(f"{store.prefix}:t:{{u:broken}}:meta", "not a hash")
    with pytest.raises(SchemaError, match="wrong kind of value"):
        store.append("broken", Message.user("x"), user_id=U)
    with pytest.raises(SchemaError):
        store.read("broken", user_id=U)
    assert [m.text for m in store.read("fine", user_id=U)] == ["ok"]
    assert store.read("broken", user_id="v") == []  # another user's "broken" is another thread


def test_binary_junk_in_a_message(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    with RedisStore(redis_plain.url, prefix=prefix) as store:
        stored = store.append("junk", [Message.user(f"m{i}") for i in range(4)], user_id=U)
        store.client.hset(f"{prefix}:t:{{u:junk}}:m", stored[1].id, b"\xff\x00\x9c{junk")
        with pytest.raises(SchemaError, match=stored[1].id):
            store.read("junk", user_id=U)
        assert [m.text for m in store.read("junk", last=2, user_id=U)] == ["m2", "m3"]
        assert store.get(stored[0].id, user_id=U).text == "m0"
    with RedisStore(redis_plain.url, prefix=prefix, on_corrupt="skip") as lenient:
        kept = lenient.read("junk", user_id=U)
        assert [m.text for m in kept] == ["m0", "m2", "m3"]
        # the branch still runs through the unreadable message: m2's parent is m1
        assert [m.parent_id for m in kept] == [None, stored[1].id, stored[2].id]
        assert kept == [stored[0], stored[2], stored[3]]


def test_invalid_arguments(store: RedisStore) -> None:
    with pytest.raises(InvalidMessageError):
        store.append("x", Message.user("y"), branch="", user_id=U)
    with pytest.raises(InvalidMessageError):
        store.list_threads("u", limit=0)
    with pytest.raises(InvalidMessageError):
        store.list_threads("u", cursor="%%%")
    with pytest.raises(InvalidMessageError):
        store.append("x", [Message.user("y"), "not a message"], user_id=U)  # type: ignore[list-item]


def test_server_restart_loses_nothing_acknowledged() -> None:
    server = RedisServer(persistent=True).start()
    try:
        store = RedisStore(server.url, prefix="restart").for_user(U)
        acked = store.append("r", [Message.user(f"m{i}") for i in range(10)])
        server.stop(cleanup=False)
        with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{server.port}"):
            store.append("r", Message.user("while down"))
        server.start()
        back = store.read("r")
        assert back == acked  # the store reconnects by itself
        more = store.append("r", Message.user("after"))
        assert store.read("r")[-1] == more[0]
        assert more[0].parent_id == acked[-1].id
        store.store.close()
    finally:
        server.stop()


# -- async ----------------------------------------------------------------------------------


async def test_native_async_matches_sync(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    async with RedisStore(redis_plain.url, prefix=prefix) as store:
        me = store.for_user(U)
        stored = await me.aappend("as", [Message.user(f"m{i}") for i in range(6)])
        assert await me.aread("as") == me.read("as") == stored
        assert await me.aread("as", last=2) == stored[-2:]
        info = await me.afork("as", stored[2].id, name="alt")
        assert info.head_id == stored[2].id
        await asyncio.gather(*(me.aappend("as", Message.user(f"c{i}")) for i in range(20)))
        assert len(await me.aread("as")) == 26
        assert (await me.aget_thread("as")).message_count == 26
        assert await store.aread("as", user_id="other") == []
        await store.aset_ttl("as", 60, user_id=U)
        assert 0 < store.client.pttl(f"{prefix}:t:{{u:as}}:meta") <= 60_000
        assert store._aclient is not None  # really the redis.asyncio client


async def test_async_errors_name_the_address() -> None:
    store = RedisStore("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        await store.aread("x", user_id=U)
    await store.aclose()


def test_big_threads_pass_lua_unpack_limits(redis_store: RedisStore) -> None:
    store = redis_store.for_user(U)
    n = 12_000  # Lua's unpack stops near 8,000 values: every bulk command must be chunked
    msgs = [Message.user(f"m{i}") for i in range(n)]
    stored = store.append("big", msgs)
    assert len(store.read("big")) == n
    assert [m.text for m in store.read("big", last=3)] == ["m11997", "m11998", "m11999"]
    store.fork("big", stored[5].id, name="early")
    store.append("big", Message.user("early reply"), branch="early")
    assert len(store.read("big", branch="early")) == 7
    report = redis_store.apply_retention(max_messages=9_000)
    assert report.messages == n + 1 - 9_000
    assert store.delete_thread("big") == 9_000


async def test_sentinel_url(redis_sentinel: RedisSentinel) -> None:
    prefix = _prefix()
    async with RedisStore(redis_sentinel.url, prefix=prefix) as redis_store:
        store = redis_store.for_user(U)
        stored = store.append("s", [Message.user("via sentinel"), Message.assistant("ok")])
        assert await store.aread("s") == stored
        assert (await store.aappend("s", Message.user("async")))[0].parent_id == stored[1].id
        assert [m.text for m in store.read("s")] == ["via sentinel", "ok", "async"]


def test_cluster_user_index_has_no_stray_entries(redis_cluster: RedisClusterServers) -> None:
    with RedisStore(redis_cluster.url, prefix=_prefix()) as store:
        (a,) = store.append("owned", Message.user("a"), user_id="alice")
        with pytest.raises(InvalidMessageError):  # names another user: refused before any write
            store.append("owned", Message.user("b", user_id="alice"), user_id="mallory")
        with pytest.raises(ConflictError):  # an id stored anywhere: refused, claim undone
            store.append("owned", Message.user("b", id=a.id), user_id="mallory")
        assert store.list_threads("mallory").threads == ()
        store.append("owned", Message.user("mallory's own"), user_id="mallory")
        assert [t.id for t in store.list_threads("mallory").threads] == ["owned"]
        assert [m.text for m in store.read("owned", user_id="alice")] == ["a"]
        assert [t.id for t in store.list_threads("alice").threads] == ["owned"]
        assert store.erase_user("alice").threads == 1
        assert [m.text for m in store.read("owned", user_id="mallory")] == ["mallory's own"]


def test_async_twins_work_from_successive_event_loops(redis_plain: RedisServer) -> None:
    store = RedisStore(redis_plain.url, prefix=_prefix())

    async def turn(text: str) -> int:
        await store.aappend("loops", Message.user(text), user_id=U)
        return len(await store.aread("loops", user_id=U))

    assert asyncio.run(turn("first")) == 1
    assert asyncio.run(turn("second")) == 2  # a new loop, a new asyncio client
    store.close()


async def test_injected_async_client_only(redis_plain: RedisServer) -> None:
    import redis.asyncio

    aclient = redis.asyncio.Redis(host="127.0.0.1", port=redis_plain.port)
    store = RedisStore(aclient=aclient, prefix=_prefix())
    assert "127.0.0.1" in store.address
    stored = await store.aappend("inj", [Message.user("a"), Message.assistant("b")], user_id=U)
    assert await store.aread("inj", user_id=U) == stored
    with pytest.raises(TelaMemoryError, match="only an async client"):
        store.read("inj", user_id=U)
    await store.aclose()
    assert await aclient.ping()  # an injected client is left open
    await aclient.aclose()


def test_retention_pages_through_many_threads(store: RedisStore) -> None:
    from datetime import UTC, datetime, timedelta

    old = datetime.now(UTC) - timedelta(days=90)
    n = 1_300  # more than one page of the activity index, with removals inside pages
    for i in range(n):
        when = old if i % 2 else datetime.now(UTC)
        store.append(
            f"keep-{i}", [Message.user("a", created_at=when), Message.user("b")], user_id=U
        )
        if i % 3 == 0:
            store.append(f"drop-{i}", Message.user("ancient", created_at=old), user_id=U)
    report = store.apply_retention(max_age=timedelta(days=30))
    dropped = len(range(0, n, 3))
    assert report.threads == dropped
    assert report.messages == dropped + n // 2
    assert all(store.read(f"keep-{i}", user_id=U)[-1].text == "b" for i in range(0, n, 97))
    assert store.client.zcard(f"{store.prefix}:g:{{{store.prefix}}}:activity") == n
    assert store.client.zcard(f"{store.prefix}:g:{{{store.prefix}}}:u:u") == n
