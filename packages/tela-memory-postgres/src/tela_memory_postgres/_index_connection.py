"""Where ``PostgresIndex`` gets its connections: a URL (a pool of its own, opened on first use)
or an injected ``Connection``, ``AsyncConnection``, ``ConnectionPool`` or
``AsyncConnectionPool``. Nothing here connects in a constructor.

Private to the index for now; it should merge with the store's connection helper.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from tela_memory.errors import BackendUnavailable, TelaMemoryError, UnsupportedOperation

Injected = (
    psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | ConnectionPool | AsyncConnectionPool
)

_MAX_IDLE_ASYNC = 4


def describe(url: str) -> str:
    """A connection string without its password, for messages."""
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise TelaMemoryError(f"not a PostgreSQL connection string or URL: {exc}") from None
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    user = str(params.get("user") or "")
    db = str(params.get("dbname") or user or "")
    who = f"{user}@" if user else ""
    return f"postgresql://{who}{host}:{port}/{db}"


def _first_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def _reason(url: str, timeout: float) -> str | None:
    """Why a connection to ``url`` fails, or ``None`` when it does not."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))):
            return None
    except psycopg.Error as exc:
        return _first_line(exc)


class Connections:
    """The index's connections, sync and async.

    Args:
        url: a ``postgresql://`` URL or a libpq connection string.
        injected: a connection or pool the caller owns (left open by :meth:`close`).
        timeout: seconds to wait for a connection.
        max_size: largest size of the pool the index opens for a URL.
    """

    def __init__(
        self,
        url: str | None,
        injected: Injected | None,
        *,
        timeout: float,
        max_size: int,
    ) -> None:
        if (url is None) == (injected is None):
            raise TelaMemoryError("PostgresIndex needs exactly one of url= or connection=")
        if injected is not None and not isinstance(
            injected,
            psycopg.Connection | psycopg.AsyncConnection | ConnectionPool | AsyncConnectionPool,
        ):
            raise TelaMemoryError(
                "connection must be a psycopg Connection, AsyncConnection, ConnectionPool or "
                f"AsyncConnectionPool, not {type(injected).__name__}"
            )
        self.url = url
        self.injected = injected
        self.timeout = timeout
        self.max_size = max_size
        self.address = describe(url) if url is not None else _describe_injected(injected)
        self._pool: ConnectionPool | None = None
        self._idle: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, list[psycopg.AsyncConnection[Any]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # the pool's creation, an injected connection's use
        self._alock: asyncio.Lock | None = None
        self._closed = False

    @property
    def has_sync(self) -> bool:
        """Whether sync calls can get a connection."""
        return self.url is not None or isinstance(
            self.injected, psycopg.Connection | ConnectionPool
        )

    @property
    def has_async(self) -> bool:
        """Whether async calls can get an async connection."""
        return self.url is not None or isinstance(
            self.injected, psycopg.AsyncConnection | AsyncConnectionPool
        )

    def _check_open(self) -> None:
        if self._closed:
            raise BackendUnavailable(f"PostgresIndex on {self.address} is closed")

    # -- sync ---------------------------------------------------------------------------------

    @contextmanager
    def sync(self) -> Iterator[psycopg.Connection[Any]]:
        """A sync connection for one operation."""
        self._check_open()
        inj = self.injected
        if isinstance(inj, psycopg.Connection):
            with self._lock:
                yield inj
            return
        if isinstance(inj, psycopg.AsyncConnection | AsyncConnectionPool):
            raise UnsupportedOperation(
                f"this PostgresIndex runs on an {type(inj).__name__}: use the async methods "
                "(asearch, aupsert, ...) or pass a sync connection or pool"
            )
        pool = inj if isinstance(inj, ConnectionPool) else self._own_pool()
        try:
            with pool.connection(timeout=self.timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise self._unreachable(exc) from exc

    def _own_pool(self) -> ConnectionPool:
        with self._lock:
            self._check_open()
            if self._pool is None:
                assert self.url is not None
                why = _reason(self.url, self.timeout)  # fail fast, with the server's reason
                if why is not None:
                    raise self._unreachable_because(why)
                pool = ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=self.max_size,
                    kwargs={"autocommit": True, "connect_timeout": max(1, int(self.timeout))},
                    open=False,
                    name="tela-postgres-index",
                )
                try:
                    pool.open(wait=True, timeout=self.timeout)
                except PoolTimeout as exc:
                    pool.close(timeout=0)
                    raise self._unreachable(exc) from exc
                self._pool = pool
            return self._pool

    def _unreachable(self, exc: Exception) -> BackendUnavailable:
        why = _reason(self.url, self.timeout) if self.url is not None else None
        return self._unreachable_because(why or _first_line(exc))

    def _unreachable_because(self, why: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"PostgreSQL at {self.address} is unreachable ({why}); check that the server runs "
            "and that the URL, user and password are right"
        )

    # -- async --------------------------------------------------------------------------------

    @asynccontextmanager
    async def aconn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """An async connection for one operation (on the running event loop)."""
        self._check_open()
        inj = self.injected
        if isinstance(inj, psycopg.AsyncConnection):
            if self._alock is None:
                self._alock = asyncio.Lock()
            async with self._alock:
                yield inj
            return
        if isinstance(inj, AsyncConnectionPool):
            try:
                async with inj.connection(timeout=self.timeout) as conn:
                    yield conn
            except PoolTimeout as exc:
                raise self._unreachable(exc) from exc
            return
        if self.url is None:
            raise UnsupportedOperation("this PostgresIndex has no async connection")
        conn = await self._aacquire()
        try:
            yield conn
        finally:
            self._arelease(conn)

    async def _aacquire(self) -> psycopg.AsyncConnection[Any]:
        loop = asyncio.get_running_loop()
        idle = self._idle.setdefault(loop, [])
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        assert self.url is not None
        try:
            return await psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self.timeout))
            )
        except psycopg.OperationalError as exc:
            raise self._unreachable_because(_first_line(exc)) from exc

    def _arelease(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        healthy = (
            not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        if healthy and not self._closed and len(idle) < _MAX_IDLE_ASYNC:
            idle.append(conn)
        else:
            conn.pgconn.finish()

    # -- closing ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close what this object opened (injected connections and pools stay open)."""
        with self._lock:
            self._closed = True
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            for conns in list(self._idle.values()):
                for conn in conns:
                    conn.pgconn.finish()  # libpq's close: needs no event loop
                conns.clear()


def _describe_injected(injected: Injected | None) -> str:
    if isinstance(injected, psycopg.Connection | psycopg.AsyncConnection):
        info = injected.info
        return f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}"
    if isinstance(injected, ConnectionPool | AsyncConnectionPool):
        given = injected.conninfo
        return describe(given) if isinstance(given, str) and given else f"pool {injected.name}"
    return "?"


__all__ = ["Connections", "Injected", "describe"]
