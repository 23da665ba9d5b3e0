"""What is particular to the Qdrant index: connecting, persistence, schema, errors, async client."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from tela_memory.errors import (
    BackendUnavailable,
    SchemaError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import rrf_fuse
from tela_memory.recall.types import SearchFilter
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import msg, uid
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex
from tela_memory_qdrant.index import DENSE, LEXICAL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- construction and connection ------------------------------------------------------------


def test_constructor_does_no_io(tmp_path: Path) -> None:
    folder = tmp_path / "lazy"
    idx = QdrantIndex(path=folder, embedder=HashEmbedder(8))
    assert not folder.exists()
    idx.close()
    url = f"http://127.0.0.1:{_free_port()}"
    QdrantIndex(url, embedder=HashEmbedder(8)).close()  # nothing listens there: no error yet


def test_needs_exactly_one_target() -> None:
    with pytest.raises(TelaMemoryError, match="exactly one"):
        QdrantIndex()
    with pytest.raises(TelaMemoryError, match="exactly one"):
        QdrantIndex("http://127.0.0.1:6333", location=":memory:")
    with pytest.raises(TelaMemoryError, match="QdrantClient"):
        QdrantIndex(client=object())  # type: ignore[arg-type]
    with pytest.raises(TelaMemoryError, match="collection"):
        QdrantIndex(location=":memory:", collection="")
    with pytest.raises(TelaMemoryError, match="fusion"):
        QdrantIndex(location=":memory:", fusion="max")  # type: ignore[arg-type]


def test_unreachable_server_is_backend_unavailable_with_address() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with QdrantIndex(url, embedder=HashEmbedder(8), timeout=2) as idx:
        with pytest.raises(BackendUnavailable, match=url.replace(".", r"\.")) as err:
            idx.upsert(msg("hello", user="u", thread="t"))
        assert err.value.__cause__ is not None
        with pytest.raises(BackendUnavailable, match="127"):
            idx.search("hello", filter={"user_id": "u"})
        with pytest.raises(BackendUnavailable):
            idx.count()


def test_path_is_locked_by_one_client(tmp_path: Path) -> None:
    with QdrantIndex(path=tmp_path / "q") as first:
        first.upsert(msg("one", user="u", thread="t"))
        with QdrantIndex(path=tmp_path / "q") as second, pytest.raises(BackendUnavailable):
            second.count()


def test_closed_index_refuses_work() -> None:
    idx = QdrantIndex(location=":memory:")
    idx.upsert(msg("one", user="u", thread="t"))
    idx.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        idx.count()


def test_injected_client_stays_open() -> None:
    client = QdrantClient(location=":memory:")
    with QdrantIndex(client=client, collection="mine") as idx:
        idx.upsert(msg("kept words", user="u", thread="t"))
    assert client.count("mine").count == 1  # still usable after the index closed
    client.close()


# -- persistence and schema -------------------------------------------------------------------


def test_path_mode_persists_across_reopen(tmp_path: Path) -> None:
    emb = HashEmbedder(16)
    m = msg("the blue whale migrates in spring", user="u", thread="t", metadata={"k": 1})
    with QdrantIndex(path=tmp_path / "q", embedder=emb) as idx:
        idx.upsert(m)
    with QdrantIndex(path=tmp_path / "q", embedder=emb) as idx:
        assert idx.count({"user_id": "u", "metadata": {"k": 1}}) == 1
        for mode in ("lexical", "dense", "hybrid"):
            hits = idx.search("whale", filter={"user_id": "u"}, mode=mode)
            assert [h.message for h in hits] == [m]
        assert idx.stored_model() == (emb.model_id, 16)


def test_collection_schema(qdrant_target: dict[str, Any]) -> None:
    emb = HashEmbedder(24)
    with QdrantIndex(embedder=emb, **qdrant_target) as idx:
        idx.upsert(msg("schema words", user="u", thread="t"))
        info = idx.client().get_collection(idx.collection)
    params = info.config.params
    assert isinstance(params.vectors, dict)
    assert params.vectors[DENSE].size == 24
    assert params.vectors[DENSE].distance == models.Distance.COSINE
    assert params.sparse_vectors is not None
    assert params.sparse_vectors[LEXICAL].modifier == models.Modifier.IDF
    assert info.config.metadata is not None
    assert info.config.metadata["tela_model_id"] == emb.model_id


def test_reads_do_not_create_the_collection(qdrant_target: dict[str, Any]) -> None:
    with QdrantIndex(embedder=HashEmbedder(8), **qdrant_target) as idx:
        assert idx.count() == 0
        assert idx.search("nothing here") == []
        assert idx.delete("x") == 0
        assert idx.neighbors("x") == []
        assert idx.stored_model() is None
        assert not idx.client().collection_exists(idx.collection)
        assert idx.drop() is False


def test_other_dimension_or_model_is_a_mismatch(tmp_path: Path) -> None:
    where = tmp_path / "q"
    with QdrantIndex(path=where, embedder=HashEmbedder(16)) as idx:
        idx.upsert(msg("vectors", user="u", thread="t"))
    for other in (HashEmbedder(32), HashEmbedder(16, seed=3)):
        with QdrantIndex(path=where, embedder=other) as idx:
            with pytest.raises(EmbeddingMismatchError, match="hash-bow-16"):
                idx.upsert(msg("more", user="u", thread="t"))
            with pytest.raises(EmbeddingMismatchError):
                idx.search("vectors", mode="dense")
            with pytest.raises(EmbeddingMismatchError):
                idx.search("vectors", mode="hybrid")
            assert idx.count() == 1  # nothing lost
    with QdrantIndex(path=where, embedder=HashEmbedder(16)) as idx:
        assert idx.search("vectors", mode="dense")[0].text == "vectors"


def test_lexical_only_collection_refuses_an_embedder(tmp_path: Path) -> None:
    where = tmp_path / "q"
    with QdrantIndex(path=where) as idx:
        idx.upsert(msg("words only", user="u", thread="t"))
        assert idx.search("words", mode="hybrid")[0].text == "words only"
        with pytest.raises(UnsupportedOperation):
            idx.search("words", mode="dense")
    with QdrantIndex(path=where, embedder=HashEmbedder(8)) as idx:
        with pytest.raises(EmbeddingMismatchError, match="without vectors"):
            idx.upsert(msg("now with vectors", user="u", thread="t"))
        assert idx.drop() is True
        idx.upsert(msg("now with vectors", user="u", thread="t"))
        assert idx.search("vectors", mode="dense")[0].text == "now with vectors"


def test_foreign_collection_is_refused() -> None:
    client = QdrantClient(location=":memory:")
    client.create_collection(
        "theirs", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    with (
        QdrantIndex(client=client, collection="theirs") as idx,
        pytest.raises(SchemaError, match="theirs"),
    ):
        idx.upsert(msg("x", user="u", thread="t"))
    client.close()


def test_two_collections_are_separate(qdrant_target: dict[str, Any]) -> None:
    target = dict(qdrant_target)
    other = {**target, "collection": target["collection"] + "-b"}
    with QdrantIndex(**target) as a, QdrantIndex(**other) as b:
        a.upsert(msg("only in a", user="u", thread="t"))
        assert a.count() == 1
        assert b.count() == 0
        assert b.search("only") == []
        b.drop()


# -- lexical scoring --------------------------------------------------------------------------


def test_rare_words_outrank_common_ones(qdrant_target: dict[str, Any]) -> None:
    """The IDF modifier: a word in every turn weighs less than a word in one."""
    with QdrantIndex(**qdrant_target) as idx:
        user, thread = uid(), uid("t")
        idx.upsert([msg(f"weather report {i}", user=user, thread=thread, at=i) for i in range(20)])
        rare = msg("weather report mentions aurora", user=user, thread=thread, at=30)
        common = msg("weather weather weather", user=user, thread=thread, at=31)
        idx.upsert([rare, common])
        hits = idx.search("aurora weather", filter={"user_id": user}, mode="lexical", k=3)
        assert hits[0].message.id == rare.id
        assert hits[0].lexical_score is not None
        assert hits[0].lexical_score > hits[1].lexical_score  # type: ignore[operator]


def test_engine_fusion_reports_one_score(qdrant_target: dict[str, Any]) -> None:
    with QdrantIndex(embedder=HashEmbedder(32), fusion="qdrant", **qdrant_target) as idx:
        user, thread = uid(), uid("t")
        idx.upsert(
            [
                msg("lemon cake recipe", user=user, thread=thread),
                msg("car insurance renewal", user=user, thread=thread, at=1),
            ]
        )
        hits = idx.search("lemon cake", filter={"user_id": user}, mode="hybrid")
        assert hits[0].text == "lemon cake recipe"
        assert hits[0].lexical_score is None
        assert hits[0].dense_score is None
        assert hits[0].score > 0
        # no words in the query: the dense side alone
        vec = HashEmbedder(32).embed_query("car insurance")
        hits = idx.search("…", filter={"user_id": user}, query_vector=vec)
        assert hits[0].text == "car insurance renewal"


# -- the async client -------------------------------------------------------------------------


def test_async_client_runs_the_async_methods() -> None:
    emb = HashEmbedder(16)
    user, thread = uid(), uid("t")
    ms = [msg(f"async turn about topic {i}", user=user, thread=thread, at=i) for i in range(5)]

    async def go() -> tuple[list[str], list[str], int]:
        client = AsyncQdrantClient(location=":memory:")
        async with QdrantIndex(client=client, embedder=emb) as idx:
            assert await idx.aupsert(ms) == 5
            assert await idx.acount({"user_id": user}) == 5
            hits = await idx.asearch("topic 3", filter={"user_id": user}, k=5)
            near = await idx.aneighbors(ms[2].id, before=1, after=1)
            assert await idx.adelete(ms[0].id) == 1
            left = await idx.adelete_where({"user_id": user})
            with pytest.raises(UnsupportedOperation, match="async"):
                idx.count()
            assert await idx.adrop() is True
        await client.close()
        return [h.message.id for h in hits], [h.message.id for h in near], left

    hits, near, left = asyncio.run(go())
    assert near == [ms[1].id, ms[3].id]
    assert left == 4
    with QdrantIndex(location=":memory:", embedder=emb) as twin:
        twin.upsert(ms)
        assert [h.message.id for h in twin.search("topic 3", filter={"user_id": user}, k=5)] == hits


def test_async_methods_on_a_sync_index() -> None:
    async def go() -> int:
        async with QdrantIndex(location=":memory:", embedder=HashEmbedder(8)) as idx:
            await idx.aupsert([msg(f"w {i}", user="u", thread="t", at=i) for i in range(3)])
            found = await asyncio.gather(*(idx.acount({"user_id": "u"}) for _ in range(8)))
            assert set(found) == {3}
            return await idx.aclear()

    assert asyncio.run(go()) == 3


# -- filters reach the engine -----------------------------------------------------------------


def test_filters_are_in_the_query_not_after_it(qdrant_target: dict[str, Any]) -> None:
    """With k=1 the only matching point comes back though 50 others score higher."""
    with QdrantIndex(embedder=HashEmbedder(32), **qdrant_target) as idx:
        user, thread = uid(), uid("t")
        idx.upsert(
            [msg("saffron rice saffron", user=uid(), thread=uid("t"), at=i) for i in range(50)]
        )
        mine = msg("saffron", user=user, thread=thread, metadata={"tag": "x"}, at=99)
        idx.upsert(mine)
        flt = SearchFilter(user_id=user, metadata={"tag": "x"})
        for mode in ("lexical", "dense", "hybrid"):
            assert [
                h.message.id for h in idx.search("saffron rice", filter=flt, k=1, mode=mode)
            ] == [mine.id]


def test_query_vector_dimension_checked() -> None:
    with QdrantIndex(location=":memory:", embedder=HashEmbedder(8)) as idx:
        idx.upsert(msg("x y", user="u", thread="t"))
        with pytest.raises(EmbeddingMismatchError):
            idx.search("x", mode="dense", query_vector=np.ones(9, dtype=np.float32))


def test_engine_fusion_scores_equal_the_cores(tmp_path: Path) -> None:
    """Qdrant's RRF (local mode and Edge) fuses the two lists exactly as the core's ``rrf_fuse``."""
    emb = HashEmbedder(32)
    user, thread = uid(), uid("t")
    words = ["tide", "maple", "copper", "lantern", "orbit", "pepper", "quartz", "saddle"]
    ms = [
        msg(" ".join(words[(i + j * 3) % 8] for j in range(1 + i % 5)), user=user, thread=thread)
        for i in range(24)
    ]
    with (
        QdrantIndex(location=":memory:", embedder=emb, fusion="qdrant") as local,
        QdrantEdgeIndex(tmp_path / "e", embedder=emb, fusion="qdrant") as edge,
    ):
        for idx in (local, edge):
            idx.upsert(ms)
            for query in ("tide copper", "orbit", "quartz saddle maple"):
                flt = {"user_id": user}
                sides = [idx.search(query, filter=flt, k=8, mode=m) for m in ("lexical", "dense")]
                want = {h.message.id: round(h.score, 6) for h in rrf_fuse(sides, 8)}
                got = {h.message.id: round(h.score, 6) for h in idx.search(query, filter=flt, k=8)}
                assert sorted(got.values()) == sorted(want.values()), (query, type(idx).__name__)
