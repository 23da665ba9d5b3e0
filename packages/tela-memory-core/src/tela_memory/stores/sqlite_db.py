"""The one way this project opens and writes SQLite.

Every module that keeps data in SQLite (the store, the index, the embedding cache, the cursor
and record stores, the LangGraph store, the schema migrations) opens its connection with
:func:`connect` and writes through :func:`write_transaction`, so they agree on:

- autocommit mode (``isolation_level=None``): transactions are explicit, never implicit;
- WAL journaling for files, with ``synchronous=NORMAL`` (durable at every checkpoint, and a
  crash loses at most the last transactions, never the file);
- ``secure_delete`` on, so deleted content is overwritten with zeros (see
  :mod:`tela_memory.stores.sqlite_scrub` for the rest of a traceless erasure);
- one connection shared across threads under its owner's lock (``check_same_thread=False``);
- a ``KeyboardInterrupt``, a task cancellation or an exception at any line between ``BEGIN``
  and ``COMMIT`` leaves the connection outside a transaction and the write lock released.

Callers wrap driver errors of their statements into their own
:class:`~tela_memory.errors.TelaMemoryError`; :func:`connect` already does for opening.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tela_memory.errors import BackendUnavailable

MEMORY = ":memory:"


def connect(path: str | Path, *, what: str, timeout: float = 30.0) -> sqlite3.Connection:
    """Open ``path`` (a file, created with its folder, or ``":memory:"``) for ``what`` (named
    in the error).

    Raises:
        BackendUnavailable: the file cannot be opened or is not a database.
    """
    target = str(path)
    conn: sqlite3.Connection | None = None
    try:
        if target != MEMORY:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            target, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        if target != MEMORY:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA secure_delete=ON")
    except (sqlite3.Error, OSError) as exc:
        if conn is not None:
            conn.close()
        raise BackendUnavailable(f"cannot open {what} at {target}: {exc}") from exc
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; roll back on anything that interrupts the body."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
