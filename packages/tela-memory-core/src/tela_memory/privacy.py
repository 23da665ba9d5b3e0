"""Erase a user everywhere: the store and every component holding data derived from it.

::

    from tela_memory.privacy import erase_user

    receipt = erase_user("alice", store, index, embedder, counter)
    receipt.messages, receipt.extra  # {"index:QdrantIndex": 12, "embedding_cache:...": 9, ...}

Components take part through :class:`Erasable` (``erase_user_data(user) -> int``). Built in:
any :class:`~tela_memory.recall.index.Index` (by its public ``delete`` / ``delete_where``, and
the cache of its embedder when that is a :class:`~tela_memory.recall.cache.CachedEmbedder`), a
``CachedEmbedder``, :class:`EmbeddingCacheEntries` (an embedding cache and a model id),
:class:`TokenCountEntries` (a shared token-count cache and a counter id), a
:class:`~tela_memory.tokens.cache.CachedCounter`, and a
:class:`~tela_memory.context.ContextEngine` (its in-process thread state and its policy's
counter).

This is an admin (cross-user) path by name: it reads the user's data through the store's
contract for that user (``user_id=`` on every read) and erases it everywhere, including turns
the user wrote in threads whose ids other users also use (threads are ``(user_id, thread_id)``;
another user's thread of the same id is left alone).

Order, and why a crash half-way is safe: (1) the user's threads and messages are read from
the store; (2) every component erases what derives from them; (3) the store erases the user;
(4) components that can find the user by a filter (indexes) are swept once more, for turns a
write-through integration added while this ran. Content-addressed caches (keyed by a hash of
a text) can only be reached through the messages, so the messages must still exist when they
are erased: if anything fails, the store is untouched and running the same call again
finishes the job. A second run removes nothing and reports zeros.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from tela_memory.context.engine import ContextEngine
from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall.cache import (
    CacheChain,
    CachedEmbedder,
    DeletableCache,
    EmbeddingCache,
    MemoryCache,
    SQLiteCache,
    text_key,
)
from tela_memory.recall.index import Index, searchable
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import MAX_IDS
from tela_memory.records.base import RecordStore
from tela_memory.stores._common import check_id
from tela_memory.stores.base import ErasureReceipt, MessageStore, UserData
from tela_memory.stores.sqlite_scrub import Scrub
from tela_memory.tokens.cache import CachedCounter

_SQL_CHUNK = 500
_NEEDS_MODEL = "{} keeps models apart: pass EmbeddingCacheEntries(cache, model_id=...)"


@runtime_checkable
class Erasable(Protocol):
    """A component that can forget a user (an async ``aerase_user_data`` is optional)."""

    def erase_user_data(self, user: UserData) -> int:
        """Remove what is held of ``user``; return how many entries were removed."""
        ...


def message_texts(message: Message) -> set[str]:
    """The texts of a message an embedder may have seen: its searchable text, and that text
    led by the speaker's name (what indexes embed)."""
    text = extract_text(message)
    return {t for t in (text, searchable(message, text)) if t.strip()}


def _cache_keys(messages: Sequence[Message]) -> list[str]:
    """Embedding-cache keys of the messages' texts, as documents and as queries (recall
    blocks search with the latest user turn)."""
    texts = sorted({t for m in messages for t in message_texts(m)})
    return [text_key(t, kind=k) for t in texts for k in ("d", "q")]


class EmbeddingCacheEntries:
    """The entries of an embedding cache derived from a user's messages.

    Args:
        cache: a :class:`~tela_memory.recall.cache.MemoryCache`, ``SQLiteCache``,
            ``CacheChain`` of them, or any cache with ``delete_many(model_id, keys) -> int``
            (``tela_memory_redis.RedisEmbeddingCache``).
        model_id: the model whose entries go; ``None`` means every model (only the core's
            own caches can do that; a Redis cache keeps models apart and needs the id).

    Keys are content hashes, so an entry shared with another user's identical text goes
    too: that user pays one re-embedding. Search queries that were never stored as messages
    cannot be traced back to a user and are left to the cache's TTL or size bound.
    """

    def __init__(self, cache: EmbeddingCache, model_id: str | None = None) -> None:
        _check_cache(cache, model_id)
        self.cache = cache
        self.model_id = model_id

    def erase_user_data(self, user: UserData) -> int:
        """Delete the entries of the user's texts; return how many existed (all levels)."""
        keys = _cache_keys(user.messages)
        return _delete_keys(self.cache, self.model_id, keys) if keys else 0

    async def aerase_user_data(self, user: UserData) -> int:
        """Async twin of :meth:`erase_user_data`."""
        keys = _cache_keys(user.messages)
        return await _adelete_keys(self.cache, self.model_id, keys) if keys else 0


