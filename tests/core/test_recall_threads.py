"""Thread-level ranking: BM25 over whole threads (word counts per thread from the index) as a
prior on turns and as the order of ``Recaller.search_threads``."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tela_memory.errors import UnsupportedOperation
from tela_memory.messages import Message
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.errors import InvalidQueryError
from tela_memory.recall.index import ThreadTermCounts
from tela_memory.recall.ranking import (
    RankingConfig,
    rank_threads,
    thread_bm25,
    with_thread_scores,
)
from tela_memory.recall.recaller import RecallConfig, Recaller
from tela_memory.recall.types import Hit
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder

T0 = datetime(2024, 3, 1, tzinfo=UTC)

# Thread "rome" is about the Rome trip throughout; thread "quiz" mentions it once, in a turn
# that matches the query a little better on its own (shorter).
ROME = [
    "We booked the flights to Rome",
    "I found a small hotel in Rome near the station",
    "Rome in May should be warm",
    "The museum we want in Rome is the Vatican one",
    "We should pack light",
]
QUIZ = [
    "Trivia night was fun",
    "Rome museum question stumped us",
    "We came third overall",
]


def _add(store: SQLiteStore, index: SQLiteIndex, user: str, thread: str, texts: list[str]) -> None:
    msgs = [
        Message.user(t).model_copy(update={"created_at": T0 + timedelta(minutes=i)})
        for i, t in enumerate(texts)
    ]
    index.upsert(store.append(thread, msgs, user_id=user))


ROME_T, QUIZ_T = ("alice", "rome"), ("alice", "quiz")  # threads are (user, thread id)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "t.db") as s:
        yield s


@pytest.fixture
def index(store: SQLiteStore) -> Iterator[SQLiteIndex]:
    with SQLiteIndex.for_store(store) as idx:  # lexical only: deterministic scores
        _add(store, idx, "alice", "rome", ROME)
        _add(store, idx, "alice", "quiz", QUIZ)
        _add(store, idx, "bob", "bob-rome", ["Rome Rome Rome museum museum"] * 4)
        yield idx


def test_thread_term_counts(index: SQLiteIndex) -> None:
    counts = index.thread_term_counts("the Rome museum?", filter={"user_id": "alice"})
    assert counts.turns == {ROME_T: 5, QUIZ_T: 3}  # bob's thread is not counted
    assert counts.terms == {"rome": {ROME_T: 4, QUIZ_T: 1}, "museum": {ROME_T: 1, QUIZ_T: 1}}
    only = index.thread_term_counts("rome", filter={"user_id": "alice", "thread_ids": ["quiz"]})
    assert only == ThreadTermCounts({QUIZ_T: 3}, {"rome": {QUIZ_T: 1}})
    assert index.thread_term_counts("rome", filter={"thread_ids": []}) == ThreadTermCounts({}, {})
    # query syntax in the words and the filter is inert
    weird = index.thread_term_counts('rome" OR scope : *', filter={"user_id": 'x" OR 1=1 --'})
    assert weird.turns == {}
    assert all(not v for v in weird.terms.values())
    with pytest.raises(InvalidQueryError):
        index.thread_term_counts("   ")


def test_thread_term_counts_needs_support(store: SQLiteStore) -> None:
    from tela_memory.recall.index import Index

    class Bare(SQLiteIndex):
        supports_thread_terms = False

    with Bare.for_store(store) as idx:
        assert isinstance(idx, Index)
        with pytest.raises(UnsupportedOperation):
            idx.thread_term_counts("rome")


def test_thread_bm25() -> None:
    a, b, c, d = (("u", t) for t in "abcd")
    counts = ThreadTermCounts(
        turns={a: 10, b: 10, c: 40, d: 10},
        terms={"rome": {a: 3, b: 1, c: 3}, "alice": {a: 5, b: 5, c: 5, d: 5}},
    )
    s = thread_bm25(counts)
    assert set(s) == {a, b, c, d}
    assert s[a] > s[b]  # more turns mention it
    assert s[a] > s[c]  # same count in a longer thread
    # a word in every thread weighs little: idf log(1 + 0.5 / 4.5); mean length 17.5 turns
    norm = 1.2 * (0.25 + 0.75 * 10 / 17.5)
    assert s[d] == pytest.approx(math.log(1 + 0.5 / 4.5) * 5 * 2.2 / (5 + norm))
    assert thread_bm25(ThreadTermCounts({}, {"x": {}})) == {}


def test_with_thread_scores_and_rank_threads(index: SQLiteIndex) -> None:
    hits = index.search("rome museum", filter={"user_id": "alice"}, k=10, mode="lexical")
    flat = [h.model_copy(update={"score": 1.0}) for h in hits]
    lifted = with_thread_scores(flat, {ROME_T: 4.0, QUIZ_T: 2.0}, 0.5)
    assert {h.message.thread_id: h.score for h in lifted} == {"rome": 1.5, "quiz": 1.0}
    threads = rank_threads(lifted)
    assert [t.thread_id for t in threads] == ["rome", "quiz"]
    assert threads[0].score == 1.5
    assert len(threads[0].hits) == sum(h.message.thread_id == "rome" for h in hits) >= 4
    assert with_thread_scores(flat, {}, 0.5) == flat


def _top(rec: Recaller) -> Hit:
    return rec.search("Rome museum", user_id="alice", k=1)[0]


def test_thread_bm25_lifts_the_thread_about_the_query(index: SQLiteIndex) -> None:
    # without it the short quiz turn wins on its own words
    old = Recaller(index, config=RecallConfig(ranking=RankingConfig(thread_lexical=False)))
    assert _top(old).message.thread_id == "quiz"
    rec = Recaller(index)
    assert _top(rec).message.thread_id == "rome"
    assert "Vatican" in _top(rec).text
    threads = rec.search_threads("Rome museum", user_id="alice", k=5)
    assert [t.thread_id for t in threads] == ["rome", "quiz"]
    assert threads[0].hits[0].score == threads[0].score
    assert [t.thread_id for t in rec.search_threads("Rome museum", user_id="alice", k=1)] == [
        "rome"
    ]
    assert asyncio.run(rec.asearch_threads("Rome museum", user_id="alice", k=5)) == threads


def test_dense_only_index_keeps_the_candidate_thread_score(store: SQLiteStore) -> None:
    class DenseOnly(SQLiteIndex):
        supports_lexical = False
        supports_thread_terms = False

    with DenseOnly.for_store(store, embedder=HashEmbedder(64)) as idx:
        _add(store, idx, "alice", "rome", ROME)
        threads = Recaller(idx).search_threads("Rome museum", user_id="alice")
        assert [t.thread_id for t in threads] == ["rome"]
