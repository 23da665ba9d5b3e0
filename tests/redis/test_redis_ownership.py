"""Ownership on Redis: Bob, and users with hostile ids, reach nothing of Ada's through any
method of ``RedisStore`` (or ``RedisIndex.neighbors``), on a standalone server and on a
cluster; every such case is paired with a control in which Ada sees her markers through the
same call. Thread keys are ``{user:thread}`` with both ids escaped, so no pair of ids collides.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis_servers import RedisServer

from tela_memory.errors import ConflictError, InvalidMessageError, NotFoundError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.ownership import (
    HOSTILE_USER_IDS,
    INVALID_USER_IDS,
    Victim,
    leaks,
    seed_victim,
)
from tela_memory_redis import RedisStore
from tela_memory_redis._ops import Ops, _scope
from tela_memory_redis.index import RedisIndex

pytestmark = pytest.mark.integration

ATTACKERS = ("bob", *HOSTILE_USER_IDS)


@pytest.fixture(params=["plain", "cluster"])
def store(request: pytest.FixtureRequest) -> Iterator[RedisStore]:
    if request.param == "plain":
        url = request.getfixturevalue("redis_plain").url
    else:
        url = request.getfixturevalue("redis_cluster").url
    with RedisStore(url, prefix=f"own-{uuid.uuid4().hex[:10]}") as s:
        yield s


@pytest.fixture
def victim(store: RedisStore) -> Victim:
    return seed_victim(store.for_user("ada"))


def _outcome(call: Callable[[], Any]) -> Any:
    """What a caller gets back: the result, or the error raised."""
    try:
        return call()
    except TelaMemoryError as exc:
        return exc


def _paths(store: RedisStore, v: Victim, who: str) -> dict[str, Callable[[], Any]]:
    """Every read path of the store, as user ``who``, aimed at Ada's ids."""
    tid, mids = v.thread_ids[0], v.message_ids
    run = asyncio.run
    return {
        "read": lambda: store.read(tid, user_id=who),
        "read branch": lambda: store.read(tid, user_id=who, branch=v.branch),
        "read last": lambda: store.read(tid, user_id=who, last=2),
        "read since": lambda: store.read(
            tid, user_id=who, since=datetime.now(UTC) - timedelta(days=1)
        ),
        "read before": lambda: store.read(tid, user_id=who, before=mids[3]),
        "aread": lambda: run(store.aread(tid, user_id=who)),
        "get": lambda: [_outcome(functools.partial(store.get, m, user_id=who)) for m in mids],
        "aget": lambda: run(store.aget(mids[0], user_id=who)),
        "get_thread": lambda: store.get_thread(tid, user_id=who),
        "aget_thread": lambda: run(store.aget_thread(tid, user_id=who)),
        "branches": lambda: store.branches(tid, user_id=who),
        "abranches": lambda: run(store.abranches(tid, user_id=who)),
        "list_threads": lambda: store.list_threads(who),
        "alist_threads": lambda: run(store.alist_threads(who)),
        "fork then read": lambda: (
            store.fork(tid, mids[1], user_id=who, name=f"f-{uuid.uuid4().hex[:6]}"),
            store.read(tid, user_id=who),
        ),
        "update_message": lambda: store.update_message(
            Message.user("overwritten", id=mids[0]), user_id=who
        ),
        "update_thread": lambda: store.update_thread(tid, user_id=who, title="hijacked"),
        "set_default_branch": lambda: store.set_default_branch(tid, v.branch, user_id=who),
        "delete_branch": lambda: store.delete_branch(tid, v.branch, user_id=who),
        "set_ttl": lambda: store.set_ttl(tid, 0.01, user_id=who),
        "delete_thread": lambda: store.delete_thread(tid, user_id=who),
    }


