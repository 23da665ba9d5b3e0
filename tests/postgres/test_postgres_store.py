"""What only a real PostgreSQL shows about ``PostgresStore``: construction without I/O, clear
errors for unreachable servers, refused logins and newer schemas, writers in several
processes, a feed that never lets a slow writer slip behind a cursor, async-only and injected
connections, vacuum after erasure and durable follower cursors."""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import psycopg_pool
import pytest
from psycopg import sql

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidArgumentError,
    InvalidMessageError,
    NotFoundError,
    SchemaError,
    TelaMemoryError,
)
from tela_memory.messages import Message
from tela_memory_postgres import PostgresStore
from tela_memory_postgres._schema import SCHEMA_VERSION

pytestmark = pytest.mark.integration


@pytest.fixture
def store(pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
    with PostgresStore(pg_url, schema=pg_schema) as s:
        yield s


def _other_db(url: str, **parts: str) -> str:
    return urlsplit(url)._replace(**parts).geturl()


# -- construction and bad input -------------------------------------------------------------


def test_constructors_do_no_io_and_hide_passwords() -> None:
    started = time.perf_counter()
    store = PostgresStore("postgresql://ada:s3cret@10.255.255.1:5432/nowhere", connect_timeout=1)
    assert time.perf_counter() - started < 1  # nothing was dialled (the host does not answer)
    assert "s3cret" not in store.address
    assert "s3cret" not in repr(store)
    assert PostgresStore.from_url("postgres://10.255.255.1/x").schema == "tela"
    store.close()


@pytest.mark.parametrize(
    "bad", ["mysql://x", "http://h/db", "", "postgresql://h/db?sslmode=bogus x"]
)
def test_bad_urls_are_invalid_arguments(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        PostgresStore(bad)


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(TelaMemoryError, match="url, a connection or a pool"):
        PostgresStore()
    with pytest.raises(InvalidArgumentError, match="schema"):
        PostgresStore("postgresql://h/db", schema="")
    with pytest.raises(InvalidArgumentError, match="pool_size"):
        PostgresStore("postgresql://h/db", pool_size=0)


def test_unreachable_server_is_backend_unavailable() -> None:
    store = PostgresStore("postgresql://postgres:pw@127.0.0.1:1/test", connect_timeout=2)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1.*Connection refused") as err:
        store.append("t", Message.user("hi"), user_id="ada")
    assert "pw@" not in str(err.value)
    store.close()


async def test_unreachable_server_is_backend_unavailable_async() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test", connect_timeout=2)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        await store.aread("t", user_id="ada")
    await store.aclose()


def test_refused_login_and_missing_database_say_so(pg_url: str) -> None:
    nobody = _other_db(pg_url, netloc="no_such_role:pw@" + urlsplit(pg_url).netloc.split("@")[-1])
    with PostgresStore(nobody) as store, pytest.raises(BackendUnavailable, match="no_such_role"):
        store.read("t", user_id="ada")
    missing = _other_db(pg_url, path="/no_such_database_here")
    with PostgresStore(missing) as store, pytest.raises(BackendUnavailable, match="no_such_data"):
        store.read("t", user_id="ada")


def test_nul_characters_are_refused_or_missing(store: PostgresStore) -> None:
    with pytest.raises(InvalidMessageError, match="NUL"):
        store.append("t", Message.user("x", id="bad\x00id"), user_id="ada")
    with pytest.raises(InvalidMessageError, match="NUL"):
        store.append("t", Message.user("x", name="a\x00b"), user_id="ada")
    (m,) = store.append("t", Message.user("text may hold \x00"), user_id="ada")
    with pytest.raises(InvalidMessageError, match="NUL"):
        store.update_thread("t", user_id="ada", title="a\x00b")
    with pytest.raises(NotFoundError):
        store.get("x\x00y", user_id="ada")
    with pytest.raises(NotFoundError):
        store.fork("t", "x\x00y", user_id="ada")
    assert store.read("t", user_id="ada")[0].text == "text may hold \x00"
    assert store.get_thread("t", user_id="ada").metadata == {}
    store.update_thread("t", user_id="ada", metadata={"k": "v\x00"}, tags=["\x00"])
    assert store.get_thread("t", user_id="ada").metadata == {"k": "v\x00"}
    assert store.get(m.id, user_id="ada") == m


def test_sql_fragments_in_ids_are_only_values(store: PostgresStore, pg_url: str) -> None:
    hostile = ["x'); DROP TABLE messages; --", 'a"b', "%s", "%(user)s", "{s}", "$1", "\\"]
    for i, value in enumerate(hostile):
        store.append(value, Message.user(value, id=f"{value}-{i}"), user_id=value)
        assert store.read(value, user_id=value)[0].text == value
        assert store.read(value, user_id="ada") == []
    with psycopg.connect(pg_url) as conn:
        (count,) = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.messages").format(sql.Identifier(store.schema))
        ).fetchone() or (0,)
    assert count == len(hostile)


# -- schema versions -----------------------------------------------------------------------


def test_a_newer_schema_is_refused_untouched(store: PostgresStore, pg_url: str) -> None:
    store.append("t", Message.user("hi"), user_id="ada")
    table = sql.Identifier(store.schema, "meta")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET value = '99' WHERE key = 'schema_version'").format(table)
        )
    newer = PostgresStore(pg_url, schema=store.schema)
    with newer, pytest.raises(SchemaError, match=r"newer.*upgrade tela-memory-postgres"):
        newer.read("t", user_id="ada")
    with psycopg.connect(pg_url) as conn:
        version = conn.execute(
            sql.SQL("SELECT value FROM {} WHERE key = 'schema_version'").format(table)
        ).fetchone()
    assert version == ("99",)


