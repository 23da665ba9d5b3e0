"""Records in the SQLite file of a :class:`~tela_memory.stores.sqlite.SQLiteStore`.

The record store shares the message store's connection, lock and ``transaction()`` (one
SQLite plumbing: WAL, ``BEGIN IMMEDIATE``, rolled back on any interruption), in its own
tables: ``records`` (one row per kept version, keyed by user, namespace, key and version),
``record_changes`` (the feed) and ``record_meta``. A compare-and-set reads the key's versions
and writes inside one ``BEGIN IMMEDIATE`` transaction, so writers in several processes never
lose an update. A namespace is stored as its segments joined by ``\\x1f`` (a character no
segment may contain), so a prefix is a range of the primary key.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tela_memory.errors import SchemaError
from tela_memory.records.base import (
    KeyWrite,
    Namespace,
    Record,
    RecordChange,
    RecordChangeBatch,
    RecordErasureReceipt,
    RecordStore,
)
from tela_memory.records.feed import check_feed_limit, parse_cursor
from tela_memory.stores import _common as common
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.stores.sqlite_scrub import Scrub, scrub

RECORD_SCHEMA_VERSION = 1
SEP = "\x1f"
_COLS = (
    "user_id, namespace, key, version, kind, value, provenance, valid_from, invalid_at,"
    " created_at, updated_at, expires_at"
)
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS record_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (user_id TEXT NOT NULL, namespace TEXT NOT NULL,"
    " key TEXT NOT NULL, version INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,"
    " provenance TEXT NOT NULL, valid_from INTEGER NOT NULL, invalid_at INTEGER,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, expires_at INTEGER,"
    " PRIMARY KEY (user_id, namespace, key, version)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS records_expiry ON records (expires_at)"
    " WHERE expires_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS record_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, user_id TEXT NOT NULL, namespace TEXT, key TEXT, version INTEGER,"
    " at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS record_changes_user ON record_changes (user_id)",
)


class SQLiteRecordStore(RecordStore):
    """Record store in the file of a SQLite message store.

    Args:
        store: the :class:`SQLiteStore` whose file (and connection) to share, or a path
            (then this object opens, and closes, a ``SQLiteStore`` of its own on it).
        now: the clock (see :class:`~tela_memory.records.base.RecordStore`).
        timeout: with a path, seconds to wait for another writer's lock.
    """

    def __init__(
        self,
        store: SQLiteStore | str | Path,
        *,
        now: Callable[[], datetime] | None = None,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(now=now)
        self._owns = not isinstance(store, SQLiteStore)
        self.store = (
            store if isinstance(store, SQLiteStore) else SQLiteStore(store, timeout=timeout)
        )
        self._feed_id: str | None = None

    def __repr__(self) -> str:
        return f"SQLiteRecordStore({self.store!r})"

    def close(self) -> None:
        """Close the message store too when this object opened it (given a path)."""
        if self._owns:
            self.store.close()

    def scrub(self) -> Scrub:
        """Checkpoint and truncate the file's WAL after an erasure (deleted rows are already
        overwritten: the message store's connection has ``secure_delete`` on)."""
        with self.store.reading() as conn:
            return scrub(conn, "record file")

    # -- plumbing ------------------------------------------------------------------------

    def _ready(self) -> str:
        if self._feed_id is None:
            with self.store.transaction() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO record_meta VALUES ('schema_version', ?)",
                    (str(RECORD_SCHEMA_VERSION),),
                )
                conn.execute(
                    "INSERT OR IGNORE INTO record_meta VALUES ('feed_id', ?)", (uuid.uuid4().hex,)
                )
                meta = dict(conn.execute("SELECT key, value FROM record_meta").fetchall())
            if int(meta["schema_version"]) > RECORD_SCHEMA_VERSION:
                raise SchemaError(
                    f"the records of {self.store.path} have schema {meta['schema_version']},"
                    f" newer than this version of Tela Memory ({RECORD_SCHEMA_VERSION})"
                )
            self._feed_id = meta["feed_id"]
        return self._feed_id

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._ready()
        with self.store.transaction() as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        self._ready()
        with self.store.reading() as conn:
            yield conn

    # -- primitives ----------------------------------------------------------------------

    def _rows(self, tx: Any, user_id: str, namespace: Namespace, key: str) -> list[Record]:
        rows = tx.execute(
            f"SELECT {_COLS} FROM records WHERE user_id = ? AND namespace = ? AND key = ?"
            " ORDER BY version",
            (user_id, SEP.join(namespace), key),
        ).fetchall()
        return [_to_record(r) for r in rows]

    def _write(self, tx: Any, user_id: str, namespace: Namespace, key: str, w: KeyWrite) -> None:
        ns = SEP.join(namespace)
        if w.remove:
            tx.executemany(
                "DELETE FROM records WHERE user_id = ? AND namespace = ? AND key = ?"
                " AND version = ?",
                [(user_id, ns, key, v) for v in w.remove],
            )
        if w.upsert:
            tx.executemany(
                f"INSERT OR REPLACE INTO records ({_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [_to_row(r) for r in w.upsert],
            )
        self._emit(tx, w.events)

    def _emit(self, tx: Any, events: Sequence[RecordChange]) -> None:
        tx.executemany(
            "INSERT INTO record_changes (kind, user_id, namespace, key, version, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    e.kind,
                    e.user_id,
                    None if e.namespace is None else SEP.join(e.namespace),
                    e.key,
                    e.version,
                    common.to_micros(e.at),
                )
                for e in events
            ],
        )

    def _scan(
        self,
        tx: Any,
        user_id: str,
        prefix: Namespace,
        *,
        kind: str | None,
        current_only: bool,
        now: datetime,
        limit: int,
        offset: int,
    ) -> list[Record]:
        sql = [f"SELECT {_COLS} FROM records WHERE user_id = ?"]
        params: list[Any] = [user_id]
        if prefix:
            p = SEP.join(prefix)
            sql.append("AND (namespace = ? OR (namespace >= ? AND namespace < ?))")
            params += [p, p + SEP, p + chr(ord(SEP) + 1)]
        if kind is not None:
            sql.append("AND kind = ?")
            params.append(kind)
        if current_only:
            sql.append("AND invalid_at IS NULL")
        sql.append("AND (expires_at IS NULL OR expires_at > ?)")
        sql.append("ORDER BY namespace, key, version LIMIT ? OFFSET ?")
        params += [common.to_micros(now), limit, offset]
        return [_to_record(r) for r in tx.execute(" ".join(sql), params)]

    def _expired_keys(self, tx: Any, now: datetime) -> list[tuple[str, Namespace, str]]:
        rows = tx.execute(
            "SELECT DISTINCT user_id, namespace, key FROM records WHERE expires_at <= ?"
            " ORDER BY user_id, namespace, key",
            (common.to_micros(now),),
        ).fetchall()
        return [(u, tuple(ns.split(SEP)), k) for u, ns, k in rows]

    def _erase(self, tx: Any, user_id: str, at: datetime) -> RecordErasureReceipt:
        (keys,) = tx.execute(
            "SELECT count(*) FROM (SELECT DISTINCT namespace, key FROM records WHERE user_id = ?)",
            (user_id,),
        ).fetchone()
        versions = tx.execute("DELETE FROM records WHERE user_id = ?", (user_id,)).rowcount
        events = tx.execute(
            "DELETE FROM record_changes WHERE user_id = ? AND kind != 'user_erased'", (user_id,)
        ).rowcount
        if versions or events:
            tx.execute("DELETE FROM record_changes WHERE user_id = ?", (user_id,))
            self._emit(tx, [RecordChange("user_erased", user_id, None, None, None, at)])
        return RecordErasureReceipt(user_id=user_id, records=keys, versions=versions)

    def changes(self, since: str | None = None, *, limit: int = 1000) -> RecordChangeBatch:
        """Record events after ``since``; see :meth:`RecordStore.changes`. The cursor is
        ``rec-sqlite:<feed id of the file>:<event number>``."""
        check_feed_limit(limit)
        feed_id = self._ready()
        with self._reading() as conn:
            found = conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'record_changes'"
            ).fetchone()
            after = parse_cursor(since, "rec-sqlite", feed_id, found[0] if found else 0)
            rows = conn.execute(
                "SELECT seq, kind, user_id, namespace, key, version, at FROM record_changes"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        events = [
            RecordChange(
                kind=r[1],
                user_id=r[2],
                namespace=None if r[3] is None else tuple(r[3].split(SEP)),
                key=r[4],
                version=r[5],
                at=common.from_micros(r[6]),
            )
            for r in rows
        ]
        last = rows[-1][0] if rows else after
        return RecordChangeBatch(events, f"rec-sqlite:{feed_id}:{last}", more)


def _to_row(r: Record) -> tuple[Any, ...]:
    return (
        r.user_id,
        SEP.join(r.namespace),
        r.key,
        r.version,
        r.kind,
        json.dumps(r.value, ensure_ascii=False),
        json.dumps(list(r.provenance)),
        common.to_micros(r.valid_from),
        None if r.invalid_at is None else common.to_micros(r.invalid_at),
        common.to_micros(r.created_at),
        common.to_micros(r.updated_at),
        None if r.expires_at is None else common.to_micros(r.expires_at),
    )


def _to_record(row: Sequence[Any]) -> Record:
    return Record.model_construct(
        user_id=row[0],
        namespace=tuple(row[1].split(SEP)),
        key=row[2],
        version=row[3],
        kind=row[4],
        value=json.loads(row[5]),
        provenance=tuple(json.loads(row[6])),
        valid_from=common.from_micros(row[7]),
        invalid_at=None if row[8] is None else common.from_micros(row[8]),
        created_at=common.from_micros(row[9]),
        updated_at=common.from_micros(row[10]),
        expires_at=None if row[11] is None else common.from_micros(row[11]),
    )


__all__ = ["RECORD_SCHEMA_VERSION", "SQLiteRecordStore"]
