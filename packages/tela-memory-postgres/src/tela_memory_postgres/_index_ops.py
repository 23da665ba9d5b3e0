"""Every ``PostgresIndex`` operation as a generator of requests (see ``_index_driver``), so the
sync and the async methods run the same code.

Each operation runs in one transaction. In row-level-security mode its first batch sets, for
that transaction only, the user it acts for (``tela.user_id``) or, for an operation whose filter
names no user (the contract's cross-user form: ``clear()``, ``delete(ids)``, a count of
everything), ``tela.all_users``; the table's policy admits only those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from pgvector import HalfVector, Vector
from psycopg import sql

from tela_memory.errors import SchemaError
from tela_memory.recall.embedder import Vectors
from tela_memory.recall.index import Document, contextual_vectors
from tela_memory.recall.types import SearchFilter, ThreadKey
from tela_memory.stores import _common as common
from tela_memory_postgres._index_driver import Batch, Op, Stmt, UseVectors
from tela_memory_postgres._index_sql import (
    MAX_LEXICAL_CHARS,
    SCHEMA_VERSION,
    Names,
    Query,
    Statements,
    VectorType,
    create_statements,
    meta_token,
    plain,
    rls_statements,
    vector_statements,
)

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class State:
    """What is in the database: whether the tables exist and the embedding model they hold."""

    exists: bool
    rls: bool = False
    text_config: str | None = None
    model_id: str | None = None
    dimension: int | None = None
    vector_type: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """How the index was configured."""

    names: Names
    text_config: str
    vector_type: VectorType
    m: int
    ef_construction: int
    ef_search: int
    iterative_scan: str
    rls: bool
    scan: str
    parent_weight: float
    context_weight: float
    rrf_k: int


def _one(reply: list[Any]) -> Any:
    return reply[-1]


class IndexOps:
    """The operations of one index."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.n = settings.names
        self.sql = Statements(self.n, vector_type=settings.vector_type, rrf_k=settings.rrf_k)
        self._weights = [float(settings.parent_weight), 0.0, 0.0, 1.0]  # D, C, B, A

    # -- per-transaction settings ---------------------------------------------------------------

    def prelude(self, user_id: str | None, *, dense: bool = False, k: int = 10) -> list[Stmt]:
        """``set_config(..., true)`` of the acting user (RLS mode) and of the HNSW search."""
        calls: list[Query] = []
        params: dict[str, Any] = {}
        if self.s.rls:
            ok = user_id is not None and "\x00" not in user_id
            params["p_user"] = user_id if ok else ""
            params["p_all"] = "on" if user_id is None else "off"
            calls.append(sql.SQL("set_config('tela.user_id', %(p_user)s, true)"))
            calls.append(sql.SQL("set_config('tela.all_users', %(p_all)s, true)"))
        if dense:
            params["p_ef"] = str(min(1000, max(self.s.ef_search, k)))
            params["p_scan"] = self.s.iterative_scan
            calls.append(sql.SQL("set_config('hnsw.ef_search', %(p_ef)s, true)"))
            calls.append(sql.SQL("set_config('hnsw.iterative_scan', %(p_scan)s, true)"))
        if not calls:
            return []
        query = sql.SQL("SELECT {}").format(sql.SQL(", ").join(calls))
        return [Stmt(query, params, fetch="none")]

    # -- schema -------------------------------------------------------------------------------

    def load_state(self) -> Op[State]:
        """Read whether the tables exist and what model they hold."""
        reply = yield Batch(
            (
                Stmt(
                    sql.SQL(
                        "SELECT to_regclass(%(t)s) IS NOT NULL, to_regclass(%(m)s) IS NOT NULL"
                    ),
                    {"t": self.n.qualified, "m": f"{self.n.qualified}_meta"},
                ),
            ),
            "reading the index's tables",
        )
        table, meta = _one(reply)[0]
        if not (table and meta):
            return State(exists=False)
        reply = yield Batch(
            (
                Stmt(
                    sql.SQL(
                        "SELECT schema_version, text_config, rls, model_id, dimension, "
                        "vector_type FROM {}"
                    ).format(self.n.meta)
                ),
            ),
            "reading the index's model",
        )
        rows = _one(reply)
        if not rows:
            return State(exists=False)
        version, config, rls, model_id, dimension, vector_type = rows[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"table {self.n.qualified} was written by a newer tela-memory-postgres (index "
                f"schema {version}; this one knows up to {SCHEMA_VERSION}): upgrade the package"
            )
        return State(True, bool(rls), config, model_id, dimension, vector_type)

    def create(self, model: tuple[str, int] | None) -> Op[State]:
        """Create the tables (and, with a model, the vector column and HNSW index) if missing;
        serialised between processes by an advisory lock."""
        yield Batch(
            (
                Stmt(
                    sql.SQL("SELECT pg_advisory_xact_lock(hashtextextended(%(k)s, 0))"),
                    {"k": self.n.lock_key},
                    fetch="none",
                ),
            ),
            "locking the index's schema",
        )
        state = yield from self.load_state()
        if model is not None and (not state.exists or state.model_id is None):
            yield from self._ensure_extension()
        if not state.exists:
            stmts = [Stmt(q, fetch="none") for q in create_statements(self.n)]
            stmts.append(
                Stmt(
                    sql.SQL(
                        "INSERT INTO {} (schema_version, text_config, rls) "
                        "VALUES (%(v)s, %(c)s, %(r)s) ON CONFLICT DO NOTHING"
                    ).format(self.n.meta),
                    {"v": SCHEMA_VERSION, "c": self.s.text_config, "r": self.s.rls},
                    fetch="none",
                )
            )
            if self.s.rls:
                stmts += [Stmt(q, fetch="none") for q in rls_statements(self.n)]
            yield Batch(tuple(stmts), f"creating table {self.n.qualified}")
            state = State(True, self.s.rls, self.s.text_config)
        if model is not None and state.model_id is None:
            stmts = [
                Stmt(q, fetch="none")
                for q in vector_statements(
                    self.n, self.s.vector_type, model[1], self.s.m, self.s.ef_construction
                )
            ]
            stmts.append(
                Stmt(
                    sql.SQL(
                        "UPDATE {} SET model_id = %(id)s, dimension = %(dim)s, vector_type = %(vt)s"
                    ).format(self.n.meta),
                    {"id": model[0], "dim": model[1], "vt": self.s.vector_type},
                    fetch="none",
                )
            )
            yield Batch(tuple(stmts), f"adding vectors to {self.n.qualified}")
            state = replace(
                state, model_id=model[0], dimension=model[1], vector_type=self.s.vector_type
            )
        return state

    def _ensure_extension(self) -> Op[None]:
        reply = yield Batch(
            (Stmt(sql.SQL("SELECT 1 FROM pg_extension WHERE extname = 'vector'")),),
            "looking for pgvector",
        )
        if not _one(reply):
            yield Batch(
                (Stmt(sql.SQL("CREATE EXTENSION IF NOT EXISTS vector"), fetch="none"),),
                "creating the vector extension",
            )

    def drop(self) -> Op[None]:
        """Drop both tables."""
        yield Batch(
            (
                Stmt(
                    sql.SQL("DROP TABLE IF EXISTS {}, {}").format(self.n.table, self.n.meta),
                    fetch="none",
                ),
            ),
            f"dropping {self.n.qualified}",
        )

    def drop_vectors(self) -> Op[None]:
        """Drop the vector column and its index, and forget the model."""
        yield Batch(
            (
                Stmt(
                    sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS embedding").format(self.n.table),
                    fetch="none",
                ),
                Stmt(
                    sql.SQL(
                        "UPDATE {} SET model_id = NULL, dimension = NULL, vector_type = NULL"
                    ).format(self.n.meta),
                    fetch="none",
                ),
            ),
            f"dropping the vectors of {self.n.qualified}",
        )

    def grant(self, role: str) -> Op[None]:
        """Let ``role`` read and write the index (not change its tables)."""
        who = sql.Identifier(role)
        yield Batch(
            (
                Stmt(
                    sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {}").format(
                        self.n.table, who
                    ),
                    fetch="none",
                ),
                Stmt(
                    sql.SQL("GRANT SELECT, UPDATE ON {} TO {}").format(self.n.meta, who),
                    fetch="none",
                ),
            ),
            f"granting {role} access to {self.n.qualified}",
        )

    # -- writes -------------------------------------------------------------------------------

    def upsert(self, docs: list[Document], state: State) -> Op[None]:
        """Insert or replace documents (per user in RLS mode, all in one transaction)."""
        vectors = state.model_id is not None
        if vectors:
            yield UseVectors()
        relink = self.s.parent_weight > 0
        groups: list[list[Document]] = [docs]
        if self.s.rls:
            by_user: dict[str, list[Document]] = {}
            for d in docs:
                by_user.setdefault(str(d.message.user_id), []).append(d)
            groups = list(by_user.values())
        for group in groups:
            pre = self.prelude(group[0].message.user_id if self.s.rls else None)
            if vectors and self.s.context_weight > 0 and any(d.vector is not None for d in group):
                group = yield from self._contextual(group, pre)
                pre = []
            rows = [self._row(d, vectors) for d in group]
            stmts = [
                *pre,
                Stmt(self.sql.upsert(vectors=vectors, relink=relink), many=rows, fetch="none"),
            ]
            if relink:
                ids = [d.message.id for d in group]
                stmts.append(Stmt(self.sql.relink_children(), {"ids": ids}, fetch="none"))
            yield Batch(tuple(stmts), f"upserting into {self.n.qualified}")

    def _contextual(self, group: list[Document], pre: list[Stmt]) -> Op[list[Document]]:
        ids = {d.message.id for d in group}
        parents = sorted({p for d in group if (p := d.message.parent_id) and p not in ids})
        known: dict[str, tuple[ThreadKey, Vectors]] = {}
        if parents:
            reply = yield Batch(
                (*pre, Stmt(self.sql.stored_vectors(), {"ids": parents})), "reading parents"
            )
            known = {r[0]: ((r[1], r[2]), as_array(r[3])) for r in _one(reply)}
        elif pre:
            yield Batch(tuple(pre), "setting the acting user")
        mixed = contextual_vectors(
            [d.vector for d in group],
            [d.message.id for d in group],
            [d.message.parent_id for d in group],
            known,
            self.s.context_weight,
            threads=[d.thread_key for d in group],
        )
        return [Document(d.message, d.text, v) for d, v in zip(group, mixed, strict=True)]

    def _row(self, doc: Document, vectors: bool) -> dict[str, Any]:
        m = doc.message
        meta = [t for k, v in m.metadata.items() if (t := meta_token(k, v)) is not None]
        row: dict[str, Any] = {
            "id": m.id,
            "user_id": m.user_id,
            "thread_id": m.thread_id,
            "parent_id": m.parent_id,
            "role": m.role.value,
            "ts": common.to_micros(m.created_at),
            "meta": meta,
            "cfg": self.s.text_config,
            "text": plain(doc.search_text[:MAX_LEXICAL_CHARS]),
            "message": m.model_dump_json(),
        }
        if vectors:
            row["embedding"] = None if doc.vector is None else self.vector(doc.vector)
        return row

    def vector(self, values: Vectors) -> Vector | HalfVector:
        """A parameter of the column's vector type."""
        arr = np.asarray(values, dtype=np.float32)
        return HalfVector(arr) if self.s.vector_type == "halfvec" else Vector(arr)

    def delete(self, ids: Sequence[str]) -> Op[int]:
        """Delete by id (any user's: a cross-user operation); return how many existed."""
        wanted = [i for i in ids if "\x00" not in i]
        if not wanted:
            return 0
        query = self.sql.delete(None, {}, relink=self.s.parent_weight > 0)
        reply = yield Batch(
            (*self.prelude(None), Stmt(query, {"ids": wanted})), f"deleting from {self.n.qualified}"
        )
        return int(_one(reply)[0][0])

    def delete_where(self, flt: SearchFilter) -> Op[int]:
        """Delete what the filter matches; return how many."""
        params: dict[str, Any] = {}
        query = self.sql.delete(flt, params, relink=self.s.parent_weight > 0)
        reply = yield Batch(
            (*self.prelude(flt.user_id), Stmt(query, params)), f"deleting from {self.n.qualified}"
        )
        return int(_one(reply)[0][0])

    # -- reads --------------------------------------------------------------------------------

    def count(self, flt: SearchFilter) -> Op[int]:
        """How many documents the filter matches."""
        params: dict[str, Any] = {}
        query = self.sql.count(flt, params)
        reply = yield Batch(
            (*self.prelude(flt.user_id), Stmt(query, params)), f"counting in {self.n.qualified}"
        )
        return int(_one(reply)[0][0])

    def search(
        self, mode: str, text: str, vector: Vectors | None, flt: SearchFilter, k: int, state: State
    ) -> Op[list[Row]]:
        """One statement; rows ``(message, score, lexical_score, dense_score)``, best first."""
        no_vectors = state.model_id is None
        if mode == "dense" and (vector is None or no_vectors):
            return []
        rrf_lexical = mode == "hybrid" and vector is not None and no_vectors
        if mode == "hybrid" and (vector is None or no_vectors):
            mode = "lexical"
        dense = mode != "lexical"
        scoped = self.scoped(flt)
        if dense:
            yield UseVectors()
        params: dict[str, Any] = {"k": k, "cfg": self.s.text_config, "qtext": plain(text)}
        params["weights"] = self._weights
        if dense:
            assert vector is not None
            params["vec"] = self.vector(vector)
        query = self.sql.search(mode, flt, params, scoped=scoped)
        reply = yield Batch(
            (*self.prelude(flt.user_id, dense=dense and not scoped, k=k), Stmt(query, params)),
            f"searching {self.n.qualified}",
        )
        rows: list[Row] = _one(reply)
        if rrf_lexical:  # fused with an empty dense list, as the core fuses
            rows = [(r[0], 1.0 / (self.s.rrf_k + i), r[2], None) for i, r in enumerate(rows, 1)]
        return rows

    def scoped(self, flt: SearchFilter) -> bool:
        """Whether a search ranks the filter's rows exactly (``scan="auto"``: the filter names
        a user or message ids) rather than walking the HNSW / GIN index."""
        if self.s.scan == "index":
            return False
        if self.s.scan == "exact":
            return True
        return flt.user_id is not None or flt.message_ids is not None

    def neighbors(
        self, message_id: str, before: int, after: int, flt: SearchFilter
    ) -> Op[list[Row]]:
        """Rows ``(message,)`` around a message in its own thread, oldest first."""
        if "\x00" in message_id:
            return []
        params: dict[str, Any] = {"mid": message_id, "before": before, "after": after}
        query = self.sql.neighbors(flt, params)
        reply = yield Batch(
            (*self.prelude(flt.user_id), Stmt(query, params)), f"reading {self.n.qualified}"
        )
        rows: list[Row] = _one(reply)
        return rows

    def thread_terms(self, text: str, flt: SearchFilter, limit: int) -> Op[list[Row]]:
        """Per-thread turn and query-lexeme counts under the filter (see ``Statements``)."""
        params: dict[str, Any] = {"cfg": self.s.text_config, "qtext": plain(text), "terms": limit}
        query = self.sql.thread_terms(flt, params)
        reply = yield Batch(
            (*self.prelude(flt.user_id), Stmt(query, params)),
            f"counting words in {self.n.qualified}",
        )
        rows: list[Row] = _one(reply)
        return rows

    def stored_vectors(self, ids: list[str]) -> Op[dict[str, tuple[ThreadKey, Vectors]]]:
        """Stored vectors of these messages, with their threads."""
        yield UseVectors()
        reply = yield Batch(
            (*self.prelude(None), Stmt(self.sql.stored_vectors(), {"ids": ids})), "reading vectors"
        )
        return {r[0]: ((r[1], r[2]), as_array(r[3])) for r in _one(reply)}


def as_array(value: Any) -> Vectors:
    """A stored ``vector`` / ``halfvec`` as a float32 array."""
    raw = value.to_numpy() if hasattr(value, "to_numpy") else value
    out: Vectors = np.asarray(raw, dtype=np.float32)
    return out


__all__ = ["IndexOps", "Row", "Settings", "State", "as_array"]
