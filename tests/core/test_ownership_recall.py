"""Ownership on every recall read path: nothing of Ada's reaches Bob or a hostile user id.

Ada is seeded with a unique marker in every field (``tela_memory.testing.ownership``); Bob
has threads of the same ids (``A1``, ``shared-1``: threads are ``(user_id, thread_id)``) and
words that lure every ranker. Each read path of the ``Recaller`` (search, search_threads,
recall, pack, and their async twins), of the indexes (search in every mode, neighbours,
per-thread word counts, ``messages_after``) and of ``branch_filter`` is run as Bob and as each
hostile user id, with and without a thread filter naming Ada's thread ids, on four indexes:
the embedded ``SQLiteIndex`` fed by a ``StoreIndexer`` and one fed by ``upsert``, Qdrant local
mode (``StoreIndexer``) and Qdrant Edge (``upsert``). No marker may come back, in a result or
in an error. Every case has its control: Ada, through the same path, sees her markers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tela_memory.errors import InvalidMessageError, NotFoundError, ScopeError
from tela_memory.messages import Message
from tela_memory.recall import Recaller, SQLiteIndex
from tela_memory.recall.fts import scope_token
from tela_memory.recall.index import Index
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.recaller import abranch_filter, branch_filter
from tela_memory.recall.types import SearchMode
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.ownership import (
    HOSTILE_USER_IDS,
    INVALID_USER_IDS,
    Victim,
    leaks,
    seed_victim,
)
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex

# FTS5 and filter syntax, the old null token, Ada's own scope token as a user id: all opaque
ACTORS = (
    "bob",
    *HOSTILE_USER_IDS,
    "ada OR bob",
    '"',
    'ada" OR "bob',
    "NEAR(ada bob)",
    "scope : *",
    "unull",
    scope_token("u", "ada"),
    "ada\u200b",
)
THREAD_FILTERS: tuple[dict[str, Any], ...] = (
    {},
    {"thread_ids": ["A1"]},
    {"thread_ids": ["A1", "shared-1"]},
)
KINDS = ("sqlite-indexer", "sqlite-upsert", "qdrant-local", "qdrant-edge")


@dataclass
class World:
    store: SQLiteStore
    index: Index
    recaller: Recaller
    victim: Victim
    bob_ids: tuple[str, ...]

    @property
    def markers(self) -> tuple[str, ...]:
        return self.victim.markers

    def query(self) -> str:
        """Words of Ada's turns (her markers and the words around them): the best lure. A
        result that echoes the query (``RecallResult.query``) is left out of the scans."""
        text, reply, args, result = (
            m
            for m in self.markers
            if m.startswith(("MARKTEXT", "MARKREPLY", "MARKARGS", "MARKRES"))
        )
        return f"my card PIN is {text} noted {reply} lookup {args} {result}"


def _seed_bob(store: SQLiteStore) -> tuple[str, ...]:
    """Bob's own A1 and shared-1, with Ada's ordinary words (not her markers)."""
    bob = store.for_user("bob")
    ids: list[str] = []
    for tid in ("A1", "shared-1"):
        stored = bob.append(
            tid,
            [
                Message.user("my card PIN is something else, noted"),
                Message.assistant("noted: lookup of the card PIN"),
            ],
        )
        ids.extend(m.id for m in stored)
    return tuple(ids)


@pytest.fixture(scope="module", params=KINDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    kind = str(request.param)
    root = tmp_path_factory.mktemp(kind)
    store = SQLiteStore(root / "tela.db")
    victim = seed_victim(store.for_user("ada"))
    bob_ids = _seed_bob(store)
    embedder = HashEmbedder(64)
    index: Index
    if kind == "sqlite-indexer":
        index = SQLiteIndex.for_store(store, embedder=embedder)
    elif kind == "sqlite-upsert":
        index = SQLiteIndex(root / "separate.db", embedder=embedder)
    elif kind == "qdrant-local":
        index = QdrantIndex(location=":memory:", embedder=embedder)
    else:
        index = QdrantEdgeIndex(root / "edge", embedder=embedder)
    if kind.endswith("upsert") or kind == "qdrant-edge":
        for user in ("ada", "bob"):
            mine = store.for_user(user)
            for tid in ("A1", "shared-1"):
                for branch in mine.branches(tid):
                    index.upsert(mine.read(tid, branch=branch.name))
    else:
        StoreIndexer(store, index).sync()
    yield World(store, index, Recaller(index), victim, bob_ids)
    index.close()
    store.close()


def _scoped(world: World, user: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": user, **extra}


# -- the read paths, each a function (world, acting user, extra filter) -> what it returns ----

Path_ = Callable[[World, str, dict[str, Any]], Any]


def _search(w: World, user: str, extra: dict[str, Any]) -> Any:
    return w.recaller.search(w.query(), user_id=user, filter=extra or None, k=50)


def _asearch(w: World, user: str, extra: dict[str, Any]) -> Any:
    return asyncio.run(w.recaller.asearch(w.query(), user_id=user, filter=extra or None, k=50))


def _search_threads(w: World, user: str, extra: dict[str, Any]) -> Any:
    return w.recaller.search_threads(w.query(), user_id=user, filter=extra or None, k=10)


def _asearch_threads(w: World, user: str, extra: dict[str, Any]) -> Any:
    return asyncio.run(
        w.recaller.asearch_threads(w.query(), user_id=user, filter=extra or None, k=10)
    )


def _recall(w: World, user: str, extra: dict[str, Any]) -> Any:
    result = w.recaller.recall(w.query(), user_id=user, filter=extra or None, budget=4000)
    return [result.turns, result.hits, result.tokens, result.render()]  # not the query echoed


def _arecall(w: World, user: str, extra: dict[str, Any]) -> Any:
    result = asyncio.run(
        w.recaller.arecall(w.query(), user_id=user, filter=extra or None, budget=4000)
    )
    return [result.turns, result.hits, result.tokens, result.render()]  # not the query echoed


def _pack(w: World, user: str, extra: dict[str, Any]) -> Any:
    """Bob packs his own hits; the neighbours the pack brings are looked up for him."""
    hits = w.recaller.search(w.query(), user_id=user, filter=extra or None, k=50)
    packed = w.recaller.pack(w.query(), 4000, hits, user, filter=extra or None)
    return [packed.turns, packed.hits, packed.render()]


def _index_search(w: World, user: str, extra: dict[str, Any]) -> Any:
    modes: list[SearchMode] = ["hybrid", "lexical", "dense"]
    flt = _scoped(w, user, extra)
    return [w.index.search(w.query(), filter=flt, k=50, mode=m) for m in modes]


def _neighbors(w: World, user: str, extra: dict[str, Any]) -> Any:
    """Around each of Ada's message ids (ids are not secret: a leaked id must not open her
    thread) and each of Bob's, under the actor's filter."""
    flt = _scoped(w, user, extra)
    return [
        w.index.neighbors(mid, before=10, after=10, filter=flt)
        for mid in (*w.victim.message_ids, *w.bob_ids)
    ]


def _thread_terms(w: World, user: str, extra: dict[str, Any]) -> Any:
    if not w.index.supports_thread_terms:
        return []
    return w.index.thread_term_counts(w.query(), filter=_scoped(w, user, extra))


def _messages_after(w: World, user: str, extra: dict[str, Any]) -> Any:
    if not isinstance(w.index, SQLiteIndex):
        return []
    return [
        w.index.messages_after(tid, mid, 50, user_id=user)
        for tid in ("A1", "shared-1")
        for mid in (None, *w.victim.message_ids)
    ]


def _branch_filter(w: World, user: str, extra: dict[str, Any]) -> Any:
    out = []
    for tid in ("A1", "shared-1"):
        for branch in (None, w.victim.branch):
            try:
                flt = branch_filter(w.store, tid, branch, user_id=user)
            except NotFoundError as exc:
                # a foreign branch looks missing (test_a_foreign_branch_looks_missing); the
                # message may repeat the name the caller asked for: input, not stored data
                out.append(str(exc).replace(str(branch), "<asked>"))
                continue
            out.append(w.recaller.search(w.query(), user_id=user, filter=flt, k=50))
    via_view = asyncio.run(abranch_filter(w.store.for_user(user), "A1"))
    out.append(w.recaller.search(w.query(), user_id=user, filter=via_view, k=50))
    return out


PATHS: dict[str, Path_] = {
    "Recaller.search": _search,
    "Recaller.asearch": _asearch,
    "Recaller.search_threads": _search_threads,
    "Recaller.asearch_threads": _asearch_threads,
    "Recaller.recall": _recall,
    "Recaller.arecall": _arecall,
    "Recaller.pack": _pack,
    "Index.search": _index_search,
    "Index.neighbors": _neighbors,
    "Index.thread_term_counts": _thread_terms,
    "SQLiteIndex.messages_after": _messages_after,
    "branch_filter": _branch_filter,
}


def _run(path: Path_, w: World, user: str, extra: dict[str, Any]) -> Any:
    try:
        return path(w, user, extra)
    except Exception as exc:  # an error is a result too: it must not carry markers
        return exc


@pytest.mark.parametrize("name", sorted(PATHS))
def test_nothing_of_adas_reaches_another_user(world: World, name: str) -> None:
    path = PATHS[name]
    control = _run(path, world, "ada", {})
    if name == "Index.thread_term_counts" and not world.index.supports_thread_terms:
        assert control == []  # this backend has no such path (SQLite only)
    elif name == "SQLiteIndex.messages_after" and not isinstance(world.index, SQLiteIndex):
        assert control == []
    else:
        # the control: through the same path, Ada sees what she stored
        assert not isinstance(control, Exception), control
        if name == "Index.thread_term_counts":
            assert set(control.turns) == {("ada", "A1"), ("ada", "shared-1")}
        else:
            assert leaks(control, world.markers), name
    for user in ACTORS:
        for extra in THREAD_FILTERS:
            got = _run(path, world, user, extra)
            assert leaks(got, world.markers) == [], (name, user, extra)
            if name == "Index.thread_term_counts" and world.index.supports_thread_terms:
                assert all(key[0] == user for key in got.turns), (user, extra)


def test_a_foreign_branch_looks_missing(world: World) -> None:
    for user in ACTORS:
        for tid in ("A1", "shared-1", "no-such-thread"):
            with pytest.raises(NotFoundError) as foreign:
                branch_filter(world.store, tid, world.victim.branch, user_id=user)
            with pytest.raises(NotFoundError) as missing:
                branch_filter(world.store, tid, "no-such-branch", user_id=user)
            asked = str(foreign.value).replace(world.victim.branch, "<asked>")
            assert asked == str(missing.value).replace("no-such-branch", "<asked>")
    assert branch_filter(world.store, "A1", world.victim.branch, user_id="ada").message_ids


def test_bob_gets_his_own_threads_of_the_same_ids(world: World) -> None:
    """The positive side for Bob: his A1 and shared-1 are his, Ada's are not his."""
    for extra in THREAD_FILTERS:
        hits = world.recaller.search(world.query(), user_id="bob", filter=extra or None, k=50)
        assert {h.message.id for h in hits} <= set(world.bob_ids)
        assert hits
        threads = world.recaller.search_threads(world.query(), user_id="bob", k=10)
        assert {(t.user_id, t.thread_id) for t in threads} <= {("bob", "A1"), ("bob", "shared-1")}
    around = world.index.neighbors(world.bob_ids[0], before=5, after=5)
    assert [h.message.id for h in around] == [world.bob_ids[1]]


