"""StoreIndexer: follows appends (watermark), edits and deletions; resumable; reindex."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.messages import Message, TextBlock
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import Document
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "s.db") as s:
        yield s


def _turns(n: int, word: str = "turn") -> list[Message]:
    return [Message.user(f"{word} {i}") for i in range(n)]


def test_follows_appends_incrementally(store: SQLiteStore) -> None:
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(32)) as index:
        indexer = StoreIndexer(store, index, batch_size=4)
        store.append("t1", _turns(10), user_id="u")
        report = indexer.sync()
        assert report.indexed == 10
        assert index.count({"user_id": "u"}) == 10
        assert indexer.sync().indexed == 0
        store.append("t1", _turns(3, "later"), user_id="u")
        assert indexer.pending() == 3
        assert indexer.sync().indexed == 3
        assert index.search("later", filter={"user_id": "u"}, mode="lexical")


class _Crashing(SQLiteIndex):
    """An index whose writes fail after ``ok`` batches (a crash in the middle of a sync)."""

    ok = 1

    def _upsert(self, docs: list[Document]) -> None:
        if self.ok <= 0:
            raise RuntimeError("power cut")
        self.ok -= 1
        super()._upsert(docs)


def test_resumes_after_a_crash(store: SQLiteStore) -> None:
    store.append("t1", _turns(10), user_id="u")
    crashing = _Crashing(store.path)
    with pytest.raises(RuntimeError):
        StoreIndexer(store, crashing, batch_size=4).sync()
    assert crashing.count() == 4
    crashing.close()
    with SQLiteIndex.for_store(store) as index:
        indexer = StoreIndexer(store, index, batch_size=4)
        assert indexer.pending() == 6
        assert indexer.sync().indexed == 6
        assert index.count() == 10


def test_follows_edits_and_deletions(store: SQLiteStore) -> None:
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(32)) as index:
        indexer = StoreIndexer(store, index)
        stored = store.append("t1", _turns(3), user_id="u")
        store.append("t2", _turns(2), user_id="v")
        indexer.sync()
        store.update_message(
            stored[0].model_copy(update={"content": [TextBlock(text="rewritten")]})
        )
        report = indexer.sync()
        assert report.updated == 1
        assert (
            index.search("rewritten", filter={"user_id": "u"}, mode="lexical")[0].message.id
            == stored[0].id
        )
        store.delete_thread("t1")
        assert index.count({"user_id": "u"}) == 0  # the trigger removed them at once
        indexer.sync()
        store.erase_user("v")
        assert index.count() == 0


def test_reindex_rebuilds_with_another_model(store: SQLiteStore) -> None:
    store.append("t1", _turns(5), user_id="u")
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(32)) as index:
        StoreIndexer(store, index).sync()
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(48)) as other:
        with pytest.raises(EmbeddingMismatchError):
            other.search("turn", mode="dense")
        report = StoreIndexer(store, other).reindex()
        assert report.indexed == 5
        assert other.stored_model() == ("hash-bow-48", 48)
        assert len(other.search("turn 3", mode="dense", k=5)) == 5


def test_embed_missing_upgrades_a_lexical_index(store: SQLiteStore) -> None:
    store.append("t1", _turns(5), user_id="u")
    with SQLiteIndex.for_store(store) as index:
        StoreIndexer(store, index).sync()
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(32)) as index:
        assert index.search("turn", mode="dense") == []
        assert index.embed_missing() == 5
        assert len(index.search("turn", mode="dense")) == 5


def test_in_memory_store_shares_its_connection() -> None:
    with SQLiteStore(":memory:") as store, SQLiteIndex.for_store(store) as index:
        store.append("t1", _turns(2), user_id="u")
        assert StoreIndexer(store, index).sync().indexed == 2
        store.delete_thread("t1")
        assert index.count() == 0


def test_each_index_keeps_its_own_watermark(store: SQLiteStore, tmp_path: Path) -> None:
    store.append("t1", _turns(4), user_id="u")
    with SQLiteIndex(tmp_path / "a.db") as a, SQLiteIndex(tmp_path / "b.db") as b:
        assert StoreIndexer(store, a).sync().indexed == 4
        assert StoreIndexer(store, b).sync().indexed == 4
        assert a.count() == b.count() == 4
