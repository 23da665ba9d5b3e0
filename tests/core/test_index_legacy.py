"""A store file with its embedded recall index written before threads were namespaced per
user (``tests/data/recall_v1.db``, written by tela-memory-core at 0057bd3 with
``tests/data/make_recall_v1.py``) opens, keeps every indexed turn and vector, and gives the
rows indexed without a user to ``DEFAULT_USER``, as the store's migration gives it their
threads: that user finds them, nobody else does (not even through the old ``unull`` token).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tela_memory import DEFAULT_USER, Message
from tela_memory.recall import Recaller, SQLiteIndex
from tela_memory.recall.fts import scope_token
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder

LEGACY = Path(__file__).parent.parent / "data" / "recall_v1.db"
NOTES = ["n-0", "n-1", "n-2"]  # the ownerless thread "notes"
ADA = ["a-0", "a-1", "a-2", "a-3"]


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.db"
    shutil.copy(LEGACY, path)
    with sqlite3.connect(path) as raw:  # the premise: what the old code left
        nulls = raw.execute("SELECT id FROM recall_docs WHERE user_id IS NULL ORDER BY id")
        assert [r[0] for r in nulls] == NOTES
        assert raw.execute("SELECT count(*) FROM recall_docs").fetchone()[0] == 9
    raw.close()
    return path


def _vectors(path: Path) -> dict[str, bytes]:
    with sqlite3.connect(path) as raw:
        got = dict(raw.execute("SELECT id, vec FROM recall_docs").fetchall())
    raw.close()
    return got


def test_legacy_index_migrates_without_loss(legacy: Path) -> None:
    before = _vectors(legacy)
    embedder = HashEmbedder(32)
    with SQLiteStore(legacy) as store, SQLiteIndex.for_store(store, embedder=embedder) as index:
        rec = Recaller(index)
        for mode_filter in ({}, {"roles": ["user", "assistant"]}):
            hits = rec.search("Bubbles sourdough", user_id=DEFAULT_USER, filter=mode_filter)
            assert {h.message.id for h in hits} == set(NOTES)
            assert {h.message.user_id for h in hits} == {DEFAULT_USER}
        lexical = index.search("Bubbles", filter={"user_id": DEFAULT_USER}, mode="lexical")
        assert {h.message.id for h in lexical} == set(NOTES)  # the FTS scope token moved too
        ada = rec.search("lighthouse Ouessant", user_id="ada", k=4)
        assert {h.message.id for h in ada} == set(ADA)
        # the parent's words still lift the answer (context column kept)
        reply = index.search("Brittany", filter={"user_id": "ada"}, mode="lexical")
        assert [h.message.id for h in reply] == ["a-0", "a-1"]
        assert index.count() == 9
        assert index.count({"user_id": "bob"}) == 2
        # nobody else reaches the ownerless turns, not through the old null token either
        for other in ("bob", "unull", "null", "", "*"):
            if other:
                found = index.search("Bubbles sourdough", filter={"user_id": other}, k=50)
                assert not {h.message.id for h in found} & set(NOTES), other
        with index._read() as conn:
            scopes = conn.execute(
                "SELECT f.scope FROM recall_fts AS f JOIN recall_docs AS d ON d.rowid = f.rowid "
                "WHERE d.thread_id = 'notes'"
            ).fetchall()
            assert {s[0].split()[0] for s in scopes} == {scope_token("u", DEFAULT_USER)}
            assert (
                conn.execute("SELECT count(*) FROM recall_docs WHERE user_id IS NULL").fetchone()[0]
                == 0
            )
        # the watermark and the queued edit survive: nothing is indexed twice, the edit lands
        indexer = StoreIndexer(store, index, name="recall")
        calls = embedder.texts_embedded
        report = indexer.sync()
        assert (report.indexed, report.updated, report.deleted) == (0, 1, 0)
        assert embedder.texts_embedded - calls == 1  # only the edited turn was embedded
        assert [h.message.id for h in rec.search("Brest", user_id="ada", k=1)] == ["a-3"]
        # the store's own migration agrees: the same user owns the thread
        assert [m.id for m in store.read("notes", user_id=DEFAULT_USER)] == NOTES
    after = _vectors(legacy)
    assert {k: v for k, v in after.items() if k != "a-3"} == {
        k: v for k, v in before.items() if k != "a-3"
    }  # no vector was recomputed


def test_namespaced_threads_after_migration(legacy: Path) -> None:
    """Bob may now have his own "t1" beside Ada's legacy one: two threads, never mixed."""
    with SQLiteStore(legacy) as store, SQLiteIndex.for_store(store) as index:
        mine = store.append("t1", Message.user("a lighthouse of my own"), user_id="bob")
        StoreIndexer(store, index, name="recall").sync()
        rec = Recaller(index)
        bob = rec.search("lighthouse", user_id="bob", filter={"thread_ids": ["t1"]}, k=10)
        assert [h.message.id for h in bob] == [mine[0].id]
        ada = rec.search("lighthouse", user_id="ada", filter={"thread_ids": ["t1"]}, k=10)
        assert mine[0].id not in {h.message.id for h in ada}
        assert ada  # the control: Ada still has her t1
        assert index.neighbors(mine[0].id, before=5, after=5) == []
        counts = index.thread_term_counts("lighthouse", filter={"thread_ids": ["t1"]})
        assert set(counts.turns) == {("ada", "t1"), ("bob", "t1")}


def test_index_opened_before_the_store_gives_the_same_owners(legacy: Path) -> None:
    """The index alone on the file (the store not opened yet, schema still 1) migrates its
    rows the same way, and the store then opens and migrates without conflict."""
    with SQLiteIndex(legacy) as index:
        assert index.count({"user_id": DEFAULT_USER}) == 3
        assert index.count({"user_id": "ada"}) == 4
    with SQLiteStore(legacy) as store, SQLiteIndex.for_store(store) as index:
        assert {t.id for t in store.list_threads(DEFAULT_USER).threads} == {"notes"}
        assert index.count({"user_id": DEFAULT_USER}) == 3
        assert index.count() == 9
