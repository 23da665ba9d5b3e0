"""Redis clients from URLs (standalone, TLS, unix socket, Sentinel, Cluster), sync and async.

Nothing here connects: redis-py clients open their sockets on the first command.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

import redis
from tela_memory.errors import BackendUnavailable, TelaMemoryError

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")

_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.RedisClusterException,
)

SyncClient = redis.Redis | redis.cluster.RedisCluster
AsyncClient = redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster


def redact(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def _hosts(netloc: str, default_port: int) -> list[tuple[str, int]]:
    hosts = netloc.rsplit("@", 1)[-1]
    out: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host:
            host, port = port, ""
        if not host:
            raise TelaMemoryError(f"Redis URL names no host in {netloc!r}")
        out.append((host.strip("[]"), int(port) if port else default_port))
    return out


def _auth(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    auth: dict[str, Any] = {}
    if parts.username:
        auth["username"] = unquote(parts.username)
    if parts.password:
        auth["password"] = unquote(parts.password)
    return auth


def _sentinel_target(url: str) -> tuple[list[tuple[str, int]], str, int, dict[str, Any]]:
    parts = urlsplit(url)
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise TelaMemoryError(
            f"Sentinel URL {redact(url)!r} must name the service: "
            "redis+sentinel://host:26379[,host2:26379]/<service>[/<db>]"
        )
    service = unquote(path[0])
    db = int(path[1]) if len(path) > 1 else 0
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return _hosts(parts.netloc, 26379), service, db, query


def is_cluster(client: object) -> bool:
    """Whether a client talks to a Redis Cluster (keys of one command must share a slot)."""
    return isinstance(client, redis.cluster.RedisCluster | redis.asyncio.cluster.RedisCluster)


def sync_client(url: str, **options: Any) -> SyncClient:
    """A redis-py client for ``url`` (no I/O until first use)."""
    scheme = urlsplit(url).scheme.lower()
    options = {"decode_responses": False, **options}
    try:
        if scheme == "redis+cluster":
            nodes = [
                redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                for h, p in _hosts(urlsplit(url).netloc, 6379)
            ]
            return redis.cluster.RedisCluster(startup_nodes=nodes, **_auth(url), **options)
        if scheme == "redis+sentinel":
            hosts, service, db, _ = _sentinel_target(url)
            sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
                hosts, sentinel_kwargs=_auth(url) or None
            )
            client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
                service, db=db, **_auth(url), **options
            )
            return client
        if scheme in ("redis", "rediss", "unix"):
            return redis.Redis.from_url(url, **options)
    except _UNREACHABLE as exc:  # redis-py's sync cluster client connects when built
        raise BackendUnavailable(f"Redis at {redact(url)} is unreachable: {exc}") from exc
    except (ValueError, redis.RedisError) as exc:
        raise TelaMemoryError(f"invalid Redis URL {redact(url)!r}: {exc}") from exc
    raise TelaMemoryError(f"not a Redis URL: {redact(url)!r} (schemes: {', '.join(SCHEMES)})")


def async_client(url: str, **options: Any) -> AsyncClient:
    """A ``redis.asyncio`` client for ``url`` (no I/O until first use)."""
    scheme = urlsplit(url).scheme.lower()
    options = {"decode_responses": False, **options}
    try:
        if scheme == "redis+cluster":
            nodes = [
                redis.asyncio.cluster.ClusterNode(h, p)
                for h, p in _hosts(urlsplit(url).netloc, 6379)
            ]
            return redis.asyncio.cluster.RedisCluster(startup_nodes=nodes, **_auth(url), **options)
        if scheme == "redis+sentinel":
            hosts, service, db, _ = _sentinel_target(url)
            sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
                hosts, sentinel_kwargs=_auth(url) or None
            )
            client: redis.asyncio.Redis = sentinel.master_for(
                service, db=db, **_auth(url), **options
            )
            return client
        if scheme in ("redis", "rediss", "unix"):
            return redis.asyncio.Redis.from_url(url, **options)
    except _UNREACHABLE as exc:  # redis-py's sync cluster client connects when built
        raise BackendUnavailable(f"Redis at {redact(url)} is unreachable: {exc}") from exc
    except (ValueError, redis.RedisError) as exc:
        raise TelaMemoryError(f"invalid Redis URL {redact(url)!r}: {exc}") from exc
    raise TelaMemoryError(f"not a Redis URL: {redact(url)!r} (schemes: {', '.join(SCHEMES)})")


def describe(client: object) -> str:
    """A human-readable address of an injected client, for error messages."""
    try:
        if is_cluster(client):
            nodes = client.get_nodes()  # type: ignore[attr-defined]
            return "cluster " + ",".join(f"{n.host}:{n.port}" for n in nodes[:3])
        kwargs = client.connection_pool.connection_kwargs  # type: ignore[attr-defined]
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
    except Exception:  # describing must never fail
        return repr(client)