def _check_cache(cache: object, model_id: str | None) -> None:
    """Refuse, before anything is erased, a cache level that cannot delete."""
    if isinstance(cache, CacheChain):
        for level in cache.levels:
            _check_cache(level, model_id)
    elif not isinstance(cache, DeletableCache):
        raise TelaMemoryError(
            f"{type(cache).__name__} cannot delete entries; give it a "
            "delete_many(model_id, keys) -> int method or leave it out of erase_user"
        )
    elif model_id is None and not isinstance(cache, MemoryCache | SQLiteCache):
        raise TelaMemoryError(_NEEDS_MODEL.format(type(cache).__name__))


def _delete_keys(cache: object, model_id: str | None, keys: list[str]) -> int:
    _check_cache(cache, model_id)
    assert isinstance(cache, DeletableCache)
    return int(cache.delete_many(model_id, keys))


async def _adelete_keys(cache: object, model_id: str | None, keys: list[str]) -> int:
    _check_cache(cache, model_id)
    adelete = getattr(cache, "adelete_many", None)
    if adelete is not None:
        return int(await adelete(model_id, keys))
    return await asyncio.to_thread(_delete_keys, cache, model_id, keys)


class TokenCountEntries:
    """The entries of a shared token-count cache (keyed by a digest of each message's
    content) derived from a user's messages.

    Args:
        cache: a cache with ``delete_counts(counter_id, messages) -> int``
            (``tela_memory_redis.RedisTokenCountCache``).
        counter_id: the counter whose counts go (``TokenCounter.id``).
    """

    def __init__(self, cache: Any, counter_id: str) -> None:
        if not callable(getattr(cache, "delete_counts", None)):
            raise TelaMemoryError(
                f"{type(cache).__name__} is not a token-count cache: it has no "
                "delete_counts(counter_id, messages) -> int"
            )
        self.cache = cache
        self.counter_id = counter_id

    def erase_user_data(self, user: UserData) -> int:
        """Delete the counts of the user's messages; return how many existed."""
        if not user.messages:
            return 0
        return int(self.cache.delete_counts(self.counter_id, list(user.messages)))

    async def aerase_user_data(self, user: UserData) -> int:
        """Async twin of :meth:`erase_user_data` (the cache's ``adelete_counts`` if it has
        one)."""
        if not user.messages:
            return 0
        native = getattr(self.cache, "adelete_counts", None)
        if native is None:
            return await asyncio.to_thread(self.erase_user_data, user)
        return int(await native(self.counter_id, list(user.messages)))


class _IndexPart:
    """An index: the gathered messages by id (also those of other users in the user's
    threads), then whatever else carries the user's id."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def erase_user_data(self, user: UserData) -> int:
        ids = user.message_ids
        removed = sum(self.index.delete(ids[i : i + MAX_IDS]) for i in range(0, len(ids), MAX_IDS))
        return removed + self.index.delete_where({"user_id": user.user_id})

    async def aerase_user_data(self, user: UserData) -> int:
        ids = user.message_ids
        removed = 0
        for i in range(0, len(ids), MAX_IDS):
            removed += await self.index.adelete(ids[i : i + MAX_IDS])
        return removed + await self.index.adelete_where({"user_id": user.user_id})

    def sweep(self, user: UserData) -> int:
        """After the store: turns a write-through integration added meanwhile."""
        return self.index.delete_where({"user_id": user.user_id})

    async def asweep(self, user: UserData) -> int:
        return await self.index.adelete_where({"user_id": user.user_id})


class _EnginePart:
    """A :class:`ContextEngine`'s in-process thread state (it holds the messages it built
    from); its policy's counter is a separate part."""

    def __init__(self, engine: ContextEngine) -> None:
        self.engine = engine

    def erase_user_data(self, user: UserData) -> int:
        threads = set(user.thread_ids) | {m.thread_id for m in user.messages if m.thread_id}
        return sum(self.engine.forget(tid, user_id=user.user_id) for tid in sorted(threads))

    def sweep(self, user: UserData) -> int:
        """After the store: state a concurrent build put back in the meantime."""
        return self.erase_user_data(user)


