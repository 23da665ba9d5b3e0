"""``QdrantIndex`` passes the index conformance suite in every way it can be opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex


class TestQdrantLocalMemory(IndexConformance):
    """qdrant-client local mode, in memory."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder) -> Iterator[QdrantIndex]:
        with QdrantIndex(location=":memory:", embedder=embedder) as idx:
            yield idx


class TestQdrantLocalPath(IndexConformance):
    """qdrant-client local mode, persisted in a folder."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, tmp_path: Path) -> Iterator[QdrantIndex]:
        with QdrantIndex(path=tmp_path / "qdrant", embedder=embedder) as idx:
            yield idx


class TestQdrantInjectedClient(IndexConformance):
    """An injected local-mode ``QdrantClient`` (a real server: test_qdrant_live_server.py)."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, qdrant_target: dict[str, Any]) -> Iterator[QdrantIndex]:
        with QdrantIndex(embedder=embedder, **qdrant_target) as idx:
            yield idx


class TestQdrantEngineFusion(IndexConformance):
    """Hybrid fused in the engine (``prefetch`` + ``FusionQuery(RRF)``), one round trip."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, qdrant_target: dict[str, Any]) -> Iterator[QdrantIndex]:
        with QdrantIndex(embedder=embedder, fusion="qdrant", **qdrant_target) as idx:
            yield idx


class _LexicalOnly(QdrantIndex):
    supports_dense = False


class TestQdrantLexicalOnly(IndexConformance):
    """No embedder: sparse vectors only; hybrid falls back to the lexical side."""

    dense = False

    @pytest.fixture
    def index(self, qdrant_target: dict[str, Any]) -> Iterator[QdrantIndex]:
        with _LexicalOnly(**qdrant_target) as idx:
            yield idx


class TestQdrantEdge(IndexConformance):
    """Qdrant Edge: the Qdrant engine embedded (``qdrant-edge-py``), core fusion."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, tmp_path: Path) -> Iterator[QdrantEdgeIndex]:
        with QdrantEdgeIndex(tmp_path / "edge", embedder=embedder) as idx:
            yield idx


class TestQdrantEdgeEngineFusion(IndexConformance):
    """Qdrant Edge with hybrid fused in the engine."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, tmp_path: Path) -> Iterator[QdrantEdgeIndex]:
        with QdrantEdgeIndex(tmp_path / "edge", embedder=embedder, fusion="qdrant") as idx:
            yield idx


class _EdgeLexicalOnly(QdrantEdgeIndex):
    supports_dense = False


class TestQdrantEdgeLexicalOnly(IndexConformance):
    """Qdrant Edge without an embedder."""

    dense = False

    @pytest.fixture
    def index(self, tmp_path: Path) -> Iterator[QdrantEdgeIndex]:
        with _EdgeLexicalOnly(tmp_path / "edge") as idx:
            yield idx
