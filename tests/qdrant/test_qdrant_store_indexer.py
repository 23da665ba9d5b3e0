"""``StoreIndexer`` on the Qdrant indexes: follows appends, resumes after a crash, reindexes.

The indexer is backend-agnostic (it only calls ``upsert`` / ``delete`` / ``clear``); these
tests check that the Qdrant indexes hold up their side, including a rebuild with another
embedding model (Qdrant fixes a collection's vector size when it is created).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from tela_memory.errors import UnsupportedOperation
from tela_memory.messages import Message
from tela_memory.recall.embedder import Embedder
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import Index
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.crashing import crashing as crashing_index
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex

Opener = Callable[[Embedder | None], Index]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "s.db") as s:
        yield s


@pytest.fixture(params=["local-path", "edge"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _open(kind: str, where: Path, embedder: Embedder | None, *, crash: bool = False) -> Index:
    if kind == "edge":
        cls_e = crashing_index(QdrantEdgeIndex) if crash else QdrantEdgeIndex
        return cls_e(where / "edge", embedder=embedder)
    cls_q = crashing_index(QdrantIndex) if crash else QdrantIndex
    return cls_q(path=where / "qdrant", embedder=embedder)


def _turns(n: int, word: str = "turn") -> list[Message]:
    return [Message.user(f"{word} {i}") for i in range(n)]


def test_follows_appends_and_deletions(store: SQLiteStore, kind: str, tmp_path: Path) -> None:
    with _open(kind, tmp_path, HashEmbedder(32)) as index:
        indexer = StoreIndexer(store, index, batch_size=4)
        store.append("t1", _turns(10), user_id="u")
        assert indexer.sync().indexed == 10
        assert indexer.sync().indexed == 0
        store.append("t2", _turns(3, "later"), user_id="v")
        assert indexer.sync().indexed == 3
        assert index.count({"user_id": "v"}) == 3
        store.delete_thread(
            "t1", user_id="u"
        )  # queued by the store's trigger, applied by the next sync
        assert indexer.sync().deleted == 10
        assert index.count() == 3


def test_resumes_after_a_crash(store: SQLiteStore, kind: str, tmp_path: Path) -> None:
    store.append("t1", _turns(10), user_id="u")
    crashing = _open(kind, tmp_path, HashEmbedder(32), crash=True)
    with pytest.raises(RuntimeError, match="power cut"):
        StoreIndexer(store, crashing, batch_size=4).sync()
    assert crashing.count() == 4
    crashing.close()
    with _open(kind, tmp_path, HashEmbedder(32)) as index:
        indexer = StoreIndexer(store, index, batch_size=4)
        assert indexer.pending() == 6
        assert indexer.sync().indexed == 6
        assert index.count({"user_id": "u"}) == 10
        hits = index.search("turn 7", filter={"user_id": "u"}, mode="dense", k=10)
        assert len(hits) == 10


def test_reindex_with_another_model(store: SQLiteStore, kind: str, tmp_path: Path) -> None:
    store.append("t1", _turns(5), user_id="u")
    with _open(kind, tmp_path, HashEmbedder(32)) as index:
        StoreIndexer(store, index).sync()
    with _open(kind, tmp_path, HashEmbedder(48)) as other:
        with pytest.raises(EmbeddingMismatchError):
            other.search("turn", mode="dense")
        report = StoreIndexer(store, other).reindex()
        assert report.indexed == 5
        assert other.count() == 5
        assert len(other.search("turn 3", filter={"user_id": "u"}, mode="dense", k=5)) == 5
    with _open(kind, tmp_path, HashEmbedder(48)) as reopened:  # the new model was recorded
        assert reopened.count() == 5
        assert len(reopened.search("turn", mode="dense", k=5)) == 5


def test_each_collection_keeps_its_own_watermark(store: SQLiteStore, tmp_path: Path) -> None:
    """Two collections (and an Edge shard) following one store are each filled in full."""
    store.append("t1", _turns(6), user_id="u")
    with (
        QdrantIndex(path=tmp_path / "q", collection="a") as a,
        QdrantIndex(path=tmp_path / "q2", collection="b") as b,
        QdrantEdgeIndex(tmp_path / "edge") as edge,
    ):
        for index in (a, b, edge):
            assert StoreIndexer(store, index).sync().indexed == 6
            assert index.count() == 6
    with QdrantIndex(path=tmp_path / "q", collection="a") as again:  # the same data, reopened
        assert StoreIndexer(store, again).pending() == 0


def test_watermark_names_follow_the_data(tmp_path: Path) -> None:
    url = QdrantIndex("http://qdrant.test:6333/", collection="c").watermark_name
    assert url == "qdrant:http://qdrant.test:6333/c"
    path = QdrantIndex(path=tmp_path / "q", collection="c").watermark_name
    assert path == f"qdrant:path:{(tmp_path / 'q').resolve()}/c"
    assert QdrantIndex(path=tmp_path / "q", collection="d").watermark_name != path
    one, two = QdrantIndex(location=":memory:"), QdrantIndex(location=":memory:")
    assert one.watermark_name != two.watermark_name  # memory: a new index starts from zero
    remote = QdrantClient(url="http://qdrant.test:6333", check_compatibility=False)
    assert QdrantIndex(client=remote, collection="c").watermark_name == url
    remote.close()
    edge = QdrantEdgeIndex(tmp_path / "e").watermark_name
    assert edge == f"qdrant-edge:{(tmp_path / 'e').resolve()}"


def test_drop_vectors_needs_an_empty_index(kind: str, tmp_path: Path) -> None:
    with _open(kind, tmp_path, HashEmbedder(16)) as index:
        index.drop_vectors()  # type: ignore[attr-defined]  # nothing yet: a no-op
        index.upsert(Message.user("kept", thread_id="t", user_id="u"))
        with pytest.raises(UnsupportedOperation, match="clear"):
            index.drop_vectors()  # type: ignore[attr-defined]
        assert index.count() == 1  # nothing was dropped
        index.clear()
        index.drop_vectors()  # type: ignore[attr-defined]
        index.embedder = HashEmbedder(24)
        index.upsert(Message.user("new model", thread_id="t", user_id="u"))
        assert index.stored_model() == ("hash-bow-24", 24)  # type: ignore[attr-defined]


def test_edge_drop_removes_the_shard(tmp_path: Path) -> None:
    with QdrantEdgeIndex(tmp_path / "e", embedder=HashEmbedder(8)) as index:
        assert index.drop() is False
        index.upsert(Message.user("one", thread_id="t", user_id="u"))
        assert index.drop() is True
        assert not (tmp_path / "e" / "shard").exists()
        assert index.count() == 0
        assert index.stored_model() is None
        index.upsert(Message.user("two", thread_id="t", user_id="u"))
        assert index.count() == 1
