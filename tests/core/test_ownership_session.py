"""Sessions and the context engine never show one user's data to another.

Ada's threads carry a marker in every field (``tela_memory.testing.ownership``). Bob and users
with hostile ids open the same thread ids through every read path of ``Session`` and
``ContextEngine``; nothing of Ada's reaches the result, an error or the model's input. Each
case has a control: Ada, through the same path, sees her markers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from session_doubles import ScriptedModel, text_reply

from tela_memory import ContextEngine, ContextPolicy, MessageStore, ScopeError, TelaMemoryError
from tela_memory.session import Session
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.ownership import HOSTILE_USER_IDS, Victim, leaks, seed_victim
from tela_memory.tokens import counter_for_model

COUNTER = counter_for_model("gpt-4o")
ACTORS = ("bob", *HOSTILE_USER_IDS[:8])


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    backend: MessageStore = (
        SQLiteStore(tmp_path / "o.db") if request.param == "sqlite" else InMemoryStore()
    )
    with backend:
        yield backend


@pytest.fixture
def victim(store: MessageStore) -> Victim:
    return seed_victim(store.for_user("ada"))


def _policy() -> ContextPolicy:
    return ContextPolicy(4_000, counter=COUNTER)


def _seen(call: Callable[[], Any]) -> Any:
    """The result of a read path, or the error it raised (both are what a caller sees)."""
    try:
        return call()
    except TelaMemoryError as exc:
        return exc


def _paths(store: MessageStore, user: str, thread: str) -> dict[str, Callable[[], Any]]:
    def session(policy: Any = None) -> Session:
        return Session(
            store, ScriptedModel(text_reply("ok")), user_id=user, thread_id=thread, policy=policy
        )

    def fork_then_history() -> Any:
        s = session()
        s.fork(name="mine")
        return s.history()

    engine = ContextEngine(store, _policy())
    return {
        "history": lambda: session().history(),
        "context": lambda: session().context(),
        "context with policy": lambda: session(_policy()).context(),
        "context with engine": lambda: session(engine).context(),
        "branches": lambda: session().branches(),
        "fork then history": fork_then_history,
        "engine.build": lambda: engine.build(thread, user_id=user),
        "engine.stored_summary": lambda: engine.stored_summary(thread, user_id=user),
    }


@pytest.mark.parametrize("actor", ACTORS)
def test_no_read_path_shows_another_users_thread(
    store: MessageStore, victim: Victim, actor: str
) -> None:
    for thread in victim.thread_ids:
        for name, path in _paths(store, actor, thread).items():
            assert leaks(_seen(path), victim.markers) == [], (actor, name)


def test_the_owner_sees_her_markers_through_the_same_paths(
    store: MessageStore, victim: Victim
) -> None:
    shown = {
        name: leaks(_seen(path), victim.markers)
        for name, path in _paths(store, "ada", victim.thread_ids[0]).items()
    }
    for name in (
        "history",
        "context",
        "context with policy",
        "context with engine",
        "branches",
        "fork then history",
        "engine.build",
    ):
        assert shown[name], name


@pytest.mark.parametrize("actor", ACTORS)
def test_the_model_never_receives_another_users_history(
    store: MessageStore, victim: Victim, actor: str
) -> None:
    before = {t: store.for_user("ada").read(t) for t in victim.thread_ids}
    for thread in victim.thread_ids:
        for policy in (None, _policy()):
            model = ScriptedModel(text_reply("hi"), text_reply("again"))
            s = Session(store, model, user_id=actor, thread_id=thread, policy=policy)
            s.send("hello")
            s.send(None)  # no new content: the model gets the thread as it is
            assert leaks(model.seen, victim.markers) == []
    # nothing the actor did changed her threads
    assert {t: store.for_user("ada").read(t) for t in victim.thread_ids} == before
    # control: Ada's own session sends her history to her model
    model = ScriptedModel(text_reply("hi"))
    Session(store, model, user_id="ada", thread_id=victim.thread_ids[0]).send(None)
    assert leaks(model.seen, victim.markers)


def test_a_session_needs_its_user(store: MessageStore) -> None:
    with pytest.raises(ScopeError, match="user_id"):
        Session(store, ScriptedModel(), user_id=None)  # type: ignore[arg-type]
