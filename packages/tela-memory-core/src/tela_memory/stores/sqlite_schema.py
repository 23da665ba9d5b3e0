"""Schema and migrations of the embedded SQLite store.

The version lives in table ``meta``. Each migration moves the schema one version up inside
one transaction; a file with a newer version than this code knows is refused, not touched.
"""

from __future__ import annotations

import sqlite3

from tela_memory.errors import SchemaError

MIGRATIONS: tuple[str, ...] = (
    # 1: threads, branches and the message tree
    """
    CREATE TABLE threads (
        id TEXT PRIMARY KEY,
        user_id TEXT,
        title TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        default_branch TEXT NOT NULL DEFAULT 'main',
        message_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX threads_by_user ON threads (user_id, updated_at DESC, id DESC);
    CREATE TABLE branches (
        thread_id TEXT NOT NULL,
        name TEXT NOT NULL,
        head_id TEXT,
        forked_from TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (thread_id, name)
    ) WITHOUT ROWID;
    CREATE INDEX branches_by_head ON branches (head_id);
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        thread_id TEXT NOT NULL,
        user_id TEXT,
        parent_id TEXT,
        depth INTEGER NOT NULL,
        role TEXT NOT NULL,
        name TEXT,
        content TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL
    );
    CREATE INDEX messages_by_parent ON messages (parent_id);
    CREATE INDEX messages_by_thread ON messages (thread_id, seq);
    CREATE INDEX messages_by_user ON messages (user_id);
    CREATE INDEX messages_by_time ON messages (created_at);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

COMPANION_PREFIXES = ("recall_", "lgstore_", "sqlite_")
"""Tables that other Tela Memory components keep in the same file (they may be created first)."""


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0 for an empty file)."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if any(not t.startswith(COMPANION_PREFIXES) for t in tables):
            raise SchemaError(
                "this SQLite file holds tables but no Tela Memory schema version; "
                "it is not a Tela Memory store"
            )
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        return int(row[0])
    except (TypeError, ValueError) as exc:
        raise SchemaError("the Tela Memory schema version in this file is unreadable") from exc


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; return the version found before."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = current_version(conn)
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"this store was written by a newer Tela Memory (schema {found}, this version "
                f"reads up to {SCHEMA_VERSION}); upgrade tela-memory-core"
            )
        if found == 0:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for script in MIGRATIONS[found:]:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
