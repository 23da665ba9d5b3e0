"""The Redis level of the cache chain: embeddings, token counts and summaries, with TTLs.

:class:`RedisEmbeddingCache` implements the core's ``EmbeddingCache`` protocol, so it slots in
as the last level of ``CacheChain(MemoryCache(), SQLiteCache(path), RedisEmbeddingCache(url))``.
:class:`RedisTokenCountCache` and :class:`RedisSummaryCache` share token counts and summaries
between processes. Keys of one namespace share a hash tag, so ``MGET`` works on a cluster.
Unreadable values (written by something else) count as misses, never as errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall.embedder import Vectors
from tela_memory_redis import connection
from tela_memory_redis._driver import Cmd, Op, Script, run_async, run_sync
from tela_memory_redis._ops import check_prefix, enc

log = logging.getLogger("tela_memory_redis")
T = TypeVar("T")
_CHUNK = 500
# one round trip for a batch of SETs with a TTL (the keys share a hash tag: one slot)
_PUT = """
local ttl = tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  if ttl > 0 then redis.call('SET', k, ARGV[i + 1], 'PX', ttl)
  else redis.call('SET', k, ARGV[i + 1]) end
end
return #KEYS
"""


class _RedisKV:
    """String values under ``<prefix>:<kind>:{<namespace>}:<key>`` with an optional TTL."""

    kind = "kv"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        aclient: Any = None,
        prefix: str = "tela",
        ttl: float | timedelta | None = timedelta(days=30),
        **client_options: Any,
    ) -> None:
        if url is None and client is None and aclient is None:
            raise TelaMemoryError(f"{type(self).__name__} needs a url or a client")
        self.prefix = check_prefix(prefix)
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
        if seconds is not None and seconds <= 0:
            raise TelaMemoryError(f"ttl must be positive or None, got {ttl!r}")
        self.ttl_ms = int(seconds * 1000) if seconds is not None else None
        self._url = url
        self._client = client
        self._aclient = aclient
        self._own = client is None
        self._own_async = aclient is None
        self._options = client_options
        self._lock = threading.Lock()
        self._aloop: asyncio.AbstractEventLoop | None = None
        anything = client if client is not None else aclient
        self.address = connection.redact(url) if url else connection.describe(anything)

    def _key(self, namespace: str, key: str) -> str:
        return f"{self.prefix}:{self.kind}:{{{enc(namespace)}}}:{enc(key)}"

    # -- plumbing ---------------------------------------------------------------------------

    def _run(self, op: Op[T]) -> T:
        with self._lock:
            if self._client is None:
                if self._url is None:
                    raise TelaMemoryError("only an async client was given; use the a* methods")
                self._client = connection.sync_client(self._url, **self._options)
        return run_sync(self._client, op, self.address)

    async def _arun(self, op: Op[T]) -> T:
        if self._url is not None and self._own_async:
            loop = asyncio.get_running_loop()
            if self._aclient is not None and self._aloop is not loop:
                self._aclient = None  # an asyncio client belongs to the loop that opened it
            if self._aclient is None:
                self._aclient = connection.async_client(self._url, **self._options)
                self._aloop = loop
        if self._aclient is None:
            return await asyncio.to_thread(self._run, op)
        return await run_async(self._aclient, op, self.address)

    def close(self) -> None:
        """Close the sync client this cache built."""
        if self._own and self._client is not None:
            self._client.close()
        self._client = None

    async def aclose(self) -> None:
        """Close the clients this cache built."""
        if self._own_async and self._aclient is not None:
            await self._aclient.aclose()
        self._aclient = None
        self.close()

    # -- generic operations -----------------------------------------------------------------

    def _get_op(self, namespace: str, keys: Sequence[str]) -> Op[dict[str, bytes]]:
        out: dict[str, bytes] = {}
        wanted = list(dict.fromkeys(keys))
        for i in range(0, len(wanted), _CHUNK):
            chunk = wanted[i : i + _CHUNK]
            ctx = f"{self.kind} cache"
            values = yield Cmd(("MGET", *[self._key(namespace, k) for k in chunk]), ctx)
            for k, v in zip(chunk, values, strict=True):
                if v is not None:
                    out[k] = v
        return out

    def _put_op(self, namespace: str, items: Mapping[str, bytes | str]) -> Op[None]:
        pairs = list(items.items())
        for i in range(0, len(pairs), _CHUNK):
            chunk = pairs[i : i + _CHUNK]
            keys = [self._key(namespace, k) for k, _ in chunk]
            ttl = self.ttl_ms or 0
            yield Script(_PUT, keys, [ttl, *(v for _, v in chunk)], f"{self.kind} cache")

    def _clear_op(self, namespace: str, keys: Sequence[str]) -> Op[int]:
        removed = 0
        for i in range(0, len(keys), _CHUNK):
            chunk = [self._key(namespace, k) for k in keys[i : i + _CHUNK]]
            removed += int((yield Cmd(("DEL", *chunk), f"{self.kind} cache")))
        return removed


class RedisEmbeddingCache(_RedisKV):
    """Embeddings by (model id, text key) as float32 bytes; the core's ``EmbeddingCache``.

    Args:
        url: a Redis URL (or pass ``client`` / ``aclient``).
        prefix: key prefix.
        ttl: how long a vector is kept (default 30 days; ``None`` keeps it forever).
    """

    kind = "emb"

    def get_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """The vectors found, by key."""
        return self._decode(self._run(self._get_op(model_id, keys)))

    async def aget_many(self, model_id: str, keys: Sequence[str]) -> dict[str, Vectors]:
        """Async twin of :meth:`get_many`."""
        return self._decode(await self._arun(self._get_op(model_id, keys)))

    def put_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Store vectors (each with the TTL)."""
        self._run(self._put_op(model_id, self._encode(items)))

    async def aput_many(self, model_id: str, items: Mapping[str, Vectors]) -> None:
        """Async twin of :meth:`put_many`."""
        await self._arun(self._put_op(model_id, self._encode(items)))

    def delete_many(self, model_id: str, keys: Sequence[str]) -> int:
        """Forget vectors by key (how ``tela_memory.privacy`` erases a user's texts); return
        how many existed."""
        return self._run(self._clear_op(model_id, list(dict.fromkeys(keys))))

    async def adelete_many(self, model_id: str, keys: Sequence[str]) -> int:
        """Async twin of :meth:`delete_many`."""
        return await self._arun(self._clear_op(model_id, list(dict.fromkeys(keys))))

    @staticmethod
    def _encode(items: Mapping[str, Vectors]) -> dict[str, bytes]:
        return {k: np.asarray(v, dtype=np.float32).reshape(-1).tobytes() for k, v in items.items()}

    @staticmethod
    def _decode(raw: dict[str, bytes]) -> dict[str, Vectors]:
        out: dict[str, Vectors] = {}
        for key, blob in raw.items():
            if not blob or len(blob) % 4:
                log.warning("embedding cache entry %s is unreadable; treated as a miss", key)
                continue
            out[key] = np.frombuffer(blob, dtype=np.float32)
        return out


