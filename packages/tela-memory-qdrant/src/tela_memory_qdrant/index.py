"""``QdrantIndex``: the recall :class:`~tela_memory.recall.index.Index` on Qdrant.

One collection holds one point per message: a named dense vector ``dense`` (cosine, from the
embedder) and a sparse vector ``lexical`` (BM25 term weights, ``Modifier.IDF``), with the
message, its text and the filter fields as payload (indexed on a server). Every filter is a
Qdrant ``Filter`` inside the query. The same calls work on a server URL, on qdrant-client's
local mode (``location=":memory:"`` or ``path=``) and on an injected ``QdrantClient`` or
``AsyncQdrantClient``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from qdrant_client import AsyncQdrantClient, QdrantClient, models

from tela_memory.errors import (
    BackendUnavailable,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.messages import Message
from tela_memory.recall.embedder import Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import RRF_K, Document, FilterLike, Index
from tela_memory.recall.types import Hit, SearchFilter, SearchMode
from tela_memory_qdrant import sparse
from tela_memory_qdrant.payload import (
    PAYLOAD_INDEXES,
    point_id,
    same_thread,
    to_filter,
    with_conditions,
)
from tela_memory_qdrant.points import (
    DENSE,
    LEXICAL,
    OWNERLESS,
    owned,
)
from tela_memory_qdrant.points import (
    Schema as _Schema,
)
from tela_memory_qdrant.points import (
    hit as _hit,
)
from tela_memory_qdrant.points import (
    order_key as _order_key,
)
from tela_memory_qdrant.points import (
    read_schema as _read_schema,
)
from tela_memory_qdrant.points import (
    to_point as _point,
)
from tela_memory_qdrant.points import (
    ts_range as _ts_range,
)

SCHEMA_VERSION = 1
_BATCH = 256
_HIT_FIELDS = ["message", "text"]

# The event loop of the async call being served (set by the ``a*`` methods when the index
# runs on an ``AsyncQdrantClient``; ``asyncio.to_thread`` carries it to the worker thread).
_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "tela_qdrant_loop", default=None
)


class QdrantIndex(Index):
    """Recall index in a Qdrant collection (server, local mode or an injected client).

    Give exactly one of ``url``, ``location``, ``path`` or ``client``. Nothing connects until
    first use; the collection (with payload indexes on a server) is created by the first write.

    Args:
        url: a Qdrant server, for example ``"http://localhost:6333"``.
        location: ``":memory:"`` for an in-process local-mode collection.
        path: a folder for a persistent local-mode collection.
        client: an open ``QdrantClient`` or ``AsyncQdrantClient`` (the caller keeps ownership).
            With an ``AsyncQdrantClient`` only the ``a*`` methods can be used.
        collection: the collection's name.
        embedder: optional; without one the index is lexical only (sparse vectors).
        api_key: for a server that needs one.
        prefer_grpc: talk gRPC to the server.
        timeout: seconds per request to a server.
        fusion: how hybrid search fuses its two lists: ``"core"`` (reciprocal rank in the
            library, both per-side scores reported) or ``"qdrant"`` (one query with
            ``prefetch`` and ``FusionQuery(RRF)`` in the engine, one round trip).
    """

    supports_lexical = True
    supports_dense = True

    def __init__(
        self,
        url: str | None = None,
        *,
        location: str | None = None,
        path: str | Path | None = None,
        client: QdrantClient | AsyncQdrantClient | None = None,
        collection: str = "tela_recall",
        embedder: Embedder | None = None,
        api_key: str | None = None,
        prefer_grpc: bool = False,
        timeout: int | None = None,
        fusion: Literal["core", "qdrant"] = "core",
    ) -> None:
        super().__init__(embedder)
        given = [x for x in (url, location, path, client) if x is not None]
        if len(given) != 1:
            raise TelaMemoryError(
                "QdrantIndex needs exactly one of url=, location=':memory:', path= or client="
            )
        if client is not None and not isinstance(client, QdrantClient | AsyncQdrantClient):
            raise TelaMemoryError(
                f"client must be a QdrantClient or AsyncQdrantClient, not {type(client).__name__}"
            )
        if not isinstance(collection, str) or not collection.strip() or "/" in collection:
            raise TelaMemoryError(f"invalid collection name {collection!r}")
        if fusion not in ("core", "qdrant"):
            raise TelaMemoryError(f"fusion must be 'core' or 'qdrant', got {fusion!r}")
        self.collection = collection
        self.fusion = fusion
        self._url = url
        self._location = location
        self._path = None if path is None else str(path)
        self._api_key = api_key
        self._prefer_grpc = prefer_grpc
        self._timeout = timeout
        self._sync: QdrantClient | None = client if isinstance(client, QdrantClient) else None
        self._async: AsyncQdrantClient | None = (
            client if isinstance(client, AsyncQdrantClient) else None
        )
        self._owned = client is None
        self._local = url is None and (client is None or _is_local(client))
        self._lock = threading.RLock()
        self._schema: _Schema | None = None
        self._closed = False
        self._instance = uuid.uuid4().hex

    # -- connection -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """Where the collection lives (for messages)."""
        if self._url is not None:
            return self._url
        if self._location is not None:
            return f"local {self._location}"
        if self._path is not None:
            return f"local path {self._path}"
        return f"injected {type(self._sync or self._async).__name__}"

    @property
    def watermark_name(self) -> str:
        """``qdrant:<where>/<collection>``: a store indexer keeps one watermark per name.

        A server URL or a ``path=`` folder names the same data from run to run; an index in
        memory (``:memory:`` or an injected local client in memory) gets a name of its own per
        instance, so that a new one is filled from the start.
        """
        if self._url is not None:
            where = self._url.rstrip("/")
        elif self._path is not None:
            where = f"path:{Path(self._path).resolve()}"
        else:
            where = _client_address(self._sync or self._async) or f"memory:{self._instance}"
        return f"qdrant:{where}/{self.collection}"

    def client(self) -> QdrantClient:
        """The synchronous client (created on first use unless one was injected)."""
        if self._closed:
            raise BackendUnavailable(f"QdrantIndex on {self.address} is closed")
        if self._sync is None:
            if self._async is not None:
                raise UnsupportedOperation(
                    "this QdrantIndex runs on an AsyncQdrantClient: use the async methods "
                    "(asearch, aupsert, ...) or pass a QdrantClient"
                )
            with self._lock:
                if self._sync is None:
                    self._sync = self._open()
        return self._sync

    def _open(self) -> QdrantClient:
        try:
            if self._url is not None:
                return QdrantClient(
                    url=self._url,
                    api_key=self._api_key,
                    prefer_grpc=self._prefer_grpc,
                    timeout=self._timeout,
                    check_compatibility=False,
                )
            if self._path is not None:
                Path(self._path).mkdir(parents=True, exist_ok=True)
                return QdrantClient(path=self._path)
            return QdrantClient(location=self._location)
        except Exception as exc:
            raise BackendUnavailable(f"cannot open Qdrant at {self.address}: {exc}") from exc

    def close(self) -> None:
        """Close the client this index opened (an injected one is left open)."""
        with self._lock:
            if self._owned and self._sync is not None:
                try:
                    self._sync.close()
                finally:
                    self._sync = None
            self._schema = None
            self._closed = True

    def _call(self, op: str, **kwargs: Any) -> Any:
        """Run one client method, on the sync client or on the async one's event loop."""
        if self._async is not None:
            loop = _LOOP.get()
            if loop is None:
                raise UnsupportedOperation(
                    "this QdrantIndex runs on an AsyncQdrantClient: use the async methods "
                    "(asearch, aupsert, ...) or pass a QdrantClient"
                )
            if _running_loop() is loop:
                raise TelaMemoryError(f"QdrantIndex.{op} would block its own event loop")
            try:
                coro = getattr(self._async, op)(**kwargs)
                return asyncio.run_coroutine_threadsafe(coro, loop).result()
            except TelaMemoryError:
                raise
            except Exception as exc:
                raise self._unavailable(op, exc) from exc
        client = self.client()
        try:
            if self._local:  # local mode is plain Python state: one caller at a time
                with self._lock:
                    return getattr(client, op)(**kwargs)
            return getattr(client, op)(**kwargs)
        except TelaMemoryError:
            raise
        except Exception as exc:
            raise self._unavailable(op, exc) from exc

    def _unavailable(self, op: str, exc: Exception) -> BackendUnavailable:
        return BackendUnavailable(
            f"Qdrant at {self.address} (collection {self.collection!r}) failed on {op}: "
            f"{type(exc).__name__}: {exc}"
        )

    # -- collection and model ---------------------------------------------------------------

    def _state(self, *, create: bool) -> _Schema | None:
        """The collection's vector schema, created if asked; ``None`` while it does not exist."""
        if self._schema is not None:
            return self._schema
        if not self._call("collection_exists", collection_name=self.collection):
            if not create:
                return None
            self._create()
        info = self._call("get_collection", collection_name=self.collection)
        schema = _read_schema(self.collection, info)
        self._own_legacy_points()
        self._schema = schema
        return self._schema

    def _own_legacy_points(self) -> None:
        """Give points written without a user (before threads were namespaced per user)
        their owner, ``DEFAULT_USER``, as the store's migration does; idempotent, so a crash
        half-way is finished by the next open. One empty scroll when there are none."""
        while True:
            records, _ = self._call(
                "scroll",
                collection_name=self.collection,
                scroll_filter=OWNERLESS,
                limit=_BATCH,
                with_payload=["message"],
            )
            if not records:
                return
            self._call(
                "batch_update_points",
                collection_name=self.collection,
                update_operations=[
                    models.SetPayloadOperation(
                        set_payload=models.SetPayload(payload=owned(r.payload or {}), points=[r.id])
                    )
                    for r in records
                ],
                wait=True,
            )

    def _create(self) -> None:
        dense = self.supports_dense and self.embedder is not None
        vectors: dict[str, models.VectorParams] = {}
        meta: dict[str, Any] = {"tela_schema": SCHEMA_VERSION}
        if dense and self.embedder is not None:
            vectors[DENSE] = models.VectorParams(
                size=self.embedder.dimension, distance=models.Distance.COSINE
            )
            meta["tela_model_id"] = self.embedder.model_id
            meta["tela_dimension"] = self.embedder.dimension
        try:
            self._call(
                "create_collection",
                collection_name=self.collection,
                vectors_config=vectors,
                sparse_vectors_config={
                    LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
                metadata=meta,
            )
        except BackendUnavailable:
            # another writer may have created it first; anything else is a real failure
            if not self._call("collection_exists", collection_name=self.collection):
                raise
            return
        if not self._local:  # local mode ignores payload indexes (and warns about them)
            for field, schema in PAYLOAD_INDEXES.items():
                self._call(
                    "create_payload_index",
                    collection_name=self.collection,
                    field_name=field,
                    field_schema=schema,
                    wait=True,
                )

    def stored_model(self) -> tuple[str | None, int] | None:
        """``(model_id, dimension)`` of the collection's dense vectors, ``None`` if it has none."""
        state = self._state(create=False)
        if state is None or state.dimension is None:
            return None
        return state.model_id, state.dimension

    def _check_model(self, model_id: str, dimension: int) -> None:
        if self._schema is None and _running_loop() is not None:
            return  # checked again in the worker thread, before anything is written or read
        self._verify(self._state(create=False), model_id, dimension)

    def _verify(self, state: _Schema | None, model_id: str, dimension: int) -> None:
        if state is None:
            return
        if state.dimension is None:
            raise EmbeddingMismatchError(
                f"Qdrant collection {self.collection!r} was built without vectors (lexical "
                f"only), but the embedder is {model_id!r}; use a new collection (or drop() this "
                "one and index again)"
            )
        if state.dimension != dimension or (
            state.model_id is not None and state.model_id != model_id
        ):
            raise EmbeddingMismatchError(
                f"Qdrant collection {self.collection!r} holds vectors of {state.model_id!r} "
                f"(dimension {state.dimension}), not of {model_id!r} (dimension {dimension}); "
                "open it with that model or drop() it and index again"
            )

    def drop_vectors(self) -> None:
        """Forget the embedding model, so that the next write can use another one.

        Qdrant fixes a collection's vector size when it creates it, so this drops the
        collection, which must be empty (``StoreIndexer.reindex()`` calls ``clear()`` and then
        this); on a collection that still holds points it raises ``UnsupportedOperation``.
        """
        if self._state(create=False) is None:
            return
        left = self._count(SearchFilter())
        if left:
            raise UnsupportedOperation(
                f"Qdrant collection {self.collection!r} still holds {left} points: Qdrant cannot "
                "drop vectors and keep points; clear() first (StoreIndexer.reindex() does), or "
                "drop() the collection"
            )
        self.drop()

    def drop(self) -> bool:
        """Delete the whole collection; return whether it existed."""
        self._schema = None
        existed = bool(self._call("collection_exists", collection_name=self.collection))
        if existed:
            self._call("delete_collection", collection_name=self.collection)
        return existed

    # -- writes -----------------------------------------------------------------------------

    def _upsert(self, docs: list[Document]) -> None:
        state = self._state(create=True)
        if self.embedder is not None and any(d.vector is not None for d in docs):
            self._verify(state, self.embedder.model_id, self.embedder.dimension)
        for start in range(0, len(docs), _BATCH):
            points = [_point(d) for d in docs[start : start + _BATCH]]
            self._call("upsert", collection_name=self.collection, points=points, wait=True)

    def _delete(self, ids: list[str]) -> int:
        if self._state(create=False) is None:
            return 0
        done = 0
        for start in range(0, len(ids), _BATCH * 4):
            pids = list(dict.fromkeys(point_id(i) for i in ids[start : start + _BATCH * 4]))
            flt = models.Filter(must=[models.HasIdCondition(has_id=pids)])
            found = self._count_filter(flt)
            if found:
                self._call(
                    "delete",
                    collection_name=self.collection,
                    points_selector=models.PointIdsList(points=pids),
                    wait=True,
                )
            done += found
        return done

    def _delete_where(self, flt: SearchFilter) -> int:
        qf = to_filter(flt)
        if qf is None or self._state(create=False) is None:
            return 0
        found = self._count_filter(qf)
        if found:
            self._call(
                "delete",
                collection_name=self.collection,
                points_selector=models.FilterSelector(filter=qf),
                wait=True,
            )
        return found

    def _count(self, flt: SearchFilter) -> int:
        qf = to_filter(flt)
        if qf is None or self._state(create=False) is None:
            return 0
        return self._count_filter(qf)

    def _count_filter(self, qf: models.Filter) -> int:
        got = self._call("count", collection_name=self.collection, count_filter=qf, exact=True)
        return int(got.count)

    # -- search -----------------------------------------------------------------------------

    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        sv = sparse.query_vector(query)
        qf = to_filter(flt)
        if sv is None or qf is None or self._state(create=False) is None:
            return []
        points = self._query(query=sv, using=LEXICAL, query_filter=qf, limit=k)
        return [
            _hit(p.payload, score=p.score, lexical_score=p.score) for p in points if p.score > 0
        ]

    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        qf = to_filter(flt)
        state = self._state(create=False)
        if qf is None or state is None:
            return []
        assert self.embedder is not None
        self._verify(state, self.embedder.model_id, self.embedder.dimension)
        points = self._query(query=vector.tolist(), using=DENSE, query_filter=qf, limit=k)
        return [_hit(p.payload, score=p.score, dense_score=p.score) for p in points]

    def _run(
        self, text: str, flt: SearchFilter, k: int, mode: SearchMode, vector: Vectors | None
    ) -> list[Hit]:
        if mode != "hybrid" or vector is None or self.fusion == "core":
            return super()._run(text, flt, k, mode, vector)
        sv = sparse.query_vector(text)
        if sv is None:
            return self._dense(vector, flt, k)
        qf = to_filter(flt)
        state = self._state(create=False)
        if qf is None or state is None:
            return []
        assert self.embedder is not None
        self._verify(state, self.embedder.model_id, self.embedder.dimension)
        points = self._query(
            prefetch=[
                models.Prefetch(query=sv, using=LEXICAL, filter=qf, limit=k),
                models.Prefetch(query=vector.tolist(), using=DENSE, filter=qf, limit=k),
            ],
            # Qdrant ranks from 0, the core from 1: k + 1 gives the core's scores
            query=models.RrfQuery(rrf=models.Rrf(k=RRF_K + 1)),
            query_filter=qf,
            limit=k,
        )
        return [_hit(p.payload, score=p.score) for p in points]

    def _query(self, **kwargs: Any) -> list[models.ScoredPoint]:
        got = self._call(
            "query_points", collection_name=self.collection, with_payload=_HIT_FIELDS, **kwargs
        )
        return list(got.points)

    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        base = to_filter(flt)
        if base is None or self._state(create=False) is None:
            return []
        found = self._call(
            "retrieve",
            collection_name=self.collection,
            ids=[point_id(message_id)],
            with_payload=["user_id", "thread_id", "ts", "id"],
        )
        if not found or not isinstance((found[0].payload or {}).get("user_id"), str):
            return []
        anchor = found[0].payload or {}
        ts, mid = int(anchor["ts"]), str(anchor["id"])
        scope = with_conditions(base, *same_thread(anchor))
        ties = [
            r
            for r in self._scroll_all(with_conditions(scope, _ts_range(gte=ts, lte=ts)))
            if r["id"] != mid
        ]
        older = self._scroll(with_conditions(scope, _ts_range(lt=ts)), before, "desc")
        newer = self._scroll(with_conditions(scope, _ts_range(gt=ts)), after, "asc")
        key = _order_key
        prev = sorted([r for r in ties if key(r) < (ts, mid)] + older, key=key)
        nxt = sorted([r for r in ties if key(r) > (ts, mid)] + newer, key=key)
        chosen = (prev[-before:] if before else []) + nxt[:after]
        return [_hit(r, score=0.0) for r in chosen]

    def _scroll(self, qf: models.Filter, limit: int, direction: str) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        records, _ = self._call(
            "scroll",
            collection_name=self.collection,
            scroll_filter=qf,
            limit=limit,
            order_by=models.OrderBy(key="ts", direction=direction),
            with_payload=["message", "text", "ts", "id"],
        )
        return [r.payload or {} for r in records]

    def _scroll_all(self, qf: models.Filter) -> Iterator[dict[str, Any]]:
        offset = None
        while True:
            records, offset = self._call(
                "scroll",
                collection_name=self.collection,
                scroll_filter=qf,
                limit=_BATCH,
                offset=offset,
                with_payload=["message", "text", "ts", "id"],
            )
            for r in records:
                yield r.payload or {}
            if offset is None:
                return

    # -- async: run the hooks against an AsyncQdrantClient ----------------------------------

    @contextmanager
    def _bound(self) -> Iterator[None]:
        if self._async is None:
            yield
            return
        token = _LOOP.set(asyncio.get_running_loop())
        try:
            yield
        finally:
            _LOOP.reset(token)

    async def aupsert(self, messages: Message | Sequence[Message]) -> int:
        """Async twin of :meth:`upsert`."""
        with self._bound():
            return await super().aupsert(messages)

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
        with self._bound():
            return await super().asearch(
                query, filter=filter, k=k, mode=mode, query_vector=query_vector
            )

    async def adelete(self, ids: str | Sequence[str]) -> int:
        """Async twin of :meth:`delete`."""
        with self._bound():
            return await super().adelete(ids)

    async def adelete_where(self, filter: FilterLike) -> int:
        """Async twin of :meth:`delete_where`."""
        with self._bound():
            return await super().adelete_where(filter)

    async def aclear(self) -> int:
        """Async twin of :meth:`clear`."""
        with self._bound():
            return await super().aclear()

    async def acount(self, filter: FilterLike = None) -> int:
        """Async twin of :meth:`count`."""
        with self._bound():
            return await super().acount(filter)

    async def aneighbors(
        self,
        message_id: str,
        *,
        before: int = 1,
        after: int = 1,
        filter: FilterLike = None,
    ) -> list[Hit]:
        """Async twin of :meth:`neighbors`."""
        with self._bound():
            return await super().aneighbors(message_id, before=before, after=after, filter=filter)

    async def adrop(self) -> bool:
        """Async twin of :meth:`drop`."""
        with self._bound():
            return await asyncio.to_thread(self.drop)


def _client_address(client: QdrantClient | AsyncQdrantClient | None) -> str | None:
    """A stable name for an injected client's data: its server URL or local folder."""
    inner = getattr(client, "_client", None)
    url = getattr(inner, "rest_uri", None)
    if isinstance(url, str) and url:
        return url.rstrip("/")
    location = getattr(inner, "location", None)
    if getattr(inner, "persistent", False) and isinstance(location, str):
        return f"path:{Path(location).resolve()}"
    return None


def _is_local(client: QdrantClient | AsyncQdrantClient) -> bool:
    inner = getattr(client, "_client", None)
    return type(inner).__name__ in ("QdrantLocal", "AsyncQdrantLocal")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["DENSE", "LEXICAL", "QdrantIndex"]
