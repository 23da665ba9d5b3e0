"""Incremental indexing that follows a SQLite store: a watermark on ``messages.seq``.

``sync()`` indexes what was appended since the last call in batches, moving the watermark
after each batch, so a crash loses nothing and repeats at most one batch (upserts are
idempotent). Edits (``update_message``) and deletions are queued by triggers on ``messages``
into ``recall_changes`` and applied by the next ``sync()``. ``reindex()`` rebuilds from scratch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall.index import Index
from tela_memory.stores.sqlite import MESSAGE_COLUMNS, SQLiteStore, row_to_message

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS recall_watermarks(name TEXT PRIMARY KEY,"
    " seq INTEGER NOT NULL DEFAULT 0, change INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS recall_changes(change INTEGER PRIMARY KEY AUTOINCREMENT,"
    " message_id TEXT NOT NULL, op TEXT NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS recall_changes_ad AFTER DELETE ON messages BEGIN"
    " INSERT INTO recall_changes(message_id, op) VALUES (old.id, 'delete'); END",
    "CREATE TRIGGER IF NOT EXISTS recall_changes_au AFTER UPDATE OF content, metadata, name"
    " ON messages BEGIN INSERT INTO recall_changes(message_id, op) VALUES (new.id, 'update'); END",
)


@dataclass(frozen=True)
class SyncReport:
    """What one ``sync()`` did."""

    indexed: int = 0
    updated: int = 0
    deleted: int = 0
    watermark: int = 0


class StoreIndexer:
    """Keeps an index in step with a :class:`~tela_memory.stores.sqlite.SQLiteStore`.

    Args:
        store: the store to follow.
        index: any :class:`Index` (the embedded one in the same file, Qdrant ...).
        name: the watermark's name (default: the index's ``watermark_name``, so each index
            following this store keeps its own).
        batch_size: messages per upsert (and per embedding call).
        on_batch: called with the running count after each batch (progress bars).
    """

    def __init__(
        self,
        store: SQLiteStore,
        index: Index,
        *,
        name: str | None = None,
        batch_size: int = 256,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise TelaMemoryError(f"batch_size must be at least 1, got {batch_size}")
        self.store = store
        self.index = index
        self.name = name if name is not None else index.watermark_name
        self.batch_size = batch_size
        self.on_batch = on_batch
        self._ready = False

    def _prepare(self) -> None:
        if self._ready:
            return
        with self.store.transaction() as conn:
            for stmt in _SCHEMA:
                conn.execute(stmt)
            conn.execute("INSERT OR IGNORE INTO recall_watermarks(name) VALUES (?)", (self.name,))
        self._ready = True

    def watermark(self) -> tuple[int, int]:
        """``(message seq, change number)`` indexed so far."""
        self._prepare()
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT seq, change FROM recall_watermarks WHERE name = ?", (self.name,)
            ).fetchone()
        return int(row[0]), int(row[1])

    def pending(self) -> int:
        """How many stored messages are not indexed yet."""
        seq, _ = self.watermark()
        with self.store.transaction() as conn:
            return int(
                conn.execute("SELECT count(*) FROM messages WHERE seq > ?", (seq,)).fetchone()[0]
            )

    def sync(self, *, limit: int | None = None) -> SyncReport:
        """Index new messages (at most ``limit``) and apply queued edits and deletions."""
        self._prepare()
        updated, deleted = self._apply_changes()
        indexed = 0
        seq = self.watermark()[0]
        while limit is None or indexed < limit:
            size = self.batch_size if limit is None else min(self.batch_size, limit - indexed)
            batch = self._read_after(seq, size)
            if not batch:
                break
            self.index.upsert([m for _, m in batch])
            seq = batch[-1][0]
            self._set(seq=seq)
            indexed += len(batch)
            if self.on_batch is not None:
                self.on_batch(indexed)
        return SyncReport(indexed=indexed, updated=updated, deleted=deleted, watermark=seq)

    async def async_(self, *, limit: int | None = None) -> SyncReport:
        """Async twin of :meth:`sync` (runs in a worker thread)."""
        return await asyncio.to_thread(self.sync, limit=limit)

    def reindex(self) -> SyncReport:
        """Drop everything this index holds and index the whole store again."""
        self._prepare()
        self.index.clear()
        self.index.drop_vectors()
        with self.store.transaction() as conn:
            last = conn.execute("SELECT coalesce(max(change), 0) FROM recall_changes").fetchone()
            conn.execute(
                "UPDATE recall_watermarks SET seq = 0, change = ? WHERE name = ?",
                (int(last[0]), self.name),
            )
        return self.sync()

    async def areindex(self) -> SyncReport:
        """Async twin of :meth:`reindex`."""
        return await asyncio.to_thread(self.reindex)

    # -- internals --------------------------------------------------------------------------

    def _read_after(self, seq: int, size: int) -> list[tuple[int, Message]]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                f"SELECT seq, {MESSAGE_COLUMNS} FROM messages WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, size),
            ).fetchall()
        return [(int(r[0]), row_to_message(r[1:])) for r in rows]

    def _set(self, *, seq: int | None = None, change: int | None = None) -> None:
        with self.store.transaction() as conn:
            if seq is not None:
                conn.execute(
                    "UPDATE recall_watermarks SET seq = ? WHERE name = ?", (seq, self.name)
                )
            if change is not None:
                conn.execute(
                    "UPDATE recall_watermarks SET change = ? WHERE name = ?", (change, self.name)
                )
                low = conn.execute("SELECT min(change) FROM recall_watermarks").fetchone()[0]
                conn.execute("DELETE FROM recall_changes WHERE change <= ?", (low,))

    def _apply_changes(self) -> tuple[int, int]:
        seq, change = self.watermark()
        updated = deleted = 0
        while True:
            with self.store.transaction() as conn:
                rows = conn.execute(
                    "SELECT change, message_id, op FROM recall_changes WHERE change > ? "
                    "ORDER BY change LIMIT ?",
                    (change, self.batch_size),
                ).fetchall()
                if not rows:
                    return updated, deleted
                ids = list(dict.fromkeys(r[1] for r in rows))
                marks = ",".join("?" * len(ids))
                live = {
                    r[1]: (int(r[0]), row_to_message(r[1:]))
                    for r in conn.execute(
                        f"SELECT seq, {MESSAGE_COLUMNS} FROM messages WHERE id IN ({marks})", ids
                    )
                }
            gone = [i for i in ids if i not in live]
            # edited messages not indexed yet will be picked up by the seq walk
            fresh = [m for s, m in live.values() if s <= seq]
            if gone:
                deleted += self.index.delete(gone)
            if fresh:
                updated += self.index.upsert(fresh)
            change = int(rows[-1][0])
            self._set(change=change)


__all__ = ["StoreIndexer", "SyncReport"]
