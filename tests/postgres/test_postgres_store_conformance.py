"""The core store and change-feed conformance suites on the system PostgreSQL server, through
a URL (the store's own pools), an injected connection and an injected pool."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import psycopg_pool
import pytest

from tela_memory.testing import ChangeFeedConformance, StoreConformance
from tela_memory_postgres import PostgresStore

pytestmark = pytest.mark.integration


class TestPostgresStore(StoreConformance, ChangeFeedConformance):
    @pytest.fixture
    def store(self, pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
        with PostgresStore(pg_url, schema=pg_schema) as s:
            yield s


class TestPostgresStoreOnInjectedPool(StoreConformance):
    @pytest.fixture
    def store(self, pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
        pool = psycopg_pool.ConnectionPool(pg_url, kwargs={"autocommit": True}, max_size=8)
        with pool, PostgresStore(pool=pool, schema=pg_schema) as s:
            yield s


class TestPostgresStoreOnInjectedConnection(StoreConformance):
    """One connection without autocommit, as an application may hand it over: every
    operation runs in a transaction of its own on it."""

    @pytest.fixture
    def store(self, pg_url: str, pg_schema: str) -> Iterator[PostgresStore]:
        with psycopg.connect(pg_url) as conn, PostgresStore(connection=conn, schema=pg_schema) as s:
            yield s
