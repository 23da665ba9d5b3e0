"""A keyspace written before threads were namespaced per user opens and keeps its data.

``data/legacy_keyspace.json`` is what tela-memory-redis at 0057bd3 wrote (recorded by
``data/write_legacy_keyspace.py`` with that code): Ada's ``trip-42`` with a tool pair, a fork
``terse`` and thread metadata; an ownerless ``notes`` and an ownerless ``{x}:*``; Bob's ``1``;
user ``a``'s ``b:c`` beside user ``a:b``'s ``c``; a thread with its own TTL; one with empty
entries left by retention; and an expired thread whose global entries remain. The tests
replay it with raw commands under a fresh prefix, on a standalone server, through Sentinel
and on a cluster, and open it with today's store.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis_servers import RedisClusterServers, RedisSentinel, RedisServer

from tela_memory import DEFAULT_USER
from tela_memory.errors import ConflictError, NotFoundError, SchemaError
from tela_memory.messages import Message
from tela_memory_redis import RedisStore
from tela_memory_redis._driver import _exec_sync
from tela_memory_redis._ops import SCHEMA

pytestmark = pytest.mark.integration

LEGACY: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "legacy_keyspace.json").read_text()
)
LEGACY_THREADS = 9  # in the legacy activity index, the expired one included


def _prefix() -> str:
    return f"mig-{uuid.uuid4().hex[:10]}"


def replay(client: Any, prefix: str) -> None:
    """Write the recorded keys, values and TTLs with raw commands under ``prefix``."""
    old = LEGACY["prefix"]
    for entry in LEGACY["keys"]:
        key, kind, value = entry["key"].replace(old, prefix), entry["type"], entry["value"]
        if kind == "hash":
            client.hset(key, mapping={k: v.replace(old, prefix) for k, v in value.items()})
        elif kind == "list":
            client.rpush(key, *value)
        elif kind == "zset":
            client.zadd(key, {member: score for member, score in value})
        else:
            raise AssertionError(f"unexpected type {kind} in the fixture")
        if entry["pttl"] > 0:
            client.pexpire(key, entry["pttl"])


def _nodes(client: Any) -> list[Any]:
    if hasattr(client, "get_primaries"):
        return [client.get_redis_connection(n) for n in client.get_primaries()]
    return [client]


def keys_under(client: Any, prefix: str) -> list[str]:
    """Every key under ``prefix`` on every node (test inspection only)."""
    return sorted(
        k.decode() for node in _nodes(client) for k in node.scan_iter(match=f"{prefix}:*")
    )


def check_migrated(store: RedisStore) -> None:
    """Everything the old code wrote is there, in its owner's namespace, and nothing else."""
    ada, bob, local = store.for_user("ada"), store.for_user("bob"), store.for_user(DEFAULT_USER)
    main = ada.read("trip-42")
    assert [m.id for m in main] == [f"trip-{i}" for i in range(5)]
    assert [m.role.value for m in main] == ["system", "user", "assistant", "tool", "assistant"]
    assert main[2].tool_calls[0].arguments == {"city": "Lisbon"}
    assert [m.parent_id for m in main] == [None, "trip-0", "trip-1", "trip-2", "trip-3"]
    assert {m.user_id for m in main} == {"ada"}
    terse = ada.read("trip-42", branch="terse")
    assert [m.text for m in terse][-1] == "Sunny."
    assert terse[:4] == main[:4]
    info = ada.get_thread("trip-42")
    assert (info.user_id, info.title, info.tags, info.metadata, info.message_count) == (
        "ada",
        "Lisbon",
        ("travel",),
        {"k": 1},
        6,
    )
    assert {b.name for b in ada.branches("trip-42")} == {"main", "terse"}
    assert ada.get("trip-3").tool_results[0].tool_call_id == "call-wx"
    # ownerless threads belong to the default user, messages included
    notes = local.read("notes")
    assert [m.text for m in notes] == ["an ownerless note", "noted"]
    assert {m.user_id for m in notes} == {DEFAULT_USER}
    assert local.get_thread("notes").user_id == DEFAULT_USER
    assert [m.text for m in local.read("{x}:*")] == ["odd id"]
    assert {t.id for t in local.list_threads().threads} == {"notes", "{x}:*"}
    assert [m.text for m in bob.read("1")] == ["bob's first session"]
    assert [t.id for t in bob.list_threads().threads] == ["1"]  # the expired one is gone
    with pytest.raises(NotFoundError):
        bob.get("exp-0")
    # ids with a ':' stay apart once the user is part of the key
    assert [m.text for m in store.read("b:c", user_id="a")] == ["a's b:c"]
    assert [m.text for m in store.read("c", user_id="a:b")] == ["a:b's c"]
    assert store.read("c", user_id="a") == []
    assert store.read("b:c", user_id="a:b") == []
    assert [m.text for m in ada.read("retained")] == ["kept 2", "kept 3"]
    assert ada.read("retained")[0].parent_id is None
    assert ada.get_thread("retained").message_count == 2
    assert [m.text for m in ada.read("ttl-thread")] == ["expires"]
    left = store.client.pttl(store._ops.base("ada", "ttl-thread") + "meta")
    assert 2 * 86_400_000 < left <= 3 * 86_400_000  # its own TTL, still running
    assert store.client.pttl(store._ops.base("ada", "trip-42") + "meta") == -1
    assert [t.id for t in ada.list_threads().threads] == ["retained", "ttl-thread", "trip-42"]
    # ownership holds on the migrated data
    assert bob.read("trip-42") == []
    assert ada.read("1") == []
    assert local.read("trip-42") == []
    with pytest.raises(NotFoundError):
        bob.get("trip-0")
    with pytest.raises(NotFoundError):
        bob.get_thread("notes")
    # no key of the old layout is left; the layout version is recorded
    prefix = store.prefix
    keys = keys_under(store.client, prefix)
    thread_keys = [k for k in keys if k.startswith(f"{prefix}:t:")]
    assert thread_keys
    assert all(":" in k.split("{", 1)[1].split("}", 1)[0] for k in thread_keys)  # user:thread
    assert f"{prefix}:g:{{{prefix}}}:threads" not in keys
    assert store.client.pttl(f"{prefix}:g:{{{prefix}}}:migration") < 30_000  # released, or
    # left by a killed migrator and expiring
    assert store.client.get(f"{prefix}:g:{{{prefix}}}:schema") == str(SCHEMA).encode()
    activity = store.client.zrange(f"{prefix}:g:{{{prefix}}}:activity", 0, -1)
    assert len(activity) == LEGACY_THREADS - 1


