"""``ChromaIndex`` passes the index conformance suite in every way it can be opened."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest
from chroma_helpers import unique_name

from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance
from tela_memory_chroma import ChromaIndex
from tela_memory_chroma.client import settings


class TestChromaEphemeral(IndexConformance):
    """``EphemeralClient``: the engine in process, in memory."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder) -> Iterator[ChromaIndex]:
        with ChromaIndex(ephemeral=True, name=unique_name(), embedder=embedder) as idx:
            yield idx
            idx.drop()


class TestChromaPersistent(IndexConformance):
    """``PersistentClient`` in a temporary folder."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, tmp_path: Path) -> Iterator[ChromaIndex]:
        with ChromaIndex(tmp_path / "chroma", embedder=embedder) as idx:
            yield idx


class TestChromaInjected(IndexConformance):
    """An injected ``PersistentClient`` (the caller owns it)."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, tmp_path: Path) -> Iterator[ChromaIndex]:
        client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=settings())
        with ChromaIndex(client=client, name=unique_name(), embedder=embedder) as idx:
            yield idx


class _LexicalOnly(ChromaIndex):
    supports_dense = False


class TestChromaLexicalOnly(IndexConformance):
    """No vectors: the lexical side alone (Chroma full text + BM25)."""

    dense = False

    @pytest.fixture
    def index(self) -> Iterator[ChromaIndex]:
        with _LexicalOnly(ephemeral=True, name=unique_name()) as idx:
            yield idx
            idx.drop()


@pytest.mark.integration
class TestChromaServer(IndexConformance):
    """``HttpClient`` against ``chroma run`` on a loopback port."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, chroma_server: str) -> Iterator[ChromaIndex]:
        with ChromaIndex(url=chroma_server, name=unique_name(), embedder=embedder) as idx:
            yield idx
            idx.drop()
