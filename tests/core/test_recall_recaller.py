"""Recaller: hybrid search and token-budgeted recall on the real SQLite index."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory.messages import Message
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.errors import InvalidQueryError
from tela_memory.recall.ranking import RankingConfig, Reranker
from tela_memory.recall.recaller import RecallConfig, Recaller, header, line
from tela_memory.recall.types import Hit
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens.counters import ApproxCounter

T0 = datetime(2024, 3, 1, tzinfo=UTC)

CHAT = [
    ("user", "We are planning a trip to Kyoto in April"),
    ("assistant", "Kyoto in April has cherry blossoms; book early"),
    ("user", "My sister Ana is allergic to peanuts"),
    ("assistant", "Noted, avoid peanut sauces when Ana joins"),
    ("user", "The budget for the trip is 3000 euros"),
    ("assistant", "3000 euros covers flights and a ryokan"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "r.db") as s:
        yield s


@pytest.fixture
def index(store: SQLiteStore) -> Iterator[SQLiteIndex]:
    with SQLiteIndex.for_store(store, embedder=HashEmbedder(128)) as idx:
        yield idx


def _seed(
    store: SQLiteStore, index: SQLiteIndex, user: str, thread: str, day: int = 0
) -> list[Message]:
    msgs = [
        Message(role=role, content=text, created_at=T0 + timedelta(days=day, minutes=i))  # type: ignore[arg-type]
        for i, (role, text) in enumerate(CHAT)
    ]
    stored = store.append(thread, msgs, user_id=user)
    index.upsert(stored)
    return stored


def test_search_finds_and_stays_with_the_user(store: SQLiteStore, index: SQLiteIndex) -> None:
    mine = _seed(store, index, "alice", "t-alice")
    _seed(store, index, "bob", "t-bob")
    rec = Recaller(index)
    hits = rec.search("peanut allergy", user_id="alice", k=3)
    assert hits[0].message.id in {mine[2].id, mine[3].id}
    assert all(h.message.user_id == "alice" for h in hits)
    assert all(h.message.user_id == "bob" for h in rec.search("Kyoto", user_id="bob", k=10))


def test_recall_fits_the_budget_and_is_chronological(
    store: SQLiteStore, index: SQLiteIndex
) -> None:
    _seed(store, index, "alice", "t1", day=0)
    _seed(store, index, "alice", "t2", day=5)
    rec = Recaller(index, counter=ApproxCounter())
    result = rec.recall("trip budget euros", user_id="alice", budget=60)
    assert 0 < result.tokens <= 60
    assert any("3000" in t.text for t in result.turns)
    times = [t.message.created_at for t in result.turns]
    assert times == sorted(times)
    text = result.render()
    assert "2024-03-0" in text  # session dates
    assert "user:" in text or "assistant:" in text


def test_best_hits_bring_their_neighbors(store: SQLiteStore, index: SQLiteIndex) -> None:
    stored = _seed(store, index, "alice", "t1")
    # neighbours right after their hit (how they compete by score is tested below)
    rec = Recaller(index, config=RecallConfig(expand_top=1, neighbors=1, neighbor_share=None))
    result = rec.recall("allergic peanuts sister", user_id="alice", budget=500)
    ids = {t.message.id for t in result.turns}
    best = result.hits[0].message.id
    pos = [m.id for m in stored].index(best)
    assert stored[pos - 1].id in ids or stored[pos + 1].id in ids
    assert any(t.rank is None for t in result.turns)


def test_neighbors_compete_for_the_budget_with_a_share_of_their_hit(
    store: SQLiteStore, index: SQLiteIndex
) -> None:
    stored = _seed(store, index, "alice", "t1")
    counter = ApproxCounter()

    def cost(m: Message) -> int:
        return counter.count_text(line(m.text, m)) + 1

    hits = [
        Hit(message=stored[2], text=stored[2].text, score=1.0),
        Hit(message=stored[5], text=stored[5].text, score=0.9),
        Hit(message=stored[0], text=stored[0].text, score=0.1),
    ]
    budget = counter.count_text(header(stored[0])) + 1 + sum(cost(stored[i]) for i in (2, 5, 1))
    shared = Recaller(
        index,
        counter=counter,
        config=RecallConfig(expand_top=1, neighbors=1, neighbor_share=0.5),
    ).pack("q", budget, hits, "alice")
    # the hit, the stronger second hit, then the hit's older neighbour (0.5 > 0.1)
    assert [t.message.id for t in shared.turns] == [stored[i].id for i in (1, 2, 5)]
    assert shared.tokens <= budget
    right_after = Recaller(
        index,
        counter=counter,
        config=RecallConfig(expand_top=1, neighbors=1, neighbor_share=None),
    ).pack("q", budget + 50, hits, "alice")
    ids = [t.message.id for t in right_after.turns]
    assert stored[1].id in ids
    assert stored[3].id in ids


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    budget=st.integers(1, 400),
    query=st.sampled_from(["Kyoto", "Ana peanuts", "euros budget", "zzz"]),
)
def test_never_over_budget(store: SQLiteStore, index: SQLiteIndex, budget: int, query: str) -> None:
    if index.count({"user_id": "prop"}) == 0:
        _seed(store, index, "prop", "t-prop")
    result = Recaller(index).recall(query, user_id="prop", budget=budget)
    assert result.tokens <= budget
    assert sum(t.tokens for t in result.turns) == result.tokens


class _ReverseAlphabet:
    """A reranker preferring texts that sort last (deterministic, obviously not semantic)."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[float]:
        order = sorted(range(len(hits)), key=lambda i: hits[i].text)
        scores = [0.0] * len(hits)
        for rank, i in enumerate(order):
            scores[i] = float(rank)
        return scores

    async def arerank(self, query: str, hits: Sequence[Hit]) -> list[float]:
        return self.rerank(query, hits)


