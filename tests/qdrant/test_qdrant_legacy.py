"""Qdrant indexes written before threads were namespaced per user keep working.

``data/legacy_local`` is a qdrant-client local-mode folder written by tela-memory at 0057bd3
(``data/make_legacy_qdrant.py``): an ownerless thread ``notes`` (points with ``user_id``
null), Ada's ``t1`` and Bob's ``b1``. A Qdrant Edge shard of that version is hundreds of
sparse files, so the Edge test writes the same points (the payload code is unchanged since)
into a fresh shard through the backend hook the old ``upsert`` used. On open, ownerless
points get ``DEFAULT_USER`` (what the store's migration gives their thread), in the payload
and in the stored message; nobody else reaches them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

from tela_memory import DEFAULT_USER, Message
from tela_memory.recall import Recaller
from tela_memory.recall.index import Document, Index
from tela_memory.recall.types import SearchMode
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex
from tela_memory_qdrant.points import DENSE

LEGACY = Path(__file__).parent / "data" / "legacy_local"
NOTES = {"n-0", "n-1", "n-2"}


def _check(index: Index) -> None:
    rec = Recaller(index)
    hits = rec.search("Bubbles sourdough", user_id=DEFAULT_USER, k=10)
    assert {h.message.id for h in hits} == NOTES
    assert {h.message.user_id for h in hits} == {DEFAULT_USER}
    modes: list[SearchMode] = ["lexical", "dense"]
    for mode in modes:
        got = index.search("Bubbles", filter={"user_id": DEFAULT_USER}, mode=mode, k=10)
        assert {h.message.id for h in got} == NOTES, mode
    around = index.neighbors("n-1", filter={"user_id": DEFAULT_USER})
    assert [h.message.id for h in around] == ["n-0", "n-2"]
    for other in ("bob", "ada", "*"):
        found = rec.search("Bubbles sourdough", user_id=other, k=50)
        assert not {h.message.id for h in found} & NOTES, other
        assert index.neighbors("n-1", filter={"user_id": other}) == []
    assert {h.message.id for h in rec.search("lighthouse", user_id="ada", k=5)} == {"a-0", "a-1"}
    assert index.count() == 6
    assert index.count({"user_id": DEFAULT_USER}) == 3


def _legacy_copy(tmp_path: Path) -> Path:
    where = tmp_path / "local"
    shutil.copytree(LEGACY, where)
    return where


def test_local_mode_folder_migrates(tmp_path: Path) -> None:
    where = _legacy_copy(tmp_path)
    with QdrantIndex(path=where, embedder=HashEmbedder(16)) as index:
        _check(index)
    with QdrantIndex(path=where, embedder=HashEmbedder(16)) as again:  # idempotent
        _check(again)


def _legacy_points(where: Path) -> list[Document]:
    """The old folder's points as the documents the old code indexed (user_id None)."""
    client = QdrantClient(path=where)
    try:
        records, _ = client.scroll(
            "tela_recall", limit=100, with_payload=True, with_vectors=[DENSE]
        )
    finally:
        client.close()
    docs = []
    for r in records:
        payload = r.payload or {}
        vec = r.vector[DENSE] if isinstance(r.vector, dict) else None
        docs.append(
            Document(
                Message.model_validate_json(payload["message"]),
                payload["text"],
                np.asarray(vec, dtype=np.float32),
            )
        )
    return docs


def test_edge_shard_migrates(tmp_path: Path) -> None:
    docs = _legacy_points(_legacy_copy(tmp_path))
    assert {d.message.id for d in docs if d.message.user_id is None} == NOTES  # the premise
    path = tmp_path / "edge"
    with QdrantEdgeIndex(path, embedder=HashEmbedder(16)) as old:
        old._upsert(docs)  # what QdrantEdgeIndex.upsert wrote at 0057bd3
    with QdrantEdgeIndex(path, embedder=HashEmbedder(16)) as index:
        _check(index)
    with QdrantEdgeIndex(path, embedder=HashEmbedder(16)) as again:
        _check(again)