def test_migrate_creates_once_and_reopening_keeps_data(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema) as first:
        assert first.migrate() == 0
        assert first.migrate() == SCHEMA_VERSION
        stored = first.append("t", Message.user("kept"), user_id="ada")
    with PostgresStore(pg_url, schema=pg_schema) as again:
        assert again.read("t", user_id="ada") == stored


# -- several processes ---------------------------------------------------------------------


def _process_writer(url: str, schema: str, worker: int, rounds: int) -> int:
    with PostgresStore(url, schema=schema) as store:  # each opens (and migrates) on its own
        for i in range(rounds):
            store.append(
                "shared",
                [Message.user(f"w{worker}-{i}"), Message.assistant(f"r{worker}-{i}")],
                user_id="ada",
            )
    return worker


def test_writers_in_several_processes_lose_and_interleave_nothing(
    pg_url: str, pg_schema: str
) -> None:
    procs, rounds = 4, 15
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        done = pool.starmap(_process_writer, [(pg_url, pg_schema, w, rounds) for w in range(procs)])
    assert sorted(done) == list(range(procs))
    with PostgresStore(pg_url, schema=pg_schema) as store:
        chain = store.read("shared", user_id="ada")
        assert len(chain) == procs * rounds * 2
        assert chain[0].parent_id is None
        for parent, child in itertools.pairwise(chain):
            assert child.parent_id == parent.id
        for i in range(0, len(chain), 2):  # each turn's pair stays together
            assert chain[i].text.replace("w", "r") == chain[i + 1].text
        # one event per message; concurrent writes are in transaction-id order, which need
        # not be the order they took the thread's lock in
        events = store.changes(limit=10_000).changes
        assert sorted(e.message_id or "" for e in events) == sorted(m.id for m in chain)
        assert {e.kind for e in events} == {"append"}
        assert store.get_thread("shared", user_id="ada").message_count == len(chain)


# -- the change feed -----------------------------------------------------------------------


def test_a_slow_writer_never_slips_behind_a_cursor(store: PostgresStore, pg_url: str) -> None:
    start = store.changes().cursor
    with psycopg.connect(pg_url) as conn:
        slow = PostgresStore(connection=conn, schema=store.schema)
        with conn.transaction():  # the slow writer's append stays uncommitted in here
            (late,) = slow.append("slow", Message.user("late"), user_id="ada")
            (quick,) = store.append("quick", Message.user("quick"), user_id="bob")
            idle = store.changes(start)  # bob's event is committed but must wait for ada's
            assert idle.changes == []
            assert idle.cursor == start
        batch = store.changes(start)
        assert [c.message_id for c in batch.changes] == [late.id, quick.id]
        assert store.changes(batch.cursor).changes == []
        slow.close()


def test_follower_cursors_survive_a_new_store(pg_url: str, store: PostgresStore) -> None:
    store.append("t", Message.user("hi"), user_id="ada")
    cursor = store.changes().cursor
    store.cursor_store().set("indexer", cursor)
    with PostgresStore(pg_url, schema=store.schema) as again:
        assert again.cursor_store().get("indexer") == cursor
        assert again.changes(cursor).changes == []
        again.cursor_store().set("indexer", None)
        assert again.cursor_store().get("indexer") is None


# -- erasure -------------------------------------------------------------------------------


