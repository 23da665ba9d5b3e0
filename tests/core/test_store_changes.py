"""The change feed beyond the conformance cases: ``StoreIndexer`` following any store through
it (crash-safe, resumable from a persisted cursor), SQLite migration of v2 files and of the
old indexer's watermarks, atomicity with the write, ``user_data`` on the contract, and
``stats --all-users`` on every store.

The contract cases themselves (``ChangeFeedConformance``, including the replay invariant)
run on every embedded backend in ``test_store_conformance.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.cli.admin_cmd import _all_stats
from tela_memory.errors import ConflictError, TelaMemoryError, UnsupportedOperation
from tela_memory.messages import Message, TextBlock
from tela_memory.privacy import EmbeddingCacheEntries, erase_user, user_data
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.cache import MemoryCache
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.base import MessageStore, UserData
from tela_memory.stores.changes import ChangeBatch, ChangeFeedGapError
from tela_memory.stores.cursors import MemoryCursorStore, SQLiteCursorStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.stores.sqlite_schema import SCHEMA_VERSION
from tela_memory.testing.crashing import crashing as crashing_index
from tela_memory.testing.embedders import HashEmbedder


def _turns(n: int, word: str = "turn") -> list[Message]:
    return [Message.user(f"{word} {i}") for i in range(n)]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    backend: MessageStore = (
        InMemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    )
    with backend:
        yield backend


def _ids(index: SQLiteIndex, user: str) -> set[str]:
    rows = index.connection().execute("SELECT id FROM recall_docs WHERE user_id = ?", (user,))
    return {r[0] for r in rows}


# -- StoreIndexer on any store ----------------------------------------------------------------


def test_indexer_follows_every_kind_of_event(store: MessageStore, tmp_path: Path) -> None:
    with SQLiteIndex(tmp_path / "index.db", embedder=HashEmbedder(16)) as index:
        indexer = StoreIndexer(store, index, batch_size=3)
        a = store.append("t1", _turns(4), user_id="ann")
        b = store.append("t2", _turns(2), user_id="ann")
        c = store.append("t1", _turns(3), user_id="bob")
        report = indexer.sync()
        assert (report.indexed, report.updated, report.deleted) == (9, 0, 0)
        assert _ids(index, "ann") == {m.id for m in a + b}
        # update
        store.update_message(
            a[1].model_copy(update={"content": [TextBlock(text="zanzibar")]}), user_id="ann"
        )
        assert indexer.sync().updated == 1
        hits = index.search("zanzibar", filter={"user_id": "ann"}, mode="lexical")
        assert hits[0].message.id == a[1].id
        # delete (a branch's own messages)
        store.fork("t1", a[1].id, name="alt", user_id="ann")
        (side,) = store.append("t1", Message.user("side"), branch="alt", user_id="ann")
        indexer.sync()
        assert side.id in _ids(index, "ann")
        store.delete_branch("t1", "alt", user_id="ann")
        assert indexer.sync().deleted == 1
        assert side.id not in _ids(index, "ann")
        # thread deleted
        store.delete_thread("t2", user_id="ann")
        assert indexer.sync().deleted == 2
        assert _ids(index, "ann") == {m.id for m in a}
        # user erased
        store.erase_user("bob")
        assert indexer.sync().deleted == 3
        assert _ids(index, "bob") == set()
        assert _ids(index, "ann") == {m.id for m in a}
        assert not {m.id for m in c} & (_ids(index, "ann") | _ids(index, "bob"))
        assert indexer.pending() == 0


def test_indexer_resumes_after_a_crash(store: MessageStore, tmp_path: Path) -> None:
    store.append("t1", _turns(10), user_id="u")
    crashing = crashing_index(SQLiteIndex)(tmp_path / "index.db")
    with pytest.raises(RuntimeError, match="power cut"):
        StoreIndexer(store, crashing, batch_size=4).sync()
    assert crashing.count() == 4
    crashing.close()
    with SQLiteIndex(tmp_path / "index.db") as index:
        indexer = StoreIndexer(store, index, batch_size=4)
        assert indexer.pending() == 6
        assert indexer.sync().indexed == 6
        assert index.count({"user_id": "u"}) == 10
        assert indexer.sync().indexed == 0


def test_the_sqlite_cursor_survives_a_restart(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store, SQLiteIndex(tmp_path / "i.db") as index:
        store.append("t1", _turns(5), user_id="u")
        crashing = crashing_index(SQLiteIndex, batches=2)(tmp_path / "i.db")
        with pytest.raises(RuntimeError):
            StoreIndexer(store, crashing, batch_size=2).sync()
        crashing.close()
        assert index.count() == 4
    with SQLiteStore(tmp_path / "s.db") as store, SQLiteIndex(tmp_path / "i.db") as index:
        indexer = StoreIndexer(store, index, batch_size=2)
        assert indexer.pending() == 1
        assert indexer.sync().indexed == 1
        assert index.count() == 5


def test_an_explicit_cursor_store_keeps_the_position(tmp_path: Path) -> None:
    cursors = SQLiteCursorStore(tmp_path / "cursors.db")
    store = InMemoryStore()
    with SQLiteIndex(":memory:") as index:
        store.append("t1", _turns(3), user_id="u")
        assert StoreIndexer(store, index, cursors=cursors).sync().indexed == 3
        store.append("t1", _turns(2), user_id="u")
        # a new indexer (another process) resumes from the file, not from the store
        again = StoreIndexer(store, index, cursors=SQLiteCursorStore(tmp_path / "cursors.db"))
        assert again.sync().indexed == 2
    cursors.close()


def test_a_foreign_cursor_asks_for_a_rebuild(tmp_path: Path) -> None:
    one, two = InMemoryStore(), InMemoryStore()
    cursors = MemoryCursorStore()
    one.append("t1", _turns(2), user_id="u")
    two.append("t1", _turns(3), user_id="u")
    with SQLiteIndex(":memory:") as index:
        StoreIndexer(one, index, cursors=cursors, name="x").sync()
        follower = StoreIndexer(two, index, cursors=cursors, name="x")
        with pytest.raises(ChangeFeedGapError, match="reindex"):
            follower.sync()
        assert follower.reindex().indexed == 3
        assert index.count() == 3


def test_a_store_without_a_feed_says_so() -> None:
    class NoFeed(InMemoryStore):
        def changes(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
            return MessageStore.changes(self, since, limit=limit)

    with SQLiteIndex(":memory:") as index, pytest.raises(UnsupportedOperation):
        StoreIndexer(NoFeed(), index).sync()


# -- atomicity and privacy ------------------------------------------------------------------


def test_a_refused_write_leaves_no_event(store: MessageStore) -> None:
    (first,) = store.append("t1", Message.user("one"), user_id="u")
    before = store.changes()
    with pytest.raises(ConflictError):
        store.append("t1", [Message.user("two"), Message.user("x", id=first.id)], user_id="u")
    with pytest.raises(TelaMemoryError):
        store.update_message(first, user_id="someone-else")
    assert store.changes() == before


def test_erasure_removes_the_users_events_in_the_file(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.append("t1", _turns(3), user_id="gone")
        store.append("t1", _turns(1), user_id="stays")
        erase_user("gone", store)
    with sqlite3.connect(tmp_path / "s.db") as raw:
        rows = raw.execute("SELECT kind FROM changes WHERE user_id = 'gone'").fetchall()
    raw.close()
    assert rows == [("user_erased",)]


def test_privacy_gathers_through_the_contract() -> None:
    class Counting(InMemoryStore):
        calls = 0

        def user_data(self, user_id: str) -> UserData:
            type(self).calls += 1
            return super().user_data(user_id)

    store = Counting()
    stored = store.append("t1", _turns(2), user_id="ann")
    data = user_data(store, "ann")
    assert (data.thread_ids, data.message_ids) == (("t1",), [m.id for m in stored])
    erase_user("ann", store, EmbeddingCacheEntries(MemoryCache()))
    assert Counting.calls == 2


# -- SQLite migrations ----------------------------------------------------------------------


def _downgrade_to_v2(
    path: Path, marks: list[tuple[str, int, int]], queued: list[tuple[int, str, str]]
) -> None:
    """What a v2 file with the old indexer's tables looks like (made from a fresh file)."""
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TABLE changes")
        raw.execute("DROP TABLE IF EXISTS recall_cursors")
        raw.execute("DELETE FROM meta WHERE key = 'feed_id'")
        raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        raw.execute(
            "CREATE TABLE recall_watermarks(name TEXT PRIMARY KEY,"
            " seq INTEGER NOT NULL DEFAULT 0, change INTEGER NOT NULL DEFAULT 0)"
        )
        raw.execute(
            "CREATE TABLE recall_changes(change INTEGER PRIMARY KEY AUTOINCREMENT,"
            " message_id TEXT NOT NULL, op TEXT NOT NULL)"
        )
        raw.executemany("INSERT INTO recall_watermarks VALUES (?, ?, ?)", marks)
        raw.executemany("INSERT INTO recall_changes VALUES (?, ?, ?)", queued)
    raw.close()