def test_no_user_is_a_scope_error(world: World) -> None:
    rec = world.recaller
    q = world.query()
    calls: list[Callable[[], Any]] = [
        lambda: rec.search(q),
        lambda: rec.search(q, user_id=None),
        lambda: rec.search(q, filter={"user_id": "ada"}),  # a filter is not the acting user
        lambda: rec.search_threads(q),
        lambda: rec.recall(q),
        lambda: rec.pack(q, 100, []),
        lambda: asyncio.run(rec.asearch(q)),
        lambda: asyncio.run(rec.asearch_threads(q)),
        lambda: asyncio.run(rec.arecall(q)),
        lambda: rec.search(q, user_id="bob", all_users=True),  # one or the other
        lambda: branch_filter(world.store, "A1"),
        lambda: asyncio.run(abranch_filter(world.store, "A1")),
        lambda: branch_filter(world.store.for_user("bob"), "A1", user_id="ada"),
    ]
    for call in calls:
        with pytest.raises(ScopeError) as err:
            call()
        assert "user_id" in str(err.value)
        assert leaks(err.value, world.markers) == []


def test_all_users_is_the_named_opt_in(world: World) -> None:
    """An operator's search across users finds both, and keeps their threads apart."""
    rec = world.recaller
    hits = rec.search(world.query(), all_users=True, k=50)
    assert {h.message.user_id for h in hits} == {"ada", "bob"}
    narrowed = rec.search(world.query(), all_users=True, filter={"user_id": "bob"}, k=50)
    assert {h.message.user_id for h in narrowed} == {"bob"}
    threads = rec.search_threads(world.query(), all_users=True, filter={"thread_ids": ["A1"]})
    keys = [(t.user_id, t.thread_id) for t in threads]
    assert sorted(keys) == [("ada", "A1"), ("bob", "A1")]  # two threads of one id
    for t in threads:
        assert {h.message.user_id for h in t.hits} == {t.user_id}
    result = rec.recall(world.query(), all_users=True, filter={"thread_ids": ["A1"]}, budget=4000)
    blocks = result.render().count("| thread A1]")
    assert blocks == 2  # one block per (user, thread), never merged