def message_digest(message: Message) -> str:
    """A stable digest of what a message costs (role, name, content), the same in every
    process (unlike ``hash()``)."""
    body = message.model_dump_json(include={"role", "name", "content"})
    return hashlib.sha256(body.encode()).hexdigest()[:32]


class RedisTokenCountCache(_RedisKV):
    """Token counts by (counter id, message content digest), shared between processes."""

    kind = "tok"

    @staticmethod
    def _keys(messages: Sequence[Message]) -> dict[str, str]:
        return {m.id: message_digest(m) for m in messages}

    def get_many(self, counter_id: str, messages: Sequence[Message]) -> dict[str, int]:
        """Known counts, by message id (an edited message is a miss)."""
        keys = self._keys(messages)
        raw = self._run(self._get_op(counter_id, list(keys.values())))
        return self._decode(keys, raw)

    async def aget_many(self, counter_id: str, messages: Sequence[Message]) -> dict[str, int]:
        """Async twin of :meth:`get_many`."""
        keys = self._keys(messages)
        raw = await self._arun(self._get_op(counter_id, list(keys.values())))
        return self._decode(keys, raw)

    def put_many(self, counter_id: str, counts: Iterable[tuple[Message, int]]) -> None:
        """Store ``(message, count)`` pairs."""
        self._run(self._put_op(counter_id, self._encode(counts)))

    async def aput_many(self, counter_id: str, counts: Iterable[tuple[Message, int]]) -> None:
        """Async twin of :meth:`put_many`."""
        await self._arun(self._put_op(counter_id, self._encode(counts)))

    def delete_counts(self, counter_id: str, messages: Sequence[Message]) -> int:
        """Forget the counts of these messages' contents (how ``tela_memory.privacy`` erases
        a user's); return how many existed."""
        digests = list(dict.fromkeys(self._keys(messages).values()))
        return self._run(self._clear_op(counter_id, digests))

    async def adelete_counts(self, counter_id: str, messages: Sequence[Message]) -> int:
        """Async twin of :meth:`delete_counts`."""
        digests = list(dict.fromkeys(self._keys(messages).values()))
        return await self._arun(self._clear_op(counter_id, digests))

    @staticmethod
    def _encode(counts: Iterable[tuple[Message, int]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for m, n in counts:
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise TelaMemoryError(f"a token count must be an int >= 0, got {n!r}")
            out[message_digest(m)] = str(n)
        return out

    @staticmethod
    def _decode(keys: dict[str, str], raw: dict[str, bytes]) -> dict[str, int]:
        out: dict[str, int] = {}
        for mid, digest in keys.items():
            value = raw.get(digest)
            if value is not None and value.isdigit():
                out[mid] = int(value)
        return out


class RedisSummaryCache(_RedisKV):
    """Summaries (text) by (summariser id, key), e.g. key = the id of the last summarised
    message plus the policy's settings.

    Keys are shared by every user of the cache: build them from message ids (unique across
    the store) or include the user, never from a bare thread id, which two users may share
    (threads are namespaced per user).
    """

    kind = "sum"

    def get(self, summarizer_id: str, key: str) -> str | None:
        """The stored summary, or ``None``."""
        return self._text(self._run(self._get_op(summarizer_id, [key])).get(key))

    async def aget(self, summarizer_id: str, key: str) -> str | None:
        """Async twin of :meth:`get`."""
        return self._text((await self._arun(self._get_op(summarizer_id, [key]))).get(key))

    def put(self, summarizer_id: str, key: str, summary: str) -> None:
        """Store a summary (with the TTL)."""
        self._run(self._put_op(summarizer_id, {key: self._check(summary)}))

    async def aput(self, summarizer_id: str, key: str, summary: str) -> None:
        """Async twin of :meth:`put`."""
        await self._arun(self._put_op(summarizer_id, {key: self._check(summary)}))

    def delete(self, summarizer_id: str, keys: Sequence[str]) -> int:
        """Forget summaries; return how many existed."""
        return self._run(self._clear_op(summarizer_id, list(keys)))

    async def adelete(self, summarizer_id: str, keys: Sequence[str]) -> int:
        """Async twin of :meth:`delete`."""
        return await self._arun(self._clear_op(summarizer_id, list(keys)))

    @staticmethod
    def _check(summary: str) -> str:
        if not isinstance(summary, str):
            raise TelaMemoryError(f"a summary must be a str, got {type(summary).__name__}")
        return summary

    @staticmethod
    def _text(raw: bytes | None) -> str | None:
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            log.warning("summary cache entry is not UTF-8; treated as a miss")
            return None


__all__ = ["RedisEmbeddingCache", "RedisSummaryCache", "RedisTokenCountCache", "message_digest"]
