"""The embedded default index: tables ``recall_*`` in a SQLite file (usually the store's own).

Lexical search is FTS5 BM25 (porter stemming) over a turn's own text and, weighted 0.3, its
parent turn's text (the lexical twin of contextual vectors; tables in :mod:`.fts`). Vectors
are float32 blobs beside the text; dense search is exact cosine over a numpy matrix loaded per
user (or per thread set) and kept while the file does not change. Every filter is part of the
SQL that selects candidates: the FTS query itself carries a user / thread scope token and the
``WHERE`` clause repeats it, and the vectors searched are only those the filtered ``SELECT``
returned.

A thread is ``(user_id, thread_id)``: neighbours, per-thread word counts and a turn's parent
context (words and vector) stay inside the turn's own user's thread. Rows indexed before
threads were namespaced (no user) are given their owner when the file is opened
(:func:`~tela_memory.recall.fts.create_tables`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import numpy.typing as npt

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidArgumentError,
    TelaMemoryError,
)
from tela_memory.messages import Message
from tela_memory.recall.embedder import Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.fts import (
    PARENT_ID,
    STOPWORDS,
    create_tables,
    fts_query,
    indexed_texts,
    phrase,
    query_terms,
    row_scope,
    scope_conditions,
)
from tela_memory.recall.index import Document, Index, ThreadTermCounts, contextual_vectors
from tela_memory.recall.types import Hit, SearchFilter, ThreadKey
from tela_memory.stores._common import check_id, to_micros
from tela_memory.stores.sqlite_db import connect, write_transaction
from tela_memory.stores.sqlite_scrub import Scrub, scrub

# Follow the store: a message deleted from ``messages`` (delete_thread, erase_user, retention)
# leaves the index in the same transaction.
_FOLLOW_STORE = """
CREATE TRIGGER IF NOT EXISTS recall_follow_messages_ad AFTER DELETE ON messages BEGIN
    DELETE FROM recall_docs WHERE id = old.id;