def test_erasure_says_what_postgres_keeps_and_can_vacuum(store: PostgresStore) -> None:
    store.append("t", [Message.user("a"), Message.assistant("b")], user_id="ada")
    plain = store.erase_user("ada")
    assert (plain.threads, plain.messages, plain.scrubbed) == (1, 2, ())
    assert "dead tuples" in plain.traces_left[0]
    store.append("t", Message.user("c"), user_id="ada")
    vacuumed = store.erase_user("ada", vacuum=True)
    assert vacuumed.messages == 1
    assert vacuumed.scrubbed
    assert "vacuumed" in vacuumed.scrubbed[0]
    assert "VACUUM FULL" in vacuumed.traces_left[0]
    assert store.user_data("ada").messages == ()


async def test_async_erasure_and_user_data(store: PostgresStore) -> None:
    stored = await store.aappend("t", [Message.user("a"), Message.assistant("b")], user_id="ada")
    data = await store.auser_data("ada")
    assert (data.thread_ids, data.message_ids) == (("t",), [m.id for m in stored])
    receipt = await store.aerase_user("ada", vacuum=True)
    assert receipt.messages == 2
    assert receipt.scrubbed


# -- injected async connections -------------------------------------------------------------


async def test_an_async_connection_alone_serves_the_async_twins(
    pg_url: str, pg_schema: str
) -> None:
    conn = await psycopg.AsyncConnection.connect(pg_url, autocommit=True)
    store = PostgresStore(aconnection=conn, schema=pg_schema)
    stored = await store.aappend("t", [Message.user("a"), Message.assistant("b")], user_id="ada")
    assert await store.aread("t", user_id="ada", last=1) == stored[1:]
    assert [c.kind for c in (await store.achanges()).changes] == ["append", "append"]
    with pytest.raises(TelaMemoryError, match="only async"):
        store.read("t", user_id="ada")
    await store.aclose()
    assert not conn.closed  # injected: left open
    await conn.close()


async def test_an_async_pool_is_used_and_left_open(pg_url: str, pg_schema: str) -> None:
    pool = psycopg_pool.AsyncConnectionPool(pg_url, open=False, kwargs={"autocommit": True})
    await pool.open()
    async with PostgresStore(apool=pool, schema=pg_schema) as store:
        await store.aappend("t", Message.user("a"), user_id="ada")
        assert len(await store.aread("t", user_id="ada")) == 1
    assert not pool.closed
    await pool.close()


async def test_a_sync_only_store_runs_its_async_twins_in_a_thread(
    store: PostgresStore, pg_url: str
) -> None:
    with psycopg.connect(pg_url) as conn:
        sync_only = PostgresStore(connection=conn, schema=store.schema)
        await sync_only.aappend("t", Message.user("a"), user_id="ada")
        assert [m.text for m in store.read("t", user_id="ada")] == ["a"]


def test_a_closed_store_says_so(pg_url: str, pg_schema: str) -> None:
    store = PostgresStore(pg_url, schema=pg_schema)
    store.close()
    with pytest.raises(TelaMemoryError, match="closed"):
        store.read("t", user_id="ada")


def test_async_twins_work_across_event_loops(store: PostgresStore) -> None:
    """Each ``asyncio.run`` is a new loop: the store opens connections on it and the loop
    can end while the store stays open (no pool tasks are left behind to block it)."""

    async def turn(text: str) -> int:
        await store.aappend("t", Message.user(text), user_id="ada")
        return len(await store.aread("t", user_id="ada"))

    assert asyncio.run(turn("one")) == 1
    assert asyncio.run(turn("two")) == 2
    assert [m.text for m in store.read("t", user_id="ada")] == ["one", "two"]


def test_a_duplicate_message_id_says_so(store: PostgresStore) -> None:
    (m,) = store.append("t", Message.user("x"), user_id="ada")
    with pytest.raises(ConflictError, match="message id in this write is already stored"):
        store.append("u", [Message.user("y"), Message.user("z", id=m.id)], user_id="bob")
    assert store.read("u", user_id="bob") == []
    assert store.changes().changes[-1].message_id == m.id  # the refused write left no event


def test_vacuum_that_cannot_run_is_reported_not_raised(pg_url: str, pg_schema: str) -> None:
    with psycopg.connect(pg_url) as conn:  # no autocommit: VACUUM cannot run on it
        store = PostgresStore(connection=conn, schema=pg_schema)
        store.append("t", Message.user("a"), user_id="ada")
        receipt = store.erase_user("ada", vacuum=True)
        assert receipt.messages == 1
        assert receipt.scrubbed == ()
        assert "could not VACUUM" in receipt.traces_left[0]
        assert store.read("t", user_id="ada") == []


def test_open_store_finds_postgres(pg_url: str, pg_schema: str) -> None:
    from tela_memory import open_store

    for url in (pg_url, pg_url.replace("postgresql://", "postgres://", 1)):
        with open_store(url, schema=pg_schema) as store:
            assert isinstance(store, PostgresStore)
