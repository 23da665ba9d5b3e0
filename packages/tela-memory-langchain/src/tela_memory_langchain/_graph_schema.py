"""The ``lgstore_*`` tables of :class:`~tela_memory_langchain.graph_store.TelaStore`, versioned.

* Version 1 (tela-memory up to 0057bd3): items keyed ``(ns, key)``, no owner; the version was
  not recorded (a file with ``lgstore_items`` and no ``lgstore_meta`` is version 1).
* Version 2: every item and vector row has an ``owner`` (the user whose space it is in) and
  rows are keyed ``(owner, ns, key)``. Migrating from version 1 (one transaction, on first
  open) gives every existing row to :data:`~tela_memory.stores.DEFAULT_USER` and marks it
  ``legacy = 1``; :meth:`TelaStore.adopt_legacy` later hands legacy rows to the users named in
  their namespaces (``("memories", "{user_id}")``), and a write by their owner clears the mark.
  Nothing is dropped: values, timestamps, TTLs and vectors are copied as they were.
"""

from __future__ import annotations

import sqlite3

from tela_memory.errors import SchemaError
from tela_memory.stores import DEFAULT_USER
from tela_memory.stores.sqlite_db import write_transaction

SCHEMA_VERSION = 2

_TABLES = (
    """CREATE TABLE IF NOT EXISTS lgstore_items(
    owner TEXT NOT NULL,
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ttl_minutes REAL,
    expires_at INTEGER,
    legacy INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, ns, key)
)""",
    """CREATE TABLE IF NOT EXISTS lgstore_vectors(
    owner TEXT NOT NULL,
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    text TEXT NOT NULL,
    vec BLOB,
    PRIMARY KEY (owner, ns, key, path)
)""",
)
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS lgstore_items_expiry ON lgstore_items(expires_at)"
    " WHERE expires_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS lgstore_items_legacy ON lgstore_items(ns) WHERE legacy = 1",
    """CREATE TRIGGER IF NOT EXISTS lgstore_items_ad AFTER DELETE ON lgstore_items BEGIN
    DELETE FROM lgstore_vectors WHERE owner = old.owner AND ns = old.ns AND key = old.key;
END""",
)


def _run(conn: sqlite3.Connection, statements: tuple[str, ...]) -> None:
    for statement in statements:
        conn.execute(statement)


def _has(conn: sqlite3.Connection, table: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


def current_version(conn: sqlite3.Connection) -> int:
    """0 (no ``lgstore_*`` tables), 1 (written before owners) or the recorded version."""
    if _has(conn, "lgstore_meta"):
        row = conn.execute("SELECT value FROM lgstore_meta WHERE key = 'schema_version'").fetchone()
        try:
            return int(row[0])
        except (TypeError, ValueError) as exc:
            raise SchemaError("the LangGraph store's schema version is unreadable") from exc
    return 1 if _has(conn, "lgstore_items") else 0


def _from_v1(conn: sqlite3.Connection) -> None:
    conn.execute("DROP TRIGGER IF EXISTS lgstore_items_ad")
    conn.execute("DROP INDEX IF EXISTS lgstore_items_expiry")
    conn.execute("ALTER TABLE lgstore_items RENAME TO lgstore_items_v1")
    has_vectors = _has(conn, "lgstore_vectors")
    if has_vectors:
        conn.execute("ALTER TABLE lgstore_vectors RENAME TO lgstore_vectors_v1")
    _run(conn, _TABLES)
    conn.execute(
        "INSERT INTO lgstore_items (owner, ns, key, value, created_at, updated_at, ttl_minutes,"
        " expires_at, legacy) SELECT ?, ns, key, value, created_at, updated_at, ttl_minutes,"
        " expires_at, 1 FROM lgstore_items_v1",
        (DEFAULT_USER,),
    )
    if has_vectors:
        conn.execute(
            "INSERT INTO lgstore_vectors (owner, ns, key, path, text, vec)"
            " SELECT ?, ns, key, path, text, vec FROM lgstore_vectors_v1",
            (DEFAULT_USER,),
        )
        conn.execute("DROP TABLE lgstore_vectors_v1")
    conn.execute("DROP TABLE lgstore_items_v1")


def migrate(conn: sqlite3.Connection) -> int:
    """Create or upgrade the tables in one transaction; return the version found before."""
    with write_transaction(conn):
        found = current_version(conn)
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"this LangGraph store was written by a newer tela-memory-langchain (schema "
                f"{found}, this version reads up to {SCHEMA_VERSION}); upgrade it"
            )
        if found == 1:
            _from_v1(conn)
        if found < SCHEMA_VERSION:
            _run(conn, _TABLES)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS lgstore_meta"
                " (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            conn.execute(
                "INSERT OR REPLACE INTO lgstore_meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        _run(conn, _INDEXES)
    return found


__all__ = ["SCHEMA_VERSION", "current_version", "migrate"]
