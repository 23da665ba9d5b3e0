"""The Redis cache level: embeddings (in the core's cache chain), token counts, summaries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from redis_servers import RedisClusterServers, RedisServer

from tela_memory.errors import BackendUnavailable, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall.cache import CacheChain, CachedEmbedder, EmbeddingCache, MemoryCache
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_redis.cache import RedisEmbeddingCache, RedisSummaryCache, RedisTokenCountCache

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def emb_cache(redis_plain: RedisServer) -> Iterator[RedisEmbeddingCache]:
    cache = RedisEmbeddingCache(redis_plain.url, prefix=_prefix())
    yield cache
    cache.close()


def test_is_an_embedding_cache(emb_cache: RedisEmbeddingCache) -> None:
    assert isinstance(emb_cache, EmbeddingCache)


def test_chain_memory_then_redis_embeds_each_text_once(redis_plain: RedisServer) -> None:
    prefix = _prefix()
    model = HashEmbedder(16)
    first = CachedEmbedder(
        model, CacheChain(MemoryCache(), RedisEmbeddingCache(redis_plain.url, prefix=prefix))
    )
    texts = ["alpha", "beta", "alpha", "gamma"]
    vecs = first.embed(texts)
    assert model.texts_embedded == 3
    # another process: empty memory level, same Redis level
    memory = MemoryCache()
    second = CachedEmbedder(
        model, CacheChain(memory, RedisEmbeddingCache(redis_plain.url, prefix=prefix))
    )
    again = second.embed(texts)
    assert model.texts_embedded == 3  # nothing embedded twice
    np.testing.assert_array_equal(vecs, again)
    assert len(memory) == 3  # the Redis hit filled the level above
    q = second.embed_query("alpha?")
    assert np.allclose(second.embed_query("alpha?"), q)
    assert second.hits >= 1


async def test_async_twins_share_entries(emb_cache: RedisEmbeddingCache) -> None:
    vec = np.arange(8, dtype=np.float32)
    await emb_cache.aput_many("m", {"k1": vec})
    assert np.array_equal(emb_cache.get_many("m", ["k1"])["k1"], vec)
    emb_cache.put_many("m", {"k2": vec * 2})
    got = await emb_cache.aget_many("m", ["k1", "k2", "k3"])
    assert set(got) == {"k1", "k2"}
    assert await emb_cache.aget_many("other-model", ["k1"]) == {}
    await emb_cache.aclose()


def test_ttl_and_junk(redis_plain: RedisServer) -> None:
    cache = RedisEmbeddingCache(redis_plain.url, prefix=_prefix(), ttl=0.2)
    cache.put_many("m", {"a": np.ones(4, dtype=np.float32), "b": np.ones(4, dtype=np.float32)})
    key = cache._key("m", "b")
    cache._client.set(key, b"\x01\x02\x03", px=10_000)  # not a float32 array: a miss, not a crash
    assert set(cache.get_many("m", ["a", "b"])) == {"a"}
    time.sleep(0.4)
    assert cache.get_many("m", ["a"]) == {}
    with pytest.raises(TelaMemoryError):
        RedisEmbeddingCache(redis_plain.url, ttl=0)
    cache.close()


def test_token_counts_follow_content(redis_plain: RedisServer) -> None:
    cache = RedisTokenCountCache(redis_plain.url, prefix=_prefix())
    a, b = Message.user("hello there"), Message.assistant("hi")
    cache.put_many("cl100k", [(a, 5), (b, 3)])
    assert cache.get_many("cl100k", [a, b]) == {a.id: 5, b.id: 3}
    edited = a.model_copy(update={"content": Message.user("changed").content})
    assert cache.get_many("cl100k", [edited]) == {}
    assert cache.get_many("o200k", [a]) == {}
    with pytest.raises(TelaMemoryError):
        cache.put_many("cl100k", [(a, -1)])
    cache.close()


def test_summaries_on_the_cluster(redis_cluster: RedisClusterServers) -> None:
    cache = RedisSummaryCache(redis_cluster.url, prefix=_prefix(), ttl=None)
    cache.put("sum-v1", "thread-1:upto-42", "They planned a trip to Lisbon.")
    assert cache.get("sum-v1", "thread-1:upto-42") == "They planned a trip to Lisbon."
    assert cache.get("sum-v1", "{odd} key|*") is None
    assert cache.delete("sum-v1", ["thread-1:upto-42", "nope"]) == 1
    cache.close()


def test_unreachable_cache_names_the_address() -> None:
    cache = RedisEmbeddingCache("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1:1"):
        cache.get_many("m", ["x"])


async def test_summary_async_twins(redis_plain: RedisServer) -> None:
    cache = RedisSummaryCache(redis_plain.url, prefix=_prefix())
    await cache.aput("sum-v1", "t:1", "Summary one.")
    assert cache.get("sum-v1", "t:1") == "Summary one."
    assert await cache.aget("sum-v1", "t:1") == "Summary one."
    assert await cache.adelete("sum-v1", ["t:1", "missing"]) == 1
    assert await cache.aget("sum-v1", "t:1") is None
    await cache.aclose()
