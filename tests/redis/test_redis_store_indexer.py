"""``StoreIndexer`` with a ``RedisIndex``: a SQLite store followed into Redis, resumed, and
rebuilt with another embedding model (the vector dimension is part of the RediSearch schema)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_servers import RedisServer

from tela_memory.errors import UnsupportedOperation
from tela_memory.messages import Message
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_redis.index import RedisIndex

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "s.db") as s:
        yield s


@pytest.fixture
def name() -> str:
    return f"test-follow-{uuid.uuid4().hex[:10]}"


def test_reindex_with_another_model(
    store: SQLiteStore, redis_stack: RedisServer, name: str
) -> None:
    store.append("t", [Message.user(f"the dentist said {i}") for i in range(6)], user_id="u")
    with RedisIndex(redis_stack.url, embedder=HashEmbedder(16), name=name) as index:
        assert StoreIndexer(store, index).sync().indexed == 6
    with RedisIndex(redis_stack.url, embedder=HashEmbedder(32), name=name) as bigger:
        with pytest.raises(EmbeddingMismatchError):
            bigger.upsert(Message.user("x", thread_id="t2", user_id="u"))
        report = StoreIndexer(store, bigger).reindex()
        assert report.indexed == 6
        hits = bigger.search("dentist", filter={"user_id": "u"}, k=3, mode="dense")
        assert len(hits) == 3
        bigger.drop()


def test_drop_vectors_refuses_an_index_that_still_holds_documents(
    redis_stack: RedisServer, name: str
) -> None:
    with RedisIndex(redis_stack.url, embedder=HashEmbedder(16), name=name) as index:
        index.upsert(Message.user("kept", thread_id="t", user_id="u"))
        with pytest.raises(UnsupportedOperation, match="still holds 1 documents"):
            index.drop_vectors()
        assert index.count() == 1
        index.clear()
        index.drop_vectors()
        index.drop()


def test_watermark_names_the_server_and_the_index(redis_stack: RedisServer, name: str) -> None:
    a = RedisIndex(redis_stack.url, name=name)
    b = RedisIndex(redis_stack.url, name=name + "-b")
    assert a.watermark_name == f"redis:{a.address}/{name}"
    assert a.watermark_name != b.watermark_name
    assert str(redis_stack.port) in a.watermark_name


async def test_a_redis_index_follows_a_redis_store_without_sync(
    redis_stack: RedisServer, name: str
) -> None:
    """Redis all the way: the store's change feed (a stream) keeps the index in step before
    each read, sync and async, with the cursor kept in the store's own keyspace."""
    from tela_memory_redis import RedisStore

    store = RedisStore(redis_stack.url, prefix=name)
    index = RedisIndex(redis_stack.url, embedder=HashEmbedder(16), name=name).follow(store)
    try:
        ada = store.for_user("ada")
        (asked,) = ada.append("t", Message.user("the dentist is on Friday"))
        hits = index.search("dentist", filter={"user_id": "ada"}, mode="lexical")
        assert [h.message.id for h in hits] == [asked.id]
        await ada.aappend("t", Message.user("the dentist moved to Monday"))
        assert await index.acount({"user_id": "ada"}) == 2
        assert index.search("dentist", filter={"user_id": "bob"}) == []
        store.erase_user("ada")
        assert index.count() == 0
        again = RedisIndex(redis_stack.url, embedder=HashEmbedder(16), name=name).follow(store)
        assert again.follower is not None
        assert again.follower.catch_up().indexed == 0  # the cursor persisted in Redis
        again.close()
    finally:
        index.drop()
        index.close()
        store.close()
