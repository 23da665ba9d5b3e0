"""The core store conformance suite on three real servers: Redis 8 + modules, plain Redis 8,
and a 3-node Redis Cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis_servers import RedisClusterServers, RedisServer

from tela_memory.testing import StoreConformance
from tela_memory_redis import RedisStore

pytestmark = pytest.mark.integration


def _empty_store(url: str) -> Iterator[RedisStore]:
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    store = RedisStore(url, prefix=prefix)
    yield store
    client = store.client
    for node_client in _node_clients(client):
        keys = list(node_client.scan_iter(match=f"{prefix}:*", count=1000))  # test cleanup only
        for key in keys:
            client.delete(key)
    store.close()


def _node_clients(client: object) -> list[object]:
    if hasattr(client, "get_primaries"):
        return [client.get_redis_connection(n) for n in client.get_primaries()]  # type: ignore[attr-defined]
    return [client]


class TestRedisStackStore(StoreConformance):
    @pytest.fixture
    def store(self, redis_stack: RedisServer) -> Iterator[RedisStore]:
        yield from _empty_store(redis_stack.url)


class TestPlainRedisStore(StoreConformance):
    @pytest.fixture
    def store(self, redis_plain: RedisServer) -> Iterator[RedisStore]:
        yield from _empty_store(redis_plain.url)


class TestClusterStore(StoreConformance):
    @pytest.fixture
    def store(self, redis_cluster: RedisClusterServers) -> Iterator[RedisStore]:
        yield from _empty_store(redis_cluster.url)
