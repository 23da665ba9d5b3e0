"""The system PostgreSQL server (127.0.0.1:5432, trust auth) for the store and record suites.

The session creates a database of its own (``tela_test_<random>``) and drops it at the end;
each test gets a fresh PostgreSQL schema in it, dropped after the test. A server that is not
running fails the tests that use it (never a skip): start it with
``pg_ctlcluster --skip-systemctl-redirect 15 main start``. ``TELA_PG_URL`` points the suites
at another server (a URL of a database the role may create databases from).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

ADMIN_URL = os.environ.get("TELA_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _with_database(url: str, dbname: str) -> str:
    return urlsplit(url)._replace(path="/" + dbname).geturl()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A URL of a database created for this test session (dropped at its end)."""
    name = f"tela_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {ADMIN_URL} is not reachable ({exc}); start it with"
            " `pg_ctlcluster --skip-systemctl-redirect 15 main start`",
            pytrace=False,
        )
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(ADMIN_URL, name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name for one test (the store creates it; dropped after the test)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
