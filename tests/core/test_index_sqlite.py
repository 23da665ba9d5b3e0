"""The embedded SQLite index passes the index conformance suite (file, memory, shared store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.messages import Message
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance


class TestSQLiteIndexFile(IndexConformance):
    @pytest.fixture
    def index(self, embedder: HashEmbedder, tmp_path: Path) -> Iterator[SQLiteIndex]:
        with SQLiteIndex(tmp_path / "recall.db", embedder=embedder) as idx:
            yield idx


class TestSQLiteIndexInStoreMemory(IndexConformance):
    @pytest.fixture
    def index(self, embedder: HashEmbedder) -> Iterator[SQLiteIndex]:
        with (
            SQLiteStore(":memory:") as store,
            SQLiteIndex.for_store(store, embedder=embedder) as idx,
        ):
            yield idx


class TestSQLiteIndexLexicalOnly(IndexConformance):
    """Without an embedder the index is lexical; hybrid falls back to BM25."""

    dense = False

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[SQLiteIndex]:
        idx = _LexicalOnly(tmp_path / "lex.db")
        yield idx
        idx.close()


class _LexicalOnly(SQLiteIndex):
    supports_dense = False


def test_deleted_vectors_leave_process_memory_at_once(tmp_path: Path) -> None:
    # erase_user must not leave a user's vectors in the per-user matrix cache until some
    # later dense search happens to notice the change
    with SQLiteIndex(tmp_path / "i.db", embedder=HashEmbedder(16)) as index:
        index.upsert([Message.user(f"turn {i}", thread_id="t", user_id="ana") for i in range(3)])
        index.search("turn", filter={"user_id": "ana"}, mode="dense")
        assert index._cache  # the user's matrix is held in memory
        index.delete_where({"user_id": "ana"})
        assert not index._cache
        index.upsert(Message.user("again", thread_id="t", user_id="ana"))
        index.search("again", filter={"user_id": "ana"}, mode="dense")
        index.delete(index.search("again", filter={"user_id": "ana"})[0].message.id)
        assert not index._cache
