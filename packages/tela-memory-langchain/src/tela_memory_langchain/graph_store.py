"""``TelaStore``: LangGraph long-term memory (a ``BaseStore``) in the Tela SQLite file.

Items live in tables ``lgstore_*`` beside the message store's own (one file, WAL), so one
backup holds the conversations and what the agent learned from them. Semantic search embeds
the configured fields with any core :class:`~tela_memory.recall.Embedder` or LangChain
``Embeddings``; without an embedder a query ranks items by the words they share with it.

**Ownership.** A ``TelaStore`` acts for one user (``user_id=``): every namespace is inside that
user's space, so Bob's ``("memories",)`` and Ada's ``("memories",)`` are two namespaces, and
no ``get``, ``search`` (``()`` included), ``list_namespaces`` or ``put`` of Bob's can reach or
pre-create an item of Ada's, whatever namespace tuple he names. Built with ``all_users=True``
(an operator's view) the store sees every space, each under its owner's id as the first label:
Ada's ``("memories",)`` is ``("ada", "memories")`` there. Built with neither, ``ScopeError``.
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
from typing import Any, Self

import numpy as np

from tela_memory.errors import BackendUnavailable, InvalidMessageError, ScopeError
from tela_memory.privacy import UserData
from tela_memory.recall.embedder import Embedder, normalize
from tela_memory.stores import UserStore
from tela_memory.stores._common import check_id
from tela_memory.stores.sqlite_db import connect, write_transaction
from tela_memory_langchain._graph_filters import matches, ns_matches
from tela_memory_langchain._graph_schema import migrate
from tela_memory_langchain._optional import require

require("langgraph")

from langgraph.store.base import (  # noqa: E402
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
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

_SEP = "."  # LangGraph forbids "." inside namespace labels, so joining by it is unambiguous.
_WORD = re.compile(r"\w+", re.UNICODE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = "owner, ns, key, value, created_at, updated_at, ttl_minutes"


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _ns(namespace: tuple[str, ...]) -> str:
    return _SEP.join(namespace)


def _tuple(ns: str) -> tuple[str, ...]:
    return tuple(ns.split(_SEP)) if ns else ()


def _under(prefix: str) -> tuple[str, list[Any]]:
    """SQL for "namespace ``ns`` is ``prefix`` or below it" (labels match whole). The range
    (``"/"`` follows ``"."``) lets SQLite seek the ``(owner, ns, key)`` key; the exact test
    then drops the ``"alice-x"`` that sort between ``"alice"`` and ``"alice/"``."""
    if not prefix:
        return "1", []
    return (
        "(ns >= ? AND ns < ? AND (ns = ? OR substr(ns, 1, ?) = ?))",
        [prefix, prefix + "/", prefix, len(prefix) + 1, prefix + _SEP],
    )


def _embedder(index: IndexConfig) -> Embedder:
    embed = index.get("embed")
    if embed is None:
        raise InvalidMessageError("index needs 'embed': an Embedder, Embeddings or a function")
    if isinstance(embed, Embedder):
        return embed
    from tela_memory_langchain.embeddings import LangChainEmbedder

    return LangChainEmbedder(ensure_embeddings(embed), dimension=index.get("dims"))


class _Database:
    """One SQLite connection shared by a store and its :meth:`TelaStore.for_user` views."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.conn: sqlite3.Connection | None = None
        self.lock = threading.RLock()

    def connection(self) -> sqlite3.Connection:
        with self.lock:
            if self.conn is None:
                conn = connect(self.path, what="LangGraph store", timeout=self.timeout)
                try:
                    migrate(conn)
                except sqlite3.Error as exc:
                    conn.close()
                    raise BackendUnavailable(
                        f"cannot open the LangGraph store at {self.path}: {exc}"
                    ) from exc
                self.conn = conn
            return self.conn

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None


