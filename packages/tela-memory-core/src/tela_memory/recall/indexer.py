"""Incremental indexing that follows any store through its change feed.

``sync()`` reads :meth:`~tela_memory.stores.base.MessageStore.changes` from the cursor this
index last finished, applies each page (appends and edits are upserted with the message as it
is now, deletions removed, a deleted thread or an erased user removed by filter), and saves the
page's cursor before reading the next one. A crash therefore loses nothing and repeats at most
one page (upserts and deletions are idempotent). The cursor is kept under the index's
``watermark_name`` in a :class:`~tela_memory.stores.cursors.CursorStore`: by default the
store's own (``store.cursor_store()``: the SQLite file for ``SQLiteStore``, process memory for
the in-memory store), or one you pass. ``reindex()`` rebuilds from the start of the feed.

A follower that starts without a cursor reads the feed from its start, which holds every
stored message (stores record an ``append`` per message, and SQLite files written before the
feed existed were given one per message when they were migrated). The watermarks of the
earlier SQLite-only indexer (``recall_watermarks``) become cursors on that migration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tela_memory.errors import NotFoundError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall.index import Index
from tela_memory.recall.types import MAX_IDS
from tela_memory.stores.base import MAX_CHANGES_LIMIT, MessageStore
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError
from tela_memory.stores.cursors import CursorStore


@dataclass(frozen=True)
class SyncReport:
    """What one ``sync()`` did.

    Attributes:
        indexed: messages appended since the last sync and now indexed.
        updated: edited messages re-indexed.
        deleted: index entries removed (deleted messages, threads, erased users).
        cursor: the feed cursor the index is now at.
    """

    indexed: int = 0
    updated: int = 0
    deleted: int = 0
    cursor: str | None = None


class StoreIndexer:
    """Keeps an index in step with any :class:`~tela_memory.stores.base.MessageStore`.

    Args:
        store: the store to follow (it must have a change feed).
        index: any :class:`Index` (the embedded one in the same file, Qdrant, Redis ...).
        name: the cursor's name (default: the index's ``watermark_name``, so each index
            following this store keeps its own).
        batch_size: feed events per page (so at most this many messages per upsert and
            embedding call); the cursor is saved after each page.
        on_batch: called with the running count of indexed messages after each page.
        cursors: where the cursor is kept (default: ``store.cursor_store()``).
    """

    def __init__(
        self,
        store: MessageStore,
        index: Index,
        *,
        name: str | None = None,
        batch_size: int = 256,
        on_batch: Callable[[int], None] | None = None,
        cursors: CursorStore | None = None,
    ) -> None:
        if batch_size < 1:
            raise TelaMemoryError(f"batch_size must be at least 1, got {batch_size}")
        self.store = store
        self.index = index
        self.name = name if name is not None else index.watermark_name
        self.batch_size = min(batch_size, MAX_CHANGES_LIMIT)
        self.on_batch = on_batch
        self.cursors = cursors if cursors is not None else store.cursor_store()
        self._seen: str | None = None  # the cursor the last sync reached ...
        self._has_seen = False  # ... once there was one

    def cursor(self) -> str | None:
        """The feed cursor indexed so far (``None``: nothing yet)."""
        return self.cursors.get(self.name)

    def pending(self) -> int:
        """How many appended messages the feed holds that this index has not seen yet."""
        cursor = self.cursor()
        count = 0
        while True:
            batch = self._read(cursor, MAX_CHANGES_LIMIT)
            count += sum(1 for c in batch.changes if c.kind == "append")
            cursor = batch.cursor
            if not batch.more:
                return count

    def sync(self, *, limit: int | None = None) -> SyncReport:
        """Apply what the feed holds after the cursor: index new messages (at most about
        ``limit``), re-index edited ones, remove deleted ones.

        Raises:
            ChangeFeedGapError: the saved cursor is no longer valid for this store (the
                feed lost events, or the cursor is another store's): call :meth:`reindex`.
        """
        return self._sync_from(self.cursor(), limit)

    def catch_up(self) -> SyncReport:
        """:meth:`sync`, starting from the cursor this indexer last reached (the cursor store
        is read only the first time), so that a search can call it every time: with nothing
        new in the feed it costs one read of the feed and writes nothing. What
        :meth:`Index.follow` runs before each read of the index."""
        return self._sync_from(self._seen if self._has_seen else self.cursor(), None)

    def _sync_from(self, cursor: str | None, limit: int | None) -> SyncReport:
        indexed = updated = deleted = 0
        while limit is None or indexed < limit:
            size = self.batch_size if limit is None else min(self.batch_size, limit - indexed)
            batch = self._read(cursor, size)
            if batch.changes:
                i, u, d = self._apply(batch.changes)
                indexed, updated, deleted = indexed + i, updated + u, deleted + d
            if batch.cursor != cursor:
                cursor = batch.cursor
                self.cursors.set(self.name, cursor)
            if batch.changes and self.on_batch is not None:
                self.on_batch(indexed)
            if not batch.more:
                break
        self._seen, self._has_seen = cursor, True
        return SyncReport(indexed=indexed, updated=updated, deleted=deleted, cursor=cursor)

    async def async_(self, *, limit: int | None = None) -> SyncReport:
        """Async twin of :meth:`sync` (runs in a worker thread)."""
        return await asyncio.to_thread(self.sync, limit=limit)

    def reindex(self) -> SyncReport:
        """Drop everything this index holds and index the whole store again (from the start
        of the feed)."""
        self.index.clear()
        self.index.drop_vectors()
        self.cursors.set(self.name, None)
        return self.sync()

    async def areindex(self) -> SyncReport:
        """Async twin of :meth:`reindex`."""
        return await asyncio.to_thread(self.reindex)

    # -- internals --------------------------------------------------------------------------

    def _read(self, cursor: str | None, size: int) -> ChangeBatch:
        try:
            return self.store.changes(cursor, limit=size)
        except ChangeFeedGapError as exc:
            raise ChangeFeedGapError(
                f"{exc}: the index {self.name!r} cannot catch up; rebuild it with reindex()"
            ) from exc

    def _apply(self, changes: list[Change]) -> tuple[int, int, int]:
        """Apply one page of events in order; upserts and deletions are gathered and
        flushed before any removal by filter, so a later event always wins."""
        upserts: dict[str, tuple[str, bool]] = {}  # message id -> (user, appended here)
        doomed: list[str] = []
        totals = [0, 0, 0]

        def flush() -> None:
            if upserts:
                fresh: list[Message] = []
                appended: set[str] = set()
                for mid, (user, is_new) in upserts.items():
                    try:
                        fresh.append(self.store.get(mid, user_id=user))
                    except NotFoundError:
                        continue  # gone since: its deletion follows in the feed
                    if is_new:
                        appended.add(mid)
                if fresh:
                    self.index.upsert(fresh)
                    totals[0] += len(appended)
                    totals[1] += len(fresh) - len(appended)
                upserts.clear()
            if doomed:
                for i in range(0, len(doomed), MAX_IDS):
                    totals[2] += self.index.delete(doomed[i : i + MAX_IDS])
                doomed.clear()

        for c in changes:
            if c.kind in ("append", "update") and c.message_id is not None:
                # keep the first place: a parent stays before its children in the upsert
                upserts.setdefault(c.message_id, (c.user_id, c.kind == "append"))
            elif c.kind == "delete" and c.message_id is not None:
                upserts.pop(c.message_id, None)
                doomed.append(c.message_id)
            elif c.kind == "thread_deleted" and c.thread_id is not None:
                flush()
                totals[2] += self.index.delete_where(
                    {"user_id": c.user_id, "thread_ids": (c.thread_id,)}
                )
            elif c.kind == "user_erased":
                flush()
                totals[2] += self.index.delete_where({"user_id": c.user_id})
        flush()
        return totals[0], totals[1], totals[2]


__all__ = ["StoreIndexer", "SyncReport"]
