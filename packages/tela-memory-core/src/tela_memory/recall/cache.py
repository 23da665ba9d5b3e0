"""Embedding cache keyed by (model id, text hash): nothing is embedded twice.

A cache is a small protocol (``get_many`` / ``put_many`` and async twins); levels chain
(memory -> SQLite file -> Redis ...), a hit in a lower level fills the levels above it.
:class:`CachedEmbedder` puts a cache in front of any embedder.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from tela_memory.errors import BackendUnavailable, TelaMemoryError
from tela_memory.recall.embedder import Embedder, Vectors, normalize
from tela_memory.stores.sqlite_db import connect, write_transaction
from tela_memory.stores.sqlite_scrub import Scrub, scrub


def text_key(text: str, *, kind: str = "d") -> str:
    """The cache key of a text: ``kind`` (``d`` document, ``q`` query) + SHA-256 hex."""
    return kind + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@runtime_checkable
class EmbeddingCache(Protocol):
    """Stores vectors by (model id, key)."""

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """The vectors found, by key (missing keys are left out)."""
        ...

    def put_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Store vectors by key."""
        ...

    async def aget_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """Async twin of :meth:`get_many`."""
        ...

    async def aput_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Async twin of :meth:`put_many`."""
        ...


@runtime_checkable
class DeletableCache(Protocol):
    """A cache that can delete entries (every core cache, and the Redis level)."""

    def delete_many(self, model_id: str | None, keys: Sequence[str]) -> int:
        """Delete keys of one model (``None``: every model); return how many were held."""
        ...


def _deleter(level: object) -> DeletableCache:
    if not isinstance(level, DeletableCache):
        raise TelaMemoryError(
            f"{type(level).__name__} cannot delete entries: give it "
            "delete_many(model_id, keys) -> int"
        )
    return level


class BaseCache:
    """Async twins that run the sync side in a worker thread."""

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        raise NotImplementedError

    def put_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        raise NotImplementedError

    async def aget_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """Async twin of :meth:`get_many`."""
        return await asyncio.to_thread(self.get_many, model_id, keys)

    async def aput_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Async twin of :meth:`put_many`."""
        await asyncio.to_thread(self.put_many, model_id, items)


