"""The ``Index`` contract: upsert messages, delete by id or filter, search with filters.

A backend implements the few ``_`` methods below; validation, embedding, hybrid fusion and the
async twins come from :class:`Index`. Filters are always handed to the backend, which must apply
them inside its own query (SQL ``WHERE``, a Qdrant filter ...), never to a global top-k
afterwards: a search for one user can never return another user's messages.

A thread is ``(user_id, thread_id)`` (thread ids are only unique within a user): whatever an
index does per thread (neighbours, per-thread word counts, a turn's parent context) stays
inside one user's thread, so Bob's ``"t1"`` and Ada's ``"t1"`` never mix. The index is a
backend: it applies the filter it is given and never defaults a user; the readers built on it
(:class:`~tela_memory.recall.recaller.Recaller`, the framework retrievers) are the ones that
require a user or the named ``all_users=True``.
"""

from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from tela_memory.errors import InvalidArgumentError, InvalidMessageError, UnsupportedOperation
from tela_memory.messages import Message
from tela_memory.recall.embedder import Embedder, Vectors, normalize
from tela_memory.recall.errors import EmbeddingMismatchError, InvalidQueryError
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import (
    Hit,
    SearchFilter,
    SearchMode,
    ThreadKey,
    check_ids,
    check_k,
    check_query,
    thread_key,
)
from tela_memory.stores.base import MessageStore
from tela_memory.stores.cursors import CursorStore
from tela_memory.stores.sqlite_scrub import Scrub

if TYPE_CHECKING:
    from tela_memory.recall.indexer import StoreIndexer

FilterLike = SearchFilter | Mapping[str, Any] | None

RRF_K = 60


@dataclass(frozen=True, slots=True)
class Document:
    """A message as an index stores it: its text and, with an embedder, a vector.

    ``text`` is what hits show; :attr:`search_text` (the text led by the speaker's name, when
    the message has one) is what backends rank by and what the vector embeds.
    """

    message: Message
    text: str
    vector: Vectors | None

    @property
    def search_text(self) -> str:
        """The text to rank by: ``"name: text"`` when the message is named."""
        return searchable(self.message, self.text)

    @property
    def thread_key(self) -> ThreadKey:
        """The message's thread, ``(user_id, thread_id)``."""
        return thread_key(self.message)


@dataclass(frozen=True, slots=True)
class ThreadTermCounts:
    """Per-thread word statistics of a query (:meth:`Index.thread_term_counts`), from which
    threads are ranked as a whole (BM25 over a thread as a bag of its turns).

    Threads are keyed ``(user_id, thread_id)``: two users' threads of the same id are
    counted apart.

    Attributes:
        turns: thread -> messages of the thread that the filter lets through.
        terms: query term -> thread -> those of them containing the term.
    """

    turns: dict[ThreadKey, int]
    terms: dict[str, dict[ThreadKey, int]]


def contextual_vectors(
    vectors: Sequence[Vectors | None],
    ids: Sequence[str],
    parent_ids: Sequence[str | None],
    known: Mapping[str, tuple[ThreadKey, Vectors]],
    weight: float,
    *,
    threads: Sequence[ThreadKey],
) -> list[Vectors | None]:
    """``normalise(v + weight * v_parent)`` for each vector, in order: a parent earlier in
    the list gives its (already mixed) vector, else ``known`` (stored vectors, with their
    thread) may have it. A parent counts only when it is in the same thread
    (``threads[i]``, the ``(user_id, thread_id)`` of each vector), so no turn ever carries
    another user's words."""
    done: dict[str, tuple[ThreadKey, Vectors]] = dict(known)
    out: list[Vectors | None] = []
    for vec, mid, parent, key in zip(vectors, ids, parent_ids, threads, strict=True):
        if vec is None:
            out.append(None)
            continue
        found = done.get(parent) if parent is not None else None
        before = found[1] if found is not None and found[0] == key else None
        if before is not None and before.shape == vec.shape:
            mixed: Vectors = vec.astype(np.float32) + np.float32(weight) * before.astype(np.float32)
            norm = np.float32(np.linalg.norm(mixed))
            if norm > 0:
                vec = mixed / norm
        vec = np.asarray(vec, dtype=np.float32)
        done[mid] = (key, vec)
        out.append(vec)
    return out