def test_other_users_reach_nothing_through_any_method(store: RedisStore, victim: Victim) -> None:
    before = store.read(victim.thread_ids[0], user_id="ada")
    leaked: dict[str, list[str]] = {}
    for who in ATTACKERS:
        for path, call in _paths(store, victim, who).items():
            got = _outcome(call)
            if found := leaks(got, victim.markers):
                leaked[f"{who!r} {path}"] = found
            if isinstance(got, TelaMemoryError):
                assert isinstance(got, NotFoundError), (who, path, got)
                assert "ada" not in str(got).lower().replace(who.lower(), ""), (who, path, got)
    assert leaked == {}
    # nothing of Ada's changed either: same messages, title, branches, no TTL
    tid = victim.thread_ids[0]
    assert store.read(tid, user_id="ada") == before
    assert store.get_thread(tid, user_id="ada").title == next(
        m for m in victim.markers if m.startswith("MARKTITLE")
    )
    assert {b.name for b in store.branches(tid, user_id="ada")} == {"main", victim.branch}
    assert store.client.pttl(store._ops.base("ada", tid) + "meta") == -1


def test_the_control_ada_sees_her_markers_through_the_same_paths(
    store: RedisStore, victim: Victim
) -> None:
    seen = {
        path: leaks(_outcome(call), victim.markers)
        for path, call in _paths(store, victim, "ada").items()
        if path not in {"update_message", "update_thread", "set_default_branch"}
        and path not in {"delete_branch", "set_ttl", "delete_thread"}  # writes: checked below
    }
    assert all(seen.values()), {p: m for p, m in seen.items() if not m}
    tid = victim.thread_ids[0]
    store.set_ttl(tid, 60, user_id="ada")
    assert 0 < store.client.pttl(store._ops.base("ada", tid) + "meta") <= 60_000
    assert store.delete_branch(tid, victim.branch, user_id="ada") >= 0
    assert store.delete_thread(tid, user_id="ada") == 4


def test_hostile_ids_write_in_their_own_namespace_only(store: RedisStore, victim: Victim) -> None:
    tid = victim.thread_ids[0]
    for who in ATTACKERS:
        store.append(tid, Message.user(f"I am {who}"), user_id=who)
        assert [m.text for m in store.read(tid, user_id=who)] == [f"I am {who}"]
        assert [t.id for t in store.list_threads(who).threads] == [tid]
    ada = store.read(tid, user_id="ada")
    assert len(ada) == 4
    assert leaks(ada, victim.markers)  # the control
    assert not any(m.text.startswith("I am") for m in ada)
    assert store.get_thread(tid, user_id="ada").message_count == 4
    assert {t.id for t in store.list_threads("ada").threads} == set(victim.thread_ids)
    receipt = store.erase_user("bob")
    assert (receipt.threads, receipt.messages) == (1, 1)
    assert len(store.read(tid, user_id="ada")) == 4


def test_a_message_naming_ada_is_refused_without_naming_anyone(
    store: RedisStore, victim: Victim
) -> None:
    tid = victim.thread_ids[0]
    with pytest.raises(InvalidMessageError) as named:
        store.append(tid, Message.user("x", user_id="ada"), user_id="bob")
    assert "belongs to" not in str(named.value)  # the old refusal named the owner
    assert leaks(named.value, victim.markers) == []
    with pytest.raises(ConflictError) as dup:
        store.append("mine", Message.user("x", id=victim.message_ids[0]), user_id="bob")
    assert "ada" not in str(dup.value)
    assert tid not in str(dup.value)
    assert leaks(dup.value, victim.markers) == []
    assert store.list_threads("bob").threads == ()  # nothing was written (claim undone)
    assert store.read("mine", user_id="bob") == []