class _CounterPart:
    """An in-process :class:`CachedCounter` (keyed by message id)."""

    def __init__(self, counter: CachedCounter) -> None:
        self.counter = counter

    def erase_user_data(self, user: UserData) -> int:
        before = len(self.counter)
        for mid in user.message_ids:
            self.counter.invalidate(mid)
        return before - len(self.counter)

    def sweep(self, user: UserData) -> int:
        """After the store: counts a concurrent build cached in the meantime."""
        return self.erase_user_data(user)


def _label(component: object) -> str:
    name = type(component).__name__
    if isinstance(component, Index):
        return f"index:{name}"
    if isinstance(component, EmbeddingCacheEntries):
        return f"embedding_cache:{type(component.cache).__name__}"
    if isinstance(component, TokenCountEntries):
        return f"token_counts:{type(component.cache).__name__}"
    if isinstance(component, RecordStore):
        return f"records:{name}"
    if isinstance(component, CachedCounter):
        return f"token_counts:{name}"
    if isinstance(component, ContextEngine):
        return f"context_state:{name}"
    return name


def _parts(components: Sequence[object]) -> list[tuple[str, Erasable]]:
    """``(label, part)`` for each component, in order; an index's embedding cache follows
    it; the same object given twice counts once."""
    out: list[tuple[str, Erasable]] = []
    seen: set[int] = set()
    labels: set[str] = set()

    def add(label: str, target: object, part: Erasable) -> None:
        if id(target) in seen:
            return
        seen.add(id(target))
        n = 2
        unique = label
        while unique in labels:
            unique = f"{label}#{n}"
            n += 1
        labels.add(unique)
        out.append((unique, part))

    for c in components:
        if isinstance(c, MessageStore):
            raise TelaMemoryError(
                f"erase_user takes one store (the argument after user_id); erase the other "
                f"{type(c).__name__} with a second call"
            )
        if isinstance(c, Index):
            add(_label(c), c, _IndexPart(c))
            if isinstance(c.embedder, CachedEmbedder):
                entries = EmbeddingCacheEntries(c.embedder.cache, c.embedder.model_id)
                add(_label(entries), c.embedder.cache, entries)
        elif isinstance(c, CachedEmbedder):
            entries = EmbeddingCacheEntries(c.cache, c.model_id)
            add(_label(entries), c.cache, entries)
        elif isinstance(c, CachedCounter):
            add(_label(c), c, _CounterPart(c))
        elif isinstance(c, ContextEngine):
            add(_label(c), c, _EnginePart(c))
            add(_label(c.policy.cached), c.policy.cached, _CounterPart(c.policy.cached))
        elif isinstance(c, Erasable):
            add(_label(c), c, c)
        else:
            raise TelaMemoryError(
                f"{type(c).__name__} cannot take part in erase_user: pass an Index, a "
                "CachedEmbedder, a CachedCounter, a ContextEngine, "
                "EmbeddingCacheEntries(cache, model_id), TokenCountEntries(cache, counter_id), "
                "or an object with "
                "erase_user_data(user: UserData) -> int"
            )
    return out


# -- gathering ------------------------------------------------------------------------------


def _check_user(user_id: object) -> str:
    if not isinstance(user_id, str) or not user_id:
        raise TelaMemoryError(f"user_id must be a non-empty string, got {user_id!r}")
    return check_id("user_id", user_id)


def user_data(store: MessageStore, user_id: str) -> UserData:
    """Everything ``store`` holds of a user: threads and their messages on every branch
    (an admin read, named: the user is always explicit). Calls
    :meth:`~tela_memory.stores.base.MessageStore.user_data`.

    Args:
        store: the message store.
        user_id: the user.
    """
    return store.user_data(_check_user(user_id))


