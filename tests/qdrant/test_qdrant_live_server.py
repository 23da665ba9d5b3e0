"""``QdrantIndex`` against a real Qdrant server: the module runs only when one is given.

No Qdrant server can run on the project's machines, so ``tests/qdrant/conftest.py`` collects
this module only when ``TELA_QDRANT_URL`` is set (``TELA_QDRANT_API_KEY`` too, if the server
wants one)::

    TELA_QDRANT_URL=http://127.0.0.1:6333 .venv/bin/pytest tests/qdrant -q

Without the variable nothing here is collected (so nothing passes that did not run); with it,
every test talks to that server, and an unreachable server fails them (``BackendUnavailable``),
it never skips them. Each test uses its own collections (``tela-live-<random>``) and drops them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from tela_memory.messages import Message
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.crashing import crashing as crashing_index
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance, msg, uid
from tela_memory_qdrant import QdrantIndex
from tela_memory_qdrant.index import DENSE, LEXICAL
from tela_memory_qdrant.payload import PAYLOAD_INDEXES

URL = os.environ.get("TELA_QDRANT_URL", "")
API_KEY = os.environ.get("TELA_QDRANT_API_KEY") or None
if not URL:  # run by path without the variable: fail the collection, never pass silently
    pytest.fail(
        "test_qdrant_live_server.py needs a Qdrant server: set TELA_QDRANT_URL "
        "(e.g. http://127.0.0.1:6333)",
        pytrace=False,
    )


@pytest.fixture
def live() -> Iterator[dict[str, Any]]:
    """Keyword arguments for a ``QdrantIndex`` on the server, in a fresh collection."""
    collection = f"tela-live-{uuid.uuid4().hex[:12]}"
    yield {"url": URL, "api_key": API_KEY, "collection": collection, "timeout": 30}
    client = QdrantClient(url=URL, api_key=API_KEY, timeout=30)
    try:
        for found in client.get_collections().collections:
            if found.name.startswith(collection):
                client.delete_collection(found.name)
    finally:
        client.close()


class TestLiveServer(IndexConformance):
    """The conformance suite on the server, hybrid fused in the library."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, live: dict[str, Any]) -> Iterator[QdrantIndex]:
        with QdrantIndex(embedder=embedder, **live) as idx:
            yield idx


class TestLiveServerEngineFusion(IndexConformance):
    """The conformance suite on the server, hybrid fused by the engine (one round trip)."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, live: dict[str, Any]) -> Iterator[QdrantIndex]:
        with QdrantIndex(embedder=embedder, fusion="qdrant", **live) as idx:
            yield idx


class _LexicalOnly(QdrantIndex):
    supports_dense = False


class TestLiveServerLexicalOnly(IndexConformance):
    """The conformance suite on the server without an embedder (sparse vectors only)."""

    dense = False

    @pytest.fixture
    def index(self, live: dict[str, Any]) -> Iterator[QdrantIndex]:
        with _LexicalOnly(**live) as idx:
            yield idx


# -- what only a server shows ---------------------------------------------------------------


def test_talks_to_a_server(live: dict[str, Any]) -> None:
    with QdrantIndex(**live) as idx:
        assert type(idx.client()._client).__name__ == "QdrantRemote"
        assert idx.address == URL
        assert idx.watermark_name == f"qdrant:{URL.rstrip('/')}/{live['collection']}"


def test_collection_schema_and_payload_indexes(live: dict[str, Any]) -> None:
    emb = HashEmbedder(24)
    with QdrantIndex(embedder=emb, **live) as idx:
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
    assert set(PAYLOAD_INDEXES) <= set(info.payload_schema)  # every filter field is indexed
    assert info.payload_schema["ts"].data_type == models.PayloadSchemaType.INTEGER


def test_reads_do_not_create_the_collection(live: dict[str, Any]) -> None:
    with QdrantIndex(embedder=HashEmbedder(8), **live) as idx:
        assert idx.count() == 0
        assert idx.search("nothing here") == []
        assert idx.neighbors("x") == []
        assert not idx.client().collection_exists(idx.collection)


def test_another_model_is_refused_across_connections(live: dict[str, Any]) -> None:
    with QdrantIndex(embedder=HashEmbedder(16), **live) as first:
        first.upsert(msg("vectors of the first model", user="u", thread="t"))
    for other in (HashEmbedder(16, seed=1), HashEmbedder(24)):
        with QdrantIndex(embedder=other, **live) as idx:
            with pytest.raises(EmbeddingMismatchError):
                idx.upsert(msg("more", user="u", thread="t", at=1))
            with pytest.raises(EmbeddingMismatchError):
                idx.search("vectors", mode="dense")
            assert idx.count() == 1  # nothing stored was touched


def test_filters_are_in_the_query_not_after_it(live: dict[str, Any]) -> None:
    """With k=1 the only matching point comes back though 50 others score higher."""
    with QdrantIndex(embedder=HashEmbedder(32), **live) as idx:
        user = uid()
        idx.upsert(
            [msg("saffron rice saffron", user=uid(), thread=uid("t"), at=i) for i in range(50)]
        )
        mine = msg("saffron", user=user, thread=uid("t"), metadata={"tag": "x'"}, at=99)
        idx.upsert(mine)
        flt = {"user_id": user, "metadata": {"tag": "x'"}}
        for mode in ("lexical", "dense", "hybrid"):
            hits = idx.search("saffron rice", filter=flt, k=1, mode=mode)  # type: ignore[arg-type]
            assert [h.message.id for h in hits] == [mine.id]


def test_store_indexer_resumes_and_reindexes(live: dict[str, Any], tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.append("t1", [Message.user(f"turn {i}") for i in range(10)], user_id="u")
        with (
            crashing_index(QdrantIndex)(embedder=HashEmbedder(32), **live) as crashing,
            pytest.raises(RuntimeError, match="power cut"),
        ):
            StoreIndexer(store, crashing, batch_size=4).sync()
        with QdrantIndex(embedder=HashEmbedder(32), **live) as idx:
            indexer = StoreIndexer(store, idx, batch_size=4)
            assert indexer.pending() == 6
            assert indexer.sync().indexed == 6
            assert idx.count({"user_id": "u"}) == 10
        with QdrantIndex(embedder=HashEmbedder(48), **live) as other:
            assert StoreIndexer(store, other).reindex().indexed == 10
            assert other.stored_model() == ("hash-bow-48", 48)
            assert len(other.search("turn 3", filter={"user_id": "u"}, mode="dense", k=10)) == 10


def test_async_client_on_the_server(live: dict[str, Any]) -> None:
    emb = HashEmbedder(16)
    user, thread = uid(), uid("t")
    ms = [msg(f"async turn about topic {i}", user=user, thread=thread, at=i) for i in range(5)]

    async def go() -> tuple[int, list[str], int]:
        client = AsyncQdrantClient(url=URL, api_key=API_KEY, timeout=30)
        async with QdrantIndex(client=client, embedder=emb, collection=live["collection"]) as idx:
            await idx.aupsert(ms)
            count = await idx.acount({"user_id": user})
            hits = await idx.asearch("topic 3", filter={"user_id": user}, k=5)
            left = await idx.adelete_where({"user_id": user})
        await client.close()
        return count, [h.message.id for h in hits], left

    count, hits, left = asyncio.run(go())
    assert count == 5
    assert hits[0] == ms[3].id
    assert left == 5
