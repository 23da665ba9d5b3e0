"""``PostgresIndex``: the recall :class:`~tela_memory.recall.index.Index` on PostgreSQL.

One table holds one row per message: the filter columns (user, thread, parent, role, time,
hashed typed metadata), a ``tsvector`` of the turn's words (weight A) and of its parent's
(weight D) under a GIN index, the whole message, and, with an embedder, a pgvector column
(``halfvec`` by default) under an HNSW cosine index. A hybrid search is one SQL statement: the
full-text and the vector candidates, each under the filter, fused by reciprocal rank
(``1 / (60 + rank)``, as the core fuses) inside the query. Every value is a bound parameter.

Sync and async run the same operations (``_index_ops``), each in one transaction. With
``rls=True`` the table carries a row-level-security policy and every transaction sets the
user it acts for, so even a query without our filter sees only that user's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import psycopg
from psycopg import sql

from tela_memory.errors import (
    InvalidMessageError,
    SchemaError,
    TelaMemoryError,
)
from tela_memory.messages import Message, load_stored
from tela_memory.recall.embedder import Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError, InvalidQueryError
from tela_memory.recall.index import (
    RRF_K,
    Document,
    FilterLike,
    Index,
    ThreadTermCounts,
    searchable,
)
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import Hit, SearchFilter, SearchMode, ThreadKey, check_ids
from tela_memory.stores.sqlite_scrub import Scrub
from tela_memory_postgres._index_connection import Connections, Injected
from tela_memory_postgres._index_driver import MissingExtensionError, Op, run_async, run_sync
from tela_memory_postgres._index_ops import IndexOps, Row, Settings, State
from tela_memory_postgres._index_sql import Names, VectorType, check_name

T = TypeVar("T")

_SCANS = ("off", "strict_order", "relaxed_order")
_MAX_THREAD_TERMS = 32


class PostgresIndex(Index):
    """Recall index in a PostgreSQL table: full-text search plus pgvector (HNSW, cosine).

    Give ``url`` or ``connection``. Nothing connects until first use; the first write creates
    the tables (and, with an embedder, the ``vector`` extension if it is missing, the vector
    column and its HNSW index). Reads of an index never written return nothing.

    Args:
        url: a ``postgresql://`` URL or libpq connection string (the index opens a pool).
        connection: a psycopg ``Connection``, ``AsyncConnection``, ``ConnectionPool`` or
            ``AsyncConnectionPool`` you own (left open on close). On an async one only the
            ``a*`` methods can be used.
        embedder: enables dense and hybrid search; the first vector written fixes the model.
        table: the table's name (``<table>_meta`` holds its model and schema version).
        schema: a PostgreSQL schema for both tables (default: the search path's first).
        text_config: the text search configuration (stemming, stopwords), e.g. ``english``,
            ``simple``; fixed when the table is created.
        vector_type: ``halfvec`` (2 bytes a dimension, default) or ``vector`` (4 bytes).
        hnsw_m: HNSW ``m`` (links per node) when the index is built.
        hnsw_ef_construction: HNSW ``ef_construction`` when the index is built.
        ef_search: HNSW ``ef_search`` per query (raised to ``k`` when ``k`` is larger); 200
            reaches recall@10 0.95 on the benchmark's 100,000 vectors (100: 0.94, 40: 0.86).
        iterative_scan: pgvector's ``hnsw.iterative_scan`` (``relaxed_order`` default: a
            filtered search keeps scanning the graph until ``k`` rows pass the filter).
        scan: how a search finds candidates. ``"auto"`` (default): a filter naming a user (or
            message ids) ranks that user's rows exactly, through the ``user_id`` B-tree (exact
            and fast up to some 100,000 rows a user); a filter without one walks the HNSW and
            GIN indexes. ``"index"``: always the indexes; ``"exact"``: always exact.
        rls: row-level security: the table gets a policy that admits only the rows of the
            user set for the transaction (see the module doc and ``docs/postgres.md``).
        parent_weight: weight of the parent turn's words against the turn's own (0..1);
            0 ranks a turn by its own words only.
        context_weight: contextual vectors (:attr:`Index.context_weight`); 0 embeds each
            turn alone.
        vacuum: :meth:`scrub` (run by ``erase_user``) vacuums the table.
        timeout: seconds to wait for a connection.
        pool_size: largest size of the pool opened for ``url``.
    """

    supports_lexical = True
    supports_dense = True
    supports_thread_terms = True

    def __init__(
        self,
        url: str | None = None,
        *,
        connection: Injected | None = None,
        embedder: Embedder | None = None,
        table: str = "tela_recall",
        schema: str | None = None,
        text_config: str = "english",
        vector_type: VectorType = "halfvec",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 64,
        ef_search: int = 200,
        iterative_scan: Literal["off", "strict_order", "relaxed_order"] = "relaxed_order",
        rls: bool = False,
        scan: Literal["auto", "index", "exact"] = "auto",
        parent_weight: float = 0.3,
        context_weight: float = 0.5,
        vacuum: bool = False,
        timeout: float = 10.0,
        pool_size: int = 4,
    ) -> None:
        super().__init__(embedder)
        if vector_type not in ("vector", "halfvec"):
            raise TelaMemoryError(f"vector_type must be 'vector' or 'halfvec', got {vector_type!r}")
        if iterative_scan not in _SCANS:
            raise TelaMemoryError(f"iterative_scan must be one of {_SCANS}, got {iterative_scan!r}")
        if scan not in ("auto", "index", "exact"):
            raise TelaMemoryError(f"scan must be 'auto', 'index' or 'exact', got {scan!r}")
        if not 0.0 <= parent_weight <= 1.0:
            raise TelaMemoryError(f"parent_weight must be within 0..1, got {parent_weight!r}")
        if not 0.0 <= context_weight <= 10.0:
            raise TelaMemoryError(f"context_weight must be within 0..10, got {context_weight!r}")
        for label, value, low, high in (
            ("hnsw_m", hnsw_m, 2, 100),
            ("hnsw_ef_construction", hnsw_ef_construction, 4, 1000),
            ("ef_search", ef_search, 1, 1000),
            ("pool_size", pool_size, 1, 1000),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise TelaMemoryError(f"{label} must be an integer from {low} to {high}")
        check_name(text_config, "text search configuration")
        self.names = Names(table, schema)
        self.rls = rls
        self.vacuum = vacuum
        self.context_weight = context_weight
        self.parent_weight = parent_weight
        self._conns = Connections(url, connection, timeout=timeout, max_size=pool_size)
        self._ops = IndexOps(
            Settings(
                names=self.names,
                text_config=text_config,
                vector_type=vector_type,
                m=hnsw_m,
                ef_construction=hnsw_ef_construction,
                ef_search=ef_search,
                iterative_scan=iterative_scan,
                rls=rls,
                scan=scan,
                parent_weight=parent_weight,
                context_weight=context_weight,
                rrf_k=RRF_K,
            )
        )
        self._state: State | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresIndex:
        """An index on ``postgresql://...`` / ``postgres://...`` (for
        :func:`tela_memory.recall.open_index`); no I/O."""
        return cls(url, **options)

    @property
    def address(self) -> str:
        """The server and database (no password), for messages."""
        return self._conns.address

    @property
    def watermark_name(self) -> str:
        """``postgres:<server/database>/<table>``: one store-indexer cursor per table."""
        return f"postgres:{self.address}/{self.names.qualified}"

    # -- operations around the state -----------------------------------------------------------

    def _loaded(self) -> Op[State]:
        state = self._state
        if state is None or not state.exists:
            state = yield from self._ops.load_state()
            if state.exists:
                if state.rls != self.rls:
                    raise SchemaError(
                        f"table {self.names.qualified} was created with rls={state.rls}; open it "
                        f"with PostgresIndex(..., rls={state.rls})"
                    )
                self._state = state
        return state

    def _read(self, make: Callable[[State], Op[T]], empty: T) -> Op[T]:
        state = yield from self._loaded()
        if not state.exists:
            return empty
        return (yield from make(state))

    def _model(self) -> tuple[str, int] | None:
        if self.embedder is None:
            return None
        return self.embedder.model_id, self.embedder.dimension

    def _verify(self, state: State, model: tuple[str, int] | None) -> None:
        if model is None or not state.exists or state.model_id is None:
            return
        if (state.model_id, state.dimension) != model:
            raise EmbeddingMismatchError(
                f"table {self.names.qualified} holds vectors of {state.model_id!r} (dimension "
                f"{state.dimension}), not of {model[0]!r} (dimension {model[1]}): open it with "
                "that model, or rebuild it (StoreIndexer.reindex(), or drop())"
            )

    def _write(self, docs: list[Document]) -> Op[None]:
        model = self._model() if any(d.vector is not None for d in docs) else None
        state = yield from self._loaded()
        if not state.exists or (model is not None and state.model_id is None):
            state = yield from self._ops.create(model)
            self._state = state
        self._verify(state, model)
        yield from self._ops.upsert(docs, state)

    def _search(
        self, mode: SearchMode, text: str, vector: Vectors | None, flt: SearchFilter, k: int
    ) -> Op[list[Hit]]:
        def make(state: State) -> Op[list[Row]]:
            if vector is not None:
                self._verify(state, self._model())
            return self._ops.search(mode, text, vector, flt, k, state)

        empty: list[Row] = []
        rows = yield from self._read(make, empty)
        return [self._hit(r) for r in rows]

    def _hit(self, row: Row) -> Hit:
        try:
            message = load_stored(row[0])
        except SchemaError as exc:
            raise SchemaError(
                f"table {self.names.qualified} at {self.address} holds unreadable data "
                f"(written by something else?): {str(exc).splitlines()[0][:200]}"
            ) from exc
        return Hit(
            message=message,
            text=extract_text(message),
            score=float(row[1]),
            lexical_score=None if row[2] is None else float(row[2]),
            dense_score=None if row[3] is None else float(row[3]),
        )

    def _neighbor_hits(
        self, message_id: str, before: int, after: int, flt: SearchFilter
    ) -> Op[list[Hit]]:
        empty: list[Row] = []
        rows = yield from self._read(
            lambda _: self._ops.neighbors(message_id, before, after, flt), empty
        )
        return [self._hit((r[0], 0.0, None, None)) for r in rows]

    def _count_of(self, flt: SearchFilter) -> Op[int]:
        return self._read(lambda _: self._ops.count(flt), 0)

    def _deleted(self, ids: list[str]) -> Op[int]:
        return self._read(lambda _: self._ops.delete(ids), 0)

    def _deleted_where(self, flt: SearchFilter) -> Op[int]:
        return self._read(lambda _: self._ops.delete_where(flt), 0)

    # -- Index hooks (sync) ----------------------------------------------------------------------

    def _check_model(self, model_id: str, dimension: int) -> None:
        if self._state is None:
            if not self._conns.has_sync:
                return  # checked by the async operation itself, in its transaction
            run_sync(self._conns, self._loaded())
        if self._state is not None:
            self._verify(self._state, (model_id, dimension))

    def _contextual(self, docs: list[Document]) -> list[Document]:
        return docs  # mixed inside the upsert's transaction (parents read there)

    def _upsert(self, docs: list[Document]) -> None:
        _check_storable(docs)
        run_sync(self._conns, self._write(docs))

    def _delete(self, ids: list[str]) -> int:
        return run_sync(self._conns, self._deleted(ids))

    def _delete_where(self, flt: SearchFilter) -> int:
        return run_sync(self._conns, self._deleted_where(flt))

    def _count(self, flt: SearchFilter) -> int:
        return run_sync(self._conns, self._count_of(flt))

    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        return run_sync(self._conns, self._search("lexical", query, None, flt, k))

    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        return run_sync(self._conns, self._search("dense", "-", vector, flt, k))

    def _run(
        self, text: str, flt: SearchFilter, k: int, mode: SearchMode, vector: Vectors | None
    ) -> list[Hit]:
        return run_sync(self._conns, self._search(mode, text, vector, flt, k))

    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        return run_sync(self._conns, self._neighbor_hits(message_id, before, after, flt))

    def _thread_term_counts(self, query: str, flt: SearchFilter) -> ThreadTermCounts:
        empty: list[Row] = []
        rows = run_sync(
            self._conns,
            self._read(lambda _: self._ops.thread_terms(query, flt, _MAX_THREAD_TERMS), empty),
        )
        turns: dict[ThreadKey, int] = {}
        terms: dict[str, dict[ThreadKey, int]] = {}
        for lexeme, user, thread, n in rows:
            if lexeme is None:
                turns[(user, thread)] = int(n)
            else:
                terms.setdefault(lexeme, {})[(user, thread)] = int(n)
        return ThreadTermCounts(turns, terms)

    def _stored_vectors(self, ids: list[str]) -> dict[str, Any]:
        return run_sync(self._conns, self._read(lambda _: self._ops.stored_vectors(ids), {}))

    # -- async twins on an async connection ------------------------------------------------------

    async def _aload(self) -> None:
        if self._state is None:
            await run_async(self._conns, self._loaded())

    async def aupsert(self, messages: Message | Sequence[Message]) -> int:
        """Async twin of :meth:`upsert` (on an async connection when there is one)."""
        if not self._conns.has_async:
            return await super().aupsert(messages)
        items = [messages] if isinstance(messages, Message) else list(messages)
        await self._aload()
        vectors = None
        if self.dense_enabled and self.embedder is not None and items:
            texts = [extract_text(m) for m in items]
            wanted = [searchable(m, t) for m, t in zip(items, texts, strict=True) if t.strip()]
            vectors = await self.embedder.aembed(wanted) if wanted else None
        docs = self._documents(items, vectors)
        if docs:
            _check_storable(docs)
            await run_async(self._conns, self._write(docs))
        return len(docs)

    async def asearch(
        self,
        query: str,
        *,
        filter: FilterLike = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        query_vector: Vectors | None = None,
    ) -> list[Hit]:
        """Async twin of :meth:`search`."""
        if not self._conns.has_async:
            return await super().asearch(
                query, filter=filter, k=k, mode=mode, query_vector=query_vector
            )
        text, flt, k, mode = self._validate(query, filter, k, mode)
        await self._aload()
        vector = None
        if mode in ("dense", "hybrid") and self.dense_enabled and self.embedder is not None:
            raw = (
                query_vector if query_vector is not None else await self.embedder.aembed_query(text)
            )
            vector = self._query_vector(text, raw)
        return await run_async(self._conns, self._search(mode, text, vector, flt, k))

    async def acount(self, filter: FilterLike = None) -> int:
        """Async twin of :meth:`count`."""
        if not self._conns.has_async:
            return await super().acount(filter)
        return await run_async(self._conns, self._count_of(SearchFilter.coerce(filter)))

    async def adelete(self, ids: str | Sequence[str]) -> int:
        """Async twin of :meth:`delete`."""
        if not self._conns.has_async:
            return await super().adelete(ids)
        wanted = check_ids(ids)
        return await run_async(self._conns, self._deleted(wanted)) if wanted else 0

    async def adelete_where(self, filter: FilterLike) -> int:
        """Async twin of :meth:`delete_where`."""
        if not self._conns.has_async:
            return await super().adelete_where(filter)
        flt = SearchFilter.coerce(filter)
        if flt == SearchFilter():
            raise InvalidQueryError(
                "delete_where needs a non-empty filter; to drop everything use clear()"
            )
        return await run_async(self._conns, self._deleted_where(flt))

    async def aclear(self) -> int:
        """Async twin of :meth:`clear`."""
        if not self._conns.has_async:
            return await super().aclear()
        return await run_async(self._conns, self._deleted_where(SearchFilter()))

    async def aneighbors(
        self,
        message_id: str,
        *,
        before: int = 1,
        after: int = 1,
        filter: FilterLike = None,
    ) -> list[Hit]:
        """Async twin of :meth:`neighbors`."""
        if not self._conns.has_async:
            return await super().aneighbors(message_id, before=before, after=after, filter=filter)
        check_ids([message_id])
        self._check_window(before, after)
        flt = SearchFilter.coerce(filter)
        if before == after == 0:
            return []
        return await run_async(self._conns, self._neighbor_hits(message_id, before, after, flt))

    def _check_window(self, before: int, after: int) -> None:
        for name, value in (("before", before), ("after", after)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise InvalidQueryError(f"{name} must be an integer from 0 to 100, got {value!r}")

    # -- administration --------------------------------------------------------------------------

    def create(self) -> None:
        """Create the tables now (with the embedder's vector column and HNSW index, if any),
        for example as the owner before :meth:`grant` in RLS mode."""
        state = run_sync(self._conns, self._ops.create(self._model()))
        self._verify(state, self._model())
        self._state = state

    def grant(self, role: str) -> None:
        """Let another role read and write this index's rows (``SELECT, INSERT, UPDATE,
        DELETE``; not change its tables). With ``rls=True`` that role then sees only the rows
        of the user each transaction names."""
        if not isinstance(role, str) or not role or "\x00" in role:
            raise TelaMemoryError(f"invalid role name {role!r}")
        run_sync(self._conns, self._ops.grant(role))

    def drop(self) -> None:
        """Drop the index's tables (every row, the model record)."""
        run_sync(self._conns, self._ops.drop())
        self._state = None

    def drop_vectors(self) -> None:
        """Drop the vector column and forget the model, so that the next write may use another
        one (rows stay, found by words until indexed again; ``StoreIndexer.reindex()`` clears
        first)."""
        state = run_sync(self._conns, self._loaded())
        if state.exists and state.model_id is not None:
            run_sync(self._conns, self._ops.drop_vectors())
        self._state = None

    def stored_model(self) -> tuple[str, int] | None:
        """``(model_id, dimension)`` of the stored vectors, ``None`` without any."""
        state = run_sync(self._conns, self._loaded())
        if state.model_id is None or state.dimension is None:
            return None
        return state.model_id, state.dimension

    def scrub(self) -> Scrub:
        """After an erasure: with ``vacuum=True``, ``VACUUM`` the table so the deleted rows'
        dead tuples are reclaimed; the WAL, replicas and backups keep them until recycled."""
        wal = (
            f"{self.address}: the WAL (and any replica, archive or backup) keeps deleted rows "
            "until it is recycled"
        )
        where = f"{self.address} table {self.names.qualified}"
        if not self.vacuum:
            return Scrub(
                left=(
                    f"{where}: deleted rows stay on disk as dead tuples until (auto)vacuum; "
                    "PostgresIndex(vacuum=True) vacuums after an erasure",
                    wal,
                )
            )
        try:
            with self._conns.sync() as conn:
                if not conn.autocommit:
                    return Scrub(left=(f"{where}: VACUUM needs an autocommit connection", wal))
                conn.execute(sql.SQL("VACUUM {}").format(self.names.table))
        except psycopg.Error as exc:
            return Scrub(left=(f"{where}: VACUUM failed: {exc}", wal))
        return Scrub(done=(f"{where}: dead tuples vacuumed",), left=(wal,))

    def close(self) -> None:
        """Close the connections this index opened (an injected one is left open)."""
        self._conns.close()
        self._state = None

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()


def _check_storable(docs: list[Document]) -> None:
    for d in docs:
        m = d.message
        for name, value in (
            ("id", m.id),
            ("user_id", m.user_id),
            ("thread_id", m.thread_id),
            ("parent_id", m.parent_id),
        ):
            if value is not None and "\x00" in value:
                raise InvalidMessageError(
                    f"message {name} {value!r} contains a NUL byte, which PostgreSQL cannot store"
                )


__all__ = ["MissingExtensionError", "PostgresIndex"]
