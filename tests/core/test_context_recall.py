"""The recall slot filled by the real Recaller over the real SQLite index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory import Message
from tela_memory.context import (
    ContextEngine,
    ContextPolicy,
    Decision,
    Recall,
    RecallerSlot,
)
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.recaller import Recaller
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens import ApproxCounter

COUNTER = ApproxCounter("openai")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "recall.db") as s:
        yield s


@pytest.fixture
def index(store: SQLiteStore) -> Iterator[SQLiteIndex]:
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(128)) as idx:
        yield idx


def _filler(i: int) -> list[Message]:
    return [
        Message.user(f"filler question {i} " + "weather chat " * 20),
        Message.assistant(f"filler answer {i} " + "small talk " * 20),
    ]


def _seed(store: SQLiteStore, index: SQLiteIndex) -> None:
    old = store.append(
        "t-old",
        [
            Message.user("My sister Ana is allergic to peanuts"),
            Message.assistant("Noted: no peanut sauces when Ana joins"),
        ],
        user_id="alice",
    )
    index.upsert(old)
    other = store.append("t-bob", [Message.user("Ana the cat likes peanuts")], user_id="bob")
    index.upsert(other)
    for i in range(60):
        index.upsert(store.append("t-now", _filler(i), user_id="alice"))


def test_recaller_slot_brings_other_threads_within_its_share(
    store: SQLiteStore, index: SQLiteIndex
) -> None:
    _seed(store, index)
    slot = RecallerSlot(Recaller(index, counter=COUNTER), user_id="alice", same_thread=False)
    policy = ContextPolicy(1_500, counter=COUNTER, recall=Recall(slot, share=0.2))
    engine = ContextEngine(store, policy)
    ctx = engine.build("t-now", query="what is Ana allergic to?", user_id="alice")
    history = store.read("t-now", user_id="alice")
    recalled = ctx.report.ids(Decision.RECALLED)
    assert recalled
    texts = [m.text for m in ctx.messages if m.id in recalled]
    assert any("allergic to peanuts" in t for t in texts)
    assert all("cat" not in t for t in texts)  # never another user's history
    kept = [m for m in ctx.messages if m.id not in recalled]
    kept_ids = {m.id for m in kept}
    assert [m.id for m in kept] == [m.id for m in history if m.id in kept_ids]
    assert policy.cached.count_messages(ctx.messages) == ctx.tokens
    assert ctx.tokens <= 1_500
    assert sum(r.tokens for r in ctx.report.messages if r.decision is Decision.RECALLED) <= 300


async def test_recaller_slot_async(store: SQLiteStore, index: SQLiteIndex) -> None:
    _seed(store, index)
    slot = RecallerSlot(Recaller(index, counter=COUNTER), user_id="alice", same_thread=False)
    policy = ContextPolicy(1_500, counter=COUNTER, recall=Recall(slot, share=0.2))
    ctx = await ContextEngine(store, policy).abuild(
        "t-now", query="Ana peanuts allergy", user_id="alice"
    )
    assert ctx.report.ids(Decision.RECALLED)
    assert ctx.tokens <= 1_500


def test_recall_on_a_new_thread_keeps_the_question_last(
    store: SQLiteStore, index: SQLiteIndex
) -> None:
    _seed(store, index)
    question = store.append(
        "t-new",
        [Message.system("be brief"), Message.user("what is Ana allergic to?")],
        user_id="alice",
    )
    slot = RecallerSlot(Recaller(index, counter=COUNTER), user_id="alice", same_thread=False)
    policy = ContextPolicy(1_500, counter=COUNTER, recall=Recall(slot, share=0.3))
    ctx = ContextEngine(store, policy).build(
        "t-new", query="what is Ana allergic to?", user_id="alice"
    )
    recalled = ctx.report.ids(Decision.RECALLED)
    assert recalled
    assert ctx.messages[0].id == question[0].id  # the system prompt still opens the request
    assert ctx.messages[-1].id == question[1].id  # and the user's question closes it
    assert ctx.tokens <= 1_500