def test_invalid_user_ids_are_refused(world: World) -> None:
    rec = world.recaller
    for bad in INVALID_USER_IDS:
        calls: list[Callable[[], Any]] = [
            lambda bad=bad: rec.search(world.query(), user_id=bad),
            lambda bad=bad: rec.recall(world.query(), user_id=bad),
            lambda bad=bad: asyncio.run(rec.asearch_threads(world.query(), user_id=bad)),
            lambda bad=bad: rec.pack(world.query(), 100, [], bad),
            lambda bad=bad: branch_filter(world.store, "A1", user_id=bad),
        ]
        if isinstance(world.index, SQLiteIndex):
            calls.append(lambda bad=bad: world.index.messages_after("A1", None, 5, user_id=bad))  # type: ignore[attr-defined]
        for call in calls:
            with pytest.raises(InvalidMessageError) as err:
                call()
            assert leaks(err.value, world.markers) == []
    assert leaks(rec.search(world.query(), user_id="ada"), world.markers)  # the control


def test_hostile_ids_are_opaque_in_the_index_itself(world: World) -> None:
    """Hostile user ids own data of their own: each finds exactly its turn, never Ada's."""
    store = world.store
    for user in ACTORS[1:]:
        mine = store.for_user(user).append("A1", Message.user(f"card PIN noted {len(user)}"))
        world.index.upsert(mine)
        hits = world.recaller.search(world.query(), user_id=user, filter={"thread_ids": ["A1"]})
        assert [h.message.id for h in hits] == [mine[0].id], user
        world.index.delete(mine[0].id)
        store.for_user(user).delete_thread("A1")
