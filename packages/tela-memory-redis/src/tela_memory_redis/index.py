"""``RedisIndex``: recall over history on the Redis Query Engine (RediSearch) through redisvl.

BM25 over the searchable text (and, at a lower weight, the words of the turn it replies to),
exact cosine KNN (FLAT; HNSW on request) over the embeddings,
and hybrid search fused by reciprocal rank in the core. Every filter (user, threads, message
ids, roles, time range, typed metadata) runs inside the RediSearch query, pre-filtering the
KNN, never on a global top-k afterwards. Filter values never reach the query text: users,
threads, ids and metadata are stored and matched as hashed TAG tokens, so ``{}|@*:-`` or
spaces in them cannot change a query. A thread is ``(user, thread id)``: filter by
``user_id`` to stay in one user's threads (``thread_ids`` alone matches every user's thread of
that id), and a message's neighbours come from its own user's thread only.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any, Literal
from urllib.parse import unquote

import numpy as np
import redis.exceptions
from redisvl.index import SearchIndex  # type: ignore[import-untyped]
from redisvl.query import CountQuery, FilterQuery, TextQuery, VectorQuery  # type: ignore[import-untyped]
from redisvl.query.filter import FilterExpression, Num, Tag  # type: ignore[import-untyped]
from redisvl.schema import IndexSchema  # type: ignore[import-untyped]

import redis
from tela_memory.errors import (
    BackendUnavailable,
    SchemaError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.messages import load_stored
from tela_memory.recall.embedder import Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import Document, Index
from tela_memory.recall.types import Hit, SearchFilter
from tela_memory.stores import _common as common
from tela_memory_redis import connection
from tela_memory_redis._ops import check_prefix, enc

_WORD = re.compile(r"\w+", re.UNICODE)
_FIELDS = ["msg", "text", "ts"]
_PAGE = 1000


class _Nothing(Exception):
    """The filter can match nothing (an empty list of allowed values)."""


def token(value: str) -> str:
    """A hashed TAG token for any string: 24 hex characters, nothing to escape."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def _meta_token(key: str, value: object) -> str | None:
    if isinstance(value, bool):
        return token(f"{key}\x00b:{int(value)}")
    if isinstance(value, int):
        return token(f"{key}\x00i:{value}")
    if isinstance(value, str):
        return token(f"{key}\x00s:{value}")
    return None