END;
"""

_MAX_THREAD_TERMS = 32  # words of a query counted per thread (one GROUP BY query each)
_CACHE_BYTES = 256 * 1024 * 1024


class SQLiteIndex(Index):
    """Lexical + dense index in SQLite.

    Args:
        path: the database file (the store's, to share it), or ``":memory:"``.
        embedder: optional; without one the index is lexical only.
        connection: an open connection to use instead of ``path`` (for example an in-memory
            store's); the caller keeps ownership.
        timeout: seconds to wait for another writer.
        cache_bytes: memory for vector matrices kept between searches (per user or thread
            set, least recently used dropped first).
        context_weight: contextual vectors, see :attr:`Index.context_weight` (``0`` embeds
            each turn alone).
        parent_weight: BM25 weight of the parent turn's words beside the turn's own (1.0);
            ``0`` ranks by the turn's own words only. Query-time only: no rebuild needed.

    Nothing is opened until first use.
    """

    supports_lexical = True
    supports_dense = True
    supports_thread_terms = True

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        connection: sqlite3.Connection | None = None,
        timeout: float = 30.0,
        cache_bytes: int = _CACHE_BYTES,
        context_weight: float = 0.5,
        parent_weight: float = 0.3,
    ) -> None:
        super().__init__(embedder)
        if not 0.0 <= context_weight <= 10.0:
            raise TelaMemoryError(f"context_weight must be in [0, 10], got {context_weight!r}")
        if not 0.0 <= parent_weight <= 10.0:
            raise TelaMemoryError(f"parent_weight must be in [0, 10], got {parent_weight!r}")
        self.context_weight = context_weight
        self.parent_weight = float(parent_weight)
        self._cache_bytes = cache_bytes
        if path is None and connection is None:
            raise TelaMemoryError("SQLiteIndex needs a path (or ':memory:') or a connection")
        self._path = str(path) if path is not None else None
        self._given = connection
        self._conn: sqlite3.Connection | None = None
        self._timeout = timeout
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[Any, ...], tuple[npt.NDArray[np.int64], Vectors]] = (
            OrderedDict()
        )
        self._cache_version: tuple[int, int] | None = None
        self._model: tuple[str, int] | None = None
        self._store: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SQLiteIndex:
        """``sqlite:///relative.db``, ``sqlite:////absolute/path.db`` or
        ``sqlite:///:memory:`` (the store's convention), for :func:`open_index`."""
        raw = unquote(urlsplit(url).path)
        path = raw[1:] if raw.startswith("/") else raw
        if not path:
            raise InvalidArgumentError(f"index URL {url!r} names no file; try sqlite:///recall.db")
        return cls(path, **options)

    @classmethod
    def for_store(
        cls,
        store: Any,
        *,
        embedder: Embedder | None = None,
        context_weight: float = 0.5,
        follow: bool = True,
    ) -> SQLiteIndex:
        """An index in the same file as a :class:`~tela_memory.stores.sqlite.SQLiteStore`
        (sharing its connection when the store is in memory).

        With ``follow`` (the default) it follows the store (:meth:`~Index.follow`): every
        search sees what was appended before it, with no ``sync()`` to call."""
        path = store.path
        index = (
            cls(connection=store.connection(), embedder=embedder, context_weight=context_weight)
            if path is None
            else cls(path, embedder=embedder, context_weight=context_weight)
        )
        index._store = store  # opened (and migrated) before the index adds its tables
        return index.follow(store) if follow else index

    # -- connection -------------------------------------------------------------------------

    @property
    def watermark_name(self) -> str:
        """``sqlite:<absolute path>`` (or ``sqlite:connection:<id>`` when sharing a store's
        in-memory connection)."""
        if self._path is not None and self._path != ":memory:":
            return f"sqlite:{Path(self._path).resolve()}"
        return f"sqlite:connection:{id(self._given)}"

    @property
    def path(self) -> str | None:
        """The database file (``None`` when an injected connection is used)."""
        return self._path

    def connection(self) -> sqlite3.Connection:
        """The open connection (created and migrated on first use)."""
        if self._conn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        if self._store is not None:
            self._store.connection()
        try:
            if self._given is not None:
                conn = self._given
            else:
                assert self._path is not None
                conn = connect(self._path, what="recall index", timeout=self._timeout)
            create_tables(conn)
            has_messages = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='messages'"
            ).fetchone()
            if has_messages:
                conn.executescript(_FOLLOW_STORE)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"cannot open recall index at {self._path}: {exc}") from exc
        return conn

    def close(self) -> None:
        """Close the connection (an injected one is left open)."""
        with self._lock:
            if self._conn is not None and self._given is None:
                self._conn.close()
            self._conn = None
            self._cache.clear()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        with self._lock:
            try:
                with write_transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise _wrap(exc, self._path) from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self.connection()
        with self._lock:
            try:
                yield conn
            except sqlite3.Error as exc:
                raise _wrap(exc, self._path) from exc

    # -- model bookkeeping ------------------------------------------------------------------

    def stored_model(self) -> tuple[str, int] | None:
        """``(model_id, dimension)`` of the vectors stored, or ``None`` if there are none."""
        with self._read() as conn:
            rows = dict(
                conn.execute(
                    "SELECT key, value FROM recall_meta WHERE key IN ('model_id', 'dimension')"
                ).fetchall()
            )
        if "model_id" not in rows:
            return None
        return rows["model_id"], int(rows["dimension"])

    def _check_model(self, model_id: str, dimension: int) -> None:
        if self._model == (model_id, dimension):
            return
        stored = self.stored_model()
        if stored is not None and stored != (model_id, dimension):
            raise EmbeddingMismatchError(
                f"this index holds vectors of {stored[0]!r} (dimension {stored[1]}), not of "
                f"{model_id!r} (dimension {dimension}); open it with that model or rebuild it "
                "with reindex()"
            )
        if stored is not None:
            self._model = stored

    def drop_vectors(self) -> None:
        """Forget every stored vector and the model that made them (text stays indexed)."""
        with self._write() as conn:
            conn.execute("UPDATE recall_docs SET vec = NULL WHERE vec IS NOT NULL")
            conn.execute("DELETE FROM recall_meta WHERE key IN ('model_id', 'dimension')")
        self._model = None
        self._cache.clear()

    def embed_missing(self, *, batch_size: int = 256) -> int:
        """Embed documents indexed without a vector (indexed before an embedder was set)."""
        if self.embedder is None:
            return 0
        done = 0
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    "SELECT rowid, text, json_extract(message, '$.name'), id, "
                    "json_extract(message, '$.parent_id'), user_id, thread_id FROM recall_docs "
                    "WHERE vec IS NULL AND trim(text) != '' "
                    "ORDER BY created_at, rowid LIMIT ?",
                    (batch_size,),
                ).fetchall()
            if not rows:
                return done
            self._check_model(self.embedder.model_id, self.embedder.dimension)
            raw = self.embedder.embed([f"{r[2]}: {r[1]}" if r[2] else r[1] for r in rows])
            vecs: list[Vectors | None] = list(raw)
            if self.context_weight > 0:
                parents = [r[4] for r in rows if r[4] is not None]
                vecs = contextual_vectors(
                    vecs,
                    [r[3] for r in rows],
                    [r[4] for r in rows],
                    self._stored_vectors(parents),
                    self.context_weight,
                    threads=[(r[5], r[6]) for r in rows],
                )
            with self._write() as conn:
                self._remember_model(conn)
                conn.executemany(
                    "UPDATE recall_docs SET vec = ? WHERE rowid = ?",
                    [
                        (v.astype(np.float32).tobytes(), r[0])
                        for v, r in zip(vecs, rows, strict=True)
                        if v is not None
                    ],
                )
            done += len(rows)

    def _stored_vectors(self, ids: list[str]) -> dict[str, tuple[ThreadKey, Vectors]]:
        if not ids or self.embedder is None:
            return {}
        dim = self.embedder.dimension
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, user_id, thread_id, vec FROM recall_docs WHERE vec IS NOT NULL "
                "AND id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            ).fetchall()
        out: dict[str, tuple[ThreadKey, Vectors]] = {}
        for mid, user, thread, blob in rows:
            vec = np.frombuffer(blob, dtype=np.float32)
            if vec.shape[0] == dim:
                out[mid] = ((user, thread), vec)
        return out

    def _remember_model(self, conn: sqlite3.Connection) -> None:
        assert self.embedder is not None
        model = (self.embedder.model_id, self.embedder.dimension)
        conn.execute(
            "INSERT OR IGNORE INTO recall_meta(key, value) "
            "VALUES ('model_id', ?), ('dimension', ?)",
            (model[0], str(model[1])),
        )
        self._model = model

    # -- writes -----------------------------------------------------------------------------

    def _upsert(self, docs: list[Document]) -> None:
        with self._write() as conn:
            if any(d.vector is not None for d in docs):
                self._remember_model(conn)
            # a turn's context is its parent's words, only from the same (user, thread)
            own = {d.message.id: (d.thread_key, d.search_text) for d in docs}
            wanted = [d.message.parent_id for d in docs if d.message.parent_id is not None]
            outside = [p for p in dict.fromkeys(wanted) if p not in own]
            parents = indexed_texts(conn, outside) if outside else {}
            parents.update(own)

            def context(d: Document) -> str:
                found = parents.get(d.message.parent_id or "")
                return found[1] if found is not None and found[0] == d.thread_key else ""

            conn.executemany(
                "DELETE FROM recall_docs WHERE id = ?", [(d.message.id,) for d in docs]
            )
            rowids: list[int | None] = []
            for d in docs:
                m = d.message
                cur = conn.execute(
                    "INSERT INTO recall_docs(id, user_id, thread_id, role, created_at, metadata,"
                    " message, text, vec) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        m.id,
                        m.user_id,
                        m.thread_id,
                        m.role.value,
                        to_micros(m.created_at),
                        json.dumps(m.metadata, ensure_ascii=False),
                        m.model_dump_json(exclude_none=True),
                        d.text,
                        None if d.vector is None else d.vector.astype(np.float32).tobytes(),
                    ),
                )
                rowids.append(cur.lastrowid)
            # Children indexed earlier get the new text (the batch's own rows are not in
            # recall_fts yet, so this touches only turns outside the batch).
            conn.executemany(
                "UPDATE recall_fts SET context = ? WHERE rowid IN "
                f"(SELECT rowid FROM recall_docs WHERE {PARENT_ID} = ? AND user_id = ? "
                "AND thread_id = ?)",
                [(t, i, key[0], key[1]) for i, (key, t) in own.items()],
            )
            conn.executemany(
                "INSERT INTO recall_fts(rowid, text, context, scope) VALUES (?, ?, ?, ?)",
                [
                    (
                        rowid,
                        d.search_text,
                        context(d),
                        row_scope(str(d.message.user_id), str(d.message.thread_id)),
                    )
                    for d, rowid in zip(docs, rowids, strict=True)
                ],
            )

    def _forget_vectors(self) -> None:
        """Deleted vectors leave process memory now, not at the next dense search (and a
        search running meanwhile does not put them back)."""
        self._cache.clear()
        self._cache_version = None

    def _delete(self, ids: list[str]) -> int:
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM recall_docs WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(ids),),
            )
            self._forget_vectors()
            return cur.rowcount

    def _delete_where(self, flt: SearchFilter) -> int:
        where, params = _where(flt, "recall_docs")
        with self._write() as conn:
            cur = conn.execute(f"DELETE FROM recall_docs WHERE {where}", params)
            self._forget_vectors()
            return cur.rowcount

    def scrub(self) -> Scrub:
        """Merge the full-text segments, checkpoint and truncate the WAL (see
        :mod:`tela_memory.stores.sqlite_scrub`)."""
        with self._read() as conn:
            return scrub(conn, "index file")

    def _count(self, flt: SearchFilter) -> int:
        where, params = _where(flt, "d")
        with self._read() as conn:
            row = conn.execute(f"SELECT count(*) FROM recall_docs AS d WHERE {where}", params)
            return int(row.fetchone()[0])

    # -- search -----------------------------------------------------------------------------

    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        words = fts_query(query)
        scope = scope_conditions(flt)
        if words is None or scope is None:
            return []
        columns = "{text context}" if self.parent_weight > 0 else "text"
        match = " AND ".join([*scope, f"{columns} : ({words})"])
        where, params = _where(flt, "d")
        sql = (
            f"SELECT d.message, d.text, bm25(recall_fts, 1.0, {self.parent_weight!r}, 0.0) AS s "
            "FROM recall_fts JOIN recall_docs AS d ON d.rowid = recall_fts.rowid "
            f"WHERE recall_fts MATCH ? AND {where} ORDER BY s LIMIT ?"
        )
        with self._read() as conn:
            rows = conn.execute(sql, [match, *params, k]).fetchall()
        return [
            Hit(message=_message(r[0]), text=r[1], score=-r[2], lexical_score=-r[2]) for r in rows
        ]

    def _thread_term_counts(self, query: str, flt: SearchFilter) -> ThreadTermCounts:
        terms = query_terms(query)[:_MAX_THREAD_TERMS]
        scope = scope_conditions(flt)
        if not terms or scope is None:
            return ThreadTermCounts({}, {})
        where, params = _where(flt, "d")
        # a thread is (user, thread id): two users' threads of one id are counted apart
        sql = (
            "SELECT d.user_id, d.thread_id, count(*) FROM recall_fts "
            "JOIN recall_docs AS d ON d.rowid = recall_fts.rowid "
            f"WHERE recall_fts MATCH ? AND {where} GROUP BY d.user_id, d.thread_id"
        )
        with self._read() as conn:
            turns: dict[ThreadKey, int] = {
                (r[0], r[1]): int(r[2])
                for r in conn.execute(
                    f"SELECT d.user_id, d.thread_id, count(*) FROM recall_docs AS d "
                    f"WHERE {where} GROUP BY d.user_id, d.thread_id",
                    params,
                )
            }
            counts: dict[str, dict[ThreadKey, int]] = {
                w: {
                    (r[0], r[1]): int(r[2])
                    for r in conn.execute(
                        sql, [" AND ".join([*scope, f"text : {phrase(w)}"]), *params]
                    )
                }
                for w in terms
            }
        return ThreadTermCounts(turns, counts)

    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        rowids, matrix = self._matrix(flt)
        if rowids.size == 0:
            return []
        extra = flt.model_copy(update={"user_id": None, "thread_ids": None})
        if extra != SearchFilter():
            where, params = _where(flt, "d")
            with self._read() as conn:
                allowed = np.fromiter(
                    (
                        r[0]
                        for r in conn.execute(
                            f"SELECT rowid FROM recall_docs AS d WHERE {where} AND vec IS NOT NULL",
                            params,
                        )
                    ),
                    dtype=np.int64,
                )
            mask = np.isin(rowids, allowed, assume_unique=True)
            rowids, matrix = rowids[mask], matrix[mask]
            if rowids.size == 0:
                return []
        scores = matrix @ vector
        top = _top(scores, k)
        chosen = rowids[top]
        with self._read() as conn:
            got = {
                r[0]: (r[1], r[2])
                for r in conn.execute(
                    "SELECT rowid, message, text FROM recall_docs WHERE rowid IN "
                    "(SELECT value FROM json_each(?))",
                    (json.dumps(chosen.tolist()),),
                )
            }
        hits = []
        for rid, i in zip(chosen.tolist(), top.tolist(), strict=True):
            if rid in got:
                s = float(scores[i])
                hits.append(
                    Hit(message=_message(got[rid][0]), text=got[rid][1], score=s, dense_score=s)
                )
        return hits

    def _matrix(self, flt: SearchFilter) -> tuple[npt.NDArray[np.int64], Vectors]:
        """Vectors of the user (or thread set, or everything), cached while nothing changes."""
        with self._read() as conn:
            # data_version moves on commits of other connections, total_changes on ours (and
            # on those of a store sharing this connection, whose triggers delete from here).
            version = (int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes)
            if version != self._cache_version:
                self._cache.clear()
                self._cache_version = version
            key: tuple[Any, ...] = (flt.user_id, flt.thread_ids)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            scoped = SearchFilter(user_id=flt.user_id, thread_ids=flt.thread_ids)
            where, params = _where(scoped, "d")
            rows = conn.execute(
                f"SELECT rowid, vec FROM recall_docs AS d WHERE {where} AND vec IS NOT NULL "
                "ORDER BY rowid",
                params,
            ).fetchall()
        dim = self.embedder.dimension if self.embedder is not None else 0
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        matrix: Vectors = (
            np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            if rows
            else np.zeros((0, dim), dtype=np.float32)
        )
        with self._lock:  # unless something was deleted meanwhile (it would come back)
            if self._cache_version == version:
                self._cache[key] = (rowids, matrix)
                used = sum(r.nbytes + m.nbytes for r, m in self._cache.values())
                while used > self._cache_bytes and len(self._cache) > 1:
                    _, (r, m) = self._cache.popitem(last=False)
                    used -= r.nbytes + m.nbytes
        return rowids, matrix

    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        with self._read() as conn:
            row = conn.execute(
                "SELECT user_id, thread_id, created_at, id FROM recall_docs WHERE id = ?",
                (message_id,),
            ).fetchone()
            if row is None:
                return []
            where, params = _where(flt, "d")
            # the message's own thread: its user's, never another user's of the same id
            base = (
                "SELECT message, text FROM recall_docs AS d "
                f"WHERE d.user_id = ? AND d.thread_id = ? AND {where}"
            )
            user, thread, at, mid = row
            older = conn.execute(
                f"{base} AND (created_at < ? OR (created_at = ? AND id < ?)) "
                "ORDER BY created_at DESC, id DESC LIMIT ?",
                [user, thread, *params, at, at, mid, before],
            ).fetchall()
            newer = conn.execute(
                f"{base} AND (created_at > ? OR (created_at = ? AND id > ?)) "
                "ORDER BY created_at, id LIMIT ?",
                [user, thread, *params, at, at, mid, after],
            ).fetchall()
        return [Hit(message=_message(r[0]), text=r[1], score=0.0) for r in [*older[::-1], *newer]]

    def messages_after(
        self, thread_id: str, message_id: str | None, limit: int, *, user_id: str
    ) -> list[Message]:
        """Indexed messages of one of ``user_id``'s threads in time order after one (all when
        ``None``); a message of another thread or user gives nothing."""
        check_id("user_id", user_id)
        with self._read() as conn:
            if message_id is None:
                rows = conn.execute(
                    "SELECT message FROM recall_docs WHERE user_id = ? AND thread_id = ? "
                    "ORDER BY created_at, id LIMIT ?",
                    (user_id, thread_id, limit),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT d.message FROM recall_docs AS d, recall_docs AS m "
                    "WHERE m.id = ? AND m.user_id = ? AND m.thread_id = ? "
                    "AND d.user_id = m.user_id AND d.thread_id = m.thread_id "
                    "AND (d.created_at > m.created_at"
                    " OR (d.created_at = m.created_at AND d.id > m.id)) "
                    "ORDER BY d.created_at, d.id LIMIT ?",
                    (message_id, user_id, thread_id, limit),
                ).fetchall()
        return [_message(r[0]) for r in rows]


