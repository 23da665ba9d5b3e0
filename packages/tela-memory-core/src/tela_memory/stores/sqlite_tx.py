"""The one way this project writes to SQLite: a ``BEGIN IMMEDIATE`` transaction that any
interruption rolls back.

Every module that writes SQLite (the store, the index, the caches, the cursor and record
stores, the LangGraph store, the schema migrations) goes through :func:`write_transaction`,
so a ``KeyboardInterrupt``, a task cancellation or an exception at any line between ``BEGIN``
and ``COMMIT`` leaves the connection outside a transaction and the file's write lock released.
Callers wrap driver errors into their own :class:`~tela_memory.errors.TelaMemoryError`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


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
