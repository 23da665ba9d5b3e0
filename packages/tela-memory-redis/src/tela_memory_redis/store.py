"""``RedisStore``: the Tela Memory message store on plain Redis data structures.

Works on Redis 6.2+ without modules, on Redis Cluster (one thread's keys share a hash tag),
Sentinel, TLS and unix sockets. Append, read (whole branch or last N) and fork are one
round trip each (Lua); branches share ancestors through linked segments; users' threads are
listed from a per-user sorted set, never by scanning keys.

Threads live in their user's namespace: the user is part of every key of a thread, so Bob's
``"trip-42"`` and Ada's are two threads, and another user's thread, branch or message looks
exactly like a missing one. A keyspace written before namespacing is migrated on first use.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Self, TypeVar

from pydantic import JsonValue

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.stores.base import (
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
)
from tela_memory.stores.changes import ChangeBatch
from tela_memory_redis import connection
from tela_memory_redis._driver import Op, run_async, run_sync
from tela_memory_redis._ops import Ops

T = TypeVar("T")


class RedisStore(MessageStore):
    """Conversation history in Redis.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://``, ``redis+sentinel://h:26379/<service>``
            or ``redis+cluster://h:p[,h:p]``. Needed unless ``client`` is given.
        client: an existing ``redis.Redis`` / ``redis.cluster.RedisCluster`` (not closed by us).
        aclient: an existing ``redis.asyncio`` client for the async twins (not closed by us).
        prefix: key prefix (printable, no braces); every key starts with it.
        ttl: expire a thread (all its keys) this long after its last write (seconds or
            timedelta, > 0; else ``InvalidMessageError``, a ``ValueError``); ``None`` keeps
            threads forever. ``set_ttl`` overrides it per thread. Expiry records no event in
            the change feed.
        refresh_ttl_on_read: reading a thread also restarts its TTL.
        on_corrupt: ``"raise"`` (default) a ``SchemaError`` naming an unreadable stored
            message, or ``"skip"`` it with a warning.
        compact_on_erase: after :meth:`erase_user`, ask the server to rewrite its
            append-only file and snapshot (``BGREWRITEAOF``, ``BGSAVE SCHEDULE``) so that
            neither keeps the erased data; without it the receipt's ``traces_left`` names the
            files that still do (costly on a large dataset, hence off by default).
        **client_options: passed to the redis-py client built from ``url``.

    Nothing connects until the first operation. The first operation of a store also checks
    the key layout's version and, on a keyspace written by tela-memory-redis before threads
    were namespaced per user, migrates it (see :meth:`migrate`).
    """

    schemes = connection.SCHEMES

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        aclient: Any = None,
        prefix: str = "tela",
        ttl: float | timedelta | None = None,
        refresh_ttl_on_read: bool = False,
        on_corrupt: Literal["raise", "skip"] = "raise",
        compact_on_erase: bool = False,
        **client_options: Any,
    ) -> None:
        if url is None and client is None and aclient is None:
            raise TelaMemoryError("RedisStore needs a url or a client")
        self._url = url
        self._client = client
        self._aclient = aclient
        self._own_client = client is None
        self._own_aclient = aclient is None
        self._options = client_options
        self._lock = threading.Lock()
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._schema_ok = False
        if url is not None:
            self.address = connection.redact(url)
            cluster = url.lower().startswith("redis+cluster:")
        else:
            self.address = connection.describe(client if client is not None else aclient)
            cluster = connection.is_cluster(client if client is not None else aclient)
        self._ops = Ops(
            prefix=prefix,
            cluster=cluster,
            ttl=ttl,
            refresh_ttl_on_read=refresh_ttl_on_read,
            on_corrupt=on_corrupt,
            compact_on_erase=compact_on_erase,
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from a Redis URL (no I/O until first use)."""
        return cls(url, **options)

    @property
    def prefix(self) -> str:
        """The key prefix."""
        return self._ops.prefix

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The sync redis-py client (built from the URL on first use)."""
        if self._closed:
            raise TelaMemoryError("this RedisStore is closed")
        if self._client is None:
            with self._lock:
                if self._client is None:
                    if self._url is None:
                        raise TelaMemoryError(
                            "this RedisStore was given only an async client; use the a* methods"
                        )
                    self._client = connection.sync_client(self._url, **self._options)
        return self._client

    def _aclient_or_none(self) -> Any:
        if self._closed:
            raise TelaMemoryError("this RedisStore is closed")
        if self._url is not None and self._own_aclient:
            loop = asyncio.get_running_loop()
            if self._aclient is not None and self._aloop is not loop:
                # an asyncio client belongs to the loop that opened it: a new loop gets its own
                # (the old one's connections died with their loop)
                self._aclient = None
            if self._aclient is None:
                self._aclient = connection.async_client(self._url, **self._options)
                self._aloop = loop
        return self._aclient

    def _run(self, op: Op[T]) -> T:
        client = self.client
        if not self._schema_ok:
            run_sync(client, self._ops.ensure_schema(), self.address)
            self._schema_ok = True
        return run_sync(client, op, self.address)

    async def _arun(self, op: Op[T]) -> T:
        aclient = self._aclient_or_none()
        if aclient is None:  # only a sync client was injected: run it in a worker thread
            return await asyncio.to_thread(self._run, op)
        if not self._schema_ok:
            await run_async(aclient, self._ops.ensure_schema(), self.address)
            self._schema_ok = True
        return await run_async(aclient, op, self.address)

    def migrate(self) -> int:
        """Bring a keyspace written before threads were namespaced per user (thread keys by
        thread id alone) to the current layout now, rather than on first use; return how many
        threads were moved (0 when there was nothing to do).

        Each thread moves to its owner's namespace, ownerless ones to ``DEFAULT_USER``
        (``"local"``); TTLs are kept. The migration holds a lock that other processes wait
        on; it is idempotent and resumes where it stopped if it was interrupted.
        """
        moved = run_sync(self.client, self._ops.ensure_schema(), self.address)
        self._schema_ok = True
        return moved

    async def amigrate(self) -> int:
        """Async twin of :meth:`migrate`."""
        aclient = self._aclient_or_none()
        if aclient is None:
            return await asyncio.to_thread(self.migrate)
        moved = await run_async(aclient, self._ops.ensure_schema(), self.address)
        self._schema_ok = True
        return moved

    def close(self) -> None:
        """Close the clients this store built (injected clients are left open)."""
        self._closed = True
        if self._own_client and self._client is not None:
            self._client.close()
        self._client = None

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self._closed = True
        if self._own_aclient and self._aclient is not None:
            await self._aclient.aclose()
        self._aclient = None
        if self._own_client and self._client is not None:
            self._client.close()
        self._client = None

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Append messages after the branch head of ``user_id``'s thread in one atomic round
        trip (the thread is created by its first append)."""
        return self._run(self._ops.append(thread_id, messages, user_id, branch))

    async def aappend(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Async twin of :meth:`append`."""
        return await self._arun(self._ops.append(thread_id, messages, user_id, branch))

    def update_message(self, message: Message, *, user_id: str) -> Message:
        """Replace the content, name and metadata of one of ``user_id``'s stored messages."""
        return self._run(self._ops.update_message(message, user_id))

    async def aupdate_message(self, message: Message, *, user_id: str) -> Message:
        """Async twin of :meth:`update_message`."""
        return await self._arun(self._ops.update_message(message, user_id))

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
        """Messages of a branch of ``user_id``'s thread, oldest first, in one round trip."""
        return self._run(self._ops.read(thread_id, user_id, branch, last, since, before))

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
        return await self._arun(self._ops.read(thread_id, user_id, branch, last, since, before))

    def get(self, message_id: str, *, user_id: str) -> Message:
        """One of ``user_id``'s messages by id."""
        return self._run(self._ops.get(message_id, user_id))

    async def aget(self, message_id: str, *, user_id: str) -> Message:
        """Async twin of :meth:`get`."""
        return await self._arun(self._ops.get(message_id, user_id))

    # -- branches ---------------------------------------------------------------------------

    def fork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Create a branch at a message; O(1), nothing is copied."""
        return self._run(self._ops.fork(thread_id, at_message_id, user_id, name))

    async def afork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Async twin of :meth:`fork`."""
        return await self._arun(self._ops.fork(thread_id, at_message_id, user_id, name))

    def branches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """The branches of a thread, default first."""
        return self._run(self._ops.branches(thread_id, user_id))

    async def abranches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """Async twin of :meth:`branches`."""
        return await self._arun(self._ops.branches(thread_id, user_id))

    def set_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Make ``name`` the thread's default branch."""
        self._run(self._ops.set_default_branch(thread_id, name, user_id))

    async def aset_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Async twin of :meth:`set_default_branch`."""
        await self._arun(self._ops.set_default_branch(thread_id, name, user_id))

    def delete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Delete a branch and the messages only it reaches."""
        return self._run(self._ops.delete_branch(thread_id, name, user_id))

    async def adelete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Async twin of :meth:`delete_branch`."""
        return await self._arun(self._ops.delete_branch(thread_id, name, user_id))

    # -- threads ----------------------------------------------------------------------------

    def get_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """A thread's metadata."""
        return self._run(self._ops.get_thread(thread_id, user_id))

    async def aget_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """Async twin of :meth:`get_thread`."""
        return await self._arun(self._ops.get_thread(thread_id, user_id))

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
        return self._run(self._ops.update_thread(thread_id, user_id, title, tags, metadata))

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
        return await self._arun(self._ops.update_thread(thread_id, user_id, title, tags, metadata))

    def list_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """A user's threads, most recently updated first (from a per-user sorted set)."""
        return self._run(self._ops.list_threads(user_id, limit, cursor))

    async def alist_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """Async twin of :meth:`list_threads`."""
        return await self._arun(self._ops.list_threads(user_id, limit, cursor))

    def delete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Delete a thread; return how many messages it had."""
        return self._run(self._ops.delete_thread(thread_id, user_id))[0]

    async def adelete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Async twin of :meth:`delete_thread`."""
        return (await self._arun(self._ops.delete_thread(thread_id, user_id)))[0]

    # -- admin: privacy and retention (across users) --------------------------------------

    def erase_user(self, user_id: str) -> ErasureReceipt:
        """Delete every thread of a user."""
        return self._run(self._ops.erase_user(user_id))

    async def aerase_user(self, user_id: str) -> ErasureReceipt:
        """Async twin of :meth:`erase_user`."""
        return await self._arun(self._ops.erase_user(user_id))

    def apply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Delete messages older than ``max_age`` / beyond the newest ``max_messages``."""
        return self._run(self._ops.apply_retention(max_age, max_messages))

    async def aapply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Async twin of :meth:`apply_retention`."""
        return await self._arun(self._ops.apply_retention(max_age, max_messages))

    # -- admin: the change feed (across users) ---------------------------------------------

    def changes(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """What happened to stored messages after the cursor ``since``, oldest first, from a
        Redis Stream (see the module docs of :mod:`tela_memory.stores.changes` and
        ``docs/redis.md``). ``since=None`` reads from the oldest event retained.

        Raises:
            ChangeFeedGapError: ``since`` is not a cursor of this feed, or was trimmed away.
            InvalidMessageError: ``limit`` is not in 1..10,000.
        """
        return self._run(self._ops.changes(since, limit))

    async def achanges(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """Async twin of :meth:`changes`."""
        return await self._arun(self._ops.changes(since, limit))

    def trim_changes(self, before: str) -> int:
        """Drop the feed's events up to and including the cursor ``before`` (every follower
        has read them); return how many. A later read from an older cursor raises
        ``ChangeFeedGapError``. The feed is never trimmed otherwise."""
        return self._run(self._ops.trim_changes(before))

    async def atrim_changes(self, before: str) -> int:
        """Async twin of :meth:`trim_changes`."""
        return await self._arun(self._ops.trim_changes(before))

    def cursor_store(self) -> RedisCursorStore:
        """Where followers (``StoreIndexer``) keep their feed cursors by default: a hash
        beside the feed (``<prefix>:g:{<prefix>}:cursors``), so they survive a restart."""
        return RedisCursorStore(self)

    # -- ttl --------------------------------------------------------------------------------

    def set_ttl(self, thread_id: str, ttl: float | timedelta | None, *, user_id: str) -> None:
        """Give one of ``user_id``'s threads its own TTL (``None`` makes it permanent);
        restarts the clock."""
        self._run(self._ops.set_ttl(thread_id, user_id, ttl))

    async def aset_ttl(
        self, thread_id: str, ttl: float | timedelta | None, *, user_id: str
    ) -> None:
        """Async twin of :meth:`set_ttl`."""
        await self._arun(self._ops.set_ttl(thread_id, user_id, ttl))


class RedisCursorStore:
    """Named change feed cursors in a Redis hash of a :class:`RedisStore` (as durable as
    the server's persistence: enable AOF if a follower must never replay)."""

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def get(self, name: str) -> str | None:
        """The cursor saved under ``name``, or ``None``."""
        return self._store._run(self._store._ops.get_cursor(name))

    def set(self, name: str, cursor: str | None) -> None:
        """Save ``cursor`` under ``name`` (``None`` forgets it)."""
        self._store._run(self._store._ops.set_cursor(name, cursor))


__all__ = ["RedisCursorStore", "RedisStore"]