class MemoryCache(BaseCache):
    """In-process LRU of at most ``max_items`` vectors."""

    def __init__(self, max_items: int = 100_000) -> None:
        self.max_items = max_items
        self._items: OrderedDict[tuple[str, str], Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """The vectors found, by key."""
        out: dict[str, Vectors] = {}
        with self._lock:
            for key in keys:
                vec = self._items.get((model_id, key))
                if vec is not None:
                    self._items.move_to_end((model_id, key))
                    out[key] = vec
        return out

    def put_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Store vectors, evicting the least recently used beyond ``max_items``."""
        with self._lock:
            for key, vec in items.items():
                self._items[(model_id, key)] = vec
                self._items.move_to_end((model_id, key))
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def delete_many(self, model_id: str | None, keys: Sequence[str]) -> int:
        """Delete these keys of one model (``None``: of every model); return how many went."""
        wanted = set(keys)
        with self._lock:
            gone = [k for k in self._items if k[1] in wanted and model_id in (None, k[0])]
            for k in gone:
                del self._items[k]
        return len(gone)

    async def aget_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """Async twin of :meth:`get_many` (no I/O: runs inline)."""
        return self.get_many(model_id, keys)

    async def aput_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Async twin of :meth:`put_many` (no I/O: runs inline)."""
        self.put_many(model_id, items)


class SQLiteCache(BaseCache):
    """Vectors in a table ``recall_embedding_cache`` of a SQLite file (the store's is fine).

    Nothing is opened until first use.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self._path = str(path)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    def _connection(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is None:
                conn = connect(self._path, what="embedding cache", timeout=self._timeout)
                try:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS recall_embedding_cache(model_id TEXT NOT NULL,"
                        " key TEXT NOT NULL, vec BLOB NOT NULL, PRIMARY KEY(model_id, key))"
                        " WITHOUT ROWID"
                    )
                except sqlite3.Error as exc:
                    conn.close()
                    raise BackendUnavailable(
                        f"cannot open embedding cache at {self._path}: {exc}"
                    ) from exc
                self._conn = conn
            return self._conn

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """The vectors found, by key."""
        out: dict[str, Vectors] = {}
        conn = self._connection()
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                try:
                    rows = conn.execute(
                        f"SELECT key, vec FROM recall_embedding_cache "
                        f"WHERE model_id = ? AND key IN ({marks})",
                        [model_id, *chunk],
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise BackendUnavailable(f"embedding cache {self._path}: {exc}") from exc
                for key, blob in rows:
                    out[key] = np.frombuffer(blob, dtype=np.float32)
        return out

    def put_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Store vectors (replacing any with the same key)."""
        if not items:
            return
        conn = self._connection()
        with self._lock:
            try:
                with write_transaction(conn):
                    conn.executemany(
                        "INSERT OR REPLACE INTO recall_embedding_cache(model_id, key, vec) "
                        "VALUES (?, ?, ?)",
                        [
                            (model_id, k, np.asarray(v, dtype=np.float32).tobytes())
                            for k, v in items.items()
                        ],
                    )
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"embedding cache {self._path}: {exc}") from exc

    def delete_many(self, model_id: str | None, keys: Sequence[str]) -> int:
        """Delete these keys of one model (``None``: of every model); return how many went."""
        conn = self._connection()
        removed = 0
        with self._lock:
            try:
                with write_transaction(conn):
                    for start in range(0, len(keys), 500):
                        chunk = list(keys[start : start + 500])
                        marks = ",".join("?" * len(chunk))
                        sql = f"DELETE FROM recall_embedding_cache WHERE key IN ({marks})"
                        if model_id is not None:
                            sql += " AND model_id = ?"
                            chunk.append(model_id)
                        removed += conn.execute(sql, chunk).rowcount
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"embedding cache {self._path}: {exc}") from exc
        return removed

    def scrub(self) -> Scrub:
        """Remove what deleted entries left in the file (free pages, WAL); see
        :mod:`tela_memory.stores.sqlite_scrub`. :func:`tela_memory.privacy.erase_user` calls
        it."""
        conn = self._connection()
        with self._lock:
            try:
                return scrub(conn, "embedding cache file")
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"embedding cache {self._path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class CacheChain(BaseCache):
    """Levels tried in order (fastest first); a hit fills the levels above it."""

    def __init__(self, *levels: EmbeddingCache) -> None:
        self.levels = list(levels)

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """Look keys up level by level."""
        found: dict[str, Vectors] = {}
        missing = list(keys)
        for depth, level in enumerate(self.levels):
            if not missing:
                break
            got = level.get_many(model_id, missing)
            if got:
                for upper in self.levels[:depth]:
                    upper.put_many(model_id, got)
                found.update(got)
                missing = [k for k in missing if k not in got]
        return found

    def put_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Store in every level."""
        for level in self.levels:
            level.put_many(model_id, items)

    def delete_many(self, model_id: str | None, keys: Sequence[str]) -> int:
        """Delete from every level (each must have ``delete_many``); return the sum."""
        return sum(_deleter(level).delete_many(model_id, keys) for level in self.levels)

    async def adelete_many(self, model_id: str | None, keys: Sequence[str]) -> int:
        """Async twin of :meth:`delete_many` (uses each level's async side when it has one)."""
        total = 0
        for level in self.levels:
            deleter = _deleter(level)
            adelete = getattr(deleter, "adelete_many", None)
            if adelete is not None:
                total += int(await adelete(model_id, keys))
            else:
                total += await asyncio.to_thread(deleter.delete_many, model_id, keys)
        return total

    async def aget_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """Async twin of :meth:`get_many` (uses each level's async side)."""
        found: dict[str, Vectors] = {}
        missing = list(keys)
        for depth, level in enumerate(self.levels):
            if not missing:
                break
            got = await level.aget_many(model_id, missing)
            if got:
                for upper in self.levels[:depth]:
                    await upper.aput_many(model_id, got)
                found.update(got)
                missing = [k for k in missing if k not in got]
        return found

    async def aput_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Async twin of :meth:`put_many`."""
        for level in self.levels:
            await level.aput_many(model_id, items)


class CachedEmbedder:
    """An embedder with a cache in front: each distinct text is embedded once per model.

    Args:
        embedder: the model.
        cache: a cache (or chain); a fresh :class:`MemoryCache` when ``None``.
    """

    def __init__(self, embedder: Embedder, cache: EmbeddingCache | None = None) -> None:
        self.embedder = embedder
        self.cache: EmbeddingCache = cache if cache is not None else MemoryCache()
        self.hits = 0
        self.misses = 0

    @property
    def model_id(self) -> str:
        """The wrapped model's id."""
        return self.embedder.model_id

    @property
    def dimension(self) -> int:
        """The wrapped model's dimension."""
        return self.embedder.dimension

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents, from the cache where possible."""
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(self.model_id, list(dict.fromkeys(keys)))
        todo = self._todo(texts, keys, found)
        if todo:
            vecs = self.embedder.embed(list(todo.values()))
            fresh = dict(zip(todo, vecs, strict=True))
            self.cache.put_many(self.model_id, fresh)
            found.update(fresh)
        return self._assemble(keys, found)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Async twin of :meth:`embed`."""
        keys = [text_key(t) for t in texts]
        found = await self.cache.aget_many(self.model_id, list(dict.fromkeys(keys)))
        todo = self._todo(texts, keys, found)
        if todo:
            vecs = await self.embedder.aembed(list(todo.values()))
            fresh = dict(zip(todo, vecs, strict=True))
            await self.cache.aput_many(self.model_id, fresh)
            found.update(fresh)
        return self._assemble(keys, found)

    def embed_query(self, text: str) -> Vectors:
        """Embed a query, from the cache where possible."""
        key = text_key(text, kind="q")
        got = self.cache.get_many(self.model_id, [key])
        if key in got:
            self.hits += 1
            return got[key]
        self.misses += 1
        vec = self.embedder.embed_query(text)
        self.cache.put_many(self.model_id, {key: vec})
        return vec

    async def aembed_query(self, text: str) -> Vectors:
        """Async twin of :meth:`embed_query`."""
        key = text_key(text, kind="q")
        got = await self.cache.aget_many(self.model_id, [key])
        if key in got:
            self.hits += 1
            return got[key]
        self.misses += 1
        vec = await self.embedder.aembed_query(text)
        await self.cache.aput_many(self.model_id, {key: vec})
        return vec

    def _todo(
        self, texts: Sequence[str], keys: list[str], found: Mapping[str, Vectors]
    ) -> dict[str, str]:
        todo: dict[str, str] = {}
        for text, key in zip(texts, keys, strict=True):
            if key not in found and key not in todo:
                todo[key] = text
        self.misses += len(todo)
        self.hits += len(set(keys)) - len(todo)
        return todo

    def _assemble(self, keys: list[str], found: Mapping[str, Vectors]) -> Vectors:
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return normalize(
            np.stack([found[k] for k in keys]),
            n=len(keys),
            dimension=self.dimension,
            model_id=self.model_id,
        )


__all__ = [
    "BaseCache",
    "CacheChain",
    "CachedEmbedder",
    "DeletableCache",
    "EmbeddingCache",
    "MemoryCache",
    "SQLiteCache",
    "text_key",
]