class TelaStore(BaseStore):
    """A LangGraph ``BaseStore`` on SQLite: get, put, delete, search, list namespaces, TTL.

    Args:
        path: the database file (usually the message store's), or ``":memory:"``.
        user_id: the acting user: every namespace is inside this user's space (required
            unless ``all_users``; ``ScopeError`` with neither).
        all_users: an operator's view of every user's space, where each namespace is
            prefixed by its owner (``("ada", "memories")``); the named cross-user opt-in.
        index: optional semantic search: ``{"embed": ..., "dims": ..., "fields": [...]}``
            as in LangGraph (``embed`` may also be a core ``Embedder``; ``fields`` defaults to
            the whole value, ``["$"]``).
        ttl: optional ``TTLConfig`` (``default_ttl`` in minutes, ``refresh_on_read``).

    Nothing is opened until first use. Use :meth:`for_store` to share a message store's file
    and :meth:`for_user` for another user's view on the same connection.
    """

    supports_ttl = True

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        user_id: str | None = None,
        all_users: bool = False,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.user_id, self.all_users = _scope(user_id, all_users)
        self._db = _Database(str(path), timeout)
        self.ttl_config = ttl
        self.index_config = index
        self.embedder = _embedder(index) if index else None
        fields = list((index or {}).get("fields") or ["$"])
        self._fields = [(f, tokenize_path(f)) for f in fields]

    @classmethod
    def for_store(
        cls,
        store: Any,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
    ) -> TelaStore:
        """A store in the same file as a ``SQLiteStore`` (its own ``:memory:`` database when
        the message store is in memory). ``store`` may be a ``store.for_user(...)`` view:
        its user is then the acting user."""
        if isinstance(store, UserStore):
            if user_id is not None and user_id != store.user_id:
                raise ScopeError("user_id= and the store.for_user(...) view name different users")
            user_id, store = store.user_id, store.store
        path = getattr(store, "path", None)
        return cls(
            path if path is not None else ":memory:",
            user_id=user_id,
            all_users=all_users,
            index=index,
            ttl=ttl,
        )

    def for_user(self, user_id: str) -> TelaStore:
        """The same file (and connection, index and TTL settings) acting for ``user_id``."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.user_id, view.all_users = _scope(user_id, False)
        return view

    @property
    def _path(self) -> str:
        return self._db.path

    # -- connection -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        return self._db.connection()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._db.lock:
            conn = self._connection()
            try:
                with write_transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"LangGraph store {self._path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection (shared with :meth:`for_user` views; reopened on next use)."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        who = "all_users=True" if self.all_users else f"user_id={self.user_id!r}"
        return f"{type(self).__name__}({self._path!r}, {who})"

    # -- scope ------------------------------------------------------------------------------

    def _split(self, namespace: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
        """(owner, namespace inside the owner's space) for a namespace as the caller sees it;
        owner ``None`` means every space (an all-users view given an empty prefix)."""
        if not self.all_users:
            return self.user_id, tuple(namespace)
        if not namespace:
            return None, ()
        return namespace[0], tuple(namespace[1:])

    def _shown(self, owner: str, ns: str) -> tuple[str, ...]:
        """A stored namespace as the caller sees it."""
        return (owner, *_tuple(ns)) if self.all_users else _tuple(ns)

    def _writable(self, namespace: tuple[str, ...]) -> tuple[str, str]:
        owner, inner = self._split(namespace)
        if owner is None or not inner:
            raise InvalidMessageError(
                "an all-users store writes as (owner, *namespace): name the owner and a "
                "namespace, or write through store.for_user(owner)"
            )
        return check_id("user_id", owner), _ns(inner)

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
                    raise InvalidMessageError(f"unknown store operation {type(op).__name__}")
        return results

    # -- operations -------------------------------------------------------------------------

    def _alive(self, now: datetime) -> tuple[str, int]:
        return "(expires_at IS NULL OR expires_at > ?)", _micros(now)

    def _refresh(self, conn: sqlite3.Connection, rows: Sequence[Any], now: datetime) -> None:
        for owner, ns, key, ttl in rows:
            if ttl is not None:
                expires = _micros(now + timedelta(minutes=ttl))
                conn.execute(
                    "UPDATE lgstore_items SET expires_at = ? WHERE owner = ? AND ns = ?"
                    " AND key = ?",
                    (expires, owner, ns, key),
                )

    def _wants_refresh(self, asked: bool) -> bool:
        return asked and (self.ttl_config or {}).get("refresh_on_read", True)

    def _get(self, conn: sqlite3.Connection, op: GetOp, now: datetime) -> Item | None:
        owner, inner = self._split(op.namespace)
        if owner is None:
            return None
        alive, t = self._alive(now)
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM lgstore_items"
            f" WHERE owner = ? AND ns = ? AND key = ? AND {alive}",
            (owner, _ns(inner), op.key, t),
        ).fetchone()
        if row is None:
            return None
        if self._wants_refresh(op.refresh_ttl):
            self._refresh(conn, [(row[0], row[1], row[2], row[6])], now)
        return Item(
            value=json.loads(row[3]),
            key=row[2],
            namespace=op.namespace,
            created_at=_from_micros(row[4]),
            updated_at=_from_micros(row[5]),
        )

    def _put(
        self, conn: sqlite3.Connection, op: PutOp, now: datetime, vectors: dict[str, np.ndarray]
    ) -> None:
        owner, ns = self._writable(op.namespace)
        if op.value is None:
            conn.execute(
                "DELETE FROM lgstore_items WHERE owner = ? AND ns = ? AND key = ?",
                (owner, ns, op.key),
            )
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
            "INSERT INTO lgstore_items (owner, ns, key, value, created_at, updated_at,"
            " ttl_minutes, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(owner, ns, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at, ttl_minutes = excluded.ttl_minutes,"
            " expires_at = excluded.expires_at, legacy = 0",
            (owner, ns, op.key, value, ts, ts, op.ttl, expires),
        )
        conn.execute(
            "DELETE FROM lgstore_vectors WHERE owner = ? AND ns = ? AND key = ?",
            (owner, ns, op.key),
        )
        rows = []
        for path, text in self._item_texts(op):
            vec = vectors.get(text)
            blob = np.asarray(vec, dtype=np.float32).tobytes() if vec is not None else None
            rows.append((owner, ns, op.key, path, text, blob))
        conn.executemany(
            "INSERT INTO lgstore_vectors (owner, ns, key, path, text, vec)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _search(
        self, conn: sqlite3.Connection, op: SearchOp, now: datetime, qvec: np.ndarray | None
    ) -> list[SearchItem]:
        owner, inner = self._split(op.namespace_prefix)
        alive, t = self._alive(now)
        under, args = _under(_ns(inner))
        where = f"{alive} AND {under}"
        params: list[Any] = [t, *args]
        if owner is not None:
            where = f"owner = ? AND {where}"
            params.insert(0, owner)
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM lgstore_items"
            f" WHERE {where} ORDER BY updated_at DESC, owner, ns, key",
            params,
        ).fetchall()
        found = [(r, json.loads(r[3])) for r in rows]
        if op.filter:
            found = [(r, v) for r, v in found if matches(v, op.filter)]
        scores: dict[tuple[str, str, str], float] = {}
        if op.query and found:
            scores = self._scores(conn, [(r[0], r[1], r[2]) for r, _ in found], op.query, qvec)
            found.sort(key=lambda rv: -scores.get((rv[0][0], rv[0][1], rv[0][2]), 0.0))
        page = found[op.offset : op.offset + op.limit]
        if self._wants_refresh(op.refresh_ttl):
            self._refresh(conn, [(r[0], r[1], r[2], r[6]) for r, _ in page], now)
        return [
            SearchItem(
                namespace=self._shown(r[0], r[1]),
                key=r[2],
                value=v,
                created_at=_from_micros(r[4]),
                updated_at=_from_micros(r[5]),
                score=scores.get((r[0], r[1], r[2])) if op.query else None,
            )
            for r, v in page
        ]

    def _scores(
        self,
        conn: sqlite3.Connection,
        keys: list[tuple[str, str, str]],
        query: str,
        qvec: np.ndarray | None,
    ) -> dict[tuple[str, str, str], float]:
        wanted = set(keys)
        scores: dict[tuple[str, str, str], float] = {}
        words = {w.lower() for w in _WORD.findall(query)}
        for owner in sorted({o for o, _, _ in keys}):
            namespaces = sorted({ns for o, ns, _ in keys if o == owner})
            marks = ",".join("?" * len(namespaces))
            rows = conn.execute(
                "SELECT ns, key, text, vec FROM lgstore_vectors"
                f" WHERE owner = ? AND ns IN ({marks})",
                [owner, *namespaces],
            )
            for ns, key, text, blob in rows:
                item = (owner, ns, key)
                if item not in wanted:
                    continue
                if qvec is not None and blob is not None:
                    score = float(np.frombuffer(blob, dtype=np.float32) @ qvec)
                else:
                    have = {w.lower() for w in _WORD.findall(text)}
                    score = len(words & have) / len(words) if words else 0.0
                scores[item] = max(score, scores.get(item, float("-inf")))
        return scores

    def _list(
        self, conn: sqlite3.Connection, op: ListNamespacesOp, now: datetime
    ) -> list[tuple[str, ...]]:
        # No expiry test: _run swept expired items in this transaction, at this ``now``, so
        # the (owner, ns) prefix of the primary key answers alone.
        if self.all_users:
            rows = conn.execute("SELECT DISTINCT owner, ns FROM lgstore_items")
        else:
            rows = conn.execute(
                "SELECT DISTINCT owner, ns FROM lgstore_items WHERE owner = ?", (self.user_id,)
            )
        spaces = [self._shown(owner, ns) for owner, ns in rows]
        if op.match_conditions:
            spaces = [s for s in spaces if all(ns_matches(c, s) for c in op.match_conditions)]
        if op.max_depth is not None:
            spaces = [s[: op.max_depth] for s in spaces]
        return sorted(set(spaces))[op.offset : op.offset + op.limit]

    # -- TTL --------------------------------------------------------------------------------

    def _sweep(self, conn: sqlite3.Connection, now: datetime) -> int:
        """Delete expired items (of every user: expiry is the items' own, it reveals
        nothing and keeps the file from growing)."""
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

    # -- erasure and legacy rows ------------------------------------------------------------

    def delete_namespace(self, namespace_prefix: tuple[str, ...]) -> int:
        """Delete every item (and its vectors) in a namespace of this store's space and the
        namespaces under it; return how many items, expired ones included.

        Args:
            namespace_prefix: e.g. ``("memories", "alice")``; an empty prefix is refused.
                On an all-users store the first label is the owner (``("ada",)`` is all of
                Ada's items).
        """
        owner, inner = self._split(_check_prefix(namespace_prefix))
        under, args = _under(_ns(inner))
        with self._tx() as conn:
            return conn.execute(
                f"DELETE FROM lgstore_items WHERE owner = ? AND {under}", [owner, *args]
            ).rowcount

    async def adelete_namespace(self, namespace_prefix: tuple[str, ...]) -> int:
        """Async twin of :meth:`delete_namespace`."""
        return await asyncio.to_thread(self.delete_namespace, namespace_prefix)

    def _erase(self, user_id: str, templates: Sequence[tuple[str, ...]]) -> int:
        """Every item owned by ``user_id``, and every item under a template filled with
        ``user_id``, in any space (legacy rows and shared spaces hold those)."""
        with self._tx() as conn:
            removed = conn.execute("DELETE FROM lgstore_items WHERE owner = ?", (user_id,))
            count = removed.rowcount
            if not user_id or _SEP in user_id:
                return count  # not a namespace label: no template can hold it
            for template in templates:
                prefix = _ns(tuple(user_id if p == "{user_id}" else p for p in template))
                under, args = _under(prefix)
                count += conn.execute(f"DELETE FROM lgstore_items WHERE {under}", args).rowcount
            return count

    def adopt_legacy(self, *templates: tuple[str, ...]) -> int:
        """Give items written before owners existed to the users their namespaces name.

        Items of a file written by tela-memory-langchain before schema 2 belong to
        ``DEFAULT_USER`` (``"local"``) after migration. Say where the user id sits, as for
        :class:`UserNamespaces`, and each such item under a template moves into that user's
        space (its namespace unchanged), so ``TelaStore(path, user_id="ada")`` sees Ada's old
        ``("memories", "ada")`` items. An item whose place the user has written since stays
        with ``"local"``; items no template matches stay with ``"local"``. Idempotent.

        Only an all-users store may do this (it moves items between users): ``ScopeError``
        otherwise. Returns how many items moved.
        """
        if not self.all_users:
            raise ScopeError("adopt_legacy moves items between users: use all_users=True")
        checked = _check_templates(templates)
        moved = 0
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT owner, ns, key FROM lgstore_items WHERE legacy = 1"
            ).fetchall()
            for owner, ns, key in rows:
                user = _user_in(_tuple(ns), checked)
                if user is None or user == owner:
                    continue
                taken = conn.execute(
                    "SELECT 1 FROM lgstore_items WHERE owner = ? AND ns = ? AND key = ?",
                    (user, ns, key),
                ).fetchone()
                if taken:
                    continue
                for table in ("lgstore_vectors", "lgstore_items"):
                    extra = ", legacy = 0" if table == "lgstore_items" else ""
                    conn.execute(
                        f"UPDATE {table} SET owner = ?{extra} WHERE owner = ? AND ns = ?"
                        " AND key = ?",
                        (user, owner, ns, key),
                    )
                moved += 1
        return moved

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


def _scope(user_id: str | None, all_users: bool) -> tuple[str | None, bool]:
    if all_users and user_id is not None:
        raise ScopeError("TelaStore takes either user_id=... or all_users=True, not both")
    if not all_users and user_id is None:
        raise ScopeError(
            "TelaStore acts for one user: pass user_id=... (its namespaces are inside that "
            "user's space), or all_users=True for an operator's view of every user"
        )
    return (check_id("user_id", user_id) if user_id is not None else None), all_users


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


def _check_templates(templates: Sequence[tuple[str, ...]]) -> tuple[tuple[str, ...], ...]:
    if not templates:
        raise InvalidMessageError("UserNamespaces needs at least one namespace template")
    for template in templates:
        _check_prefix(template)
        if "{user_id}" not in template:
            raise InvalidMessageError(f"namespace template {template!r} has no '{{user_id}}' label")
    return tuple(templates)


def _user_in(namespace: tuple[str, ...], templates: Sequence[tuple[str, ...]]) -> str | None:
    """The user a namespace names by the first template it is under (``None``: none)."""
    for template in templates:
        if len(namespace) < len(template):
            continue
        pairs = list(zip(template, namespace, strict=False))
        users = {have for want, have in pairs if want == "{user_id}"}
        if len(users) == 1 and all(w == h for w, h in pairs if w != "{user_id}"):
            return users.pop()
    return None


class UserNamespaces:
    """A user's LangGraph items, for ``tela_memory.privacy.erase_user``.

    Items live in their owner's space, so erasing a user removes every item of theirs in any
    namespace. Name where the user id sits in your namespaces with ``"{user_id}"`` and items
    under those namespaces go too, in any space: that reaches items written before owners
    existed (they belong to ``"local"`` until :meth:`TelaStore.adopt_legacy`) and apps that
    keep one shared space with the user id in the namespace::

        erase_user("alice", messages, index, UserNamespaces(store, ("memories", "{user_id}")))

    A user id containing ``.`` cannot be a namespace label, so only their own space goes.

    Args:
        store: the LangGraph store (any ``TelaStore`` on the file: erasure is an admin act).
        *templates: namespace prefixes, each with a ``"{user_id}"`` label.
    """

    def __init__(self, store: TelaStore, *templates: tuple[str, ...]) -> None:
        self.store = store
        self.templates = _check_templates(templates)

    def erase_user_data(self, user: UserData) -> int:
        """Delete the user's items (their space, and the templates' namespaces of them)."""
        return self.store._erase(user.user_id, self.templates)

    async def aerase_user_data(self, user: UserData) -> int:
        """Async twin of :meth:`erase_user_data`."""
        return await asyncio.to_thread(self.store._erase, user.user_id, self.templates)


__all__ = ["TelaStore", "UserNamespaces"]