def check_takes_new_writes(store: RedisStore) -> None:
    ada = store.for_user("ada")
    ada.append("1", Message.user("ada's own session 1"))
    assert [m.text for m in store.read("1", user_id="bob")] == ["bob's first session"]
    # a tool result on the migrated branch finds its call (the calls map moved too)
    ada.append("trip-42", Message.tool("call-wx", "again"), branch="terse")
    assert ada.read("trip-42", branch="terse")[-1].parent_id == "trip-5"
    with pytest.raises(ConflictError, match="already stored"):
        store.append("new", Message.user("dup", id="notes-0"), user_id="bob")
    receipt = store.erase_user("ada")
    assert (receipt.threads, receipt.messages) == (4, 11)
    assert store.read("trip-42", user_id="ada") == []
    assert len(store.read("notes", user_id=DEFAULT_USER)) == 2


@pytest.fixture(params=["plain", "cluster"])
def target(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(url, a raw client factory) of a standalone server or of the cluster."""
    import redis.cluster

    import redis

    if request.param == "plain":
        server: RedisServer = request.getfixturevalue("redis_plain")
        yield server.url, lambda: redis.Redis(host="127.0.0.1", port=server.port)
    else:
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        port = cluster.nodes[0].port
        yield cluster.url, lambda: redis.cluster.RedisCluster(host="127.0.0.1", port=port)


def test_legacy_keyspace_migrates_on_first_use(target: tuple[str, Callable[[], Any]]) -> None:
    url, raw = target
    prefix = _prefix()
    client = raw()
    replay(client, prefix)
    client.close()
    with RedisStore(url, prefix=prefix) as store:
        assert [m.text for m in store.read("notes", user_id=DEFAULT_USER)] == [
            "an ownerless note",
            "noted",
        ]  # the first operation migrated
        check_migrated(store)
        assert not store.client.exists(f"{prefix}:g:{{{prefix}}}:migration")  # released
        assert store.migrate() == 0  # nothing left to do
        check_takes_new_writes(store)


def test_explicit_migrate_reports_the_threads_moved(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    with RedisStore(redis_plain.url, prefix=prefix) as store:
        replay(store.client, prefix)
        assert store.migrate() == LEGACY_THREADS - 1  # the expired one had nothing to move
        check_migrated(store)


async def test_async_first_use_migrates(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    async with RedisStore(redis_plain.url, prefix=prefix) as store:
        replay(store.client, prefix)
        assert [m.text for m in await store.aread("1", user_id="bob")] == ["bob's first session"]
        assert await store.amigrate() == 0
        check_migrated(store)


def test_migration_through_sentinel(redis_sentinel: RedisSentinel) -> None:
    prefix = _prefix()
    with RedisStore(redis_sentinel.url, prefix=prefix) as store:
        replay(store.client, prefix)
        check_migrated(store)


def _interrupted(store: RedisStore, steps: int) -> bool:
    """Run the migration for ``steps`` requests, then stop as a killed process would (the
    lock stays until it expires). True if it finished within ``steps``."""
    op = store._ops.ensure_schema()
    req = op.send(None)
    for _ in range(steps):
        reply = _exec_sync(store.client, req)
        try:
            req = op.send(reply)
        except StopIteration:
            return True
    op.close()
    return False


def test_a_migration_killed_after_any_step_resumes_without_loss(
    target: tuple[str, Callable[[], Any]],
) -> None:
    url, raw = target
    client = raw()
    total = 0
    while True:  # kill after 0, 1, 2 ... requests, until the migration finishes on its own
        prefix = _prefix()
        replay(client, prefix)
        killed = RedisStore(url, prefix=prefix)
        killed._ops.lock_ms = 30  # a killed process's lock expires by itself
        finished = _interrupted(killed, total)
        killed.close()
        with RedisStore(url, prefix=prefix) as store:  # the next process to use the keyspace
            check_migrated(store)
        if finished:
            break
        total += 1
    client.close()
    assert total > 4 * LEGACY_THREADS  # every step of every thread was a kill point


def test_concurrent_first_uses_migrate_once(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    stores = [RedisStore(redis_plain.url, prefix=prefix) for _ in range(4)]
    replay(stores[0].client, prefix)
    moved: list[int] = []
    errors: list[BaseException] = []

    def first_use(store: RedisStore) -> None:
        try:
            moved.append(store.migrate())
            assert len(store.read("trip-42", user_id="ada")) == 5
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert sorted(moved) == [0, 0, 0, LEGACY_THREADS - 1]
    check_migrated(stores[0])
    for s in stores:
        s.close()


async def test_async_waiters_wait_for_the_migrator(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    stores = [RedisStore(redis_plain.url, prefix=prefix) for _ in range(3)]
    replay(stores[0].client, prefix)
    reads = await asyncio.gather(*(s.aread("notes", user_id=DEFAULT_USER) for s in stores))
    assert [len(r) for r in reads] == [2, 2, 2]
    for s in stores:
        await s.aclose()


def test_a_fresh_keyspace_is_stamped_and_a_newer_one_refused(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    with RedisStore(redis_plain.url, prefix=prefix) as store:
        assert store.migrate() == 0
        assert store.client.get(f"{prefix}:g:{{{prefix}}}:schema") == str(SCHEMA).encode()
    newer = _prefix()
    with RedisStore(redis_plain.url, prefix=newer) as store:
        store.client.set(f"{newer}:g:{{{newer}}}:schema", "99")
        with pytest.raises(SchemaError, match="upgrade tela-memory-redis"):
            store.read("t", user_id="u")
