"""Tables of the store and their versioned migrations.

The version lives in the table ``meta`` of the store's PostgreSQL schema (``tela`` by
default). :func:`migrate` moves it up one migration at a time inside one transaction, under
an advisory lock, so processes opening the same database at once migrate it exactly once;
a database written by a newer version than this code is refused, not touched.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import LiteralString

from tela_memory.errors import SchemaError
from tela_memory_postgres._driver import Exec, Fetch, Op
from tela_memory_postgres._sql import compose

MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    # 1: users, threads (the sessions), branches, the message tree, the change feed and the
    # cursors of its followers
    (
        "CREATE TABLE {s}.users ("
        " id text PRIMARY KEY,"
        " created_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE {s}.threads ("
        " user_id text NOT NULL REFERENCES {s}.users (id),"
        " id text NOT NULL,"
        " title text,"
        " tags json NOT NULL DEFAULT '[]',"
        " metadata json NOT NULL DEFAULT '{{}}',"
        " default_branch text NOT NULL,"
        " message_count integer NOT NULL DEFAULT 0,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (user_id, id))",
        "CREATE INDEX threads_by_activity ON {s}.threads (user_id, updated_at DESC, id DESC)",
        "CREATE TABLE {s}.branches ("
        " user_id text NOT NULL,"
        " thread_id text NOT NULL,"
        " name text NOT NULL,"
        " head_id text,"
        " head_depth integer NOT NULL DEFAULT 0,"
        " forked_from text,"
        " created_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (user_id, thread_id, name),"
        " FOREIGN KEY (user_id, thread_id) REFERENCES {s}.threads (user_id, id)"
        " ON DELETE CASCADE)",
        "CREATE INDEX branches_by_head ON {s}.branches (head_id)",
        "CREATE TABLE {s}.messages ("
        " seq bigint GENERATED ALWAYS AS IDENTITY,"
        " id text PRIMARY KEY,"
        " user_id text NOT NULL,"
        " thread_id text NOT NULL,"
        " parent_id text,"
        " depth integer NOT NULL,"
        " role text NOT NULL,"
        " name text,"
        " content json NOT NULL,"
        " metadata json NOT NULL,"
        " created_at timestamptz NOT NULL,"
        " FOREIGN KEY (user_id, thread_id) REFERENCES {s}.threads (user_id, id)"
        " ON DELETE CASCADE)",
        "CREATE INDEX messages_by_parent ON {s}.messages (parent_id)",
        "CREATE INDEX messages_by_thread ON {s}.messages (user_id, thread_id, seq)",
        "CREATE INDEX messages_by_time ON {s}.messages (created_at)",
        "CREATE UNIQUE INDEX messages_by_seq ON {s}.messages (seq)",
        "CREATE TABLE {s}.changes ("
        " id bigint GENERATED ALWAYS AS IDENTITY,"
        " xid xid8 NOT NULL DEFAULT pg_current_xact_id(),"
        " kind text NOT NULL,"
        " user_id text NOT NULL,"
        " thread_id text,"
        " message_id text,"
        " at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (xid, id))",
        "CREATE INDEX changes_by_user ON {s}.changes (user_id)",
        "CREATE TABLE {s}.cursors ("
        " name text PRIMARY KEY,"
        " cursor text NOT NULL,"
        " updated_at timestamptz NOT NULL DEFAULT now())",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)

_LOCK = "SELECT pg_advisory_xact_lock(%s)"
_CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {s}"
_HAS_META = "SELECT to_regclass(%s) IS NOT NULL"
_CREATE_META = "CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)"
_VERSION = "SELECT value FROM {s}.meta WHERE key = 'schema_version'"
_SET = (
    "INSERT INTO {s}.meta (key, value) VALUES (%s, %s)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


def lock_key(schema: str, what: str = "migrate") -> int:
    """A signed 64-bit advisory-lock key for ``what`` in ``schema``."""
    digest = hashlib.blake2b(f"tela-memory:{what}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def quoted(schema: str) -> str:
    """The schema name as a quoted identifier, for ``to_regclass`` (a value, not SQL)."""
    return '"' + schema.replace('"', '""') + '"'


def migrate(schema: str) -> Op[int]:
    """Bring the store's tables to :data:`SCHEMA_VERSION` (run in one write transaction);
    return the version found before (0 for a new store)."""
    yield Exec(compose(_LOCK, schema), (lock_key(schema),))
    [(exists,)] = yield Fetch(b"SELECT to_regnamespace(%s) IS NOT NULL", (quoted(schema),))
    if not exists:
        yield Exec(compose(_CREATE_SCHEMA, schema))
    [(has_meta,)] = yield Fetch(_HAS_META.encode(), (quoted(schema) + ".meta",))
    found = 0
    if has_meta:
        rows = yield Fetch(compose(_VERSION, schema))
        try:
            found = int(rows[0][0])
        except (IndexError, TypeError, ValueError) as exc:
            raise SchemaError(
                f"the Tela Memory schema version in PostgreSQL schema {schema!r} is unreadable"
            ) from exc
    else:
        yield Exec(compose(_CREATE_META, schema))
        yield Exec(compose(_SET, schema), ("feed_id", uuid.uuid4().hex[:16]))
    if found > SCHEMA_VERSION:
        raise SchemaError(
            f"PostgreSQL schema {schema!r} was written by a newer Tela Memory (schema {found};"
            f" this version reads up to {SCHEMA_VERSION}): upgrade tela-memory-postgres"
        )
    for script in MIGRATIONS[found:]:
        for statement in script:
            yield Exec(compose(statement, schema))
    if found != SCHEMA_VERSION:
        yield Exec(compose(_SET, schema), ("schema_version", str(SCHEMA_VERSION)))
    return found


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "lock_key", "migrate", "quoted"]