async def auser_data(store: MessageStore, user_id: str) -> UserData:
    """Async twin of :func:`user_data`."""
    return await store.auser_data(_check_user(user_id))


# -- erasing --------------------------------------------------------------------------------


def _cache_levels(cache: object) -> list[object]:
    if isinstance(cache, CacheChain):
        return [level for c in cache.levels for level in _cache_levels(c)]
    return [cache]


def _scrubbers(parts: Sequence[tuple[str, Erasable]]) -> list[Callable[[], Scrub]]:
    """The ``scrub`` of each index, record store and SQLite embedding cache taking part (run
    after the store)."""
    out: list[Callable[[], Scrub]] = []
    for _, part in parts:
        if isinstance(part, _IndexPart):
            out.append(part.index.scrub)
        elif isinstance(part, RecordStore):
            out.append(part.scrub)
        elif isinstance(part, EmbeddingCacheEntries):
            levels = _cache_levels(part.cache)
            out.extend(level.scrub for level in levels if isinstance(level, SQLiteCache))
    return out


def _receipt(
    store_receipt: ErasureReceipt, removed: dict[str, int], traces: Sequence[Scrub] = ()
) -> ErasureReceipt:
    return store_receipt.model_copy(
        update={
            "extra": {**store_receipt.extra, **removed},
            "scrubbed": store_receipt.scrubbed + tuple(d for t in traces for d in t.done),
            "traces_left": store_receipt.traces_left + tuple(x for t in traces for x in t.left),
        }
    )


def erase_user(user_id: str, store: MessageStore, *components: object) -> ErasureReceipt:
    """Erase a user from ``store`` and from every component; one receipt for all.

    Args:
        user_id: the user.
        store: the message store (threads, messages, branches; on SQLite also the embedded
            index, by trigger, and summaries and facts, which are stored as messages).
        *components: indexes, cached embedders, embedding caches
            (:class:`EmbeddingCacheEntries`), token-count caches, context engines, or any
            :class:`Erasable`.

    Returns:
        The store's receipt with ``extra`` holding, per component (``"index:QdrantIndex"``,
        ``"embedding_cache:SQLiteCache"`` ...), how many entries it removed.

    Raises:
        TelaMemoryError: a component cannot take part (nothing has been erased then).
    """
    parts = _parts(components)
    # with nothing derived to erase, nothing needs reading first
    data = user_data(store, user_id) if parts else UserData(_check_user(user_id), (), ())
    removed = {label: part.erase_user_data(data) for label, part in parts}
    receipt = store.erase_user(user_id)
    for label, part in parts:  # once more, for what concurrent work added in the meantime
        if isinstance(part, _IndexPart | _EnginePart | _CounterPart):
            removed[label] += part.sweep(data)
    traces = [scrub() for scrub in _scrubbers(parts)]
    return _receipt(receipt, removed, traces)


async def aerase_user(user_id: str, store: MessageStore, *components: object) -> ErasureReceipt:
    """Async twin of :func:`erase_user` (uses each component's ``aerase_user_data`` when it
    has one, else runs the sync side in a worker thread)."""
    parts = _parts(components)
    data = await auser_data(store, user_id) if parts else UserData(_check_user(user_id), (), ())
    removed: dict[str, int] = {}
    for label, part in parts:
        native = getattr(part, "aerase_user_data", None)
        if native is not None:
            removed[label] = int(await native(data))
        else:
            removed[label] = await asyncio.to_thread(part.erase_user_data, data)
    receipt = await store.aerase_user(user_id)
    for label, part in parts:  # once more, for what concurrent work added in the meantime
        if isinstance(part, _IndexPart):
            removed[label] += await part.asweep(data)
        elif isinstance(part, _EnginePart | _CounterPart):
            removed[label] += part.sweep(data)
    traces = [await asyncio.to_thread(scrub) for scrub in _scrubbers(parts)]
    return _receipt(receipt, removed, traces)


__all__ = [
    "EmbeddingCacheEntries",
    "Erasable",
    "TokenCountEntries",
    "UserData",
    "aerase_user",
    "auser_data",
    "erase_user",
    "message_texts",
    "user_data",
]
