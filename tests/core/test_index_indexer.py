"""StoreIndexer: follows appends (watermark), edits and deletions; resumable; reindex."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message, TextBlock
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.crashing import crashing as crashing_index
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


def test_resumes_after_a_crash(store: SQLiteStore) -> None:
    store.append("t1", _turns(10), user_id="u")
    crashing = crashing_index(SQLiteIndex)(store.path)
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
            stored[0].model_copy(update={"content": [TextBlock(text="rewritten")]}), user_id="u"
        )
        report = indexer.sync()
        assert report.updated == 1
        assert (
            index.search("rewritten", filter={"user_id": "u"}, mode="lexical")[0].message.id
            == stored[0].id
        )
        store.delete_thread("t1", user_id="u")
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
        store.delete_thread("t1", user_id="u")
        assert index.count() == 0


def test_each_index_keeps_its_own_watermark(store: SQLiteStore, tmp_path: Path) -> None:
    store.append("t1", _turns(4), user_id="u")
    with SQLiteIndex(tmp_path / "a.db") as a, SQLiteIndex(tmp_path / "b.db") as b:
        assert StoreIndexer(store, a).sync().indexed == 4
        assert StoreIndexer(store, b).sync().indexed == 4
        assert a.count() == b.count() == 4


def _stored(index: SQLiteIndex) -> dict[str, np.ndarray]:
    rows = index.connection().execute("SELECT id, vec FROM recall_docs").fetchall()
    return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows if r[1] is not None}


def _expected(
    store: SQLiteStore, thread: str, embedder: HashEmbedder, weight: float
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    prev = None
    for m in store.read(thread, user_id="u"):
        v = embedder.embed([f"{m.name}: {m.text}" if m.name else m.text])[0]
        if prev is not None and weight > 0:
            v = v + weight * prev
            v = v / np.linalg.norm(v)
        out[m.id] = v
        prev = v
    return out


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_contextual_vectors_mix_in_the_parent_across_batches(
    store: SQLiteStore, batch_size: int
) -> None:
    store.append(
        "t1", [Message.user("where did you go"), Message.assistant("to Paris in May")], user_id="u"
    )
    store.append("t1", [Message.user("and then"), Message.assistant("back home")], user_id="u")
    emb = HashEmbedder(32)
    with SQLiteIndex.for_store(store, embedder=emb) as index:
        StoreIndexer(store, index, batch_size=batch_size).sync()
        got = _stored(index)
    want = _expected(store, "t1", emb, 0.5)
    assert got.keys() == want.keys()
    for mid, vec in want.items():
        np.testing.assert_allclose(got[mid], vec, atol=1e-5)
    # the answer is found by the question it answers
    with SQLiteIndex.for_store(store, embedder=emb) as index:
        top = index.search("where did you go", mode="dense", k=2)
        assert {h.text for h in top} == {"where did you go", "to Paris in May"}


def test_context_weight_zero_embeds_turns_alone(store: SQLiteStore) -> None:
    store.append("t1", _turns(3), user_id="u")
    emb = HashEmbedder(32)
    with SQLiteIndex.for_store(store, embedder=emb, context_weight=0.0) as index:
        StoreIndexer(store, index).sync()
        got = _stored(index)
    for mid, vec in _expected(store, "t1", emb, 0.0).items():
        np.testing.assert_allclose(got[mid], vec, atol=1e-5)


def test_embed_missing_gives_the_same_contextual_vectors(store: SQLiteStore) -> None:
    store.append("t1", _turns(5), user_id="u")
    emb = HashEmbedder(32)
    with SQLiteIndex.for_store(store) as index:
        StoreIndexer(store, index).sync()
    with SQLiteIndex.for_store(store, embedder=emb) as index:
        assert index.embed_missing(batch_size=2) == 5
        got = _stored(index)
    for mid, vec in _expected(store, "t1", emb, 0.5).items():
        np.testing.assert_allclose(got[mid], vec, atol=1e-5)


def test_context_weight_is_checked(store: SQLiteStore) -> None:
    with pytest.raises(TelaMemoryError, match="context_weight"):
        SQLiteIndex.for_store(store, context_weight=-1.0)
