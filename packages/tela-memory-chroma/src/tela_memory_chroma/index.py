"""``ChromaIndex``: the recall :class:`~tela_memory.recall.index.Index` on Chroma.

A collection per user (:mod:`tela_memory_chroma.collections`): a search for one user opens
only that user's collection, so no filter can reach another user's turns, and erasing a user
deletes the collection. Inside it, every filter is a Chroma ``where`` (and ``ids``) built from
the :class:`SearchFilter` (:mod:`tela_memory_chroma.records`). Dense search is Chroma's cosine
HNSW; the lexical side finds turns by their words (a metadata array, ``$contains``) and ranks
them by the words' IDF (:mod:`tela_memory_chroma.lexical`); hybrid fuses both by reciprocal
rank in the core.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.errors import NotFoundError as ChromaNotFound

from tela_memory.errors import (
    BackendUnavailable,
    InvalidArgumentError,
    SchemaError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.recall.embedder import Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import Document, Index, contextual_vectors
from tela_memory.recall.types import Hit, SearchFilter, ThreadKey
from tela_memory_chroma import lexical
from tela_memory_chroma import records as rec
from tela_memory_chroma.client import Stale, Target, failure, fresh, open_client, parse_url
from tela_memory_chroma.collections import (
    CONFIGURATION,
    Model,
    catalog_collection,
    catalog_metadata,
    check_name,
    check_owner,
    owner,
    read_catalog,
    user_collection,
    user_metadata,
)

#: Ids per ``get(ids=...)`` (SQLite's limit on bound variables is 32,766).
ID_CHUNK = 20_000
_HOUR = 3_600_000_000
#: Neighbour search windows (microseconds) before the unbounded one.
_WINDOWS = tuple(_HOUR * 16**i for i in range(7))
_T = TypeVar("_T")


class ChromaIndex(Index):
    """Recall index in Chroma (a folder, a server, in process, or an injected client).

    Give exactly one of ``path``, ``url``, ``client`` or ``ephemeral=True``. Nothing connects
    until first use; a user's collection is created by the first write of that user's turns.

    Args:
        path: a folder for ``chromadb.PersistentClient``.
        url: a Chroma server, for example ``"http://127.0.0.1:8000"`` (``HttpClient``).
        client: an open Chroma client (``PersistentClient``, ``HttpClient``, ...); the caller
            keeps ownership.
        ephemeral: ``chromadb.EphemeralClient``: in process, gone when the process ends
            (ephemeral clients of one process share their data; ``name`` keeps indexes apart).
        name: the index's name, the prefix of its collections.
        embedder: optional; without one the index is lexical only.
        headers: HTTP headers for a server (``{"x-chroma-token": ...}``).
        context_weight: contextual vectors: a turn's vector is mixed with its parent's at
            this weight (as the embedded index does; ``0`` embeds each turn alone).
    """

    supports_lexical: ClassVar[bool] = True
    supports_dense: ClassVar[bool] = True

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        url: str | None = None,
        client: ClientAPI | None = None,
        ephemeral: bool = False,
        name: str = "tela",
        embedder: Embedder | None = None,
        headers: dict[str, str] | None = None,
        context_weight: float = 0.5,
    ) -> None:
        super().__init__(embedder)
        if not isinstance(context_weight, int | float) or not 0 <= context_weight <= 10:
            raise InvalidArgumentError(
                f"context_weight must be a number from 0 to 10, got {context_weight!r}"
            )
        self.context_weight = float(context_weight)
        given = [x for x in (path, url, client) if x is not None] + ([True] if ephemeral else [])
        if len(given) != 1:
            raise InvalidArgumentError(
                "ChromaIndex needs exactly one of path=, url=, client= or ephemeral=True"
            )
        if client is not None and not isinstance(client, ClientAPI):
            raise InvalidArgumentError(
                f"client must be a Chroma client (ClientAPI), not {type(client).__name__}"
            )
        if url is not None and not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"url must be http:// or https://, got {url!r}")
        self.name = check_name(name)
        self._target = Target(
            path=None if path is None else str(path),
            url=None if url is None else url.rstrip("/"),
            ephemeral=ephemeral,
            headers=dict(headers or {}),
        )
        self._client: ClientAPI | None = client
        self._injected = client is not None
        self._lock = threading.RLock()
        self._users: dict[str, Collection] = {}
        self._model: Model | None = None
        self._batch: int | None = None
        self._closed = False
        self._instance = uuid.uuid4().hex

    @classmethod
    def from_url(cls, url: str, **options: Any) -> ChromaIndex:
        """An index from ``chroma:///folder``, ``chroma://:memory:`` or
        ``chroma+http://host:port`` (``?name=`` sets the index name); no I/O."""
        target, found = parse_url(url)
        options = {**found, **options}
        if target.url is not None:
            return cls(url=target.url, **options)
        if target.path is not None:
            return cls(target.path, **options)
        return cls(ephemeral=True, **options)

    # -- connection -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """Where the index lives (for messages)."""
        if self._injected:
            return f"injected {type(self._client).__name__}"
        return self._target.describe()

    @property
    def watermark_name(self) -> str:
        """``chroma:<where>/<name>``: a store indexer keeps one watermark per name. A server
        or a folder (given, or an injected client's) names the same data from run to run; an
        ephemeral client gets a name per instance, so that a new one is filled anew."""
        where = _client_address(self._client) if self._injected else None
        if self._target.url is not None:
            where = self._target.url
        elif self._target.path is not None:
            where = f"path:{Path(self._target.path).resolve()}"
        return f"chroma:{where or f'memory:{self._instance}'}/{self.name}"

    def client(self) -> ClientAPI:
        """The Chroma client (opened on first use unless one was injected)."""
        if self._closed:
            raise BackendUnavailable(f"ChromaIndex on {self.address} is closed")
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = open_client(self._target)
        return self._client

    def close(self) -> None:
        """Forget the client (an injected one is left to its owner) and the cached state."""
        with self._lock:
            self._users.clear()
            self._model = None
            if not self._injected:
                self._client = None
            self._closed = True

    def _call(self, op: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return fn(*args, **kwargs)
        except TelaMemoryError:
            raise
        except ChromaNotFound as exc:  # a collection we had open was deleted: see ``fresh``
            with self._lock:
                self._users.clear()
                self._model = None
            raise Stale from exc
        except Exception as exc:
            raise failure(
                f"Chroma at {self.address} (index {self.name!r}) failed on {op}", exc
            ) from exc

    # -- collections and model ---------------------------------------------------------------

    def _get(self, collection: str) -> Collection | None:
        client = self.client()
        try:
            return client.get_collection(collection, embedding_function=None)
        except ChromaNotFound:
            return None
        except Exception as exc:
            if "does not exist" in str(exc):
                return None
            raise failure(f"Chroma at {self.address} failed opening {collection!r}", exc) from exc

    def _catalog(self) -> Model | None:
        """The model the index was built with; ``None`` before its first write."""
        if self._model is None:
            name = catalog_collection(self.name)
            found = self._get(name)
            if found is not None:
                self._model = read_catalog(name, found.metadata)
        return self._model

    def _wanted_model(self) -> Model:
        if self.supports_dense and self.embedder is not None:
            return Model(self.embedder.model_id, self.embedder.dimension)
        return Model(None, 0)

    def _ensure_catalog(self) -> Model:
        found = self._catalog()
        if found is not None:
            return found
        wanted = self._wanted_model()
        name = catalog_collection(self.name)
        col = self._call(
            "create catalog",
            self.client().get_or_create_collection,
            name,
            metadata=catalog_metadata(self.name, wanted),
            embedding_function=None,
        )
        self._model = read_catalog(name, col.metadata)  # another writer may have been first
        return self._model

    def stored_model(self) -> tuple[str | None, int] | None:
        """``(model_id, dimension)`` the index's vectors were made with; ``None`` if none."""
        model = self._catalog()
        if model is None or model.dimension == 0:
            return None
        return model.model_id, model.dimension

    def _check_model(self, model_id: str, dimension: int) -> None:
        self._verify(self._catalog(), model_id, dimension)

    def _verify(self, model: Model | None, model_id: str, dimension: int) -> None:
        if model is None:
            return
        if model.dimension == 0:
            raise EmbeddingMismatchError(
                f"Chroma index {self.name!r} was built without vectors (lexical only), but the "
                f"embedder is {model_id!r}; use another index name (or drop() this one)"
            )
        if model.dimension != dimension or (
            model.model_id is not None and model.model_id != model_id
        ):
            raise EmbeddingMismatchError(
                f"Chroma index {self.name!r} holds vectors of {model.model_id!r} (dimension "
                f"{model.dimension}), not of {model_id!r} (dimension {dimension}); open it with "
                "that model or drop() it and index again"
            )

    def _user(self, user_id: str, *, create: bool) -> Collection | None:
        """A user's collection (created if asked); ``None`` while it does not exist."""
        col = self._users.get(user_id)
        if col is not None:
            return col
        name = user_collection(self.name, user_id)
        if create:
            col = self._call(
                "create collection",
                self.client().get_or_create_collection,
                name,
                metadata=user_metadata(self.name, user_id),
                configuration=CONFIGURATION,
                embedding_function=None,
            )
        else:
            col = self._get(name)
        if col is not None:
            check_owner(self.name, name, user_id, col.metadata)
            with self._lock:
                self._users[user_id] = col
        return col

    def _all_users(self) -> list[tuple[str, Collection]]:
        """Every user collection of this index (listed from the server each time)."""
        client = self.client()
        out: list[tuple[str, Collection]] = []
        offset, page = 0, 1000
        while True:
            batch = self._call("list collections", client.list_collections, page, offset)
            for col in batch:
                user = owner(self.name, col.name, col.metadata)
                if user is not None:
                    out.append((user, col))
            if len(batch) < page:
                return out
            offset += page

    def _scope(self, flt: SearchFilter) -> list[tuple[str, Collection]]:
        """The collections a filter reaches: its user's, or every user's without one."""
        if flt.user_id is None:
            return self._all_users()
        col = self._user(flt.user_id, create=False)
        return [] if col is None else [(flt.user_id, col)]

    def _forget(self, user_id: str) -> None:
        with self._lock:
            self._users.pop(user_id, None)

    @fresh
    def drop_vectors(self) -> None:
        """Forget the embedding model so that the next write may use another one. Chroma fixes
        a collection's dimension at its first record, so this needs an empty index
        (``StoreIndexer.reindex()`` calls ``clear()`` first); else ``UnsupportedOperation``."""
        left = self._count(SearchFilter())
        if left:
            raise UnsupportedOperation(
                f"Chroma index {self.name!r} still holds {left} records: clear() it first "
                "(StoreIndexer.reindex() does), or drop() it"
            )
        self.drop()

    @fresh
    def drop(self) -> bool:
        """Delete every collection of the index (its users' and the catalog); return whether
        there was any."""
        users = self._all_users()
        found = self._get(catalog_collection(self.name))
        if found is not None and (found.metadata or {}).get("tela_index") != self.name:
            read_catalog(found.name, found.metadata)  # SchemaError: not tela-memory's
            raise SchemaError(f"Chroma collection {found.name!r} is not index {self.name!r}'s")
        catalog = found is not None  # of any schema version
        for user, _ in users:
            self._delete_collection(user)
        if catalog:
            self._call(
                "delete catalog", self.client().delete_collection, catalog_collection(self.name)
            )
        self._model = None
        return bool(users) or catalog

    def _delete_collection(self, user_id: str) -> None:
        self._forget(user_id)
        name = user_collection(self.name, user_id)
        try:
            self.client().delete_collection(name)
        except Exception as exc:
            if self._get(name) is not None:
                raise failure(f"Chroma at {self.address} failed deleting {name!r}", exc) from exc

    # -- writes -----------------------------------------------------------------------------

    def _contextual(self, docs: list[Document]) -> list[Document]:
        """Mix each vector with its parent's (the core's :func:`contextual_vectors`): a parent
        in the batch gives its mixed vector, one outside it is read from the child's user's
        collection (a parent counts only in the same thread, so no other collection)."""
        if self.context_weight <= 0 or not any(d.vector is not None for d in docs):
            return docs
        batch = {d.message.id for d in docs}
        wanted: dict[str, list[str]] = {}
        for d in docs:
            parent = d.message.parent_id
            if d.vector is not None and parent is not None and parent not in batch:
                wanted.setdefault(str(d.message.user_id), []).append(parent)
        known = self._parent_vectors(wanted) if wanted else {}
        mixed = contextual_vectors(
            [d.vector for d in docs],
            [d.message.id for d in docs],
            [d.message.parent_id for d in docs],
            known,
            self.context_weight,
            threads=[d.thread_key for d in docs],
        )
        return [Document(d.message, d.text, v) for d, v in zip(docs, mixed, strict=True)]

    @fresh
    def _parent_vectors(self, wanted: dict[str, list[str]]) -> dict[str, tuple[ThreadKey, Vectors]]:
        """Stored vectors (and threads) of these parents, per user, from that user's collection."""
        out: dict[str, tuple[ThreadKey, Vectors]] = {}
        dimension = self.embedder.dimension if self.embedder is not None else 0
        for user_id, ids in wanted.items():
            col = self._user(user_id, create=False)
            if col is None:
                continue
            unique = list(dict.fromkeys(ids))
            for start in range(0, len(unique), ID_CHUNK):
                got = self._call(
                    "get",
                    col.get,
                    ids=unique[start : start + ID_CHUNK],
                    where={"has_vec": {"$eq": True}},
                    include=["embeddings", "metadatas"],
                )
                found = got["embeddings"]
                if found is None:
                    continue
                for mid, vec, meta in zip(got["ids"], found, got["metadatas"] or [], strict=True):
                    array = np.asarray(vec, dtype=np.float32)
                    if array.shape == (dimension,) and meta is not None:
                        out[mid] = ((user_id, str(meta["thread"])), array)
        return out

    @fresh
    def _upsert(self, docs: list[Document]) -> None:
        model = self._ensure_catalog()
        if self.embedder is not None and any(d.vector is not None for d in docs):
            self._verify(model, self.embedder.model_id, self.embedder.dimension)
        placeholder = [1.0] + [0.0] * (max(model.dimension, 1) - 1)
        latest = {d.message.id: d for d in docs}  # Chroma refuses repeated ids in one call
        by_user: dict[str, list[Document]] = {}
        for d in latest.values():
            by_user.setdefault(str(d.message.user_id), []).append(d)
        batch = self._batch_size()
        for user_id, mine in by_user.items():
            col = self._user(user_id, create=True)
            assert col is not None
            for start in range(0, len(mine), batch):
                part = mine[start : start + batch]
                self._call(
                    "upsert",
                    col.upsert,
                    ids=[d.message.id for d in part],
                    embeddings=[
                        d.vector.tolist() if d.vector is not None else placeholder for d in part
                    ],
                    metadatas=[rec.metadata(d) for d in part],
                )

    def _batch_size(self) -> int:
        """Records per ``upsert``: at most 1,000 and the client's limit (asked once)."""
        if self._batch is None:
            limit = self._call("batch size", self.client().get_max_batch_size)
            self._batch = max(1, min(limit, 1000))
        return self._batch

    @fresh
    def _delete(self, ids: list[str]) -> int:
        wanted = list(dict.fromkeys(ids))
        done = 0
        for _, col in self._all_users():
            for start in range(0, len(wanted), ID_CHUNK):
                found = self._ids(col, None, wanted[start : start + ID_CHUNK])
                if found:
                    self._call("delete", col.delete, ids=found)
                    done += len(found)
        return done

    @fresh
    def _delete_where(self, flt: SearchFilter) -> int:
        done = 0
        for user_id, col in self._scope(flt):
            if flt.narrowed(user_id=None) == SearchFilter():  # a whole user: drop it
                done += self._call("count", col.count)
                self._delete_collection(user_id)
                continue
            for chunk in self._id_chunks(col, flt):
                found = self._ids(col, flt, chunk)
                if found:
                    self._call("delete", col.delete, ids=found)
                    done += len(found)
        return done

    @fresh
    def _count(self, flt: SearchFilter) -> int:
        total = 0
        for _, col in self._scope(flt):
            if flt.narrowed(user_id=None) == SearchFilter():
                total += self._call("count", col.count)
                continue
            total += sum(len(self._ids(col, flt, chunk)) for chunk in self._id_chunks(col, flt))
        return total

    def _ids(
        self,
        col: Collection,
        flt: SearchFilter | list[rec.Where] | None,
        ids: list[str] | None,
    ) -> list[str]:
        """Ids of the records matching a filter or ``where`` conditions (within ``ids``)."""
        try:
            parts = rec.conditions(flt) if isinstance(flt, SearchFilter) else flt or []
        except rec.Nothing:
            return []
        got = self._call("get", col.get, ids=ids, where=rec.where(parts), include=[])
        return list(got["ids"])

    def _id_chunks(self, col: Collection, flt: SearchFilter) -> list[list[str] | None]:
        """The filter's ``message_ids`` that exist in a collection, in chunks Chroma can take
        (``[None]``: no id filter; ``[]``: none exist, so nothing matches)."""
        if flt.message_ids is None:
            return [None]
        wanted = list(dict.fromkeys(flt.message_ids))
        found: list[str] = []
        for start in range(0, len(wanted), ID_CHUNK):
            found += self._ids(col, None, wanted[start : start + ID_CHUNK])
        return [found[i : i + ID_CHUNK] for i in range(0, len(found), ID_CHUNK)]

    # -- search -----------------------------------------------------------------------------

    @fresh
    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        model = self._catalog()
        if model is None:
            return []
        assert self.embedder is not None
        self._verify(model, self.embedder.model_id, self.embedder.dimension)
        try:
            parts = rec.conditions(flt)
        except rec.Nothing:
            return []
        with_vectors = rec.where([*parts, {"has_vec": {"$eq": True}}])
        query = vector.tolist()
        hits: list[Hit] = []
        for _, col in self._scope(flt):
            for chunk in self._id_chunks(col, flt):
                # a metadata filter slows Chroma's query down several times: without other
                # conditions, ask unfiltered first and filter out placeholders only if one came
                rows = None if parts else self._nearest(col, query, k, None, chunk)
                if rows is None or not all(meta.get("has_vec") for meta, _ in rows):
                    rows = self._nearest(col, query, k, with_vectors, chunk)
                for meta, dist in rows:
                    score = 1.0 - dist
                    hits.append(rec.hit(meta, score=score, dense_score=score))
        return _best(hits, k)

    def _nearest(
        self,
        col: Collection,
        query: list[float],
        k: int,
        where: rec.Where | None,
        ids: list[str] | None,
    ) -> list[tuple[dict[str, Any], float]]:
        got = self._call(
            "query",
            col.query,
            query_embeddings=[query],
            n_results=k,
            where=where,
            ids=ids,
            include=["metadatas", "distances"],
        )
        metas = (got["metadatas"] or [[]])[0]
        dists = (got["distances"] or [[]])[0]
        return [(dict(m or {}), float(d)) for m, d in zip(metas, dists, strict=True)]

    @fresh
    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        words = lexical.terms(query)
        if not words:
            return []
        try:
            parts = rec.conditions(flt)
        except rec.Nothing:
            return []
        hits: list[Hit] = []
        for _, col in self._scope(flt):
            holders: dict[str, list[str]] = {w: [] for w in words}
            for chunk in self._id_chunks(col, flt):
                for word in words:
                    holders[word] += self._ids(col, [*parts, lexical.holds(word)], chunk)
            if not any(holders.values()):
                continue
            scores = lexical.idf_scores(holders, self._call("count", col.count))
            top = sorted(scores, key=lambda i: (-scores[i], i))[:k]
            got = self._call("get", col.get, ids=top, include=["metadatas"])
            for mid, meta in zip(got["ids"], got["metadatas"] or [], strict=True):
                hits.append(rec.hit(meta, score=scores[mid], lexical_score=scores[mid]))
        return _best(hits, k)

    @fresh
    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        anchor: dict[str, Any] | None = None
        home: Collection | None = None
        for _, col in self._scope(flt):
            got = self._call("get", col.get, ids=[message_id], include=["metadatas"])
            if got["ids"]:
                anchor, home = dict((got["metadatas"] or [{}])[0]), col
                break
        if anchor is None or home is None:
            return []
        try:
            base = [*rec.conditions(flt), {"thread": {"$eq": anchor["thread"]}}]
        except rec.Nothing:
            return []
        chunks = self._id_chunks(home, flt)
        ts = int(anchor["ts"])
        key = (ts, message_id)
        ties = [
            r
            for r in self._rows(home, [*base, {"ts": {"$eq": ts}}], chunks)
            if r["tela_id"] != message_id
        ]
        older = self._side(home, base, chunks, ts, before, older=True)
        newer = self._side(home, base, chunks, ts, after, older=False)
        prev = sorted([r for r in ties if _order(r) < key] + older, key=_order)
        nxt = sorted([r for r in ties if _order(r) > key] + newer, key=_order)
        chosen = (prev[-before:] if before else []) + nxt[:after]
        return [rec.hit(r, score=0.0) for r in chosen]

    def _side(
        self,
        col: Collection,
        base: list[rec.Where],
        chunks: list[list[str] | None],
        ts: int,
        limit: int,
        *,
        older: bool,
    ) -> list[dict[str, Any]]:
        """The ``limit`` records nearest in time on one side, searched in widening windows
        (Chroma's ``get`` has no order)."""
        if limit <= 0:
            return []
        side: rec.Where = {"ts": {"$lt": ts}} if older else {"ts": {"$gt": ts}}
        rows: list[dict[str, Any]] = []
        for span in (*_WINDOWS, None):
            bound: list[rec.Where] = []
            if span is not None:
                bound = [{"ts": {"$gte": ts - span}} if older else {"ts": {"$lte": ts + span}}]
            rows = self._rows(col, [*base, side, *bound], chunks)
            if len(rows) >= limit:
                break
        rows.sort(key=_order)
        return rows[-limit:] if older else rows[:limit]

    def _rows(
        self, col: Collection, parts: list[rec.Where], chunks: list[list[str] | None]
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for chunk in chunks:
            got = self._call(
                "get", col.get, ids=chunk, where=rec.where(parts), include=["metadatas"]
            )
            out += [dict(m) for m in got["metadatas"] or []]
        return out


def _client_address(client: ClientAPI | None) -> str | None:
    """A stable name for an injected client's data: its server or its folder."""
    if client is None:
        return None
    found = client.get_settings()
    if found.chroma_server_host:
        scheme = "https" if found.chroma_server_ssl_enabled else "http"
        return f"{scheme}://{found.chroma_server_host}:{found.chroma_server_http_port}"
    if found.is_persistent and found.persist_directory:
        return f"path:{Path(found.persist_directory).resolve()}"
    return None


def _best(hits: list[Hit], k: int) -> list[Hit]:
    return sorted(hits, key=lambda h: (-h.score, h.message.id))[:k]


def _order(row: dict[str, Any]) -> tuple[int, str]:
    return int(row["ts"]), str(row["tela_id"])


__all__ = ["ChromaIndex"]
