"""Qdrant Edge specifics: lazy open, persistence, one opener, model bookkeeping."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tela_memory.errors import BackendUnavailable
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import msg, uid
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex


def test_nothing_is_created_before_the_first_write(tmp_path: Path) -> None:
    where = tmp_path / "edge"
    with QdrantEdgeIndex(where, embedder=HashEmbedder(8)) as idx:
        assert not where.exists()
        assert idx.count() == 0
        assert idx.search("anything") == []
        assert idx.neighbors("x") == []
        assert idx.delete("x") == 0
        assert not where.exists()
        idx.upsert(msg("now it exists", user="u", thread="t"))
        assert (where / "shard").is_dir()
        assert idx.stored_model() == ("hash-bow-8", 8)


def test_persists_across_reopen(tmp_path: Path) -> None:
    emb = HashEmbedder(16)
    ms = [msg(f"harbour lights {i}", user="u", thread="t", at=i) for i in range(4)]
    with QdrantEdgeIndex(tmp_path / "e", embedder=emb) as idx:
        idx.upsert(ms)
    with QdrantEdgeIndex(tmp_path / "e", embedder=emb) as idx:
        assert idx.count({"user_id": "u"}) == 4
        for mode in ("lexical", "dense", "hybrid"):
            hits = idx.search("harbour lights 2", filter={"user_id": "u"}, mode=mode)
            assert hits[0].message.id == ms[2].id, mode
        assert [h.message.id for h in idx.neighbors(ms[1].id)] == [ms[0].id, ms[2].id]


def test_one_opener_at_a_time(tmp_path: Path) -> None:
    with QdrantEdgeIndex(tmp_path / "e") as first:
        first.upsert(msg("one", user="u", thread="t"))
        with QdrantEdgeIndex(tmp_path / "e") as second, pytest.raises(BackendUnavailable):
            second.count()


def test_closed_index_refuses_work(tmp_path: Path) -> None:
    idx = QdrantEdgeIndex(tmp_path / "e")
    idx.upsert(msg("one", user="u", thread="t"))
    idx.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        idx.count()


def test_model_mismatch_across_reopen(tmp_path: Path) -> None:
    where = tmp_path / "e"
    with QdrantEdgeIndex(where, embedder=HashEmbedder(16)) as idx:
        idx.upsert(msg("vectors", user="u", thread="t"))
    for other in (HashEmbedder(32), HashEmbedder(16, seed=2)):
        with QdrantEdgeIndex(where, embedder=other) as idx:
            with pytest.raises(EmbeddingMismatchError, match="hash-bow-16"):
                idx.upsert(msg("more", user="u", thread="t"))
            with pytest.raises(EmbeddingMismatchError):
                idx.search("vectors", mode="dense")
            assert idx.count() == 1
    with QdrantEdgeIndex(tmp_path / "lex") as idx:
        idx.upsert(msg("words", user="u", thread="t"))
    with (
        QdrantEdgeIndex(tmp_path / "lex", embedder=HashEmbedder(8)) as idx,
        pytest.raises(EmbeddingMismatchError, match="without vectors"),
    ):
        idx.upsert(msg("vectors", user="u", thread="t"))


def test_ranks_like_local_mode(tmp_path: Path) -> None:
    """Same points, same filter, same scoring rules: the same lexical and dense order."""
    emb = HashEmbedder(32)
    user, t = uid(), uid("t")
    words = ["river", "stone", "bread", "window", "violin", "garden", "ticket", "lamp"]
    ms = [
        msg(
            " ".join(words[(i * j) % 8] for j in range(1, 4 + i % 4)),
            user=user,
            thread=t,
            at=i,
        )
        for i in range(30)
    ]
    with (
        QdrantEdgeIndex(tmp_path / "e", embedder=emb) as edge,
        QdrantIndex(location=":memory:", embedder=emb) as local,
    ):
        edge.upsert(ms)
        local.upsert(ms)
        for query in ("river stone", "violin garden lamp", "bread"):
            for mode in ("lexical", "dense"):
                a = edge.search(query, filter={"user_id": user}, k=5, mode=mode)
                b = local.search(query, filter={"user_id": user}, k=5, mode=mode)
                assert [round(h.score, 3) for h in a] == [round(h.score, 3) for h in b], (
                    query,
                    mode,
                )


def test_async_twins_on_edge(tmp_path: Path) -> None:
    async def go() -> int:
        async with QdrantEdgeIndex(tmp_path / "e", embedder=HashEmbedder(8)) as idx:
            await idx.aupsert([msg(f"w {i}", user="u", thread="t", at=i) for i in range(3)])
            found = await asyncio.gather(*(idx.acount({"user_id": "u"}) for _ in range(6)))
            assert set(found) == {3}
            return await idx.aclear()

    assert asyncio.run(go()) == 3
