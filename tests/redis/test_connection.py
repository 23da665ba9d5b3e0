"""Client construction from URLs: no I/O, the right client class, passwords never shown."""

from __future__ import annotations

import pytest
import redis.asyncio
import redis.asyncio.cluster

import redis
from tela_memory.errors import BackendUnavailable, TelaMemoryError
from tela_memory.messages import Message
from tela_memory_redis import RedisStore
from tela_memory_redis.connection import async_client, redact, sync_client


def test_standalone_tls_and_unix_urls_build_without_connecting() -> None:
    plain = sync_client("redis://user:secret@10.255.255.1:6390/3")
    assert plain.connection_pool.connection_kwargs["db"] == 3
    tls = sync_client("rediss://10.255.255.1:6390/0")
    assert tls.connection_pool.connection_class is redis.SSLConnection
    sock = sync_client("unix:///tmp/nowhere.sock?db=2")
    assert sock.connection_pool.connection_kwargs["path"] == "/tmp/nowhere.sock"
    assert isinstance(async_client("rediss://10.255.255.1:6390/0"), redis.asyncio.Redis)


def test_cluster_and_sentinel_urls() -> None:
    store = RedisStore("redis+cluster://10.255.255.1:7000,10.255.255.2:7001", prefix="x")
    assert store._ops.cluster  # known from the URL: no I/O needed to decide the key layout
    with pytest.raises(TelaMemoryError, match="must name the service"):
        sync_client("redis+sentinel://10.255.255.1:26379")
    with pytest.raises(TelaMemoryError, match="not a Redis URL"):
        sync_client("http://example.com")
    aclient = async_client("redis+cluster://10.255.255.1:7000")  # no I/O either
    assert isinstance(aclient, redis.asyncio.cluster.RedisCluster)


def test_passwords_are_redacted() -> None:
    assert redact("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert "s3cret" not in RedisStore("redis://:s3cret@host:6379/0").address


def test_store_needs_a_url_or_a_client() -> None:
    with pytest.raises(TelaMemoryError, match="url or a client"):
        RedisStore()


def test_unreachable_cluster_is_backend_unavailable() -> None:
    store = RedisStore("redis+cluster://127.0.0.1:1", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        store.append("t", Message.user("hi"), user_id="u")
    store.close()


async def test_unreachable_cluster_is_backend_unavailable_async() -> None:
    store = RedisStore("redis+cluster://127.0.0.1:1", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        await store.aread("t", user_id="u")
    await store.aclose()
