"""Session-scoped real Redis servers: Redis 8 + search/JSON, Redis 8 plain (+ a Sentinel),
a 3-node cluster.

A server that cannot start fails the tests that use it (never a skip). All are stopped at the
end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_servers import RedisClusterServers, RedisSentinel, RedisServer, stack_modules


@pytest.fixture(scope="session")
def redis_stack() -> Iterator[RedisServer]:
    """Redis 8.2 with the search (RediSearch) and JSON modules."""
    server = RedisServer(modules=stack_modules()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_plain() -> Iterator[RedisServer]:
    """The same Redis 8.2 binary without modules (also on a unix socket)."""
    server = RedisServer(unixsocket=True).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A 3-master Redis Cluster on loopback ports."""
    cluster = RedisClusterServers().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_sentinel(redis_plain: RedisServer) -> Iterator[RedisSentinel]:
    """A Sentinel serving the plain server as ``mymaster``."""
    sentinel = RedisSentinel(redis_plain).start()
    yield sentinel
    sentinel.stop()
