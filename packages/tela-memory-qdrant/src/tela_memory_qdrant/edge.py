"""``QdrantEdgeIndex``: the recall index on Qdrant Edge, the Qdrant engine embedded in-process.

``qdrant-edge-py`` (extra ``edge``) runs Qdrant's own Rust engine on a local shard folder: HNSW
and sparse indexes, payload indexes, ``Modifier.IDF``, prefetch + RRF fusion, no server. The
points, payload and filters are the same as :class:`~tela_memory_qdrant.QdrantIndex` builds
(the filter is translated from the same qdrant-client ``Filter``), so both rank alike.

Layout of ``path``: ``shard/`` (the engine's files) and ``tela.json`` (the embedding model).
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qdrant_client import models

from tela_memory.errors import (
    BackendUnavailable,
    MissingDependency,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.recall.embedder import Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import RRF_K, Document, Index
from tela_memory.recall.types import Hit, SearchFilter, SearchMode
from tela_memory_qdrant import sparse
from tela_memory_qdrant.payload import PAYLOAD_INDEXES, payload, point_id, same_thread, to_filter
from tela_memory_qdrant.points import DENSE, LEXICAL, OWNERLESS, owned
from tela_memory_qdrant.points import hit as _hit
from tela_memory_qdrant.points import order_key as _order_key

if TYPE_CHECKING:
    import qdrant_edge as qe

_BATCH = 256
_HIT_FIELDS = ["message", "text"]
_ROW_FIELDS = ["message", "text", "ts", "id"]


def _edge() -> Any:
    try:
        import qdrant_edge
    except ImportError as exc:  # pragma: no cover - the extra is installed in this workspace
        raise MissingDependency("qdrant_edge", "qdrant-edge") from exc
    return qdrant_edge


class QdrantEdgeIndex(Index):
    """Recall index on an embedded Qdrant Edge shard (the real engine, no server).

    Args:
        path: the folder of the shard (created by the first write).
        embedder: optional; without one the index is lexical only (sparse vectors).
        fusion: ``"core"`` (reciprocal rank in the library, per-side scores reported) or
            ``"qdrant"`` (``prefetch`` + RRF inside the engine).

    Nothing is opened until first use. One process opens a shard at a time.
    """

    supports_lexical = True
    supports_dense = True

    def __init__(
        self,
        path: str | Path,
        *,
        embedder: Embedder | None = None,
        fusion: Literal["core", "qdrant"] = "core",
    ) -> None:
        super().__init__(embedder)
        if fusion not in ("core", "qdrant"):
            raise TelaMemoryError(f"fusion must be 'core' or 'qdrant', got {fusion!r}")
        self.path = Path(path)
        self.fusion = fusion
        self._shard: qe.EdgeShard | None = None
        self._model: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self._closed = False

    # -- shard ------------------------------------------------------------------------------

    @property
    def _meta_file(self) -> Path:
        return self.path / "tela.json"

    def _open(self, *, create: bool) -> qe.EdgeShard | None:
        if self._closed:
            raise BackendUnavailable(f"QdrantEdgeIndex on {self.path} is closed")
        if self._shard is not None:
            return self._shard
        q = _edge()
        where = self.path / "shard"
        try:
            if where.exists():
                shard = q.EdgeShard.load(str(where))
                self._model = json.loads(self._meta_file.read_text())
                self._own_legacy_points(q, shard)
                self._shard = shard
            elif create:
                self._shard = self._create(q, where)
        except (OSError, ValueError) as exc:
            raise BackendUnavailable(f"cannot open Qdrant Edge shard {where}: {exc}") from exc
        except Exception as exc:  # the engine raises plain Exception
            raise BackendUnavailable(f"cannot open Qdrant Edge shard {where}: {exc}") from exc
        return self._shard

    def _create(self, q: Any, where: Path) -> qe.EdgeShard:
        dense = self.supports_dense and self.embedder is not None
        model: dict[str, Any] = {"tela_schema": 1, "model_id": None, "dimension": None}
        vectors = {}
        if dense and self.embedder is not None:
            vectors[DENSE] = q.EdgeVectorParams(
                size=self.embedder.dimension, distance=q.Distance.Cosine
            )
            model.update(model_id=self.embedder.model_id, dimension=self.embedder.dimension)
        config = q.EdgeConfig(
            vectors=vectors or None,
            sparse_vectors={LEXICAL: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
        )
        self.path.mkdir(parents=True, exist_ok=True)
        self._meta_file.write_text(json.dumps(model))
        shard: qe.EdgeShard = q.EdgeShard.create(str(where), config)
        for field, schema in PAYLOAD_INDEXES.items():
            integer = schema == models.PayloadSchemaType.INTEGER
            kind = q.PayloadSchemaType.Integer if integer else q.PayloadSchemaType.Keyword
            shard.update(q.UpdateOperation.create_field_index(field, kind))
        self._model = model
        return shard

    def _own_legacy_points(self, q: Any, shard: qe.EdgeShard) -> None:
        """Give points written without a user (before threads were namespaced per user)
        their owner, ``DEFAULT_USER``, as the store's migration does; idempotent."""
        ef = _edge_filter(q, OWNERLESS)
        while True:
            req = q.ScrollRequest(limit=_BATCH, filter=ef, with_payload=["message"])
            records, _ = shard.scroll(req)
            if not records:
                return
            for r in records:
                shard.update(q.UpdateOperation.set_payload([r.id], owned(dict(r.payload or {}))))

    def _run_op(self, what: str, fn: Any, *args: Any) -> Any:
        with self._lock:
            try:
                return fn(*args)
            except TelaMemoryError:
                raise
            except Exception as exc:
                raise BackendUnavailable(f"Qdrant Edge shard {self.path}: {what}: {exc}") from exc

    def close(self) -> None:
        """Flush and close the shard."""
        with self._lock:
            if self._shard is not None:
                try:
                    self._shard.flush()
                    self._shard.close()
                finally:
                    self._shard = None
            self._closed = True

    @property
    def watermark_name(self) -> str:
        """``qdrant-edge:<folder>``: a store indexer keeps one watermark per name."""
        return f"qdrant-edge:{self.path.resolve()}"

    def drop(self) -> bool:
        """Delete the shard and its model record; return whether there was one.

        The index stays usable: the next write creates a new shard.
        """
        with self._lock:
            if self._closed:
                raise BackendUnavailable(f"QdrantEdgeIndex on {self.path} is closed")
            if self._shard is not None:
                try:
                    self._shard.close()
                finally:
                    self._shard = None
            self._model = None
            where = self.path / "shard"
            existed = where.exists()
            try:
                if existed:
                    shutil.rmtree(where)
                self._meta_file.unlink(missing_ok=True)
            except OSError as exc:
                raise BackendUnavailable(f"cannot drop Qdrant Edge shard {where}: {exc}") from exc
            return existed

    def drop_vectors(self) -> None:
        """Forget the embedding model, so that the next write can use another one.

        The shard's vector size is fixed when it is created, so this drops the shard, which
        must be empty (``StoreIndexer.reindex()`` calls ``clear()`` and then this); on a shard
        that still holds points it raises ``UnsupportedOperation``.
        """
        left = self._count(SearchFilter())
        if left:
            raise UnsupportedOperation(
                f"Qdrant Edge shard {self.path} still holds {left} points: clear() first "
                "(StoreIndexer.reindex() does), or drop() the shard"
            )
        self.drop()

    def stored_model(self) -> tuple[str | None, int] | None:
        """``(model_id, dimension)`` of the shard's dense vectors, ``None`` if it has none."""
        with self._lock:
            self._open(create=False)
            if self._model is None or self._model.get("dimension") is None:
                return None
            return self._model.get("model_id"), int(self._model["dimension"])

    def _check_model(self, model_id: str, dimension: int) -> None:
        with self._lock:
            self._open(create=False)
            model = self._model
        if model is None:
            return
        if model.get("dimension") is None:
            raise EmbeddingMismatchError(
                f"Qdrant Edge shard {self.path} was built without vectors (lexical only), but "
                f"the embedder is {model_id!r}; index into a new path"
            )
        if model["dimension"] != dimension or model.get("model_id") != model_id:
            raise EmbeddingMismatchError(
                f"Qdrant Edge shard {self.path} holds vectors of {model.get('model_id')!r} "
                f"(dimension {model['dimension']}), not of {model_id!r} (dimension {dimension})"
            )

    # -- writes -----------------------------------------------------------------------------

    def _upsert(self, docs: list[Document]) -> None:
        q = _edge()
        with self._lock:
            shard = self._open(create=True)
            assert shard is not None
            if self.embedder is not None and any(d.vector is not None for d in docs):
                self._check_model(self.embedder.model_id, self.embedder.dimension)
            for start in range(0, len(docs), _BATCH):
                points = [_edge_point(q, d) for d in docs[start : start + _BATCH]]
                self._run_op("upsert", shard.update, q.UpdateOperation.upsert_points(points))

    def _delete(self, ids: list[str]) -> int:
        q = _edge()
        with self._lock:
            shard = self._open(create=False)
            if shard is None:
                return 0
            pids = set(point_id(i) for i in ids)
            found = self._count_edge(shard, q.Filter(must=[q.HasIdCondition(pids)]))
            if found:
                self._run_op("delete", shard.update, q.UpdateOperation.delete_points(list(pids)))
            return found

    def _delete_where(self, flt: SearchFilter) -> int:
        q = _edge()
        with self._lock:
            shard = self._open(create=False)
            ef = _edge_filter(q, to_filter(flt))
            if shard is None or ef is None:
                return 0
            found = self._count_edge(shard, ef)
            if found:
                op = q.UpdateOperation.delete_points_by_filter(ef)
                self._run_op("delete", shard.update, op)
            return found

    def _count(self, flt: SearchFilter) -> int:
        q = _edge()
        with self._lock:
            shard = self._open(create=False)
            ef = _edge_filter(q, to_filter(flt))
            if shard is None or ef is None:
                return 0
            return self._count_edge(shard, ef)

    def _count_edge(self, shard: qe.EdgeShard, ef: Any) -> int:
        q = _edge()
        return int(self._run_op("count", shard.count, q.CountRequest(exact=True, filter=ef)))

    # -- search -----------------------------------------------------------------------------

    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        q = _edge()
        sv = sparse.query_vector(query)
        if sv is None:
            return []
        query_obj = q.Query.Nearest(q.SparseVector(sv.indices, sv.values), using=LEXICAL)
        points = self._query(flt, k, query=query_obj)
        return [
            _hit(p.payload, score=p.score, lexical_score=p.score) for p in points if p.score > 0
        ]

    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        q = _edge()
        assert self.embedder is not None
        self._check_model(self.embedder.model_id, self.embedder.dimension)
        points = self._query(flt, k, query=q.Query.Nearest(vector.tolist(), using=DENSE))
        return [_hit(p.payload, score=p.score, dense_score=p.score) for p in points]

    def _run(
        self, text: str, flt: SearchFilter, k: int, mode: SearchMode, vector: Vectors | None
    ) -> list[Hit]:
        if mode != "hybrid" or vector is None or self.fusion == "core":
            return super()._run(text, flt, k, mode, vector)
        sv = sparse.query_vector(text)
        if sv is None:
            return self._dense(vector, flt, k)
        q = _edge()
        assert self.embedder is not None
        self._check_model(self.embedder.model_id, self.embedder.dimension)
        ef = _edge_filter(q, to_filter(flt))
        if ef is None:
            return []
        prefetches = [
            q.Prefetch(
                k,
                query=q.Query.Nearest(q.SparseVector(sv.indices, sv.values), using=LEXICAL),
                filter=ef,
            ),
            q.Prefetch(k, query=q.Query.Nearest(vector.tolist(), using=DENSE), filter=ef),
        ]
        points = self._query(flt, k, query=q.Fusion.Rrf(k=RRF_K + 1), prefetches=prefetches)
        return [_hit(p.payload, score=p.score) for p in points]

    def _query(self, flt: SearchFilter, k: int, **request: Any) -> list[Any]:
        q = _edge()
        with self._lock:
            shard = self._open(create=False)
            ef = _edge_filter(q, to_filter(flt))
            if shard is None or ef is None:
                return []
            req = q.QueryRequest(limit=k, filter=ef, with_payload=_HIT_FIELDS, **request)
            return list(self._run_op("query", shard.query, req))

    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        q = _edge()
        with self._lock:
            shard = self._open(create=False)
            base = to_filter(flt)
            if shard is None or base is None:
                return []
            found = self._run_op(
                "retrieve",
                shard.retrieve,
                [point_id(message_id)],
                ["user_id", "thread_id", "ts", "id"],
                False,
            )
            if not found or not isinstance(dict(found[0].payload).get("user_id"), str):
                return []
            anchor = dict(found[0].payload)
            ts, mid = int(anchor["ts"]), str(anchor["id"])
            same = same_thread(anchor)

            def scoped(rng: models.Range) -> Any:
                cond = models.FieldCondition(key="ts", range=rng)
                return _edge_filter(q, models.Filter(must=[*(base.must or []), *same, cond]))

            ties = [
                r
                for r in self._scroll(shard, scoped(models.Range(gte=ts, lte=ts)), None)
                if r["id"] != mid
            ]
            older = self._scroll(shard, scoped(models.Range(lt=ts)), (before, q.Direction.Desc))
            newer = self._scroll(shard, scoped(models.Range(gt=ts)), (after, q.Direction.Asc))
        prev = sorted([r for r in ties if _order_key(r) < (ts, mid)] + older, key=_order_key)
        nxt = sorted([r for r in ties if _order_key(r) > (ts, mid)] + newer, key=_order_key)
        chosen = (prev[-before:] if before else []) + nxt[:after]
        return [_hit(r, score=0.0) for r in chosen]

    def _scroll(
        self, shard: qe.EdgeShard, ef: Any, ordered: tuple[int, Any] | None
    ) -> list[dict[str, Any]]:
        q = _edge()
        if ordered is not None:
            limit, direction = ordered
            if limit <= 0:
                return []
            req = q.ScrollRequest(
                limit=limit,
                filter=ef,
                with_payload=_ROW_FIELDS,
                order_by=q.OrderBy("ts", direction=direction),
            )
            records, _ = self._run_op("scroll", shard.scroll, req)
            return [dict(r.payload) for r in records]
        out: list[dict[str, Any]] = []
        offset = None
        while True:
            req = q.ScrollRequest(offset=offset, limit=_BATCH, filter=ef, with_payload=_ROW_FIELDS)
            records, offset = self._run_op("scroll", shard.scroll, req)
            out.extend(dict(r.payload) for r in records)
            if offset is None:
                return out


