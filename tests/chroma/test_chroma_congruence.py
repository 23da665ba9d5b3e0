"""``ChromaIndex`` agrees with the embedded ``SQLiteIndex`` on the same turns: the same counts
under every filter, the same dense ranking (same embedder, exact cosine on both at this size),
the same neighbours."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chroma_helpers import unique_name

from tela_memory.messages import Message, Role
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.recall.types import SearchFilter
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import T0
from tela_memory_chroma import ChromaIndex

USERS = ["ada", "bob", "c'$x"]
WORDS = ["lighthouse", "budget", "dentist", "saffron", "harbour", "violin", "tram", "lisbon"]


def _turns() -> list[Message]:
    rnd = random.Random(5)
    out = []
    for i in range(240):
        user = USERS[i % 3]
        out.append(
            Message(
                role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
                content=" ".join(rnd.choices(WORDS, k=rnd.randint(3, 9))),
                user_id=user,
                thread_id=f"t{(i // 3) % 4}",
                created_at=T0 + timedelta(minutes=i),
                metadata={"k": rnd.choice(["a", 1, True])},
            )
        )
    return out


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[list[Message], SQLiteIndex, ChromaIndex]]:
    turns = _turns()
    with (
        SQLiteIndex(":memory:", embedder=HashEmbedder(32)) as sqlite,
        ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(32)) as chroma,
    ):
        sqlite.upsert(turns)
        chroma.upsert(turns)
        yield turns, sqlite, chroma
        chroma.drop()


FILTERS: list[dict[str, Any]] = [
    {"user_id": "ada"},
    {"user_id": "c'$x", "thread_ids": ["t1", "t3"]},
    {"user_id": "bob", "roles": ["assistant"]},
    {"user_id": "ada", "since": T0 + timedelta(minutes=60), "until": T0 + timedelta(minutes=200)},
    {"user_id": "bob", "metadata": {"k": 1}},
    {"user_id": "bob", "metadata": {"k": [True, "a"]}},
    {"thread_ids": ["t2"]},
    {"roles": ["user"], "metadata": {"k": "a"}},
]


@pytest.mark.parametrize("flt", FILTERS)
def test_same_counts_and_dense_ranking(
    pair: tuple[list[Message], SQLiteIndex, ChromaIndex], flt: dict[str, Any]
) -> None:
    _, sqlite, chroma = pair
    assert chroma.count(flt) == sqlite.count(flt)
    for query in ("budget dentist", "lisbon tram violin"):
        mine = chroma.search(query, filter=flt, k=15, mode="dense")
        theirs = sqlite.search(query, filter=flt, k=15, mode="dense")
        assert [h.dense_score for h in mine] == pytest.approx(
            [h.dense_score for h in theirs], abs=1e-4
        )
        last = theirs[-1].dense_score or 0.0  # equal texts tie: the cut may split them
        assert {h.message.id for h in mine if (h.dense_score or 0) > last + 1e-4} == {
            h.message.id for h in theirs if (h.dense_score or 0) > last + 1e-4
        }


def test_lexical_hits_hold_a_query_word_and_match_by_word(
    pair: tuple[list[Message], SQLiteIndex, ChromaIndex],
) -> None:
    turns, _, chroma = pair
    for flt in FILTERS:
        hits = chroma.search("saffron harbour", filter=flt, k=1000, mode="lexical")
        want = {m.id for m in turns if any(w in m.text.split() for w in ("saffron", "harbour"))}
        allowed = {m.id for m in turns if SearchFilter.coerce(flt).matches(m)}
        assert {h.message.id for h in hits} == want & allowed


def test_same_neighbours(pair: tuple[list[Message], SQLiteIndex, ChromaIndex]) -> None:
    turns, sqlite, chroma = pair
    for m in turns[::37]:
        for flt in (None, {"user_id": m.user_id}, {"roles": ["user"]}):
            a = [h.message.id for h in chroma.neighbors(m.id, before=3, after=2, filter=flt)]
            b = [h.message.id for h in sqlite.neighbors(m.id, before=3, after=2, filter=flt)]
            assert a == b, (m.id, flt)
