"""Where a store's connections come from: a URL (pools built on first use), an injected
connection or an injected pool, sync and async.

Nothing here connects when built. The first use opens one connection directly, so that an
unreachable server or a refused login is reported with PostgreSQL's own reason (a pool would
only time out), then opens the pool.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg_pool
from psycopg.conninfo import conninfo_to_dict

from tela_memory.errors import BackendUnavailable, InvalidArgumentError, TelaMemoryError

SCHEMES = ("postgresql", "postgres")


def redact(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def check_url(url: object) -> str:
    """``url`` if it is a ``postgresql://`` / ``postgres://`` URL, else a clear error."""
    if not isinstance(url, str) or urlsplit(url).scheme.lower() not in SCHEMES:
        shown = redact(url) if isinstance(url, str) else type(url).__name__
        raise InvalidArgumentError(
            f"not a PostgreSQL URL: {shown!r} (use postgresql://user:password@host:5432/db)"
        )
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise InvalidArgumentError(f"invalid PostgreSQL URL {redact(url)!r}: {exc}") from exc
    return url


def describe(target: object) -> str:
    """A human-readable address of an injected connection or pool (no password)."""
    try:
        if isinstance(target, psycopg.Connection | psycopg.AsyncConnection):
            info = target.info
            return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
        if isinstance(target, psycopg_pool.ConnectionPool | psycopg_pool.AsyncConnectionPool):
            conninfo = target.conninfo
            return redact(conninfo) if isinstance(conninfo, str) else f"pool {target.name}"
    except Exception:  # describing must never fail
        pass
    return repr(target)


def _unreachable(address: str, exc: BaseException) -> BackendUnavailable:
    reason = " ".join(str(exc).replace("connection failed: ", "").split())
    return BackendUnavailable(
        f"cannot connect to PostgreSQL at {address}: {reason} (check that the server runs and"
        " that the host, port, user, password and database of the URL are right)"
    )


def _timeout(address: str, exc: BaseException) -> BackendUnavailable:
    return BackendUnavailable(
        f"no connection to PostgreSQL at {address} within the pool's timeout ({exc}); is the"
        " server up, or is the pool too small for this many concurrent operations?"
    )


class SyncSource:
    """Sync connections: from an injected connection (used under a lock, never closed), an
    injected pool (not closed) or a pool built from ``url`` on first use."""

    def __init__(
        self,
        *,
        url: str | None,
        conn: psycopg.Connection[Any] | None,
        pool: psycopg_pool.ConnectionPool[Any] | None,
        address: str,
        pool_options: dict[str, Any],
        connect_options: dict[str, Any],
    ) -> None:
        self._url = url
        self._conn = conn
        self._pool = pool
        self._own_pool = pool is None
        self.address = address
        self._pool_options = pool_options
        self._connect = connect_options
        self._lock = threading.RLock()

    @property
    def available(self) -> bool:
        """Whether this source can give sync connections at all."""
        return self._url is not None or self._conn is not None or self._pool is not None

    def probe(self) -> psycopg.Connection[Any]:
        """One direct connection (for the schema check), reporting why it failed."""
        assert self._url is not None
        try:
            return psycopg.connect(self._url, autocommit=True, **self._connect)
        except psycopg.Error as exc:
            raise _unreachable(self.address, exc) from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one operation."""
        if self._conn is not None:
            with self._lock:
                yield self._conn
            return
        pool = self._ready_pool()
        try:
            conn = pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise _timeout(self.address, exc) from exc
        try:
            yield conn
        finally:
            pool.putconn(conn)  # a broken connection is discarded, an open transaction ended

    def _ready_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    if self._url is None:
                        raise TelaMemoryError(
                            "this PostgresStore was given only async connections; use the a*"
                            " methods"
                        )
                    self._pool = psycopg_pool.ConnectionPool(
                        self._url,
                        open=False,
                        kwargs={"autocommit": True, **self._connect},
                        **self._pool_options,
                    )
                    self._pool.open()
        return self._pool

    def close(self) -> None:
        """Close a pool this source built."""
        with self._lock:
            if self._own_pool and self._pool is not None:
                self._pool.close()
                self._pool = None


class AsyncSource:
    """Async connections, from an injected ``AsyncConnection`` or ``AsyncConnectionPool``,
    or a pool built from ``url`` (one per event loop: an asyncio pool belongs to its loop)."""

    def __init__(
        self,
        *,
        url: str | None,
        conn: psycopg.AsyncConnection[Any] | None,
        pool: psycopg_pool.AsyncConnectionPool[Any] | None,
        address: str,
        pool_options: dict[str, Any],
        connect_options: dict[str, Any],
    ) -> None:
        self._url = url
        self._conn = conn
        self._pool = pool
        self._own: LoopPool | None = None
        self.address = address
        self._pool_options = pool_options
        self._connect = connect_options
        self._lock: asyncio.Lock | None = None

    @property
    def available(self) -> bool:
        """Whether this source can give async connections."""
        return self._url is not None or self._conn is not None or self._pool is not None

    async def probe(self) -> psycopg.AsyncConnection[Any]:
        """One direct connection (for the schema check), reporting why it failed."""
        assert self._url is not None
        try:
            return await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, **self._connect
            )
        except psycopg.Error as exc:
            raise _unreachable(self.address, exc) from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for one operation."""
        if self._conn is not None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                yield self._conn
            return
        pool = await self._ready_pool()
        try:
            conn = await pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise _timeout(self.address, exc) from exc
        try:
            yield conn
        finally:
            await pool.putconn(conn)

    async def _ready_pool(self) -> psycopg_pool.AsyncConnectionPool[Any] | LoopPool:
        if self._pool is not None:
            return self._pool
        if self._url is None:
            raise TelaMemoryError("this PostgresStore has no async connection source")
        loop = asyncio.get_running_loop()
        if self._own is None or self._own.loop is not loop:
            # connections belong to the loop that opened them: a new loop gets its own
            self._own = LoopPool(self._url, loop, self._pool_options["max_size"], self._connect)
        return self._own

    async def close(self) -> None:
        """Close the connections this source opened (on the loop that opened them)."""
        own, self._own = self._own, None
        if own is not None and own.loop is asyncio.get_running_loop():
            await own.close()


class LoopPool:
    """The async connections a URL store opens on one event loop: kept idle between
    operations, at most ``size`` at once, no background tasks (so a loop may end, e.g. at the
    end of ``asyncio.run``, while the store is still open)."""

    def __init__(
        self,
        url: str,
        loop: asyncio.AbstractEventLoop,
        size: int,
        connect_options: dict[str, Any],
    ) -> None:
        self.loop = loop
        self._url = url
        self._connect = connect_options
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)

    async def getconn(self) -> psycopg.AsyncConnection[Any]:
        """An idle connection, or a new one (waiting while ``size`` are in use)."""
        await self._slots.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
            return await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, **self._connect
            )
        except BaseException:
            self._slots.release()
            raise

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Give a connection back; a broken one, or one left inside a transaction, goes."""
        try:
            if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                await conn.close()
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Close the idle connections."""
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


__all__ = ["SCHEMES", "AsyncSource", "SyncSource", "check_url", "describe", "redact"]
