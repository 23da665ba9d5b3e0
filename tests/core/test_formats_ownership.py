"""Formats' store I/O acts for one user: loads read only that user's threads, imports keep the
owners a file carries unless told otherwise, and a missing user is a ``ScopeError``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tela_memory.errors import NotFoundError, ScopeError
from tela_memory.formats import Conversation, read_text, write_text
from tela_memory.formats.store_io import (
    ImportAborted,
    aload_conversation,
    import_conversation,
    import_conversations,
    load_conversation,
    user_thread_ids,
)
from tela_memory.messages import Message
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.ownership import HOSTILE_USER_IDS, leaks, seed_victim


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    with SQLiteStore(tmp_path / "t.db") as s:
        yield s


def two_users() -> list[Conversation]:
    return [
        Conversation.linear(
            [Message.user("ada's t1"), Message.assistant("a")], id="t1", user_id="ada"
        ),
        Conversation.linear(
            [Message.user("bob's t1"), Message.assistant("b")], id="t1", user_id="bob"
        ),
    ]


def first_text(store: SQLiteStore, user: str, thread: str) -> str:
    return load_conversation(store, thread, user_id=user).path()[0].text


# -- loading -------------------------------------------------------------------------------


def test_load_needs_the_acting_user(store: SQLiteStore) -> None:
    store.append("t", Message.user("hi"), user_id="ann")
    with pytest.raises(ScopeError, match="user_id="):
        load_conversation(store, "t")
    with pytest.raises(ScopeError, match="user_id="):
        user_thread_ids(store)
    with pytest.raises(ScopeError, match="differs"):
        load_conversation(store.for_user("ann"), "t", user_id="bob")
    assert load_conversation(store.for_user("ann"), "t", user_id="ann").user_id == "ann"
    assert load_conversation(store, "t", user_id="ann").path()[0].text == "hi"
    assert user_thread_ids(store.for_user("ann")) == ["t"]


@pytest.mark.parametrize("who", ["bob", *HOSTILE_USER_IDS])
def test_another_users_thread_loads_like_a_missing_one(store: SQLiteStore, who: str) -> None:
    victim = seed_victim(store.for_user("ada"))
    secrets = victim.markers + victim.message_ids
    for thread in victim.thread_ids:
        with pytest.raises(NotFoundError) as foreign:
            load_conversation(store, thread, user_id=who)
        with pytest.raises(NotFoundError) as missing:
            load_conversation(store, "never-existed", user_id=who)
        assert leaks(foreign.value, secrets) == []
        assert str(foreign.value).replace(thread, "X") == str(missing.value).replace(
            "never-existed", "X"
        )
        assert "ada" not in str(foreign.value).replace(thread, "")
    assert user_thread_ids(store, who) == []
    # the control: Ada loads every field of hers
    mine = [load_conversation(store, t, user_id="ada") for t in victim.thread_ids]
    assert set(leaks(mine, victim.markers)) == set(victim.markers)
    assert sorted(user_thread_ids(store, "ada")) == sorted(victim.thread_ids)


async def test_async_load_is_scoped_too(store: SQLiteStore) -> None:
    victim = seed_victim(store.for_user("ada"))
    with pytest.raises(NotFoundError) as info:
        await aload_conversation(store, victim.thread_ids[0], user_id="bob")
    assert leaks(info.value, victim.markers) == []
    with pytest.raises(ScopeError):
        await aload_conversation(store, victim.thread_ids[0])
    mine = await aload_conversation(store.for_user("ada"), victim.thread_ids[0])
    assert leaks(mine, victim.markers)


# -- importing -----------------------------------------------------------------------------


def test_import_keeps_the_owners_a_file_carries(store: SQLiteStore) -> None:
    text, _ = write_text(two_users(), "tela")
    convs = read_text(text).conversations
    assert [c.user_id for c in convs] == ["ada", "bob"]
    report = import_conversations(store, convs)
    assert (report.threads, report.users) == (["t1", "t1"], ["ada", "bob"])
    assert report.per_user() == {"ada": 1, "bob": 1}
    assert first_text(store, "ada", "t1") == "ada's t1"
    assert first_text(store, "bob", "t1") == "bob's t1"


def test_an_import_into_one_user_is_explicit(store: SQLiteStore) -> None:
    ada, bob = two_users()
    bob.id = "t2"
    report = import_conversations(store, [ada, bob], user_id="carol")
    assert report.users == ["carol", "carol"]
    assert user_thread_ids(store, "carol") == ["t1", "t2"]
    assert user_thread_ids(store, "ada") == user_thread_ids(store, "bob") == []
    other = Conversation.linear([Message.user("dan's")], id="t1", user_id="ada")
    assert import_conversation(store.for_user("dan"), other) == ("t1", 1, 1)
    assert first_text(store, "dan", "t1") == "dan's"
    with pytest.raises(ScopeError, match="differs"):
        import_conversations(store.for_user("dan"), [other], user_id="erin")


def test_a_conversation_without_owner_needs_a_user_and_nothing_is_written(
    store: SQLiteStore,
) -> None:
    ada, _ = two_users()
    nobody = Conversation.linear([Message.user("whose?")], id="n1")
    with pytest.raises(ScopeError, match=r"'n1' names no owner"):
        import_conversations(store, [ada, nobody])
    with pytest.raises(ScopeError, match="names no owner"):
        import_conversation(store, nobody)
    assert user_thread_ids(store, "ada") == []
    assert import_conversations(store, [nobody], user_id="ann").threads == ["n1"]


def test_all_or_nothing_across_owners(store: SQLiteStore) -> None:
    ada, bob = two_users()
    again = Conversation.linear([Message.user("again")], id="t1", user_id="ada")
    with pytest.raises(ImportAborted, match="nothing was imported"):
        import_conversations(store, [ada, bob, again])
    assert user_thread_ids(store, "ada") == user_thread_ids(store, "bob") == []
    report = import_conversations(store, [ada, bob, again], continue_on_error=True)
    assert report.users == ["ada", "bob"]
    assert report.skipped[0][0] == "t1"


def test_an_invalid_owner_in_a_file_fails_that_conversation_only(store: SQLiteStore) -> None:
    ada, _ = two_users()
    bad = Conversation.linear([Message.user("x")], id="b1", user_id="bad\x00id")
    with pytest.raises(ImportAborted, match="user_id must be"):
        import_conversations(store, [ada, bad])
    assert user_thread_ids(store, "ada") == []
    report = import_conversations(store, [ada, bad], continue_on_error=True)
    assert report.users == ["ada"]
    assert [s[0] for s in report.skipped] == ["b1"]


def test_importing_anothers_thread_id_makes_ones_own(store: SQLiteStore) -> None:
    """No squatting: Bob's import of a conversation called (and claiming to be) Ada's lands
    in his namespace, and her thread stays as it was."""
    victim = seed_victim(store.for_user("ada"))
    before = load_conversation(store, "A1", user_id="ada")
    claim = Conversation.linear([Message.user("injected")], id="A1", user_id="ada")
    assert import_conversations(store.for_user("bob"), [claim]).users == ["bob"]
    assert load_conversation(store, "A1", user_id="ada") == before
    assert first_text(store, "bob", "A1") == "injected"
    assert leaks(load_conversation(store, "A1", user_id="bob"), victim.markers) == []


def test_two_users_round_trip_through_tela_and_erasure_finds_them(tmp_path: Path) -> None:
    """issue 20 item 9: an export of two users comes back as two users."""
    with SQLiteStore(tmp_path / "a.db") as src:
        for conv in two_users():
            import_conversations(src, [conv])
        convs = [load_conversation(src, "t1", user_id=u) for u in ("ada", "bob")]
    text, report = write_text(convs, "tela")
    assert not report
    with SQLiteStore(tmp_path / "b.db") as dst:
        import_conversations(dst, read_text(text).conversations)
        assert first_text(dst, "bob", "t1") == "bob's t1"
        assert dst.erase_user("ada").threads == 1
        assert user_thread_ids(dst, "bob") == ["t1"]


# -- the JSONL layout keeps owners too -----------------------------------------------------


def test_jsonl_keeps_two_users_threads_of_the_same_id_apart(store: SQLiteStore) -> None:
    ada, bob = two_users()
    alt = Message.assistant("alt", parent_id=bob.messages[0].id)
    bob.messages.append(alt)
    bob.branches["alt"] = alt.id
    text, _ = write_text([ada, bob], "jsonl")
    back = read_text(text, "jsonl").conversations
    assert [(c.id, c.user_id) for c in back] == [("t1", "ada"), ("t1", "bob")]
    assert set(back[1].branches) == {"main", "alt"}
    assert import_conversations(store, back).users == ["ada", "bob"]


def test_jsonl_heads_line_of_an_older_file_still_closes_its_thread() -> None:
    a = Message.user("q", thread_id="t", user_id="ann")
    b = Message.assistant("one", thread_id="t", user_id="ann", parent_id=a.id)
    c = Message.assistant("two", thread_id="t", user_id="ann", parent_id=a.id)
    heads = {"thread_id": "t", "default_branch": "main", "branches": {"main": b.id, "x": c.id}}
    lines = [m.model_dump_json() for m in (a, b, c)] + [json.dumps(heads)]
    (conv,) = read_text("\n".join(lines) + "\n", "jsonl").conversations
    assert (conv.user_id, conv.branches) == ("ann", {"main": b.id, "x": c.id})
