"""The record conformance suite on SQLite, plus what only a file can show: records share the
message store's file and plumbing, survive reopening, roll back when interrupted, and
compare-and-set across processes loses no update."""

from __future__ import annotations

import functools
import multiprocessing
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tela_memory.errors import SchemaError
from tela_memory.messages import Message
from tela_memory.records import SQLiteRecordStore
from tela_memory.stores.changes import ChangeFeedGapError
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing import FakeClock, RecordConformance, cas_increment_worker


class TestSQLiteFileRecords(RecordConformance):
    @pytest.fixture
    def records(self, clock: FakeClock, tmp_path: Path) -> Iterator[SQLiteRecordStore]:
        with SQLiteRecordStore(tmp_path / "tela.db", now=clock) as r:
            yield r


class TestSQLiteSharedStoreRecords(RecordConformance):
    @pytest.fixture
    def records(self, clock: FakeClock) -> Iterator[SQLiteRecordStore]:
        with SQLiteStore(":memory:") as store:
            yield SQLiteRecordStore(store, now=clock)


def test_records_live_in_the_message_store_file(tmp_path: Path) -> None:
    path = tmp_path / "tela.db"
    with SQLiteStore(path) as store:
        store.append("t1", Message.user("hello"), user_id="ada")
        records = SQLiteRecordStore(store)
        records.put(("facts",), "greeting", "hello", user_id="ada", provenance=["m1"])
        cursor = records.changes().cursor
        records.close()  # borrowed: the message store stays open
        assert store.read("t1", user_id="ada")[0].text == "hello"
    with SQLiteRecordStore(path) as reopened:
        got = reopened.get(("facts",), "greeting", user_id="ada")
        assert got is not None
        assert got.provenance == ("m1",)
        assert reopened.changes(cursor).changes == []  # the feed id is the file's
        assert reopened.store.read("t1", user_id="ada")[0].text == "hello"
    with SQLiteRecordStore(tmp_path / "other.db") as other, pytest.raises(ChangeFeedGapError):
        other.changes(cursor)
    conn = sqlite3.connect(path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert {"messages", "records", "record_changes", "record_meta"} <= tables


def test_newer_record_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tela.db"
    with SQLiteRecordStore(path) as r:
        r.put(("facts",), "k", 1, user_id="ada")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE record_meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with SQLiteRecordStore(path) as r, pytest.raises(SchemaError):
        r.get(("facts",), "k", user_id="ada")


def test_interrupted_write_rolls_back_and_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "tela.db"
    calls = {"n": 0}

    def clock() -> datetime:  # the clock is read inside the write transaction
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return datetime.now(UTC)

    with SQLiteRecordStore(path, now=clock, timeout=0.5) as records:
        records.put(("facts",), "k", 1, user_id="ada")
        with pytest.raises(KeyboardInterrupt):
            records.put(("facts",), "k", 2, user_id="ada")
        with SQLiteRecordStore(path, timeout=0.5) as other:  # another connection can write
            assert other.put(("facts",), "j", 1, user_id="ada").version == 1
        got = records.get(("facts",), "k", user_id="ada")
        assert got is not None
        assert (got.value, got.version) == (1, 1)
        assert records.put(("facts",), "k", 3, user_id="ada").version == 2


def test_compare_and_set_across_processes_loses_no_update(tmp_path: Path) -> None:
    path = tmp_path / "tela.db"
    with SQLiteRecordStore(path) as r:
        r.put(("other",), "warm", 0, user_id="ada")  # the schema exists before the race
    procs, times = 4, 25
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(procs) as pool:
        opener = functools.partial(SQLiteRecordStore, path)
        retries = pool.starmap(cas_increment_worker, [(opener, "ada", times)] * procs)
    assert len(retries) == procs
    with SQLiteRecordStore(path) as r:
        final = r.get(("counters",), "n", user_id="ada")
        assert final is not None
        assert (final.value, final.version) == (procs * times, procs * times)
        puts = [e for e in r.changes(limit=10_000).changes if e.key == "n"]
        assert [e.version for e in puts] == list(range(1, procs * times + 1))
