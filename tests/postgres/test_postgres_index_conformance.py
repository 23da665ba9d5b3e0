"""``PostgresIndex`` passes the index conformance suite on a real PostgreSQL with pgvector, in
every mode it offers: halfvec and vector columns, row-level security, an injected pool, async
connections, full-text only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pgvector_server
import pytest
from psycopg_pool import ConnectionPool

from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance
from tela_memory_postgres.index import PostgresIndex

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pgvector_server_url() -> str:
    """The superuser URL of this process's pgvector server (see pgvector_server.py)."""
    return pgvector_server.server_url()


def _table() -> str:
    return f"recall_{uuid.uuid4().hex[:12]}"


class TestPostgresHalfvec(IndexConformance):
    """The default: ``halfvec`` under HNSW, full-text with the parent's words, contextual
    vectors."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, pgvector_server_url: str) -> Iterator[PostgresIndex]:
        with PostgresIndex(pgvector_server_url, embedder=embedder, table=_table()) as idx:
            yield idx
            idx.drop()


class TestPostgresVector(IndexConformance):
    """``vector`` (4-byte floats), each turn embedded alone, own words only."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, pgvector_server_url: str) -> Iterator[PostgresIndex]:
        with PostgresIndex(
            pgvector_server_url,
            embedder=embedder,
            table=_table(),
            vector_type="vector",
            context_weight=0.0,
            parent_weight=0.0,
        ) as idx:
            yield idx
            idx.drop()


class TestPostgresIndexScans(IndexConformance):
    """``scan="index"``: filtered searches walk the HNSW (iterative scan) and GIN indexes too."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, pgvector_server_url: str) -> Iterator[PostgresIndex]:
        with PostgresIndex(
            pgvector_server_url, embedder=embedder, table=_table(), scan="index"
        ) as idx:
            yield idx
            idx.drop()


class TestPostgresInjectedPool(IndexConformance):
    """An injected ``ConnectionPool`` (async twins run in a worker thread)."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, pgvector_server_url: str) -> Iterator[PostgresIndex]:
        with (
            ConnectionPool(pgvector_server_url, min_size=1, max_size=2) as pool,
            PostgresIndex(connection=pool, embedder=embedder, table=_table()) as idx,
        ):
            yield idx
            idx.drop()


class TestPostgresRowLevelSecurity(IndexConformance):
    """``rls=True``: the suite through a policy that admits only the transaction's user."""

    @pytest.fixture
    def index(self, embedder: HashEmbedder, pgvector_server_url: str) -> Iterator[PostgresIndex]:
        with PostgresIndex(pgvector_server_url, embedder=embedder, table=_table(), rls=True) as idx:
            yield idx
            idx.drop()


class _LexicalOnly(PostgresIndex):
    supports_dense = False


class TestPostgresLexicalOnly(IndexConformance):
    """No embedder: full-text search only (needs no pgvector)."""

    dense = False

    @pytest.fixture
    def index(self, pgvector_server_url: str) -> Iterator[PostgresIndex]:
        with _LexicalOnly(pgvector_server_url, table=_table()) as idx:
            yield idx
            idx.drop()
