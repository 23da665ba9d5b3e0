"""Where followers of a change feed keep their cursors, so they resume after a restart.

A :class:`CursorStore` maps a follower's name (for ``StoreIndexer``: the index's
``watermark_name``) to the last cursor it finished. ``store.cursor_store()`` gives each
store's default: :class:`SQLiteCursorStore` in the file of a
:class:`~tela_memory.stores.sqlite.SQLiteStore` (table ``recall_cursors``), a
:class:`MemoryCursorStore` for stores that keep nothing across restarts. Pass one explicitly
to keep cursors elsewhere (for example ``SQLiteCursorStore("cursors.db")`` beside an index
that follows a server-side store).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from tela_memory.errors import BackendUnavailable
from tela_memory.stores.sqlite_db import connect, write_transaction

CURSOR_TABLE = "recall_cursors"
_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {CURSOR_TABLE} (name TEXT PRIMARY KEY, cursor TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL)"
)


@runtime_checkable
class CursorStore(Protocol):
    """Named feed cursors. ``set`` must be durable when it returns (a follower persists its
    cursor after each batch it applied)."""

    def get(self, name: str) -> str | None:
        """The cursor saved under ``name``, or ``None`` (start from the beginning)."""
        ...

    def set(self, name: str, cursor: str | None) -> None:
        """Save ``cursor`` under ``name`` (``None`` forgets it)."""
        ...


class MemoryCursorStore:
    """Cursors in process memory (lost with the process)."""

    def __init__(self) -> None:
        self._cursors: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        """The cursor saved under ``name``."""
        with self._lock:
            return self._cursors.get(name)

    def set(self, name: str, cursor: str | None) -> None:
        """Save (or with ``None`` forget) a cursor."""
        with self._lock:
            if cursor is None:
                self._cursors.pop(name, None)
            else:
                self._cursors[name] = cursor


class _Transactional(Protocol):
    def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...


class SQLiteCursorStore:
    """Cursors in a SQLite file (table ``recall_cursors``).

    Args:
        target: a database file, or an object with ``transaction()`` yielding a
            ``sqlite3.Connection`` (a ``SQLiteStore``: the cursors then live in its file and
            are written under its lock).
    """

    def __init__(self, target: str | Path | _Transactional) -> None:
        self._owner: _Transactional | None = None
        self._path: str | None = None
        if isinstance(target, str | Path):
            self._path = str(target)
        else:
            self._owner = target
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._ready = False

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self._owner is not None:
            with self._owner.transaction() as conn:
                if not self._ready:
                    conn.execute(_SCHEMA)
                    self._ready = True
                yield conn
            return
        with self._lock:
            try:
                if self._conn is None:
                    assert self._path is not None
                    self._conn = connect(self._path, what="cursor store")
                    self._conn.execute(_SCHEMA)
                conn = self._conn
                with write_transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"cursor store {self._path}: {exc}") from exc

    def get(self, name: str) -> str | None:
        """The cursor saved under ``name``."""
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT cursor FROM {CURSOR_TABLE} WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row[0])

    def set(self, name: str, cursor: str | None) -> None:
        """Save (or with ``None`` forget) a cursor, durably."""
        now = int(datetime.now(UTC).timestamp() * 1_000_000)
        with self._tx() as conn:
            if cursor is None:
                conn.execute(f"DELETE FROM {CURSOR_TABLE} WHERE name = ?", (name,))
            else:
                conn.execute(
                    f"INSERT OR REPLACE INTO {CURSOR_TABLE} (name, cursor, updated_at)"
                    " VALUES (?, ?, ?)",
                    (name, cursor, now),
                )

    def close(self) -> None:
        """Close the file (only one this object opened)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


__all__ = ["CURSOR_TABLE", "CursorStore", "MemoryCursorStore", "SQLiteCursorStore"]
