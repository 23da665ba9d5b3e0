"""The record conformance suite on PostgreSQL, plus what only a server shows: records share
the message store's database and schema, survive a new client, refuse a newer schema, and
compare-and-set across processes loses no update."""

from __future__ import annotations

import functools
import multiprocessing
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from tela_memory.errors import SchemaError
from tela_memory.messages import Message
from tela_memory.stores.changes import ChangeFeedGapError
from tela_memory.testing import FakeClock, RecordConformance, cas_increment_worker
from tela_memory_postgres import PostgresStore
from tela_memory_postgres.records import PostgresRecords

pytestmark = pytest.mark.integration


class TestPostgresRecords(RecordConformance):
    @pytest.fixture
    def records(self, clock: FakeClock, pg_url: str, pg_schema: str) -> Iterator[PostgresRecords]:
        with PostgresRecords(pg_url, schema=pg_schema, now=clock) as r:
            yield r


class TestPostgresRecordsOnAStore(RecordConformance):
    @pytest.fixture
    def records(self, clock: FakeClock, pg_url: str, pg_schema: str) -> Iterator[PostgresRecords]:
        with PostgresStore(pg_url, schema=pg_schema) as store:
            yield PostgresRecords(store, now=clock)


def test_records_live_beside_the_messages(pg_url: str, pg_schema: str) -> None:
    with PostgresStore(pg_url, schema=pg_schema) as store:
        [said] = store.append("t1", Message.user("I moved to Porto"), user_id="ada")
        records = PostgresRecords(store)
        records.put(("facts",), "home", {"city": "Porto"}, user_id="ada", provenance=[said.id])
        cursor = records.changes().cursor
        records.close()  # borrowed: the message store stays open
        assert store.read("t1", user_id="ada")[0].text == "I moved to Porto"
    with PostgresRecords(pg_url, schema=pg_schema) as again:
        got = again.get(("facts",), "home", user_id="ada")
        assert got is not None
        assert got.provenance == (said.id,)
        assert again.changes(cursor).changes == []
    other = PostgresRecords(pg_url, schema=pg_schema + "_other")
    with other, pytest.raises(ChangeFeedGapError):
        other.changes(cursor)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(pg_schema + "_other"))
        )


def test_newer_record_schema_is_refused(pg_url: str, pg_schema: str) -> None:
    with PostgresRecords(pg_url, schema=pg_schema) as r:
        r.put(("facts",), "k", 1, user_id="ada")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET value = '99' WHERE key = 'records_schema_version'").format(
                sql.Identifier(pg_schema, "meta")
            )
        )
    with PostgresRecords(pg_url, schema=pg_schema) as r, pytest.raises(SchemaError, match="newer"):
        r.get(("facts",), "k", user_id="ada")


def test_compare_and_set_across_processes_loses_no_update(pg_url: str, pg_schema: str) -> None:
    with PostgresRecords(pg_url, schema=pg_schema) as r:
        r.put(("other",), "warm", 0, user_id="ada")  # the tables exist before the race
    procs, times = 4, 20
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        opener = functools.partial(PostgresRecords, pg_url, schema=pg_schema)
        retries = pool.starmap(cas_increment_worker, [(opener, "ada", times)] * procs)
    assert len(retries) == procs
    with PostgresRecords(pg_url, schema=pg_schema) as r:
        final = r.get(("counters",), "n", user_id="ada")
        assert final is not None
        assert (final.value, final.version) == (procs * times, procs * times)
        puts = [e for e in r.changes(limit=10_000).changes if e.key == "n"]
        assert sorted(e.version or 0 for e in puts) == list(range(1, procs * times + 1))