def test_invalid_user_ids_are_refused_on_every_method(store: RedisStore) -> None:
    for bad in INVALID_USER_IDS:
        for call in (
            lambda b=bad: store.read("t", user_id=b),
            lambda b=bad: store.append("t", Message.user("x"), user_id=b),
            lambda b=bad: store.get("m", user_id=b),
            lambda b=bad: store.get_thread("t", user_id=b),
            lambda b=bad: store.branches("t", user_id=b),
            lambda b=bad: store.list_threads(b),
            lambda b=bad: store.delete_thread("t", user_id=b),
            lambda b=bad: store.erase_user(b),
        ):
            try:
                call()
            except InvalidMessageError:
                continue
            pytest.fail(f"user id {bad!r} was accepted (stores._common.check_id)")


def test_colliding_looking_ids_are_different_threads(store: RedisStore) -> None:
    pairs = [("a:b", "c"), ("a", "b:c"), ("a%3Ab", "c"), ("a", "b%3Ac"), ("{a", "}b"), ("a}", "{b")]
    for user, tid in pairs:
        store.append(tid, Message.user(f"{user} / {tid}"), user_id=user)
    for user, tid in pairs:
        assert [m.text for m in store.read(tid, user_id=user)] == [f"{user} / {tid}"]
    bases = {store._ops.base(u, t) for u, t in pairs}
    assert len(bases) == len(pairs)
    for base in bases:
        assert base.count("{") == 1
        assert base.count("}") == 1


@given(
    a=st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
    b=st.tuples(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8)),
)
def test_the_hash_tag_is_injective(a: tuple[str, str], b: tuple[str, str]) -> None:
    try:
        ta, tb = _scope(*a), _scope(*b)
    except InvalidMessageError:
        return
    assert (ta == tb) == (a == b)
    ops = Ops(prefix="p", cluster=False, ttl=None, refresh_ttl_on_read=False, on_corrupt="raise")
    assert ops.base(*a).count("{") == ops.base(*a).count("}") == 1


def test_neighbours_stay_in_the_users_own_thread(redis_stack: RedisServer) -> None:
    prefix = f"own-{uuid.uuid4().hex[:8]}"
    with (
        RedisStore(redis_stack.url, prefix=prefix) as store,
        RedisIndex(redis_stack.url, embedder=HashEmbedder(8), name=f"{prefix}-idx") as index,
    ):
        t0 = datetime.now(UTC) - timedelta(hours=1)
        ada = store.append(
            "shared",
            [
                Message.user(f"ada {i} MARKADA", created_at=t0 + timedelta(minutes=2 * i))
                for i in range(3)
            ],
            user_id="ada",
        )
        bob = store.append(
            "shared",
            [
                Message.user(f"bob {i}", created_at=t0 + timedelta(minutes=2 * i + 1))
                for i in range(3)
            ],
            user_id="bob",
        )
        index.upsert(ada + bob)
        for flt in (None, {"user_id": "ada"}, {"thread_ids": ["shared"]}):
            around = index.neighbors(ada[1].id, before=3, after=3, filter=flt)
            assert [h.message.id for h in around] == [ada[0].id, ada[2].id]  # the control too
        around_bob = index.neighbors(bob[1].id, before=3, after=3)
        assert [h.message.id for h in around_bob] == [bob[0].id, bob[2].id]
        assert leaks(around_bob, ["MARKADA"]) == []
        index.drop()


def test_erase_and_retention_are_the_only_cross_user_paths(store: RedisStore) -> None:
    store.append(
        "t", Message.user("old", created_at=datetime(2020, 1, 1, tzinfo=UTC)), user_id="ada"
    )
    store.append(
        "t", Message.user("old too", created_at=datetime(2020, 1, 1, tzinfo=UTC)), user_id="bob"
    )
    store.append("t", Message.user("new"), user_id="bob")
    report = store.apply_retention(max_age=timedelta(days=30))
    assert (report.messages, report.threads) == (2, 1)
    assert store.read("t", user_id="ada") == []
    assert [m.text for m in store.read("t", user_id="bob")] == ["new"]
    assert store.list_threads("ada").threads == ()
    assert store.erase_user("ada").threads == 0
    assert store.erase_user("bob").threads == 1