class RedisIndex(Index):
    """A recall index in Redis (needs the search module: Redis 8 with the Query Engine,
    Redis Stack or Redis Cloud; not on an OSS Redis Cluster).

    Args:
        url: a ``redis://`` / ``rediss://`` / ``unix://`` URL (or pass ``client``).
        client: an existing sync redis-py client (left open on close).
        embedder: enables dense and hybrid search; the first upsert fixes the model.
        name: the RediSearch index name; documents live under ``<name>:doc:``.
        algorithm: ``"flat"`` (exact KNN, default) or ``"hnsw"`` (approximate, for millions).
        parent_weight: weight of the parent turn's words in BM25, against 1 for the turn's own
            (a reply such as "yes, last Friday" is found by what it answers); 0 turns it off.

    Nothing connects until first use.
    """

    supports_lexical = True
    supports_dense = True

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        embedder: Embedder | None = None,
        name: str = "tela-recall",
        algorithm: Literal["flat", "hnsw"] = "flat",
        parent_weight: float = 0.3,
        **client_options: Any,
    ) -> None:
        super().__init__(embedder)
        if url is None and client is None:
            raise TelaMemoryError("RedisIndex needs a url or a client")
        if algorithm not in ("flat", "hnsw"):
            raise TelaMemoryError(f"algorithm must be 'flat' or 'hnsw', got {algorithm!r}")
        if not 0.0 <= parent_weight <= 1.0:
            raise TelaMemoryError(f"parent_weight must be within 0..1, got {parent_weight!r}")
        self.name = check_prefix(name)
        self.algorithm = algorithm
        self.parent_weight = parent_weight
        self._url = url
        self._client = client
        self._own = client is None
        self._options = client_options
        self.address = connection.redact(url) if url else connection.describe(client)
        self._index: SearchIndex | None = None
        self._model: tuple[str, int] | None = None
        self._lock = threading.RLock()
        self._doc_prefix = f"{self.name}:doc:"
        self._meta_key = f"{self.name}:meta"

    # -- connection and schema --------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The redis-py client (built on first use)."""
        with self._lock:
            if self._client is None:
                assert self._url is not None
                self._client = connection.sync_client(self._url, **self._options)
            return self._client

    def _schema(self, dims: int | None) -> IndexSchema:
        fields: list[dict[str, Any]] = [
            {"name": "text", "type": "text"},
            {"name": "ctx", "type": "text"},
            {"name": "parent", "type": "tag"},
            {"name": "user", "type": "tag"},
            {"name": "thread", "type": "tag"},
            {"name": "mid", "type": "tag"},
            {"name": "role", "type": "tag"},
            {"name": "meta", "type": "tag"},
            {"name": "ts", "type": "numeric", "attrs": {"sortable": True}},
        ]
        if dims:
            fields.append(
                {
                    "name": "vec",
                    "type": "vector",
                    "attrs": {
                        "dims": dims,
                        "algorithm": self.algorithm,
                        "distance_metric": "cosine",
                        "datatype": "float32",
                    },
                }
            )
        return IndexSchema.from_dict(
            {
                "index": {
                    "name": self.name,
                    "prefix": self._doc_prefix,
                    "storage_type": "hash",
                    "stopwords": [],
                },
                "fields": fields,
            }
        )

    def _wrap(self, exc: Exception, doing: str) -> TelaMemoryError:
        text = str(exc)
        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return BackendUnavailable(f"Redis at {self.address} is unreachable ({doing}): {exc}")
        if "unknown command" in text.lower() and "FT." in text.upper():
            return self._no_search()
        return BackendUnavailable(f"Redis at {self.address} failed ({doing}): {text}")

    def _no_search(self) -> UnsupportedOperation:
        return UnsupportedOperation(
            f"RedisIndex needs the Redis Query Engine (the 'search' module, RediSearch), and "
            f"the Redis at {self.address} does not have it. Use Redis 8 with the Query Engine, "
            "Redis Stack or Redis Cloud, or the embedded tela_memory.recall.SQLiteIndex; "
            "RedisStore works without it."
        )

    def _ensure(self) -> SearchIndex:
        with self._lock:
            if self._index is not None:
                return self._index
            client = self.client
            try:
                client.execute_command("FT._LIST")
            except redis.exceptions.ResponseError as exc:
                if "unknown command" in str(exc).lower():
                    raise self._no_search() from exc
                raise self._wrap(exc, "checking the search module") from exc
            except redis.exceptions.RedisError as exc:
                raise self._wrap(exc, "checking the search module") from exc
            try:
                stored = client.hgetall(self._meta_key)
                model = None
                if stored:
                    try:
                        model = (stored[b"model"].decode(), int(stored[b"dims"]))
                    except (KeyError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
                        raise SchemaError(
                            f"Redis at {self.address}: {self._meta_key} is not a model record "
                            f"of this index (fields 'model' and 'dims'): {stored!r}"[:500]
                        ) from exc
                dims = model[1] if model else (self.embedder.dimension if self.embedder else None)
                index = SearchIndex(self._schema(dims), redis_client=client)
                if index.exists():
                    self._add_context_fields(client)
                else:
                    index.create(overwrite=False)
                    if self.embedder is not None:
                        model = (self.embedder.model_id, self.embedder.dimension)
                        client.hset(self._meta_key, mapping={"model": model[0], "dims": model[1]})
            except redis.exceptions.RedisError as exc:
                raise self._wrap(exc, "creating the index") from exc
            self._model = model
            self._index = index
            return index

    def _check_model(self, model_id: str, dimension: int) -> None:
        self._ensure()
        if self._model is None:
            raise EmbeddingMismatchError(
                f"index {self.name!r} was created without vectors; use a new index name to "
                "search by vectors"
            )
        if self._model != (model_id, dimension):
            raise EmbeddingMismatchError(
                f"index {self.name!r} holds vectors of {self._model[0]} ({self._model[1]} dims), "
                f"not {model_id} ({dimension} dims): use a new index name or rebuild it"
            )

    def _key(self, message_id: str) -> str:
        return self._doc_prefix + enc(message_id)

    # -- writing ----------------------------------------------------------------------------

    def _upsert(self, docs: list[Document]) -> None:
        self._ensure()
        parents, existing = self._parent_texts(docs)
        pipe = self.client.pipeline(transaction=True)
        for doc in docs:
            m = doc.message
            meta = [t for k, v in m.metadata.items() if (t := _meta_token(k, v)) is not None]
            mapping: dict[str, Any] = {
                "text": doc.text,
                "ctx": parents.get(m.parent_id or "", ""),
                "parent": token(m.parent_id) if m.parent_id else "",
                "user": token(m.user_id) if m.user_id is not None else "",
                "thread": token(m.thread_id or ""),
                "mid": token(m.id),
                "role": m.role.value,
                "meta": ",".join(meta),
                "ts": common.to_micros(m.created_at),
                "msg": m.model_dump_json(),
            }
            if doc.vector is not None:
                mapping["vec"] = np.asarray(doc.vector, dtype=np.float32).tobytes()
            key = self._key(m.id)
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
        try:
            pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise self._wrap(exc, "upserting") from exc
        if existing:  # re-indexed (edited) messages: their replies get the new words
            self._set_children_context(
                {d.message.id: d.text for d in docs if d.message.id in existing}
            )

    def _parent_texts(self, docs: list[Document]) -> tuple[dict[str, str], set[str]]:
        """The searchable text of each doc's parent (from the batch, else from the index), and
        which of the docs are already indexed; one round trip."""
        texts = {d.message.id: d.text for d in docs}
        wanted = sorted({p for d in docs if (p := d.message.parent_id) and p not in texts})
        ids = list(texts)
        try:
            pipe = self.client.pipeline(transaction=False)
            for pid in wanted:
                pipe.hget(self._key(pid), "text")
            for mid in ids:
                pipe.exists(self._key(mid))
            replies = pipe.execute()
        except redis.exceptions.RedisError as exc:
            raise self._wrap(exc, "reading parents") from exc
        for pid, raw in zip(wanted, replies[: len(wanted)], strict=True):
            if raw is not None:
                texts[pid] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        existing = {mid for mid, n in zip(ids, replies[len(wanted) :], strict=True) if n}
        return texts, existing

    def _set_children_context(self, texts: dict[str, str | None]) -> None:
        """Give the indexed replies of these messages their parent's current words (``None``:
        the parent is gone, so its words leave its replies and the link is dropped)."""
        index = self._ensure()
        ids = list(texts)
        for start in range(0, len(ids), 100):
            chunk = {token(i): texts[i] for i in ids[start : start + 100]}
            expr = Tag("parent") == list(chunk)
            while True:
                rows = self._query(
                    index, FilterQuery(expr, return_fields=["parent"], num_results=_PAGE)
                )
                pipe = self.client.pipeline(transaction=False)
                unlinked = 0
                for row in rows:
                    text = chunk.get(str(row.get("parent") or ""))
                    if text is None:
                        pipe.hset(row["id"], mapping={"ctx": "", "parent": ""})
                        unlinked += 1
                    else:
                        pipe.hset(row["id"], "ctx", text)
                try:
                    pipe.execute()
                except redis.exceptions.RedisError as exc:
                    raise self._wrap(exc, "updating replies") from exc
                if len(rows) < _PAGE or unlinked < len(rows):  # done, or only updates left
                    break

    def _add_context_fields(self, client: Any) -> None:
        """Add the parent-words fields to an index created by an earlier version (its older
        documents keep an empty parent context until they are indexed again)."""
        try:  # FT.INFO's reply shape varies with client versions: ask Redis to add instead
            client.execute_command(
                "FT.ALTER", self.name, "SCHEMA", "ADD", "ctx", "TEXT", "parent", "TAG"
            )
        except redis.exceptions.ResponseError as exc:
            if "duplicate" not in str(exc).lower():
                raise

    def _delete(self, ids: list[str]) -> int:
        self._ensure()
        try:
            removed = int(self.client.delete(*[self._key(i) for i in ids]))
        except redis.exceptions.RedisError as exc:
            raise self._wrap(exc, "deleting") from exc
        self._set_children_context(dict.fromkeys(ids))
        return removed

    def _delete_where(self, flt: SearchFilter) -> int:
        index = self._ensure()
        try:
            expr = self._expr(flt)
        except _Nothing:
            return 0
        removed = 0
        while True:
            rows = self._query(index, FilterQuery(expr, return_fields=["ts"], num_results=_PAGE))
            if not rows:
                return removed
            keys = [r["id"] for r in rows]
            try:
                removed += int(self.client.delete(*keys))
            except redis.exceptions.RedisError as exc:
                raise self._wrap(exc, "deleting") from exc
            self._set_children_context(
                dict.fromkeys(unquote(k[len(self._doc_prefix) :]) for k in keys)
            )

    def _count(self, flt: SearchFilter) -> int:
        index = self._ensure()
        try:
            expr = self._expr(flt)
        except _Nothing:
            return 0
        return int(self._query(index, CountQuery(expr)))

    # -- searching --------------------------------------------------------------------------

    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        index = self._ensure()
        words = _WORD.findall(query.lower())
        if not words:
            return []
        try:
            expr = self._expr(flt)
        except _Nothing:
            return []
        fields: str | dict[str, float] = "text"
        if self.parent_weight > 0:
            fields = {"text": 1.0, "ctx": self.parent_weight}
        q = TextQuery(
            " ".join(dict.fromkeys(words)),
            fields,
            filter_expression=expr,
            return_fields=_FIELDS,
            num_results=k,
            stopwords=None,
        )
        hits = []
        for row in self._query(index, q):
            score = float(row.get("score") or 0.0)
            hits.append(self._hit(row, score=score, lexical_score=score))
        hits.sort(key=lambda h: -h.score)
        return hits

    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        index = self._ensure()
        try:
            expr = self._expr(flt)
        except _Nothing:
            return []
        q = VectorQuery(
            np.asarray(vector, dtype=np.float32).tobytes(),
            "vec",
            return_fields=_FIELDS,
            filter_expression=expr,
            num_results=k,
        )
        hits = []
        for row in self._query(index, q):
            sim = 1.0 - float(row.get("vector_distance") or 0.0)
            hits.append(self._hit(row, score=sim, dense_score=sim))
        return hits

    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        index = self._ensure()
        try:
            found = self.client.hmget(self._key(message_id), ["thread", "user", "ts"])
        except redis.exceptions.RedisError as exc:
            raise self._wrap(exc, "reading a message") from exc
        if found[0] is None or found[2] is None:
            return []
        thread, user, ts = found[0].decode(), (found[1] or b"").decode(), int(found[2])
        try:
            base = self._expr(flt)
        except _Nothing:
            return []
        # a thread is (user, thread id): another user's thread of the same id is not "around"
        same = Tag("thread") == thread
        if user:
            same = same & (Tag("user") == user)
        if base is not None:
            same = same & base
        out: list[Hit] = []
        if before:
            q = FilterQuery(
                same & (Num("ts") < ts),
                return_fields=_FIELDS,
                num_results=before,
                sort_by=("ts", "DESC"),
            )
            out += reversed([self._hit(r, score=0.0) for r in self._query(index, q)])
        if after:
            q = FilterQuery(
                same & (Num("ts") > ts),
                return_fields=_FIELDS,
                num_results=after,
                sort_by=("ts", "ASC"),
            )
            out += [self._hit(r, score=0.0) for r in self._query(index, q)]
        if not user:  # indexed without a user (before ownership): only ownerless neighbours
            out = [h for h in out if h.message.user_id is None]
        return out

    # -- helpers ----------------------------------------------------------------------------

    def _query(self, index: SearchIndex, q: Any) -> Any:
        try:
            return index.query(q)
        except redis.exceptions.RedisError as exc:
            raise self._wrap(exc, "searching") from exc
        except Exception as exc:  # redisvl wraps driver errors in its own exception types
            cause = exc.__cause__
            if isinstance(cause, redis.exceptions.RedisError):
                raise self._wrap(cause, "searching") from exc
            raise BackendUnavailable(f"Redis at {self.address}: search failed: {exc}") from exc

    def _hit(self, row: dict[str, Any], **scores: Any) -> Hit:
        try:
            message = load_stored(row["msg"])
        except (KeyError, SchemaError) as exc:
            raise SchemaError(
                f"index {self.name!r} at {self.address}: document {row.get('id')!r} holds "
                f"unreadable data (written by something else?): {str(exc).splitlines()[0][:200]}"
            ) from exc
        return Hit(message=message, text=str(row.get("text") or ""), **scores)

    @staticmethod
    def _expr(flt: SearchFilter) -> FilterExpression | None:
        parts: list[FilterExpression] = []

        def any_of(field: str, values: list[str]) -> None:
            if not values:
                raise _Nothing
            parts.append(Tag(field) == values)

        if flt.user_id is not None:
            any_of("user", [token(flt.user_id)])
        if flt.thread_ids is not None:
            any_of("thread", [token(t) for t in flt.thread_ids])
        if flt.message_ids is not None:
            any_of("mid", [token(i) for i in flt.message_ids])
        if flt.roles is not None:
            any_of("role", [r.value for r in flt.roles])
        if flt.since is not None:
            parts.append(Num("ts") >= common.to_micros(flt.since))
        if flt.until is not None:
            parts.append(Num("ts") < common.to_micros(flt.until))
        for key, want in flt.metadata.items():
            options = want if isinstance(want, tuple) else (want,)
            any_of("meta", [t for o in options if (t := _meta_token(key, o)) is not None])
        if not parts:
            return None
        expr = parts[0]
        for part in parts[1:]:
            expr = expr & part
        return expr

    @property
    def watermark_name(self) -> str:
        """``redis:<address>/<index name>``: one watermark per server and index."""
        return f"redis:{self.address}/{self.name}"

    def drop_vectors(self) -> None:
        """Forget the embedding model, so that the next write can use another one.

        The vector field's dimension is part of the RediSearch schema, so this drops the
        index, which must be empty (``StoreIndexer.reindex()`` calls ``clear()`` and then
        this); on an index that still holds documents it raises ``UnsupportedOperation``.
        """
        left = self._count(SearchFilter())  # not count(): no catch-up from a followed store
        if left:
            raise UnsupportedOperation(
                f"index {self.name!r} at {self.address} still holds {left} documents: clear() "
                "first (StoreIndexer.reindex() does), or drop() the index"
            )
        self.drop()

    def drop(self) -> None:
        """Delete the RediSearch index, every document in it and its model record."""
        with self._lock:
            client = self.client
            try:
                client.execute_command("FT.DROPINDEX", self.name, "DD")
            except redis.exceptions.ResponseError as exc:
                text = str(exc).lower()
                if "unknown command" in text:
                    raise self._no_search() from exc
                if "unknown index" not in text and "no such index" not in text:
                    raise self._wrap(exc, "dropping the index") from exc
            except redis.exceptions.RedisError as exc:
                raise self._wrap(exc, "dropping the index") from exc
            client.delete(self._meta_key)
            self._index = None
            self._model = None

    def close(self) -> None:
        """Close the client this index built (an injected client is left open)."""
        with self._lock:
            if self._own and self._client is not None:
                self._client.close()
            self._client = None
            self._index = None


__all__ = ["RedisIndex", "token"]
