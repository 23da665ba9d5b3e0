"""``PostgresStore``: the Tela Memory message store on PostgreSQL (psycopg 3, psycopg_pool).

Tables ``users``, ``threads``, ``branches``, ``messages``, ``changes`` (the change feed),
``cursors`` and ``meta`` live in one PostgreSQL schema (``tela`` by default). Messages form a
tree by ``parent_id``; a branch is a row pointing at its head, so ``fork`` inserts one row and
shares every ancestor. Reading walks the ancestry from the head with a recursive query that
stops after ``last`` rows: the newest 50 of 100,000 messages cost what the newest 50 of 1,000
do. Every write is one transaction that locks the thread's row first, so writers in several
processes never lose or interleave messages.

Sync and async share one implementation: each operation is a sans-I/O generator
(:mod:`tela_memory_postgres._ops`) driven by a sync or an async runner.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Self, TypeVar

import psycopg
import psycopg_pool
from pydantic import JsonValue

from tela_memory.errors import InvalidArgumentError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.stores.base import (
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    UserData,
)
from tela_memory.stores.changes import ChangeBatch
from tela_memory_postgres import connection as sources
from tela_memory_postgres._driver import Exec, Op, RetryableConflict, run_async, run_sync
from tela_memory_postgres._ops import Ops
from tela_memory_postgres._schema import migrate
from tela_memory_postgres._sql import compose

T = TypeVar("T")

_RETRIES = 5
_TABLES: tuple[str, ...] = ("messages", "branches", "threads", "users", "changes")
_DEAD_TUPLES = (
    "PostgreSQL keeps deleted rows as dead tuples in the table files until VACUUM (autovacuum"
    " does it eventually; erase_user(..., vacuum=True) does it at once), and their images in"
    " the WAL, replicas and backups until those are recycled"
)
_AFTER_VACUUM = (
    "VACUUM frees the dead tuples but does not overwrite the freed bytes (VACUUM FULL rewrites"
    " the tables); the WAL, replicas and backups keep earlier images until recycled"
)


def check_schema(schema: object) -> str:
    """A PostgreSQL schema name: 1 to 63 printable characters (quoted as an identifier)."""
    if (
        not isinstance(schema, str)
        or not 0 < len(schema.encode()) <= 63
        or not schema.isprintable()
    ):
        raise InvalidArgumentError(
            f"schema must be a printable name of 1 to 63 bytes, got {schema!r}"
        )
    return schema


class PostgresStore(MessageStore):
    """Conversation history in PostgreSQL.

    Args:
        url: ``postgresql://user:password@host:5432/db`` (or ``postgres://``); needed unless
            a connection or pool is given.
        connection: an open ``psycopg.Connection`` to use (under a lock; not closed by us).
        aconnection: an open ``psycopg.AsyncConnection`` for the async twins (not closed).
        pool: a ``psycopg_pool.ConnectionPool`` to take connections from (not closed).
        apool: a ``psycopg_pool.AsyncConnectionPool`` for the async twins (not closed).
        schema: the PostgreSQL schema holding the store's tables (created on first use).
        pool_size: the largest pool built from ``url`` (one per event loop for async).
        timeout: seconds to wait for a free pooled connection before ``BackendUnavailable``.
        connect_timeout: seconds to wait for the server when connecting.
        vacuum_after_erase: run ``VACUUM`` after every :meth:`erase_user` by default.

    Nothing connects until the first operation, which also creates or migrates the tables
    (one transaction, under an advisory lock) and refuses a schema written by a newer version.
    Given only sync connections, the async twins run in a worker thread; given only async
    ones, the sync methods raise ``TelaMemoryError``.
    """

    schemes = sources.SCHEMES

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: psycopg.Connection[Any] | None = None,
        aconnection: psycopg.AsyncConnection[Any] | None = None,
        pool: psycopg_pool.ConnectionPool[Any] | None = None,
        apool: psycopg_pool.AsyncConnectionPool[Any] | None = None,
        schema: str = "tela",
        pool_size: int = 10,
        timeout: float = 10.0,
        connect_timeout: int = 10,
        vacuum_after_erase: bool = False,
    ) -> None:
        if all(t is None for t in (url, connection, aconnection, pool, apool)):
            raise TelaMemoryError("PostgresStore needs a url, a connection or a pool")
        if url is not None:
            url = sources.check_url(url)
        if connection is not None and pool is not None:
            raise InvalidArgumentError("pass a connection or a pool, not both")
        if aconnection is not None and apool is not None:
            raise InvalidArgumentError("pass an aconnection or an apool, not both")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise InvalidArgumentError(f"pool_size must be an integer >= 1, got {pool_size!r}")
        self._ops = Ops(check_schema(schema))
        target = next(t for t in (url, connection, pool, aconnection, apool) if t is not None)
        self.address = (
            sources.redact(target) if isinstance(target, str) else sources.describe(target)
        )
        options = {"min_size": 1, "max_size": pool_size, "timeout": timeout}
        connect = {"connect_timeout": connect_timeout}
        self._sync = sources.SyncSource(
            url=url, conn=connection, pool=pool, address=self.address,
            pool_options=options, connect_options=connect,
        )  # fmt: skip
        self._async = sources.AsyncSource(
            url=url, conn=aconnection, pool=apool, address=self.address,
            pool_options=options, connect_options=connect,
        )  # fmt: skip
        self._url = url
        self._vacuum = vacuum_after_erase
        self._lock = threading.Lock()
        self._ready = False
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from a ``postgresql://`` URL (no I/O until first use)."""
        return cls(url, **options)

    def __repr__(self) -> str:
        return f"PostgresStore({self.address!r}, schema={self.schema!r})"

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding the store's tables."""
        return self._ops.schema

    # -- plumbing ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise TelaMemoryError("this PostgresStore is closed")

    def _ensure(self) -> None:
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            if self._url is not None:
                conn = self._sync.probe()
                try:
                    self._prepare(conn)
                finally:
                    conn.close()
            else:
                with self._sync.connection() as conn:
                    self._prepare(conn)
            self._ready = True

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        run_sync(conn, migrate(self.schema), write=True, address=self.address)
        run_sync(conn, self._ops.read_feed_id(), write=False, address=self.address)

    async def _aensure(self) -> None:
        if self._ready:
            return
        if self._url is not None:
            conn = await self._async.probe()
            try:
                await self._aprepare(conn)
            finally:
                await conn.close()
        else:
            async with self._async.connection() as conn:
                await self._aprepare(conn)
        self._ready = True

    async def _aprepare(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await run_async(conn, migrate(self.schema), write=True, address=self.address)
        await run_async(conn, self._ops.read_feed_id(), write=False, address=self.address)

    def _run(self, make: Callable[[], Op[T]], *, write: bool = False) -> T:
        self._check_open()
        if not self._sync.available:
            raise TelaMemoryError(
                "this PostgresStore was given only async connections; use the a* methods"
            )
        self._ensure()
        for attempt in range(_RETRIES):
            try:
                with self._sync.connection() as conn:
                    return run_sync(conn, make(), write=write, address=self.address)
            except RetryableConflict:
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arun(self, make: Callable[[], Op[T]], *, write: bool = False) -> T:
        self._check_open()
        if not self._async.available:
            return await asyncio.to_thread(self._run, make, write=write)
        await self._aensure()
        for attempt in range(_RETRIES):
            try:
                async with self._async.connection() as conn:
                    return await run_async(conn, make(), write=write, address=self.address)
            except RetryableConflict:
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.005 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def migrate(self) -> int:
        """Create or migrate the tables now rather than on first use; return the schema
        version found before (0: the tables were created)."""
        self._check_open()
        with self._sync.connection() as conn:
            found = run_sync(conn, migrate(self.schema), write=True, address=self.address)
            run_sync(conn, self._ops.read_feed_id(), write=False, address=self.address)
        self._ready = True
        return found

    def close(self) -> None:
        """Close the pool this store built (injected connections and pools stay open)."""
        self._closed = True
        self._sync.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self._closed = True
        await self._async.close()
        await asyncio.to_thread(self._sync.close)

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Append messages after the branch head of ``user_id``'s thread, all or nothing,
        in one transaction (the thread is created by its first append)."""
        return self._run(
            partial(self._ops.append, thread_id, messages, user_id, branch), write=True
        )

    async def aappend(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Async twin of :meth:`append`."""
        op = partial(self._ops.append, thread_id, messages, user_id, branch)
        return await self._arun(op, write=True)

    def update_message(self, message: Message, *, user_id: str) -> Message:
        """Replace the content, name and metadata of one of ``user_id``'s stored messages."""
        return self._run(partial(self._ops.update_message, message, user_id), write=True)

    async def aupdate_message(self, message: Message, *, user_id: str) -> Message:
        """Async twin of :meth:`update_message`."""
        return await self._arun(partial(self._ops.update_message, message, user_id), write=True)

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        thread_id: str,
        *,
        user_id: str,
        branch: str | None = None,
        last: int | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[Message]:
        """Messages of a branch of ``user_id``'s thread, oldest first (one query without
        ``before``)."""
        return self._run(partial(self._ops.read, thread_id, user_id, branch, last, since, before))

    async def aread(
        self,
        thread_id: str,
        *,
        user_id: str,
        branch: str | None = None,
        last: int | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[Message]:
        """Async twin of :meth:`read`."""
        return await self._arun(
            partial(self._ops.read, thread_id, user_id, branch, last, since, before)
        )

    def get(self, message_id: str, *, user_id: str) -> Message:
        """One of ``user_id``'s messages by id."""
        return self._run(partial(self._ops.get, message_id, user_id))

    async def aget(self, message_id: str, *, user_id: str) -> Message:
        """Async twin of :meth:`get`."""
        return await self._arun(partial(self._ops.get, message_id, user_id))

    # -- branches ---------------------------------------------------------------------------

    def fork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Create a branch at a message: one row, nothing copied."""
        return self._run(
            partial(self._ops.fork, thread_id, at_message_id, user_id, name), write=True
        )

    async def afork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Async twin of :meth:`fork`."""
        return await self._arun(
            partial(self._ops.fork, thread_id, at_message_id, user_id, name), write=True
        )

    def branches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """The branches of a thread, default first."""
        return self._run(partial(self._ops.branches, thread_id, user_id))

    async def abranches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """Async twin of :meth:`branches`."""
        return await self._arun(partial(self._ops.branches, thread_id, user_id))

    def set_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Make ``name`` the thread's default branch."""
        self._run(partial(self._ops.set_default_branch, thread_id, name, user_id), write=True)

    async def aset_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Async twin of :meth:`set_default_branch`."""
        op = partial(self._ops.set_default_branch, thread_id, name, user_id)
        await self._arun(op, write=True)

    def delete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Delete a branch and the messages only it reaches."""
        return self._run(partial(self._ops.delete_branch, thread_id, name, user_id), write=True)

    async def adelete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Async twin of :meth:`delete_branch`."""
        op = partial(self._ops.delete_branch, thread_id, name, user_id)
        return await self._arun(op, write=True)

    # -- threads ----------------------------------------------------------------------------

    def get_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """A thread's metadata."""
        return self._run(partial(self._ops.get_thread, thread_id, user_id))

    async def aget_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """Async twin of :meth:`get_thread`."""
        return await self._arun(partial(self._ops.get_thread, thread_id, user_id))

    def update_thread(
        self,
        thread_id: str,
        *,
        user_id: str,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """Set a thread's title, tags or metadata."""
        op = partial(self._ops.update_thread, thread_id, user_id, title, tags, metadata)
        return self._run(op, write=True)

    async def aupdate_thread(
        self,
        thread_id: str,
        *,
        user_id: str,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """Async twin of :meth:`update_thread`."""
        op = partial(self._ops.update_thread, thread_id, user_id, title, tags, metadata)
        return await self._arun(op, write=True)

    def list_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """A user's threads, most recently updated first."""
        return self._run(partial(self._ops.list_threads, user_id, limit, cursor))

    async def alist_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """Async twin of :meth:`list_threads`."""
        return await self._arun(partial(self._ops.list_threads, user_id, limit, cursor))

    def delete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Delete a thread; return how many messages it had."""
        return self._run(partial(self._ops.delete_thread, thread_id, user_id), write=True)

    async def adelete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Async twin of :meth:`delete_thread`."""
        return await self._arun(partial(self._ops.delete_thread, thread_id, user_id), write=True)

    # -- admin: privacy and retention (across users) --------------------------------------

    def erase_user(self, user_id: str, *, vacuum: bool | None = None) -> ErasureReceipt:
        """Delete every thread, message, branch and feed event of a user in one transaction
        (one ``user_erased`` event stays). With ``vacuum`` (default: the store's
        ``vacuum_after_erase``) the tables are vacuumed afterwards; the receipt's
        ``traces_left`` says what PostgreSQL still keeps either way."""
        receipt = self._run(partial(self._ops.erase_user, user_id), write=True)
        if not (self._vacuum if vacuum is None else vacuum):
            return receipt.model_copy(update={"traces_left": (_DEAD_TUPLES,)})
        try:
            self._run(self._vacuum_op)
        except TelaMemoryError as exc:  # e.g. a connection inside a transaction of the caller
            return self._not_vacuumed(receipt, exc)
        return self._vacuumed(receipt)

    async def aerase_user(self, user_id: str, *, vacuum: bool | None = None) -> ErasureReceipt:
        """Async twin of :meth:`erase_user`."""
        receipt = await self._arun(partial(self._ops.erase_user, user_id), write=True)
        if not (self._vacuum if vacuum is None else vacuum):
            return receipt.model_copy(update={"traces_left": (_DEAD_TUPLES,)})
        try:
            await self._arun(self._vacuum_op)
        except TelaMemoryError as exc:
            return self._not_vacuumed(receipt, exc)
        return self._vacuumed(receipt)

    def _vacuum_op(self) -> Op[bool]:
        for table in _TABLES:
            yield Exec(compose("VACUUM {s}.{table}", self.schema, table=table))
        return True

    def _vacuumed(self, receipt: ErasureReceipt) -> ErasureReceipt:
        tables = ", ".join(f"{self.schema}.{t}" for t in _TABLES)
        return receipt.model_copy(
            update={"scrubbed": (f"store tables vacuumed ({tables})",),
                    "traces_left": (_AFTER_VACUUM,)}
        )  # fmt: skip

    @staticmethod
    def _not_vacuumed(receipt: ErasureReceipt, exc: TelaMemoryError) -> ErasureReceipt:
        why = f"could not VACUUM the store tables ({exc}); VACUUM needs an autocommit connection"
        return receipt.model_copy(update={"traces_left": (why, _DEAD_TUPLES)})

    def apply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Delete messages older than ``max_age`` / beyond the newest ``max_messages``."""
        return self._run(partial(self._ops.apply_retention, max_age, max_messages), write=True)

    async def aapply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Async twin of :meth:`apply_retention`."""
        op = partial(self._ops.apply_retention, max_age, max_messages)
        return await self._arun(op, write=True)

    def user_data(self, user_id: str) -> UserData:
        """Everything stored of a user, in two queries on one snapshot."""
        return self._run(partial(self._ops.user_data, user_id), write=True)

    async def auser_data(self, user_id: str) -> UserData:
        """Async twin of :meth:`user_data`."""
        return await self._arun(partial(self._ops.user_data, user_id), write=True)

    # -- admin: the change feed (across users) ---------------------------------------------

    def changes(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """What happened to stored messages after the cursor ``since``, oldest first (table
        ``changes``, written in each write's transaction). Only events of transactions that
        have ended are returned, so a slow writer never slips behind a handed-out cursor; a
        cursor is ``<feed id>:<transaction id>:<event id>``. See :meth:`MessageStore.changes`.
        """
        return self._run(partial(self._ops.changes, since, limit))

    async def achanges(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """Async twin of :meth:`changes`."""
        return await self._arun(partial(self._ops.changes, since, limit))

    def cursor_store(self) -> PostgresCursorStore:
        """Where followers (``StoreIndexer``) keep their feed cursors by default: the table
        ``cursors`` beside the feed, so they survive a restart."""
        return PostgresCursorStore(self)


class PostgresCursorStore:
    """Named change feed cursors in the ``cursors`` table of a :class:`PostgresStore`."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def get(self, name: str) -> str | None:
        """The cursor saved under ``name``, or ``None``."""
        return self._store._run(partial(self._store._ops.get_cursor, name))

    def set(self, name: str, cursor: str | None) -> None:
        """Save ``cursor`` under ``name`` (``None`` forgets it), durably."""
        self._store._run(partial(self._store._ops.set_cursor, name, cursor), write=True)


__all__ = ["PostgresCursorStore", "PostgresStore", "check_schema"]
