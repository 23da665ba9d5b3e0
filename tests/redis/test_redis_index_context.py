"""The parent turn's words in ``RedisIndex``'s BM25: a reply is found by what it answers,
below the turns that say it themselves; edits and deletions of the parent reach its replies;
an index made by an earlier version gains the fields."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis_servers import RedisServer

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall.types import Hit
from tela_memory_redis.index import RedisIndex

pytestmark = pytest.mark.integration


@pytest.fixture
def index(redis_stack: RedisServer) -> Iterator[RedisIndex]:
    idx = RedisIndex(redis_stack.url, name=f"test-ctx-{uuid.uuid4().hex[:10]}")
    yield idx
    idx.drop()
    idx.close()


def _turn(mid: str, text: str, parent: str | None = None, role: str = "user") -> Message:
    return Message(id=mid, role=role, content=text, thread_id="t", user_id="ana", parent_id=parent)


def _texts(hits: list[Hit]) -> list[str]:
    return [h.message.text for h in hits]


def test_a_reply_is_found_by_its_parents_words_below_the_parent(index: RedisIndex) -> None:
    index.upsert([_turn("q", "did the dentist call about the crown?")])
    index.upsert([_turn("a", "yes, last Friday", parent="q", role="assistant")])  # later batch
    index.upsert([_turn("z", "the crown jewels exhibit was closed")])
    hits = index.search("dentist", filter={"user_id": "ana"}, mode="lexical")
    assert _texts(hits) == ["did the dentist call about the crown?", "yes, last Friday"]
    assert hits[0].score > hits[1].score
    assert hits[1].text == "yes, last Friday"  # the hit's text is the turn's own


def test_parent_weight_zero_ranks_a_turn_by_its_own_words(redis_stack: RedisServer) -> None:
    with RedisIndex(
        redis_stack.url, name=f"test-ctx0-{uuid.uuid4().hex[:8]}", parent_weight=0
    ) as idx:
        idx.upsert([_turn("q", "the dentist"), _turn("a", "yes", parent="q")])
        assert _texts(idx.search("dentist", mode="lexical")) == ["the dentist"]
        idx.drop()
    with pytest.raises(TelaMemoryError, match="parent_weight"):
        RedisIndex(redis_stack.url, parent_weight=2.0)


def test_edits_and_deletions_of_the_parent_reach_its_replies(index: RedisIndex) -> None:
    index.upsert([_turn("q", "my dentist is Dr Silva"), _turn("a", "noted", parent="q")])
    index.upsert([_turn("q", "my orthodontist is Dr Silva")])  # the parent is edited
    assert _texts(index.search("dentist", mode="lexical")) == []
    assert "noted" in _texts(index.search("orthodontist", mode="lexical"))
    index.delete("q")  # deleted words must not stay searchable through the reply
    assert _texts(index.search("orthodontist", mode="lexical")) == []
    assert _texts(index.search("noted", mode="lexical")) == ["noted"]


def test_delete_where_empties_the_replies_in_other_scopes(index: RedisIndex) -> None:
    # retention by time: the old question goes, the newer reply stays without its words
    old = _turn("q", "the alarm code is 4411").model_copy(
        update={"created_at": _turn("x", "x").created_at.replace(year=2020)}
    )
    index.upsert([old, _turn("a", "got it", parent="q")])
    assert index.delete_where({"until": _turn("y", "y").created_at.replace(year=2021)}) == 1
    assert _texts(index.search("alarm 4411", mode="lexical")) == []
    assert index.count() == 1


def test_an_index_made_without_the_fields_gains_them(redis_stack: RedisServer) -> None:
    name = f"test-old-{uuid.uuid4().hex[:10]}"
    old = RedisIndex(redis_stack.url, name=name)
    old.client.execute_command(  # the schema of the previous version: no ctx, no parent
        "FT.CREATE", name, "ON", "HASH", "PREFIX", "1", f"{name}:doc:", "STOPWORDS", "0",
        "SCHEMA", "text", "TEXT", "user", "TAG", "thread", "TAG", "mid", "TAG", "role", "TAG",
        "meta", "TAG", "ts", "NUMERIC", "SORTABLE",
    )  # fmt: skip
    try:
        old.upsert([_turn("q", "the dentist"), _turn("a", "yes", parent="q")])
        assert _texts(old.search("dentist", mode="lexical")) == ["the dentist", "yes"]
        again = RedisIndex(redis_stack.url, name=name)  # a second process: the ALTER is a no-op
        assert again.count() == 2
    finally:
        old.drop()
