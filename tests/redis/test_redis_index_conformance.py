"""The core index conformance suite on Redis 8 with the search module, and the clear error
on a server without it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis_servers import RedisServer

from tela_memory.errors import SchemaError, UnsupportedOperation
from tela_memory.messages import Message
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_suite import IndexConformance
from tela_memory_redis.index import RedisIndex

pytestmark = pytest.mark.integration


class TestRedisIndex(IndexConformance):
    lexical = True
    dense = True

    @pytest.fixture
    def index(self, redis_stack: RedisServer, embedder: HashEmbedder) -> Iterator[RedisIndex]:
        name = f"test-idx-{uuid.uuid4().hex[:10]}"
        idx = RedisIndex(redis_stack.url, embedder=embedder, name=name)
        yield idx
        idx.drop()
        idx.close()


def test_index_without_search_module_says_what_it_needs(redis_plain: RedisServer) -> None:
    idx = RedisIndex(redis_plain.url, embedder=HashEmbedder(8), name="no-search")
    m = Message.user("hello", thread_id="t", user_id="u")
    with pytest.raises(UnsupportedOperation, match=r"Query Engine.*search"):
        idx.upsert(m)
    with pytest.raises(UnsupportedOperation, match="RediSearch"):
        idx.search("hello")
    idx.close()


class TestRedisIndexHNSW(IndexConformance):
    """The approximate index still honours every filter (RediSearch pre-filters HNSW too)."""

    lexical = True
    dense = True

    @pytest.fixture
    def index(self, redis_stack: RedisServer, embedder: HashEmbedder) -> Iterator[RedisIndex]:
        name = f"test-hnsw-{uuid.uuid4().hex[:10]}"
        idx = RedisIndex(redis_stack.url, embedder=embedder, name=name, algorithm="hnsw")
        yield idx
        idx.drop()
        idx.close()


def test_junk_in_a_stored_document_is_a_schema_error(redis_stack: RedisServer) -> None:
    name = f"test-junk-{uuid.uuid4().hex[:10]}"
    idx = RedisIndex(redis_stack.url, embedder=HashEmbedder(8), name=name)
    try:
        m = Message.user("hello world", thread_id="t", user_id="u")
        idx.upsert(m)
        idx.client.hset(f"{name}:doc:{m.id}", "msg", b"\xff\x00 not a message")  # someone else
        with pytest.raises(SchemaError, match=m.id):
            idx.search("hello", mode="lexical")
    finally:
        idx.drop()
        idx.close()


def test_unreadable_model_record_is_a_schema_error(redis_stack: RedisServer) -> None:
    name = f"test-meta-{uuid.uuid4().hex[:10]}"
    idx = RedisIndex(redis_stack.url, embedder=HashEmbedder(8), name=name)
    try:
        idx.client.hset(f"{name}:meta", mapping={"dims": "eight"})  # written by something else
        with pytest.raises(SchemaError, match=f"{name}:meta"):
            idx.upsert(Message.user("hello", thread_id="t", user_id="u"))
    finally:
        idx.drop()
        idx.close()
