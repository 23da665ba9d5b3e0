"""Fixtures for the LangChain integration tests: real stores, unique thread ids."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    """An empty real store: a SQLite file or the in-memory store."""
    backend: MessageStore = (
        SQLiteStore(tmp_path / "tela.db") if request.param == "sqlite" else InMemoryStore()
    )
    with backend:
        yield backend


@pytest.fixture
def thread() -> str:
    """A unique thread id."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis 8 server on a free loopback port (fails, never skips, if it cannot start)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "redis"))
    from redis_servers import RedisServer  # the Redis suite's real-server helper

    server = RedisServer().start()
    yield server.url
    server.stop()