def _where(flt: SearchFilter, alias: str) -> tuple[str, list[Any]]:
    """SQL conditions (all values bound as parameters) for a filter."""
    a = alias
    parts: list[str] = []
    params: list[Any] = []
    if flt.user_id is not None:
        parts.append(f"{a}.user_id = ?")
        params.append(flt.user_id)
    for column, values in (("thread_id", flt.thread_ids), ("id", flt.message_ids)):
        if values is not None:
            parts.append(f"{a}.{column} IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(values)))
    if flt.roles is not None:
        parts.append(f"{a}.role IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([r.value for r in flt.roles]))
    if flt.since is not None:
        parts.append(f"{a}.created_at >= ?")
        params.append(to_micros(flt.since))
    if flt.until is not None:
        parts.append(f"{a}.created_at < ?")
        params.append(to_micros(flt.until))
    for key, want in flt.metadata.items():
        path = f'$."{key}"'
        options = want if isinstance(want, tuple) else (want,)
        ors: list[str] = []
        for value in options:
            if isinstance(value, bool):
                ors.append(f"json_type({a}.metadata, ?) = ?")
                params.extend([path, "true" if value else "false"])
            else:
                kind = "integer" if isinstance(value, int) else "text"
                ors.append(
                    f"(json_type({a}.metadata, ?) = ? AND json_extract({a}.metadata, ?) = ?)"
                )
                params.extend([path, kind, path, value])
        parts.append("(" + " OR ".join(ors or ["0"]) + ")")
    return (" AND ".join(parts) or "1"), params


def _top(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    if scores.shape[0] <= k:
        return np.argsort(-scores, kind="stable")
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def _message(raw: str) -> Message:
    return Message.model_validate_json(raw)


def _wrap(exc: sqlite3.Error, path: object) -> TelaMemoryError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return ConflictError(f"recall index {path} stayed locked by another writer: {text}")
    if "readonly" in text or "read-only" in text:
        return BackendUnavailable(f"recall index {path} is read-only: {text}")
    return BackendUnavailable(f"recall index {path}: {text}")


__all__ = ["STOPWORDS", "SQLiteIndex", "fts_query", "query_terms"]
