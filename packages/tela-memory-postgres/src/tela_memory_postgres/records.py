"""``PostgresRecords``: the Tela Memory record store in the database of a ``PostgresStore``.

Tables ``records`` (one row per kept version, keyed by user, namespace, key and version) and
``record_changes`` (the feed) live in the store's PostgreSQL schema, beside its message
tables, with their own schema version in ``meta``. A write runs in one transaction of the
store's connections and first takes an advisory lock on its key, so compare-and-set loses no
update across threads and processes. A namespace is stored as its segments joined by
``\\x1f`` (a character no segment may hold) in the ``C`` collation, so a prefix is a range of
the primary key. The feed, as the message store's, only hands out events of transactions
that have ended, so a slow writer never slips behind a cursor.

The rules of records (versions, history, TTL, compare-and-set) live once in
:class:`~tela_memory.records.base.RecordStore`; this module gives it its primitives.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, LiteralString

import psycopg

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
from tela_memory.records.feed import check_feed_limit
from tela_memory.stores.changes import ChangeFeedGapError
from tela_memory_postgres._driver import DRIVER_ERRORS, wrap
from tela_memory_postgres._sql import Statements, compose
from tela_memory_postgres.store import PostgresStore

RECORD_SCHEMA_VERSION = 1
SEP = "\x1f"
_COLS: LiteralString = (
    "user_id, namespace, key, version, kind, value::text, provenance::text, valid_from,"
    " invalid_at, created_at, updated_at, expires_at"
)
_SCHEMA: tuple[LiteralString, ...] = (
    "CREATE TABLE IF NOT EXISTS {s}.records (user_id text NOT NULL,"
    ' namespace text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL,'
    " version integer NOT NULL, kind text NOT NULL, value json NOT NULL,"
    " provenance json NOT NULL, valid_from timestamptz NOT NULL, invalid_at timestamptz,"
    " created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
    " expires_at timestamptz, PRIMARY KEY (user_id, namespace, key, version))",
    "CREATE INDEX IF NOT EXISTS records_expiry ON {s}.records (expires_at)"
    " WHERE expires_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS {s}.record_changes ("
    " id bigint GENERATED ALWAYS AS IDENTITY,"
    " xid xid8 NOT NULL DEFAULT pg_current_xact_id(), kind text NOT NULL,"
    " user_id text NOT NULL, namespace text, key text, version integer,"
    " at timestamptz NOT NULL, PRIMARY KEY (xid, id))",
    "CREATE INDEX IF NOT EXISTS record_changes_by_user ON {s}.record_changes (user_id)",
)
_LOCK: LiteralString = "SELECT pg_advisory_xact_lock(%s)"
_META: LiteralString = "INSERT INTO {s}.meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING"
SQL: dict[str, LiteralString] = {
    "meta": (
        "SELECT key, value FROM {s}.meta WHERE key IN ('records_schema_version', 'records_feed_id')"
    ),
    "lock_key": "SELECT pg_advisory_xact_lock(%s)",
    "rows": (
        "SELECT " + _COLS + " FROM {s}.records WHERE user_id = %s AND namespace = %s"
        " AND key = %s ORDER BY version"
    ),
    "remove": (
        "DELETE FROM {s}.records WHERE user_id = %s AND namespace = %s AND key = %s"
        " AND version = ANY(%s::int[])"
    ),
    "upsert": (
        "INSERT INTO {s}.records (user_id, namespace, key, version, kind, value, provenance,"
        " valid_from, invalid_at, created_at, updated_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s::json, %s::json, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id, namespace, key, version) DO UPDATE SET kind = excluded.kind,"
        " value = excluded.value, provenance = excluded.provenance,"
        " valid_from = excluded.valid_from, invalid_at = excluded.invalid_at,"
        " created_at = excluded.created_at, updated_at = excluded.updated_at,"
        " expires_at = excluded.expires_at"
    ),
    "emit": (
        "INSERT INTO {s}.record_changes (kind, user_id, namespace, key, version, at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
    ),
    "scan": (
        "SELECT " + _COLS + " FROM {s}.records WHERE user_id = %(user)s"
        " AND (%(prefix)s::text IS NULL OR namespace = %(prefix)s"
        " OR (namespace >= %(low)s AND namespace < %(high)s))"
        " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (NOT %(current)s OR invalid_at IS NULL)"
        " AND (expires_at IS NULL OR expires_at > %(now)s)"
        " ORDER BY namespace, key, version LIMIT %(limit)s OFFSET %(offset)s"
    ),
    "expired": (
        "SELECT DISTINCT user_id, namespace, key FROM {s}.records WHERE expires_at <= %s"
        " ORDER BY user_id, namespace, key"
    ),
    "count_keys": (
        "SELECT count(*) FROM (SELECT DISTINCT namespace, key FROM {s}.records"
        " WHERE user_id = %s) AS k"
    ),
    "erase_rows": "DELETE FROM {s}.records WHERE user_id = %s",
    "erase_events": ("DELETE FROM {s}.record_changes WHERE user_id = %s AND kind <> 'user_erased'"),
    "erase_all_events": "DELETE FROM {s}.record_changes WHERE user_id = %s",
    "changes": (
        "SELECT xid::text, id, kind, user_id, namespace, key, version, at"
        " FROM {s}.record_changes WHERE (xid, id) > (%s::xid8, %s)"
        " AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT %s"
    ),
    "feed_end": "SELECT xid::text, id FROM {s}.record_changes ORDER BY xid DESC, id DESC LIMIT 1",
}


def _key_lock(user_id: str, ns: str, key: str) -> int:
    digest = hashlib.blake2b(
        json.dumps(["tela-record", user_id, ns, key]).encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(slots=True)
class _Tx:
    conn: psycopg.Connection[Any]
    write: bool


class PostgresRecords(RecordStore):
    """Record store in the database (and PostgreSQL schema) of a :class:`PostgresStore`.

    Args:
        store: the ``PostgresStore`` whose connections and schema to share, or a
            ``postgresql://`` URL (then this object opens, and closes, a store of its own).
        now: the clock (see :class:`~tela_memory.records.base.RecordStore`).
        schema: with a URL, the PostgreSQL schema (``tela`` by default).
    """

    def __init__(
        self,
        store: PostgresStore | str,
        *,
        now: Callable[[], datetime] | None = None,
        schema: str = "tela",
    ) -> None:
        super().__init__(now=now)
        self._owns = not isinstance(store, PostgresStore)
        self.store = (
            store if isinstance(store, PostgresStore) else PostgresStore(store, schema=schema)
        )
        self._q = Statements(self.store.schema, SQL)
        self._feed_id: str | None = None

    def __repr__(self) -> str:
        return f"PostgresRecords({self.store!r})"

    def close(self) -> None:
        """Close the message store too when this object opened it (given a URL)."""
        if self._owns:
            self.store.close()

    # -- plumbing ------------------------------------------------------------------------

    @contextmanager
    def _connection(self, write: bool) -> Iterator[_Tx]:
        store = self.store
        store._check_open()
        store._ensure()
        try:
            with store._sync.connection() as conn:
                if write or not conn.autocommit:
                    with conn.transaction():
                        yield _Tx(conn, write)
                else:
                    yield _Tx(conn, write)
        except DRIVER_ERRORS as exc:
            raise wrap(exc, store.address) from exc

    def _ready(self) -> str:
        if self._feed_id is None:
            with self._connection(write=True) as tx:
                schema = self.store.schema
                tx.conn.execute(compose(_LOCK, schema), (_key_lock(schema, "", "schema"),))
                for statement in _SCHEMA:
                    tx.conn.execute(compose(statement, schema))
                meta_sql = compose(_META, schema)
                tx.conn.execute(meta_sql, ("records_schema_version", str(RECORD_SCHEMA_VERSION)))
                tx.conn.execute(meta_sql, ("records_feed_id", uuid.uuid4().hex[:16]))
                meta = dict(tx.conn.execute(self._q.meta).fetchall())
            if int(meta["records_schema_version"]) > RECORD_SCHEMA_VERSION:
                raise SchemaError(
                    f"the records in PostgreSQL schema {self.store.schema!r} have schema"
                    f" {meta['records_schema_version']}, newer than this version of Tela Memory"
                    f" ({RECORD_SCHEMA_VERSION}): upgrade tela-memory-postgres"
                )
            self._feed_id = str(meta["records_feed_id"])
        return self._feed_id

    @contextmanager
    def _transaction(self) -> Iterator[_Tx]:
        self._ready()
        with self._connection(write=True) as tx:
            yield tx

    @contextmanager
    def _reading(self) -> Iterator[_Tx]:
        self._ready()
        with self._connection(write=False) as tx:
            yield tx

    # -- primitives ----------------------------------------------------------------------

    def _rows(self, tx: Any, user_id: str, namespace: Namespace, key: str) -> list[Record]:
        ns = SEP.join(namespace)
        if tx.write:  # the key's writers queue here, so a compare-and-set reads what it writes
            tx.conn.execute(self._q.lock_key, (_key_lock(user_id, ns, key),))
        rows = tx.conn.execute(self._q.rows, (user_id, ns, key)).fetchall()
        return [_to_record(r) for r in rows]

    def _write(self, tx: Any, user_id: str, namespace: Namespace, key: str, w: KeyWrite) -> None:
        ns = SEP.join(namespace)
        conn: psycopg.Connection[Any] = tx.conn
        if w.remove:
            conn.execute(self._q.remove, (user_id, ns, key, list(w.remove)))
        if w.upsert:
            with conn.cursor() as cur:
                cur.executemany(self._q.upsert, [_to_row(r) for r in w.upsert])
        self._emit(conn, w.events)

    def _emit(self, conn: psycopg.Connection[Any], events: Sequence[RecordChange]) -> None:
        if not events:
            return
        with conn.cursor() as cur:
            cur.executemany(
                self._q.emit,
                [
                    (
                        e.kind,
                        e.user_id,
                        None if e.namespace is None else SEP.join(e.namespace),
                        e.key,
                        e.version,
                        e.at,
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
        p = SEP.join(prefix) if prefix else None
        params = {
            "user": user_id,
            "prefix": p,
            "low": None if p is None else p + SEP,
            "high": None if p is None else p + chr(ord(SEP) + 1),
            "kind": kind,
            "current": current_only,
            "now": now,
            "limit": limit,
            "offset": offset,
        }
        return [_to_record(r) for r in tx.conn.execute(self._q.scan, params).fetchall()]

    def _expired_keys(self, tx: Any, now: datetime) -> list[tuple[str, Namespace, str]]:
        rows = tx.conn.execute(self._q.expired, (now,)).fetchall()
        return [(u, tuple(ns.split(SEP)), k) for u, ns, k in rows]

    def _erase(self, tx: Any, user_id: str, at: datetime) -> RecordErasureReceipt:
        conn: psycopg.Connection[Any] = tx.conn
        [(keys,)] = conn.execute(self._q.count_keys, (user_id,)).fetchall()
        versions = conn.execute(self._q.erase_rows, (user_id,)).rowcount
        events = conn.execute(self._q.erase_events, (user_id,)).rowcount
        if versions or events:
            conn.execute(self._q.erase_all_events, (user_id,))
            self._emit(conn, [RecordChange("user_erased", user_id, None, None, None, at)])
        return RecordErasureReceipt(user_id=user_id, records=keys, versions=versions)

    def changes(self, since: str | None = None, *, limit: int = 1000) -> RecordChangeBatch:
        """Record events after ``since``; see :meth:`RecordStore.changes`. The cursor is
        ``rec-pg:<feed id>:<transaction id>.<event id>``."""
        check_feed_limit(limit)
        feed_id = self._ready()
        xid, number = _position(since, feed_id)
        with self._reading() as tx:
            rows = tx.conn.execute(self._q.changes, (str(xid), number, limit + 1)).fetchall()
            if not rows and since is not None:
                end = tx.conn.execute(self._q.feed_end).fetchall()
                last = (int(end[0][0]), int(end[0][1])) if end else (0, 0)
                if (xid, number) > last:
                    raise ChangeFeedGapError("the cursor is ahead of this record feed")
        more = len(rows) > limit
        rows = rows[:limit]
        if rows:
            xid, number = int(rows[-1][0]), int(rows[-1][1])
        events = [
            RecordChange(
                kind=r[2],
                user_id=r[3],
                namespace=None if r[4] is None else tuple(r[4].split(SEP)),
                key=r[5],
                version=r[6],
                at=_utc(r[7]),
            )
            for r in rows
        ]
        return RecordChangeBatch(events, f"rec-pg:{feed_id}:{xid}.{number}", more)


def _position(since: str | None, feed_id: str) -> tuple[int, int]:
    if since is None:
        return 0, 0
    if not isinstance(since, str):
        raise ChangeFeedGapError(f"not a record feed cursor: {type(since).__name__}")
    parts = since.split(":")
    numbers = parts[2].split(".") if len(parts) == 3 else []
    if (
        len(parts) != 3
        or parts[0] != "rec-pg"
        or parts[1] != feed_id
        or len(numbers) != 2
        or not all(n.isascii() and n.isdigit() and len(n) <= 20 for n in numbers)
    ):
        shown = since if len(since) <= 80 else since[:80] + "..."
        raise ChangeFeedGapError(f"{shown!r} is not a cursor of this record feed")
    return int(numbers[0]), int(numbers[1])


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _opt(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _to_row(r: Record) -> tuple[Any, ...]:
    return (
        r.user_id,
        SEP.join(r.namespace),
        r.key,
        r.version,
        r.kind,
        json.dumps(r.value, ensure_ascii=False),
        json.dumps(list(r.provenance)),
        r.valid_from,
        r.invalid_at,
        r.created_at,
        r.updated_at,
        r.expires_at,
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
        valid_from=_utc(row[7]),
        invalid_at=_opt(row[8]),
        created_at=_utc(row[9]),
        updated_at=_utc(row[10]),
        expires_at=_opt(row[11]),
    )


__all__ = ["RECORD_SCHEMA_VERSION", "PostgresRecords"]
