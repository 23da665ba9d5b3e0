"""Schema and migrations of the embedded SQLite store.

The version lives in table ``meta``. Each migration moves the schema one version up inside
one transaction; a file with a newer version than this code knows is refused, not touched.
"""

from __future__ import annotations

import sqlite3

from tela_memory.errors import SchemaError
from tela_memory.stores.sqlite_db import write_transaction

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
    # 2: threads live in their user's namespace: (user_id, id) is a thread's key. Threads
    # written without an owner belong to DEFAULT_USER; messages always carry their owner.
    """
    UPDATE threads SET user_id = 'local' WHERE user_id IS NULL;
    UPDATE messages SET user_id = coalesce(
        (SELECT t.user_id FROM threads AS t WHERE t.id = messages.thread_id), 'local'
    ) WHERE user_id IS NULL;
    CREATE TABLE threads_v2 (
        user_id TEXT NOT NULL,
        id TEXT NOT NULL,
        title TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        default_branch TEXT NOT NULL DEFAULT 'main',
        message_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, id)
    );
    INSERT INTO threads_v2 (user_id, id, title, tags, metadata, default_branch, message_count,
                            created_at, updated_at)
        SELECT user_id, id, title, tags, metadata, default_branch, message_count, created_at,
               updated_at FROM threads;
    CREATE TABLE branches_v2 (
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        name TEXT NOT NULL,
        head_id TEXT,
        forked_from TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, thread_id, name)
    ) WITHOUT ROWID;
    INSERT INTO branches_v2 (user_id, thread_id, name, head_id, forked_from, created_at)
        SELECT t.user_id, b.thread_id, b.name, b.head_id, b.forked_from, b.created_at
        FROM branches AS b JOIN threads AS t ON t.id = b.thread_id;
    DROP TABLE branches;
    DROP TABLE threads;
    ALTER TABLE threads_v2 RENAME TO threads;
    ALTER TABLE branches_v2 RENAME TO branches;
    CREATE INDEX threads_by_user ON threads (user_id, updated_at DESC, id DESC);
    CREATE INDEX branches_by_head ON branches (head_id);
    DROP INDEX messages_by_thread;
    DROP INDEX messages_by_user;
    CREATE INDEX messages_by_thread ON messages (user_id, thread_id, seq);
    """,
    # 3: the change feed. Written in the transaction of each write; messages stored before
    # it existed are recorded as one ``append`` each, in store order, so a follower that
    # starts from the beginning sees every message. ``feed_id`` tells this feed's cursors
    # from any other's.
    """
    CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_id TEXT,
        message_id TEXT,
        at INTEGER NOT NULL
    );
    CREATE INDEX changes_by_user ON changes (user_id);
    INSERT INTO changes (kind, user_id, thread_id, message_id, at)
        SELECT 'append', user_id, thread_id, id, created_at FROM messages ORDER BY seq;
    INSERT OR REPLACE INTO meta (key, value) VALUES ('feed_id', lower(hex(randomblob(8))));
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


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _adopt_watermarks(conn: sqlite3.Connection) -> None:
    """Turn the watermarks of the old SQLite-only indexer (``recall_watermarks``: a message
    ``seq`` and a number in the ``recall_changes`` queue) into feed cursors, so an index
    that was up to date stays up to date: queued edits and deletions not yet applied are
    added to the feed after the backfilled appends (a deleted message's owner is no longer
    known: its ``delete`` event has an empty ``user_id``)."""
    if not _has_table(conn, "recall_watermarks"):
        return
    (feed_id,) = conn.execute("SELECT value FROM meta WHERE key = 'feed_id'").fetchone()
    marks = conn.execute("SELECT name, seq, change FROM recall_watermarks").fetchall()
    if _has_table(conn, "recall_changes") and marks:
        low = min(int(m[2]) for m in marks)
        conn.execute(
            "INSERT INTO changes (kind, user_id, thread_id, message_id, at)"
            " SELECT CASE q.op WHEN 'update' THEN 'update' ELSE 'delete' END,"
            " coalesce(m.user_id, ''), m.thread_id, q.message_id,"
            " CAST(strftime('%s', 'now') AS INTEGER) * 1000000"
            " FROM recall_changes AS q LEFT JOIN messages AS m ON m.id = q.message_id"
            " WHERE q.change > ? AND (q.op != 'update' OR m.id IS NOT NULL) ORDER BY q.change",
            (low,),
        )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS recall_cursors (name TEXT PRIMARY KEY,"
        " cursor TEXT NOT NULL, updated_at INTEGER NOT NULL)"
    )
    for name, seq, _ in marks:
        (position,) = conn.execute(
            "SELECT coalesce(max(c.id), 0) FROM changes AS c JOIN messages AS m"
            " ON m.id = c.message_id WHERE c.kind = 'append' AND m.seq <= ?",
            (int(seq),),
        ).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO recall_cursors (name, cursor, updated_at)"
            " VALUES (?, ?, CAST(strftime('%s', 'now') AS INTEGER) * 1000000)",
            (name, f"{feed_id}:{int(position)}"),
        )
    conn.execute("DROP TRIGGER IF EXISTS recall_changes_ad")
    conn.execute("DROP TRIGGER IF EXISTS recall_changes_au")
    conn.execute("DROP TABLE IF EXISTS recall_changes")
    conn.execute("DROP TABLE recall_watermarks")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION`; return the version found before."""
    with write_transaction(conn):
        found = current_version(conn)
        if found > SCHEMA_VERSION:
            raise SchemaError(
                f"this store was written by a newer Tela Memory (schema {found}, this version "
                f"reads up to {SCHEMA_VERSION}); upgrade tela-memory-core"
            )
        if found == 0:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for version, script in enumerate(MIGRATIONS[found:], start=found + 1):
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if version == 3:
                _adopt_watermarks(conn)
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
    return found
