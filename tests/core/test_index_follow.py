"""``Index.follow``: an index that stays in step with a store without anyone calling
``sync()`` (``SQLiteIndex.for_store`` follows by default), on SQLite and the in-memory store,
sync and async, across index objects and processes' restarts (the cursor persists)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.messages import Message, TextBlock
from tela_memory.recall import SQLiteIndex
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder

ADA = {"user_id": "ada"}


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    made: MessageStore = (
        SQLiteStore(tmp_path / "s.db") if request.param == "sqlite" else InMemoryStore()
    )
    with made:
        yield made


def _hits(index: SQLiteIndex, query: str) -> list[str]:
    return [h.message.text for h in index.search(query, filter=ADA, mode="lexical")]


def test_a_search_sees_what_was_appended_edited_and_deleted(
    store: MessageStore, tmp_path: Path
) -> None:
    with SQLiteIndex(tmp_path / "i.db", embedder=HashEmbedder(32)).follow(store) as index:
        ada = store.for_user("ada")
        (first,) = ada.append("trip", Message.user("a trip to Lisbon in May"))
        assert _hits(index, "Lisbon") == ["a trip to Lisbon in May"]
        ada.update_message(first.model_copy(update={"content": [TextBlock(text="Porto")]}))
        assert _hits(index, "Lisbon") == []
        assert _hits(index, "Porto") == ["Porto"]
        ada.append("other", Message.user("Porto again"))
        assert index.count(ADA) == 2
        ada.delete_thread("other")
        assert index.count(ADA) == 1
        store.erase_user("ada")
        assert index.count() == 0


def test_the_embedded_index_follows_its_store_by_default(tmp_path: Path) -> None:
    """The documented retriever example: no ``sync()`` between the append and the search."""
    with SQLiteStore(tmp_path / "s.db") as store, SQLiteIndex.for_store(store) as index:
        store.for_user("ada").append("t", Message.user("my dentist is on Friday"))
        assert _hits(index, "dentist") == ["my dentist is on Friday"]
        (hit,) = index.search("dentist", filter=ADA, mode="lexical")
        store.for_user("ada").append("t", Message.assistant("noted, Friday"))
        assert [h.message.text for h in index.neighbors(hit.message.id, filter=ADA)] == [
            "noted, Friday"
        ]
    with SQLiteStore(tmp_path / "s.db") as store:
        lone = SQLiteIndex.for_store(store, follow=False)
        store.for_user("ada").append("t", Message.user("dentist moved to Monday"))
        assert _hits(lone, "Monday") == []  # not followed: only what was indexed
        lone.close()


async def test_async_reads_catch_up_too(store: MessageStore, tmp_path: Path) -> None:
    with SQLiteIndex(tmp_path / "i.db").follow(store) as index:
        await store.for_user("ada").aappend("t", Message.user("passport renewal"))
        hits = await index.asearch("passport", filter=ADA, mode="lexical")
        assert [h.message.text for h in hits] == ["passport renewal"]
        await store.for_user("ada").aappend("t", Message.user("passport photo"))
        assert await index.acount(ADA) == 2


def test_a_read_with_nothing_new_writes_nothing(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store, SQLiteIndex.for_store(store) as index:
        store.for_user("ada").append("t", Message.user("one"))
        assert index.count(ADA) == 1
        assert index.follower is not None
        cursor = index.follower.cursor()
        assert index.follower.catch_up().indexed == 0
        assert index.follower.catch_up().cursor == cursor
        assert index.follower.cursor() == cursor


def test_a_new_index_object_resumes_from_the_saved_cursor(tmp_path: Path) -> None:
    """A restarted process indexes only what it has not seen: the cursor is persisted in
    the store's file."""
    with SQLiteStore(tmp_path / "s.db") as store:
        with SQLiteIndex.for_store(store) as index:
            store.for_user("ada").append("t", [Message.user(f"turn {i}") for i in range(5)])
            assert index.count(ADA) == 5
        store.for_user("ada").append("t", Message.user("turn 5"))
        with SQLiteIndex.for_store(store) as again:
            assert again.follower is not None
            assert again.follower.catch_up().indexed == 1
            assert again.count(ADA) == 6


def test_two_users_stay_apart_through_the_follower(store: MessageStore, tmp_path: Path) -> None:
    with SQLiteIndex(tmp_path / "i.db").follow(store) as index:
        store.for_user("ada").append("t", Message.user("ada's secret plan"))
        store.for_user("bob").append("t", Message.user("bob's plan"))
        assert [h.message.user_id for h in index.search("plan", filter={"user_id": "bob"})] == [
            "bob"
        ]


def test_reindexing_a_followed_index_rebuilds_it_once(tmp_path: Path) -> None:
    from tela_memory.recall.indexer import StoreIndexer

    with SQLiteStore(tmp_path / "s.db") as store:
        store.for_user("ada").append("t", [Message.user(f"turn {i}") for i in range(4)])
        with SQLiteIndex(tmp_path / "i.db", embedder=HashEmbedder(16)).follow(store) as index:
            assert index.count(ADA) == 4
            report = StoreIndexer(store, index).reindex()
            assert report.indexed == 4
            assert index.count(ADA) == 4
            store.for_user("ada").append("t", Message.user("turn 4"))
            assert index.count(ADA) == 5


def test_follow_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    from tela_memory.errors import InvalidArgumentError

    store = InMemoryStore()
    with SQLiteIndex(tmp_path / "i.db") as index:
        with pytest.raises(InvalidArgumentError, match="takes a MessageStore"):
            index.follow(store.for_user("ada"))  # type: ignore[arg-type]
        assert index.follower is None
