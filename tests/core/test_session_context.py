"""Session with the real context engine: ContextPolicy / ContextEngine as the policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from session_doubles import ScriptedModel, text_reply

from tela_memory import Role, TelaMemoryError
from tela_memory.context import ContextEngine, ContextPolicy, ContextReport, PinnedPrefix
from tela_memory.session import Session
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "ctx.db") as s:
        yield s


def _long(i: int) -> str:
    return f"turn {i}: " + "lorem ipsum dolor sit amet " * 12


def test_context_policy_keeps_the_model_within_budget(store: SQLiteStore) -> None:
    policy = ContextPolicy(budget=400, pinned=PinnedPrefix(system=True, first_turns=0))
    replies = [text_reply(_long(100 + i), size=50) for i in range(8)]
    model = ScriptedModel(*replies)
    session = Session(
        store, model, policy=policy, system="You are a careful assistant.", user_id="local"
    )
    for i in range(8):
        session.send(_long(i))
    # the whole history is stored ...
    assert len(session.history()) == 1 + 2 * 8
    # ... but the last call got the pinned system prompt plus a recent window only
    last_call = model.seen[-1]
    assert last_call[0].role is Role.SYSTEM
    assert last_call[-1].text == _long(7)
    assert len(last_call) < 1 + 2 * 8
    ctx = session.context()
    assert isinstance(ctx.report, ContextReport)
    assert ctx.report.tokens_out <= 400
    assert len(ctx.messages) < len(session.history())
    assert ctx.history_size is None  # the engine did not read the whole branch


def test_prefix_stays_stable_between_turns(store: SQLiteStore) -> None:
    policy = ContextPolicy(budget=100_000)
    model = ScriptedModel(*[text_reply(f"reply {i}") for i in range(3)])
    session = Session(store, model, policy=policy, system="sys", user_id="local")
    for i in range(3):
        session.send(f"question {i}")
    # with room to spare every call extends the previous one: prompt caches keep hitting
    for before, after in zip(model.seen, model.seen[1:], strict=False):
        assert after[: len(before)] == before


def test_a_context_engine_can_be_the_policy(store: SQLiteStore) -> None:
    engine = ContextEngine(store, ContextPolicy(budget=10_000))
    model = ScriptedModel(text_reply("a"), text_reply("b"))
    session = Session(store, model, policy=engine, user_id="local")
    session.send("one")
    session.send("two")
    assert [m.text for m in model.seen[1]] == ["one", "a", "two"]


def test_an_engine_on_another_store_is_refused(store: SQLiteStore) -> None:
    engine = ContextEngine(InMemoryStore(), ContextPolicy(budget=1000))
    with pytest.raises(TelaMemoryError, match="another store"):
        Session(store, ScriptedModel(), policy=engine, user_id="local")


async def test_async_turns_with_the_engine(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("x"), text_reply("y"))
    session = Session(store, model, policy=ContextPolicy(budget=10_000), user_id="local")
    await session.asend("1")
    chunks = [c async for c in session.astream("2")]
    assert "".join(c.text for c in chunks) == "y"
    ctx = await session.acontext()
    assert [m.text for m in ctx.messages] == ["1", "x", "2", "y"]


def test_streamed_reply_is_seen_complete_by_the_next_turn(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("streamed answer", size=2), text_reply("ok"))
    session = Session(store, model, policy=ContextPolicy(budget=10_000), user_id="local")
    list(session.stream("first"))
    session.send("second")
    assert [m.text for m in model.seen[1]] == ["first", "streamed answer", "second"]