def test_reranker_reorders(store: SQLiteStore, index: SQLiteIndex) -> None:
    _seed(store, index, "alice", "t1")
    rr = _ReverseAlphabet()
    assert isinstance(rr, Reranker)
    hits = Recaller(index, reranker=rr).search("trip Kyoto euros", user_id="alice", k=3)
    texts = [h.text for h in hits]
    assert texts == sorted(texts, reverse=True)


def test_lexical_only_index_works(store: SQLiteStore) -> None:
    with SQLiteIndex.for_store(store) as idx:
        _seed(store, idx, "alice", "t1")
        hits = Recaller(idx).search("cherry blossoms", user_id="alice")
        assert "cherry" in hits[0].text


def test_async_matches_sync(store: SQLiteStore, index: SQLiteIndex) -> None:
    _seed(store, index, "alice", "t1")
    rec = Recaller(index, config=RecallConfig(ranking=RankingConfig(recency_weight=0.0)))
    now = T0 + timedelta(days=1)

    async def go() -> tuple[list[Hit], int]:
        hits = await rec.asearch("Kyoto trip", user_id="alice", now=now)
        res = await rec.arecall("Kyoto trip", user_id="alice", budget=100, now=now)
        return hits, res.tokens

    hits, tokens = asyncio.run(go())
    assert [h.message.id for h in hits] == [
        h.message.id for h in rec.search("Kyoto trip", user_id="alice", now=now)
    ]
    assert tokens == rec.recall("Kyoto trip", user_id="alice", budget=100, now=now).tokens
    assert index.embedder is not None  # a query embedded beforehand gives the same ranking
    vec = index.embedder.embed_query("Kyoto trip")
    given = asyncio.run(rec.asearch("Kyoto trip", user_id="alice", now=now, query_vector=vec))
    assert [h.message.id for h in given] == [h.message.id for h in hits]


def test_bad_input(index: SQLiteIndex) -> None:
    rec = Recaller(index)
    with pytest.raises(InvalidQueryError):
        rec.recall("x", user_id="a", budget=0)
    with pytest.raises(InvalidQueryError):
        rec.search("x", user_id="a", filter={"user_id": "b"})
    with pytest.raises(InvalidQueryError):
        rec.search("", user_id="a")
    with pytest.raises(InvalidQueryError):
        rec.search("x", user_id="a", filter={"colour": "red"})


def test_fills_the_context_engines_recall_slot(store: SQLiteStore, index: SQLiteIndex) -> None:
    from tela_memory.context import RecallerSlot

    _seed(store, index, "alice", "t1")
    _seed(store, index, "bob", "t2")
    slot = RecallerSlot(Recaller(index), user_id="alice", same_thread=False)
    got = slot.recall("peanut allergy", "other-thread", 200)
    assert got
    assert all(m.user_id == "alice" for m in got)
    assert slot.recall("peanut allergy", "t1", 200) == []


def test_search_one_branch(store: SQLiteStore, index: SQLiteIndex) -> None:
    from tela_memory.recall.recaller import branch_filter

    stored = _seed(store, index, "alice", "t1")
    store.fork("t1", stored[1].id, name="alt", user_id="alice")
    alt = store.append(
        "t1", [Message.user("Kyoto again but in autumn")], branch="alt", user_id="alice"
    )
    index.upsert(alt)
    on_alt = branch_filter(store, "t1", "alt", user_id="alice")
    ids = {h.message.id for h in Recaller(index).search("Kyoto", user_id="alice", filter=on_alt)}
    assert alt[0].id in ids
    assert ids <= {stored[0].id, stored[1].id, alt[0].id}
    on_main = branch_filter(store, "t1", user_id="alice")
    ids = {h.message.id for h in Recaller(index).search("Kyoto", user_id="alice", filter=on_main)}
    assert alt[0].id not in ids
    # a UserStore view gives the user; another user's "t1" is not hers: nothing on it
    assert branch_filter(store.for_user("alice"), "t1", "alt") == on_alt
    assert branch_filter(store, "t1", user_id="bob").message_ids == ()


def _repeats(store: SQLiteStore, index: SQLiteIndex, copies: int, distinct: int) -> None:
    same = [Message.user("peanut peanut peanut") for _ in range(copies)]
    other = [
        Message.assistant(f"note {i}: the peanut allergy plan for trip day {i} is ready")
        for i in range(distinct)
    ]
    index.upsert(store.append("t-rep", [*same, *other], user_id="alice"))


@pytest.mark.parametrize("candidates", [10, 60])
def test_search_returns_k_distinct_hits_when_texts_repeat(
    store: SQLiteStore, index: SQLiteIndex, candidates: int
) -> None:
    """Many identical turns fill the candidate pool; de-duplication must not leave 1 of 10."""
    _repeats(store, index, copies=2 * candidates + 20, distinct=12)
    rec = Recaller(index, config=RecallConfig(candidates=candidates))
    for hits in (
        rec.search("peanut", user_id="alice", k=10),
        asyncio.run(rec.asearch("peanut", user_id="alice", k=10)),
    ):
        texts = [h.text for h in hits]
        assert len(texts) == 10
        assert len(set(texts)) == 10
        assert "peanut peanut peanut" in texts
    # fewer distinct texts than asked: all of them, once each
    assert len(rec.search("peanut", user_id="alice", k=50)) == 13
    recalled = rec.recall("peanut", user_id="alice", budget=2_000, k=10)
    assert len({h.text for h in recalled.hits}) == len(recalled.hits) == 10
    assert {h.text for h in recalled.hits} <= {t.text for t in recalled.turns}