def _edge_point(q: Any, doc: Document) -> Any:
    vector: dict[str, Any] = {}
    if doc.vector is not None:
        vector[DENSE] = doc.vector.tolist()
    sv = sparse.document_vector(doc.text)
    if sv is not None:
        vector[LEXICAL] = q.SparseVector(sv.indices, sv.values)
    return q.Point(point_id(doc.message.id), vector, payload(doc.message, doc.text))


def _edge_filter(q: Any, flt: models.Filter | None) -> Any:
    """The Qdrant Edge twin of a qdrant-client filter (the kinds ``to_filter`` builds)."""
    if flt is None:
        return None
    return q.Filter(must=[_edge_condition(q, c) for c in flt.must or []])


def _edge_condition(q: Any, cond: Any) -> Any:
    if isinstance(cond, models.HasIdCondition):
        return q.HasIdCondition({str(i) for i in cond.has_id})
    if isinstance(cond, models.IsEmptyCondition):
        return q.IsEmptyCondition(cond.is_empty.key)
    if isinstance(cond, models.FieldCondition):
        if isinstance(cond.match, models.MatchValue):
            return q.FieldCondition(cond.key, match=q.MatchValue(cond.match.value))
        if isinstance(cond.match, models.MatchAny):
            return q.FieldCondition(cond.key, match=q.MatchAny(list(cond.match.any)))
        if isinstance(cond.range, models.Range):
            r = cond.range
            return q.FieldCondition(
                cond.key,
                range=q.RangeFloat(gte=_f(r.gte), gt=_f(r.gt), lte=_f(r.lte), lt=_f(r.lt)),
            )
    raise TelaMemoryError(f"no Qdrant Edge translation for filter condition {cond!r}")


def _f(value: float | None) -> float | None:
    return None if value is None else float(value)


__all__ = ["QdrantEdgeIndex"]
