"""Erasure that leaves no recoverable trace in a SQLite file, its WAL or its full-text index.

Deleting a row is not enough: SQLite leaves the bytes in free pages (unless built with
``SECURE_DELETE``, which upstream is not), the WAL keeps earlier images of every page it
wrote, and an FTS5 index keeps a deleted row's words in its segments until they are merged.
So every connection turns ``secure_delete`` on
(:func:`~tela_memory.stores.sqlite_db.connect`: deleted content is overwritten with zeros),
and after an erasure :func:`scrub` merges the FTS5 segments and checkpoints the WAL into the
database, truncating it to zero bytes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tela_memory.stores.sqlite_db import write_transaction


@dataclass(frozen=True, slots=True)
class Scrub:
    """What :func:`scrub` did (``done``) and what it could not do, with the reason (``left``)."""

    done: tuple[str, ...] = ()
    left: tuple[str, ...] = ()


def _fts5_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
        " AND lower(sql) LIKE '%using fts5%'"
    )
    return [r[0] for r in rows]


def scrub(conn: sqlite3.Connection, where: str) -> Scrub:
    """Remove what deleted rows left behind in the file ``where`` names (for the receipt).

    Call it outside a transaction, on a connection that had ``secure_delete`` on when the rows
    were deleted. A reader holding an old snapshot in another connection blocks the WAL
    truncation; that is reported in ``left`` (run the erasure again once it is gone)."""
    done: list[str] = []
    tables = _fts5_tables(conn)
    if tables:
        with write_transaction(conn):
            for table in tables:  # names from sqlite_master, quoted
                quoted = '"' + table.replace('"', '""') + '"'
                conn.execute(f"INSERT INTO {quoted}({quoted}) VALUES ('optimize')")
        done.append(f"{where}: full-text segments merged ({', '.join(tables)})")
    done.append(f"{where}: deleted content overwritten (secure_delete)")
    (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() != "wal":
        return Scrub(tuple(done))
    busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        left = f"{where}: the WAL is in use by another connection and still holds old pages"
        return Scrub(tuple(done), (left,))
    done.append(f"{where}: WAL checkpointed and truncated")
    return Scrub(tuple(done))