def test_a_v2_file_gets_a_feed_with_every_message(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with SQLiteStore(path) as store:
        a = store.append("t1", _turns(3), user_id="ann")
        b = store.append("t1", _turns(2), user_id="bob")
    _downgrade_to_v2(path, [], [])
    with SQLiteStore(path) as store:
        batch = store.changes()
        assert [(c.kind, c.user_id, c.message_id) for c in batch.changes] == [
            ("append", "ann", m.id) for m in a
        ] + [("append", "bob", m.id) for m in b]
        with SQLiteIndex(":memory:") as index:
            assert StoreIndexer(store, index).sync().indexed == 5
    with sqlite3.connect(path) as raw:
        version = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    raw.close()
    assert int(version[0]) == SCHEMA_VERSION == 3


def test_old_watermarks_become_cursors(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    with SQLiteStore(path) as store:
        stored = store.append("t1", _turns(5), user_id="ann")
        seqs = dict(store.connection().execute("SELECT id, seq FROM messages").fetchall())
    # "old" had indexed the first three and applied nothing of the queue
    _downgrade_to_v2(
        path,
        [("old", seqs[stored[2].id], 0)],
        [(1, stored[0].id, "update"), (2, "long-gone", "delete")],
    )
    with SQLiteStore(path) as store, SQLiteIndex(":memory:") as index:
        triggers = store.connection().execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        assert [r[0] for r in triggers] == []
        indexer = StoreIndexer(store, index, name="old")
        assert indexer.pending() == 2
        tail = store.changes(indexer.cursor()).changes
        assert [(c.kind, c.message_id) for c in tail] == [
            ("append", stored[3].id),
            ("append", stored[4].id),
            ("update", stored[0].id),
            ("delete", "long-gone"),
        ]
        assert tail[2].user_id == "ann"
        report = indexer.sync()
        assert (report.indexed, report.updated) == (2, 1)


# -- CLI stats on every store -------------------------------------------------------------


def test_stats_of_every_user_on_any_store(store: MessageStore) -> None:
    store.append("t1", _turns(3), user_id="ann")
    store.append("t2", [Message.user("q"), Message.assistant("a")], user_id="ann")
    store.append("t1", _turns(1), user_id="bob")
    store.append("t3", _turns(1), user_id="cid")
    store.delete_thread("t3", user_id="cid")
    store.append("t9", _turns(1), user_id="dee")
    store.erase_user("dee")
    data = _all_stats(store)
    assert (data["users"], data["threads"], data["branches"], data["messages"]) == (2, 3, 3, 6)
    assert data["roles"] == {"user": 5, "assistant": 1}
