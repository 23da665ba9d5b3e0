"""``TelaStore``: LangGraph long-term memory (a ``BaseStore``) in the Tela SQLite file.

Items live in tables ``lgstore_*`` beside the message store's own (one file, WAL), so one
backup holds the conversations and what the agent learned from them. Semantic search embeds
the configured fields with any core :class:`~tela_memory.recall.Embedder` or LangChain
``Embeddings``; without an embedder a query ranks items by the words they share with it.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self, cast

import numpy as np

from tela_memory.errors import BackendUnavailable, InvalidMessageError
from tela_memory.privacy import UserData
from tela_memory.recall.embedder import Embedder, normalize
from tela_memory_langchain._optional import require

require("langgraph")

from langgraph.store.base import (  # noqa: E402
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lgstore_items(
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ttl_minutes REAL,
    expires_at INTEGER,
    PRIMARY KEY (ns, key)
);
CREATE INDEX IF NOT EXISTS lgstore_items_expiry ON lgstore_items(expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS lgstore_vectors(
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    path TEXT NOT NULL,
    text TEXT NOT NULL,
    vec BLOB,
    PRIMARY KEY (ns, key, path)
);
CREATE TRIGGER IF NOT EXISTS lgstore_items_ad AFTER DELETE ON lgstore_items BEGIN
    DELETE FROM lgstore_vectors WHERE ns = old.ns AND key = old.key;
END;
"""
_SEP = "."  # LangGraph forbids "." inside namespace labels, so joining by it is unambiguous.
_WORD = re.compile(r"\w+", re.UNICODE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _ns(namespace: tuple[str, ...]) -> str:
    return _SEP.join(namespace)


def _tuple(ns: str) -> tuple[str, ...]:
    return tuple(ns.split(_SEP)) if ns else ()


def _embedder(index: IndexConfig) -> Embedder:
    embed = index.get("embed")
    if embed is None:
        raise InvalidMessageError("index needs 'embed': an Embedder, Embeddings or a function")
    if isinstance(embed, Embedder):
        return embed
    from tela_memory_langchain.embeddings import LangChainEmbedder

    return LangChainEmbedder(ensure_embeddings(embed), dimension=index.get("dims"))


class TelaStore(BaseStore):
    """A LangGraph ``BaseStore`` on SQLite: get, put, delete, search, list namespaces, TTL.

    Args:
        path: the database file (usually the message store's), or ``":memory:"``.
        index: optional semantic search: ``{"embed": ..., "dims": ..., "fields": [...]}``
            as in LangGraph (``embed`` may also be a core ``Embedder``; ``fields`` defaults to
            the whole value, ``["$"]``).
        ttl: optional ``TTLConfig`` (``default_ttl`` in minutes, ``refresh_on_read``).

    Nothing is opened until first use. Use :meth:`for_store` to share a store's file.
    """

    supports_ttl = True

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._path = str(path)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self.ttl_config = ttl
        self.index_config = index
        self.embedder = _embedder(index) if index else None
        fields = list((index or {}).get("fields") or ["$"])
        self._fields = [(f, tokenize_path(f)) for f in fields]

    @classmethod
    def for_store(
        cls, store: Any, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> TelaStore:
        """A store in the same file as a ``SQLiteStore`` (its own ``:memory:`` database when
        the message store is in memory)."""
        path = getattr(store, "path", None)
        return cls(path if path is not None else ":memory:", index=index, ttl=ttl)

    # -- connection -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                try:
                    if self._path != ":memory:":
                        Path(self._path).parent.mkdir(parents=True, exist_ok=True)
                    conn = sqlite3.connect(
                        self._path,
                        timeout=self._timeout,
                        isolation_level=None,
                        check_same_thread=False,
                    )
                    if self._path != ":memory:":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
                except (sqlite3.Error, OSError) as exc:
                    raise BackendUnavailable(
                        f"cannot open the LangGraph store at {self._path}: {exc}"
                    ) from exc
                self._conn = conn
            return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"LangGraph store {self._path}: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK")
                raise BackendUnavailable(f"LangGraph store {self._path}: {exc}") from exc
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batch ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations in order, in one transaction; results in the same order."""
        items = list(ops)
        texts, queries = self._to_embed(items)
        vectors: dict[str, np.ndarray] = {}
        qvecs: dict[str, np.ndarray] = {}
        if self.embedder is not None:
            if texts:
                vectors = self._doc_vectors(texts, self.embedder.embed(texts))
            qvecs = {q: self._query_vector(self.embedder.embed_query(q)) for q in queries}
        return self._run(items, vectors, qvecs)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Async twin of :meth:`batch` (embeds with the embedder's async side)."""
        items = list(ops)
        texts, queries = self._to_embed(items)
        vectors: dict[str, np.ndarray] = {}
        qvecs: dict[str, np.ndarray] = {}
        if self.embedder is not None:
            if texts:
                vectors = self._doc_vectors(texts, await self.embedder.aembed(texts))
            for q in queries:
                qvecs[q] = self._query_vector(await self.embedder.aembed_query(q))
        return await asyncio.to_thread(self._run, items, vectors, qvecs)

    def _run(
        self,
        ops: list[Op],
        vectors: dict[str, np.ndarray],
        queries: dict[str, np.ndarray],
    ) -> list[Result]:
        results: list[Result] = []
        now = datetime.now(UTC)
        with self._tx() as conn:
            self._sweep(conn, now)
            for op in ops:
                if isinstance(op, GetOp):
                    results.append(self._get(conn, op, now))
                elif isinstance(op, PutOp):
                    self._put(conn, op, now, vectors)
                    results.append(None)
                elif isinstance(op, SearchOp):
                    results.append(self._search(conn, op, now, queries.get(op.query or "")))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list(conn, op, now))
                else:
                    raise InvalidMessageError(f"unknown store operation {op!r}")
        return results

    # -- operations -------------------------------------------------------------------------

    def _alive(self, now: datetime) -> tuple[str, int]:
        return "(expires_at IS NULL OR expires_at > ?)", _micros(now)

    def _refresh(self, conn: sqlite3.Connection, rows: Sequence[Any], now: datetime) -> None:
        for ns, key, ttl in rows:
            if ttl is not None:
                expires = _micros(now + timedelta(minutes=ttl))
                conn.execute(
                    "UPDATE lgstore_items SET expires_at = ? WHERE ns = ? AND key = ?",
                    (expires, ns, key),
                )

    def _wants_refresh(self, asked: bool) -> bool:
        return asked and (self.ttl_config or {}).get("refresh_on_read", True)

    def _get(self, conn: sqlite3.Connection, op: GetOp, now: datetime) -> Item | None:
        alive, t = self._alive(now)
        row = conn.execute(
            "SELECT ns, key, value, created_at, updated_at, ttl_minutes FROM lgstore_items"
            f" WHERE ns = ? AND key = ? AND {alive}",
            (_ns(op.namespace), op.key, t),
        ).fetchone()
        if row is None:
            return None
        if self._wants_refresh(op.refresh_ttl):
            self._refresh(conn, [(row[0], row[1], row[5])], now)
        return Item(
            value=json.loads(row[2]),
            key=row[1],
            namespace=op.namespace,
            created_at=_from_micros(row[3]),
            updated_at=_from_micros(row[4]),
        )

    def _put(
        self, conn: sqlite3.Connection, op: PutOp, now: datetime, vectors: dict[str, np.ndarray]
    ) -> None:
        ns = _ns(op.namespace)
        if op.value is None:
            conn.execute("DELETE FROM lgstore_items WHERE ns = ? AND key = ?", (ns, op.key))
            return
        try:
            value = json.dumps(op.value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidMessageError(
                f"value of {op.namespace}/{op.key} must be JSON-serialisable: {exc}"
            ) from exc
        ts = _micros(now)
        expires = _micros(now + timedelta(minutes=op.ttl)) if op.ttl is not None else None
        conn.execute(
            "INSERT INTO lgstore_items (ns, key, value, created_at, updated_at, ttl_minutes,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(ns, key) DO UPDATE SET"
            " value = excluded.value, updated_at = excluded.updated_at,"
            " ttl_minutes = excluded.ttl_minutes, expires_at = excluded.expires_at",
            (ns, op.key, value, ts, ts, op.ttl, expires),
        )
        conn.execute("DELETE FROM lgstore_vectors WHERE ns = ? AND key = ?", (ns, op.key))
        rows = []
        for path, text in self._item_texts(op):
            vec = vectors.get(text)
            blob = np.asarray(vec, dtype=np.float32).tobytes() if vec is not None else None
            rows.append((ns, op.key, path, text, blob))
        conn.executemany(
            "INSERT INTO lgstore_vectors (ns, key, path, text, vec) VALUES (?, ?, ?, ?, ?)", rows
        )

    def _search(
        self, conn: sqlite3.Connection, op: SearchOp, now: datetime, qvec: np.ndarray | None
    ) -> list[SearchItem]:
        alive, t = self._alive(now)
        prefix = _ns(op.namespace_prefix)
        where = alive
        args: list[Any] = [t]
        if prefix:
            where += " AND (ns = ? OR substr(ns, 1, ?) = ?)"
            args += [prefix, len(prefix) + 1, prefix + _SEP]
        rows = conn.execute(
            "SELECT ns, key, value, created_at, updated_at, ttl_minutes FROM lgstore_items"
            f" WHERE {where} ORDER BY updated_at DESC, ns, key",
            args,
        ).fetchall()
        found = [(r, json.loads(r[2])) for r in rows]
        if op.filter:
            found = [(r, v) for r, v in found if _matches(v, op.filter)]
        scores: dict[tuple[str, str], float] = {}
        if op.query and found:
            scores = self._scores(conn, [(r[0], r[1]) for r, _ in found], op.query, qvec)
            found.sort(key=lambda rv: -scores.get((rv[0][0], rv[0][1]), 0.0))
        page = found[op.offset : op.offset + op.limit]
        if self._wants_refresh(op.refresh_ttl):
            self._refresh(conn, [(r[0], r[1], r[5]) for r, _ in page], now)
        return [
            SearchItem(
                namespace=_tuple(r[0]),
                key=r[1],
                value=v,
                created_at=_from_micros(r[3]),
                updated_at=_from_micros(r[4]),
                score=scores.get((r[0], r[1])) if op.query else None,
            )
            for r, v in page
        ]

    def _scores(
        self,
        conn: sqlite3.Connection,
        keys: list[tuple[str, str]],
        query: str,
        qvec: np.ndarray | None,
    ) -> dict[tuple[str, str], float]:
        wanted = set(keys)
        scores: dict[tuple[str, str], float] = {}
        words = {w.lower() for w in _WORD.findall(query)}
        namespaces = sorted({ns for ns, _ in keys})
        marks = ",".join("?" * len(namespaces))
        rows = conn.execute(
            f"SELECT ns, key, text, vec FROM lgstore_vectors WHERE ns IN ({marks})", namespaces
        )
        for ns, key, text, blob in rows:
            if (ns, key) not in wanted:
                continue
            if qvec is not None and blob is not None:
                score = float(np.frombuffer(blob, dtype=np.float32) @ qvec)
            else:
                have = {w.lower() for w in _WORD.findall(text)}
                score = len(words & have) / len(words) if words else 0.0
            scores[(ns, key)] = max(score, scores.get((ns, key), float("-inf")))
        return scores

    def _list(
        self, conn: sqlite3.Connection, op: ListNamespacesOp, now: datetime
    ) -> list[tuple[str, ...]]:
        alive, t = self._alive(now)
        rows = conn.execute(f"SELECT DISTINCT ns FROM lgstore_items WHERE {alive}", (t,))
        spaces = [_tuple(r[0]) for r in rows]
        if op.match_conditions:
            spaces = [s for s in spaces if all(_ns_matches(c, s) for c in op.match_conditions)]
        if op.max_depth is not None:
            spaces = [s[: op.max_depth] for s in spaces]
        return sorted(set(spaces))[op.offset : op.offset + op.limit]

    # -- TTL --------------------------------------------------------------------------------

    def _sweep(self, conn: sqlite3.Connection, now: datetime) -> int:
        cur = conn.execute(
            "DELETE FROM lgstore_items WHERE expires_at IS NOT NULL AND expires_at <= ?",
            (_micros(now),),
        )
        return cur.rowcount

    def sweep_ttl(self) -> int:
        """Delete expired items now; return how many (reads never show them anyway)."""
        with self._tx() as conn:
            return self._sweep(conn, datetime.now(UTC))

    async def asweep_ttl(self) -> int:
        """Async twin of :meth:`sweep_ttl`."""
        return await asyncio.to_thread(self.sweep_ttl)

    # -- erasure ---------------------------------------------------------------------------

    def delete_namespace(self, namespace_prefix: tuple[str, ...]) -> int:
        """Delete every item (and its vectors) in a namespace and the namespaces under it;
        return how many items, expired ones included.

        Args:
            namespace_prefix: e.g. ``("memories", "alice")``; an empty prefix is refused.
        """
        prefix = _ns(_check_prefix(namespace_prefix))
        with self._tx() as conn:
            return conn.execute(
                "DELETE FROM lgstore_items WHERE ns = ? OR substr(ns, 1, ?) = ?",
                (prefix, len(prefix) + 1, prefix + _SEP),
            ).rowcount

    async def adelete_namespace(self, namespace_prefix: tuple[str, ...]) -> int:
        """Async twin of :meth:`delete_namespace`."""
        return await asyncio.to_thread(self.delete_namespace, namespace_prefix)

    # -- embedding --------------------------------------------------------------------------

    def _item_texts(self, op: PutOp) -> list[tuple[str, str]]:
        if op.value is None or op.index is False:
            return []
        fields = self._fields if op.index is None else [(f, tokenize_path(f)) for f in op.index]
        out: list[tuple[str, str]] = []
        for path, tokens in fields:
            if path == "$":
                texts = [json.dumps(op.value, ensure_ascii=False, sort_keys=True)]
            else:
                texts = get_text_at_path(op.value, tokens)
            if len(texts) == 1:
                out.append((path, texts[0]))
            else:
                out.extend((f"{path}.{i}", t) for i, t in enumerate(texts))
        return out

    def _to_embed(self, ops: list[Op]) -> tuple[list[str], list[str]]:
        """The distinct texts of the puts and the distinct search queries to embed."""
        if self.embedder is None:
            return [], []
        texts = {t for op in ops if isinstance(op, PutOp) for _, t in self._item_texts(op)}
        queries = {op.query for op in ops if isinstance(op, SearchOp) and op.query}
        return sorted(texts), sorted(queries)

    def _doc_vectors(self, texts: list[str], raw: Any) -> dict[str, np.ndarray]:
        """Unit rows by text (an ``Embedder`` need not normalise; cosine needs it)."""
        assert self.embedder is not None
        rows = normalize(raw, n=len(texts), dimension=self.embedder.dimension)
        return dict(zip(texts, rows, strict=True))

    def _query_vector(self, raw: Any) -> np.ndarray:
        assert self.embedder is not None
        vector: np.ndarray = normalize(raw, n=1, dimension=self.embedder.dimension)[0]
        return vector


def _check_prefix(namespace: tuple[str, ...]) -> tuple[str, ...]:
    if not isinstance(namespace, tuple) or not namespace:
        raise InvalidMessageError(
            f"a namespace prefix must be a non-empty tuple, got {namespace!r}"
        )
    for label in namespace:
        if not isinstance(label, str) or not label or _SEP in label:
            raise InvalidMessageError(
                f"namespace labels must be non-empty strings without '.', got {namespace!r}"
            )
    return namespace


class UserNamespaces:
    """A user's namespaces of a :class:`TelaStore`, for ``tela_memory.privacy.erase_user``.

    LangGraph leaves the namespace layout to the application; name where the user id sits
    with ``"{user_id}"``, and every item under those namespaces is erased with the user::

        erase_user("alice", messages, index, UserNamespaces(store, ("memories", "{user_id}")))

    A user id containing ``.`` cannot be a namespace label, so it owns nothing here.

    Args:
        store: the LangGraph store.
        *templates: namespace prefixes, each with a ``"{user_id}"`` label.
    """

    def __init__(self, store: TelaStore, *templates: tuple[str, ...]) -> None:
        if not templates:
            raise InvalidMessageError("UserNamespaces needs at least one namespace template")
        for template in templates:
            _check_prefix(template)
            if "{user_id}" not in template:
                raise InvalidMessageError(
                    f"namespace template {template!r} has no '{{user_id}}' label"
                )
        self.store = store
        self.templates = templates

    def _prefixes(self, user_id: str) -> list[tuple[str, ...]]:
        if not user_id or _SEP in user_id:
            return []
        return [tuple(user_id if p == "{user_id}" else p for p in t) for t in self.templates]

    def erase_user_data(self, user: UserData) -> int:
        """Delete the items under the user's namespaces; return how many."""
        return sum(self.store.delete_namespace(p) for p in self._prefixes(user.user_id))

    async def aerase_user_data(self, user: UserData) -> int:
        """Async twin of :meth:`erase_user_data`."""
        return sum([await self.store.adelete_namespace(p) for p in self._prefixes(user.user_id)])


def _ns_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    if not path:
        return True
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))


def _matches(value: Any, flt: dict[str, Any]) -> bool:
    return all(
        _compare(value.get(k) if isinstance(value, dict) else None, v) for k, v in flt.items()
    )


def _compare(have: Any, want: Any) -> bool:
    """LangGraph's filter semantics: equality, nested objects, ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(want, dict):
        if any(k.startswith("$") for k in want):
            return all(_operator(have, op, arg) for op, arg in want.items())
        return isinstance(have, dict) and all(_compare(have.get(k), v) for k, v in want.items())
    if isinstance(want, list | tuple):
        return (
            isinstance(have, list | tuple)
            and len(have) == len(want)
            and all(_compare(h, w) for h, w in zip(have, want, strict=True))
        )
    return cast("bool", have == want)


def _operator(have: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return cast("bool", have == arg)
    if op == "$ne":
        return cast("bool", have != arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if have is None:
            return False
        try:
            a, b = float(have), float(arg)
        except (TypeError, ValueError):
            return False
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    raise InvalidMessageError(f"unsupported filter operator {op!r} (use $eq $ne $gt $gte $lt $lte)")


__all__ = ["TelaStore", "UserNamespaces"]