def searchable(message: Message, text: str) -> str:
    """The text an index ranks a message by: its name (speaker) first, when it has one."""
    if message.name and text.strip():
        return f"{message.name}: {text}"
    return text


class Index(ABC):
    """Searchable copy of conversation history (lexical, dense or both).

    Args:
        embedder: turns texts into vectors; without one the index is lexical only (if the
            backend can do lexical search).
    """

    #: The backend can rank by words (BM25 or similar).
    supports_lexical: ClassVar[bool] = False
    #: The backend can rank by vectors.
    supports_dense: ClassVar[bool] = False
    #: Contextual vectors: a turn's stored vector is ``normalise(v + w * v_parent)`` where
    #: ``v_parent`` is its parent's stored (itself contextual) vector, so an answer carries
    #: what it answers. ``0`` embeds each turn alone. Backends that can read stored vectors
    #: back implement :meth:`_stored_vectors`; otherwise only parents in the same batch count.
    context_weight: float = 0.0
    #: The backend can count, per thread, the messages containing each query word
    #: (:meth:`thread_term_counts`), which thread-level ranking uses.
    supports_thread_terms: ClassVar[bool] = False

    #: The :class:`~tela_memory.recall.indexer.StoreIndexer` run before each read, once
    #: :meth:`follow` was called.
    follower: StoreIndexer | None = None

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder

    # -- backend hooks ----------------------------------------------------------------------

    @abstractmethod
    def _upsert(self, docs: list[Document]) -> None:
        """Insert or replace documents (by message id), atomically where the backend can."""

    @abstractmethod
    def _delete(self, ids: list[str]) -> int:
        """Delete by message id; return how many existed."""

    @abstractmethod
    def _delete_where(self, flt: SearchFilter) -> int:
        """Delete what the filter matches; return how many."""

    @abstractmethod
    def _count(self, flt: SearchFilter) -> int:
        """How many documents the filter matches."""

    def _lexical(self, query: str, flt: SearchFilter, k: int) -> list[Hit]:
        """Best ``k`` by words, ``lexical_score`` and ``score`` set (higher is better)."""
        raise UnsupportedOperation(
            f"{type(self).__name__} has no lexical search; use mode='dense' with an embedder"
        )

    def _dense(self, vector: Vectors, flt: SearchFilter, k: int) -> list[Hit]:
        """Best ``k`` by cosine to a unit ``vector``, ``dense_score`` and ``score`` set."""
        raise UnsupportedOperation(f"{type(self).__name__} has no vector search")

    @abstractmethod
    def _neighbors(self, message_id: str, before: int, after: int, flt: SearchFilter) -> list[Hit]:
        """Messages of the same thread (the message's own user's) just before and after one
        (time order), filter applied, oldest first, the message itself left out; score 0."""

    def _thread_term_counts(self, query: str, flt: SearchFilter) -> ThreadTermCounts:
        """Per thread (keyed ``(user_id, thread_id)``): messages under the filter, and those
        containing each query word."""
        raise UnsupportedOperation(f"{type(self).__name__} cannot count words per thread")

    def _stored_vectors(self, ids: list[str]) -> dict[str, tuple[ThreadKey, Vectors]]:
        """Stored vectors of these messages (those that have one) with each message's thread,
        for contextual vectors."""
        return {}

    def _check_model(self, model_id: str, dimension: int) -> None:  # noqa: B027 - optional hook
        """Raise ``EmbeddingMismatchError`` if the index holds vectors of another model."""

    # -- public API -------------------------------------------------------------------------

    @property
    def watermark_name(self) -> str:
        """Identifies this index's data: a store indexer keeps one watermark per such name
        (default: the class name and the index's ``name`` attribute, if it has one)."""
        return f"{type(self).__name__}:{getattr(self, 'name', '')}"

    def scrub(self) -> Scrub:
        """After an erasure: wipe the raw traces deleted entries leave in the backend's own
        files (the embedded index: free pages, full-text segments, the WAL). The default
        keeps none to wipe."""
        return Scrub()

    def drop_vectors(self) -> None:  # noqa: B027 - optional hook
        """Forget the stored vectors and the embedding model that made them, so that the next
        write may use another model. ``StoreIndexer.reindex()`` calls it after ``clear()``.
        Backends that record a model override it; this default has nothing to forget."""

    def follow(
        self,
        store: MessageStore,
        *,
        cursors: CursorStore | None = None,
        name: str | None = None,
    ) -> Self:
        """Stay in step with ``store`` without anyone calling ``sync()``: before every read
        (``search``, ``count``, ``neighbors``, their async twins ...) the index applies what
        the store's change feed holds since its last read, through a
        :class:`~tela_memory.recall.indexer.StoreIndexer` (``cursors`` and ``name`` are its
        arguments; the cursor persists, so a restarted process resumes). With nothing new, a
        read costs one extra read of the feed. Returns the index.

        Every process that reads applies what it has not seen yet; applying twice is
        harmless (upserts and deletions are idempotent). The writes of a catch-up (embedding
        new turns) are paid by the first read after them: call ``index.follower.sync()``
        from a worker to keep reads fast under heavy writes.
        """
        from tela_memory.recall.indexer import StoreIndexer  # the indexer imports Index

        if not isinstance(store, MessageStore):
            raise InvalidArgumentError(
                f"follow() takes a MessageStore (with a change feed), not {type(store).__name__}"
                " (for a user's view, pass its .store)"
            )
        self._follow_lock = threading.Lock()
        self.follower = StoreIndexer(store, self, name=name, cursors=cursors)
        return self

    def _catch_up(self) -> None:
        """Apply the followed store's new changes (no-op without :meth:`follow`)."""
        if self.follower is not None:
            with self._follow_lock:
                self.follower.catch_up()

    async def _acatch_up(self) -> None:
        if self.follower is not None:
            await asyncio.to_thread(self._catch_up)

    @property
    def dense_enabled(self) -> bool:
        """Whether searches can use vectors (backend can, and an embedder is set)."""
        return self.supports_dense and self.embedder is not None

    def upsert(self, messages: Message | Sequence[Message]) -> int:
        """Index messages (replacing earlier versions with the same id); return the count.

        Messages must have been stored (``thread_id`` and ``user_id`` set). With an embedder
        their text is embedded here, in batches.
        """
        items = [messages] if isinstance(messages, Message) else list(messages)
        docs = self._documents(items, None)
        if docs:
            self._upsert(self._contextual(docs))
        return len(docs)

    async def aupsert(self, messages: Message | Sequence[Message]) -> int:
        """Async twin of :meth:`upsert` (embeds with the embedder's async side)."""
        items = [messages] if isinstance(messages, Message) else list(messages)
        vectors = None
        if self.supports_dense and self.embedder is not None and items:
            texts = [extract_text(m) for m in items]
            wanted = [searchable(m, t) for m, t in zip(items, texts, strict=True) if t.strip()]
            vectors = await self.embedder.aembed(wanted) if wanted else None
        docs = self._documents(items, vectors)
        if docs:
            await asyncio.to_thread(lambda: self._upsert(self._contextual(docs)))
        return len(docs)

    def _contextual(self, docs: list[Document]) -> list[Document]:
        """Mix each vector with its parent's (see :attr:`context_weight`), in batch order."""
        weight = self.context_weight
        if weight <= 0 or not any(d.vector is not None for d in docs):
            return docs
        parents = [d.message.parent_id for d in docs if d.vector is not None]
        known = self._stored_vectors([p for p in dict.fromkeys(parents) if p is not None])
        return [
            Document(d.message, d.text, v)
            for d, v in zip(
                docs,
                contextual_vectors(
                    [d.vector for d in docs],
                    [d.message.id for d in docs],
                    [d.message.parent_id for d in docs],
                    known,
                    weight,
                    threads=[d.thread_key for d in docs],
                ),
                strict=True,
            )
        ]

    def _documents(self, items: list[Message], vectors: Vectors | None) -> list[Document]:
        for m in items:
            if not isinstance(m, Message):
                raise InvalidMessageError(f"only Message objects can be indexed, not {m!r}")
            if m.thread_id is None or m.user_id is None:
                missing = "thread_id" if m.thread_id is None else "user_id"
                raise InvalidMessageError(
                    f"message {m.id!r} has no {missing}: index messages as the store returns them"
                )
        texts = [extract_text(m) for m in items]
        embed = self.supports_dense and self.embedder is not None
        if embed and self.embedder is not None:
            self._check_model(self.embedder.model_id, self.embedder.dimension)
            wanted = [searchable(m, t) for m, t in zip(items, texts, strict=True) if t.strip()]
            if vectors is None and wanted:
                vectors = self.embedder.embed(wanted)
            if vectors is not None:
                vectors = normalize(
                    vectors,
                    n=len(wanted),
                    dimension=self.embedder.dimension,
                    model_id=self.embedder.model_id,
                )
        docs: list[Document] = []
        row = 0
        for m, t in zip(items, texts, strict=True):
            vec = None
            if embed and t.strip() and vectors is not None:
                vec = vectors[row]
                row += 1
            docs.append(Document(m, t, vec))
        return docs

    def delete(self, ids: str | Sequence[str]) -> int:
        """Remove messages by id; return how many were indexed."""
        wanted = check_ids(ids)
        return self._delete(wanted) if wanted else 0

    def delete_where(self, filter: FilterLike) -> int:
        """Remove every message the filter matches (an empty filter is refused)."""
        flt = SearchFilter.coerce(filter)
        if flt == SearchFilter():
            raise InvalidQueryError(
                "delete_where needs a non-empty filter; to drop everything use clear()"
            )
        return self._delete_where(flt)

    def clear(self) -> int:
        """Remove every document; return how many."""
        return self._delete_where(SearchFilter())

    def count(self, filter: FilterLike = None) -> int:
        """How many indexed messages the filter matches."""
        flt = SearchFilter.coerce(filter)
        self._catch_up()
        return self._count(flt)

    def search(
        self,
        query: str,
        *,
        filter: FilterLike = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        query_vector: Vectors | None = None,
    ) -> list[Hit]:
        """Best ``k`` messages for a query, best first, the filter applied by the backend.

        Args:
            query: the words to look for (1 to 8,192 characters).
            filter: what may be returned (a :class:`SearchFilter` or a mapping of its fields).
            k: how many hits (1 to 1,000).
            mode: ``lexical`` (BM25), ``dense`` (vectors) or ``hybrid`` (both, fused by
                reciprocal rank; lexical alone when no embedder is set).
            query_vector: the query's embedding, if already computed (saves embedding it).
        """
        text, flt, k, mode = self._validate(query, filter, k, mode)
        vector = None
        if mode in ("dense", "hybrid") and self.dense_enabled:
            vector = self._query_vector(text, query_vector)
        self._catch_up()
        return self._run(text, flt, k, mode, vector)

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
        text, flt, k, mode = self._validate(query, filter, k, mode)
        vector = None
        if mode in ("dense", "hybrid") and self.dense_enabled and self.embedder is not None:
            raw = (
                query_vector if query_vector is not None else await self.embedder.aembed_query(text)
            )
            vector = self._query_vector(text, raw)

        def run() -> list[Hit]:
            self._catch_up()
            return self._run(text, flt, k, mode, vector)

        return await asyncio.to_thread(run)

    def neighbors(
        self,
        message_id: str,
        *,
        before: int = 1,
        after: int = 1,
        filter: FilterLike = None,
    ) -> list[Hit]:
        """Up to ``before`` / ``after`` messages around one in its thread, oldest first.

        The thread is the message's own, ``(user_id, thread_id)``: another user's thread of
        the same id is never reached. The filter applies to the neighbours (pass the same one
        as the search, so that a message of another user gives nothing).
        """
        check_ids([message_id])
        for name, value in (("before", before), ("after", after)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise InvalidQueryError(f"{name} must be an integer from 0 to 100, got {value!r}")
        flt = SearchFilter.coerce(filter)
        if before == after == 0:
            return []
        self._catch_up()
        return self._neighbors(message_id, before, after, flt)

    def thread_term_counts(self, query: str, *, filter: FilterLike = None) -> ThreadTermCounts:
        """For each thread the filter lets through (keyed ``(user_id, thread_id)``): how many
        of its messages there are and how many contain each word of the query (backends with
        ``supports_thread_terms``)."""
        text = check_query(query)
        flt = SearchFilter.coerce(filter)
        if not self.supports_thread_terms:
            raise UnsupportedOperation(f"{type(self).__name__} cannot count words per thread")
        self._catch_up()
        return self._thread_term_counts(text, flt)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the index must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- async twins ------------------------------------------------------------------------

    async def adelete(self, ids: str | Sequence[str]) -> int:
        """Async twin of :meth:`delete`."""
        return await asyncio.to_thread(self.delete, ids)

    async def adelete_where(self, filter: FilterLike) -> int:
        """Async twin of :meth:`delete_where`."""
        return await asyncio.to_thread(self.delete_where, filter)

    async def aclear(self) -> int:
        """Async twin of :meth:`clear`."""
        return await asyncio.to_thread(self.clear)

    async def acount(self, filter: FilterLike = None) -> int:
        """Async twin of :meth:`count`."""
        return await asyncio.to_thread(self.count, filter)

    async def aneighbors(
        self,
        message_id: str,
        *,
        before: int = 1,
        after: int = 1,
        filter: FilterLike = None,
    ) -> list[Hit]:
        """Async twin of :meth:`neighbors`."""
        return await asyncio.to_thread(
            self.neighbors, message_id, before=before, after=after, filter=filter
        )

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await asyncio.to_thread(self.close)

    # -- internals --------------------------------------------------------------------------

    def _validate(
        self,
        query: str,
        filter: FilterLike,
        k: int,
        mode: str,
    ) -> tuple[str, SearchFilter, int, SearchMode]:
        text = check_query(query)
        flt = SearchFilter.coerce(filter)
        check_k(k)
        if mode not in ("lexical", "dense", "hybrid"):
            raise InvalidQueryError(f"mode must be 'lexical', 'dense' or 'hybrid', got {mode!r}")
        if mode == "lexical" and not self.supports_lexical:
            raise UnsupportedOperation(
                f"{type(self).__name__} has no lexical search; use mode='dense'"
            )
        if mode == "dense" and not self.dense_enabled:
            raise UnsupportedOperation(
                f"{type(self).__name__} has no embedder (or no vector search): dense search "
                "needs one; pass embedder=... or use mode='lexical'"
            )
        if mode == "hybrid" and not (self.supports_lexical or self.dense_enabled):
            raise UnsupportedOperation(f"{type(self).__name__} cannot search without an embedder")
        return text, flt, k, mode  # type: ignore[return-value]

    def _query_vector(self, text: str, given: Vectors | None) -> Vectors:
        assert self.embedder is not None
        raw = given if given is not None else self.embedder.embed_query(text)
        arr = np.asarray(raw, dtype=np.float32).reshape(-1)
        if arr.shape[0] != self.embedder.dimension:
            raise EmbeddingMismatchError(
                f"query vector has dimension {arr.shape[0]}, the index uses "
                f"{self.embedder.dimension} ({self.embedder.model_id})"
            )
        self._check_model(self.embedder.model_id, self.embedder.dimension)
        out: Vectors = normalize(arr, n=1, dimension=self.embedder.dimension)[0]
        return out

    def _run(
        self, text: str, flt: SearchFilter, k: int, mode: SearchMode, vector: Vectors | None
    ) -> list[Hit]:
        if mode == "lexical":
            return self._lexical(text, flt, k)
        if mode == "dense":
            assert vector is not None
            return self._dense(vector, flt, k)
        lists: list[list[Hit]] = []
        if self.supports_lexical:
            lists.append(self._lexical(text, flt, k))
        if vector is not None:
            lists.append(self._dense(vector, flt, k))
        return rrf_fuse(lists, k)


def rrf_fuse(lists: Sequence[Sequence[Hit]], k: int, *, rrf_k: int = RRF_K) -> list[Hit]:
    """Fuse ranked lists by reciprocal rank (score = sum of 1 / (rrf_k + rank))."""
    if len(lists) == 1:
        return list(lists[0][:k])
    scores: dict[str, float] = {}
    best: dict[str, Hit] = {}
    for hits in lists:
        for rank, hit in enumerate(hits, start=1):
            mid = hit.message.id
            scores[mid] = scores.get(mid, 0.0) + 1.0 / (rrf_k + rank)
            prev = best.get(mid)
            best[mid] = (
                hit
                if prev is None
                else prev.model_copy(
                    update={
                        "lexical_score": prev.lexical_score
                        if prev.lexical_score is not None
                        else hit.lexical_score,
                        "dense_score": prev.dense_score
                        if prev.dense_score is not None
                        else hit.dense_score,
                    }
                )
            )
    order = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return [best[i].model_copy(update={"score": scores[i]}) for i in order]


__all__ = [
    "Document",
    "FilterLike",
    "Index",
    "ThreadTermCounts",
    "contextual_vectors",
    "rrf_fuse",
    "searchable",
]
