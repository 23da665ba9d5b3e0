"""ContextEngine on real stores: incremental reads, persisted summaries, branches, privacy."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from context_threads import check

from tela_memory import Message, TelaMemoryError
from tela_memory.context import (
    SUMMARY_KEY,
    ContextEngine,
    ContextPolicy,
    Decision,
    ExtractiveSummarizer,
    Summary,
)
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.tokens import ApproxCounter, CachedCounter, TokenCounter

COUNTER = ApproxCounter("openai")


class CountingSummarizer(ExtractiveSummarizer):
    """The extractive summariser, recording the ids of every span it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[list[str]] = []

    def summarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        self.spans.append([m.id for m in messages])
        return super().summarize(previous, messages, max_tokens=max_tokens, counter=counter)


def turn(i: int) -> list[Message]:
    return [
        Message.user(f"Question {i} about Lisbon trip day {i}: " + "details " * 30),
        Message.assistant(f"Answer {i}: " + "plan " * 30),
    ]


@pytest.fixture(params=["sqlite-file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    if request.param == "sqlite-file":
        with SQLiteStore(tmp_path / "ctx.db") as s:
            yield s
    else:
        with InMemoryStore() as s:
            yield s


def _policy(summarizer: CountingSummarizer, budget: int = 1_500) -> ContextPolicy:
    return ContextPolicy(budget, counter=COUNTER, summary=Summary(summarizer))


def test_engine_builds_incrementally_and_persists_the_summary(store: MessageStore) -> None:
    summarizer = CountingSummarizer()
    engine = ContextEngine(store, _policy(summarizer))
    store.append("t1", Message.system("You plan trips."), user_id="u1")
    for i in range(40):
        store.append("t1", turn(i), user_id="u1")
        ctx = engine.build("t1", user_id="u1")
        check(ctx, store.read("t1", user_id="u1"), 1_500, engine.policy.cached)
    assert ctx.messages[-1].text.startswith("Answer 39")
    stored = store.get_thread("t1", user_id="u1").metadata[SUMMARY_KEY]
    assert isinstance(stored, dict)
    entry = stored["main"]
    assert isinstance(entry, dict)
    assert entry["upto"] == ctx.report.summary_upto
    assert entry["covers"] == ctx.report.summary_covers
    flat = [i for span in summarizer.spans for i in span]
    assert len(flat) == len(set(flat))


def test_a_new_engine_resumes_from_the_stored_summary(store: MessageStore) -> None:
    first = CountingSummarizer()
    store.append("t1", Message.system("You plan trips."), user_id="u1")
    for i in range(40):
        store.append("t1", turn(i), user_id="u1")
    ContextEngine(store, _policy(first)).build("t1", user_id="u1")
    covered = {i for span in first.spans for i in span}
    assert covered
    for i in range(40, 60):
        store.append("t1", turn(i), user_id="u1")
    second = CountingSummarizer()
    ctx = ContextEngine(store, _policy(second)).build(
        "t1", user_id="u1"
    )  # another process, same store
    again = {i for span in second.spans for i in span}
    assert not covered & again, "a span was summarised twice across engines"
    assert ctx.report.summary_covers == len(covered) + len(again)
    check(ctx, store.read("t1", user_id="u1"), 1_500, CachedCounter(COUNTER))


def test_summaries_are_per_branch(store: MessageStore) -> None:
    engine = ContextEngine(store, _policy(CountingSummarizer()))
    store.append("t1", Message.system("sys"), user_id="u1")
    for i in range(30):
        store.append("t1", turn(i), user_id="u1")
    engine.build("t1", user_id="u1")
    fork_at = store.read("t1", user_id="u1")[20].id
    store.fork("t1", fork_at, name="alt", user_id="u1")
    for i in range(30, 60):
        store.append("t1", turn(i), branch="alt", user_id="u1")
    ctx = engine.build("t1", branch="alt", user_id="u1")
    check(ctx, store.read("t1", branch="alt", user_id="u1"), 1_500, engine.policy.cached)
    entries = store.get_thread("t1", user_id="u1").metadata[SUMMARY_KEY]
    assert isinstance(entries, dict)
    assert set(entries) == {"main", "alt"}
    assert engine.stored_summary("t1", branch="alt", user_id="u1") is not None


def test_deleting_or_erasing_removes_the_summary(store: MessageStore) -> None:
    engine = ContextEngine(store, _policy(CountingSummarizer()))
    for thread in ("t1", "t2"):
        store.append(thread, Message.system("sys"), user_id="u1")
        for i in range(30):
            store.append(thread, turn(i), user_id="u1")
        engine.build(thread, user_id="u1")
        assert engine.stored_summary(thread, user_id="u1") is not None
    store.delete_thread("t1", user_id="u1")
    assert engine.stored_summary("t1", user_id="u1") is None
    store.erase_user("u1")
    assert engine.stored_summary("t2", user_id="u1") is None
    engine.forget()
    ctx = engine.build("t2", user_id="u1")
    assert ctx.messages == []


def test_a_summary_whose_messages_were_removed_by_retention_is_discarded(
    store: MessageStore,
) -> None:
    summarizer = CountingSummarizer()
    store.append("t1", Message.system("sys"), user_id="u1")
    for i in range(40):
        store.append("t1", turn(i), user_id="u1")
    ContextEngine(store, _policy(summarizer)).build("t1", user_id="u1")
    store.apply_retention(max_messages=10)
    ctx = ContextEngine(store, _policy(CountingSummarizer())).build("t1", user_id="u1")
    assert any("stored summary discarded" in n for n in ctx.report.notes)
    assert ctx.report.summary_covers == 0
    store.apply_retention(max_age=timedelta(days=1))  # nothing else removed


def test_incremental_reads_pick_up_only_new_messages(store: MessageStore) -> None:
    engine = ContextEngine(store, ContextPolicy(50_000, counter=COUNTER))
    store.append("t1", turn(0), user_id="u1")
    engine.build("t1", user_id="u1")
    store.append("t1", turn(1), user_id="u1")
    store.append("t1", turn(2), user_id="u1")
    ctx = engine.build("t1", user_id="u1")
    assert [m.id for m in ctx.messages] == [m.id for m in store.read("t1", user_id="u1")]
    assert ctx.report.ids(Decision.KEPT)


async def test_abuild_matches_build(store: MessageStore) -> None:
    store.append("t1", Message.system("sys"), user_id="u1")
    for i in range(25):
        await store.aappend("t1", turn(i), user_id="u1")
    sync = ContextEngine(store, _policy(CountingSummarizer()), persist=False).build(
        "t1", user_id="u1"
    )
    async_ = await ContextEngine(store, _policy(CountingSummarizer()), persist=False).abuild(
        "t1", user_id="u1"
    )
    assert [m.id for m in sync.messages] == [m.id for m in async_.messages]
    assert sync.tokens == async_.tokens
    assert SUMMARY_KEY not in store.get_thread("t1", user_id="u1").metadata


def test_engine_state_is_bounded(store: MessageStore) -> None:
    engine = ContextEngine(store, ContextPolicy(5_000, counter=COUNTER), max_threads=2)
    for thread in ("a", "b", "c"):
        store.append(thread, turn(0), user_id="u1")
        engine.build(thread, user_id="u1")
    assert len(engine._threads) == 2
    store.append("a", turn(1), user_id="u1")
    ctx = engine.build("a", user_id="u1")  # forgotten, re-read from the store
    assert [m.id for m in ctx.messages] == [m.id for m in store.read("a", user_id="u1")]
    with pytest.raises(TelaMemoryError):
        ContextEngine(store, ContextPolicy(5_000), max_threads=0)
