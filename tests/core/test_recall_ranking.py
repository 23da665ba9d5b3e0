"""Text extraction and the pure ranking functions (fusion, neighbours, threads, de-dup)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tela_memory.messages import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from tela_memory.recall.index import Document, rrf_fuse, searchable
from tela_memory.recall.ranking import (
    RankingConfig,
    dedup,
    fuse,
    with_neighbors,
    with_recency,
    with_threads,
)
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import Hit

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def hit(
    mid: str,
    *,
    lex: float | None = None,
    dense: float | None = None,
    score: float = 0.0,
    parent: str | None = None,
    thread: str = "t",
    text: str | None = None,
    at: int = 0,
) -> Hit:
    m = Message.user(
        text or mid, id=mid, parent_id=parent, thread_id=thread, created_at=T0 + timedelta(days=at)
    )
    return Hit(message=m, text=text or mid, score=score, lexical_score=lex, dense_score=dense)


def test_extract_text_covers_blocks() -> None:
    m = Message.assistant(
        [
            TextBlock(text="hello"),
            ThinkingBlock(text="private"),
            ImageBlock(url="https://x.test/i.png", alt_text="a red bicycle"),
            AudioBlock(ref="a1", transcript="spoken words"),
            DocumentBlock(text="body text", title="Report"),
        ],
        tool_calls=[ToolCallBlock(id="c1", name="lookup", arguments={"city": "Oslo"})],
    )
    text = extract_text(m)
    for part in ["hello", "a red bicycle", "spoken words", "Report", "body text", "lookup", "Oslo"]:
        assert part in text
    assert "private" not in text
    assert "lookup" in extract_text(Message.tool("c1", "sunny in Oslo")) or "sunny" in extract_text(
        Message.tool("c1", "sunny in Oslo")
    )


def test_named_messages_are_searched_with_their_name() -> None:
    m = Message.user("I moved to Oslo", name="Caroline")
    assert searchable(m, "I moved to Oslo") == "Caroline: I moved to Oslo"
    assert Document(m, "I moved to Oslo", None).search_text.startswith("Caroline: ")
    assert searchable(Message.user("x"), "x") == "x"


def test_fuse_weights_both_sides() -> None:
    lexical = [hit("a", lex=10.0), hit("b", lex=5.0)]
    dense = [hit("b", dense=0.9), hit("c", dense=0.1)]
    out = fuse(lexical, dense, RankingConfig())
    assert next(h.message.id for h in out) in {"a", "b"}
    assert {h.message.id for h in out} == {"a", "b", "c"}
    b = next(h for h in out if h.message.id == "b")
    assert b.lexical_score == 5.0
    assert b.dense_score == 0.9
    only_dense = fuse([], dense, RankingConfig())
    assert [h.message.id for h in only_dense] == ["b", "c"]


def test_score_fusion_scales_each_side_min_max() -> None:
    lexical = [hit("a", lex=10.0), hit("b", lex=6.0), hit("c", lex=2.0)]
    dense = [hit("c", dense=0.8), hit("a", dense=0.6), hit("d", dense=0.4)]
    out = {h.message.id: h.score for h in fuse(lexical, dense, RankingConfig())}
    assert out["a"] == pytest.approx(0.6 * 1.0 + 0.4 * 0.5)
    assert out["b"] == pytest.approx(0.6 * 0.5)
    assert out["c"] == pytest.approx(0.4 * 1.0)
    assert out["d"] == pytest.approx(0.0)
    alone = fuse([hit("x", lex=3.0)], [], RankingConfig())
    assert alone[0].score == pytest.approx(1.0)


@given(
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.floats(0.1, 20)),
        max_size=8,
        unique_by=lambda x: x[0],
    ),
    st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.floats(-1, 1)),
        max_size=8,
        unique_by=lambda x: x[0],
    ),
    st.sampled_from(["score", "rrf"]),
)
def test_fuse_is_a_sorted_union(
    lex: list[tuple[str, float]], den: list[tuple[str, float]], how: str
) -> None:
    lexical = [hit(i, lex=s) for i, s in sorted(lex, key=lambda x: -x[1])]
    dense = [hit(i, dense=s) for i, s in sorted(den, key=lambda x: -x[1])]
    out = fuse(lexical, dense, RankingConfig(fusion=how))  # type: ignore[arg-type]
    assert sorted(h.message.id for h in out) == sorted({i for i, _ in lex} | {i for i, _ in den})
    assert all(a.score >= b.score for a, b in itertools.pairwise(out))


def test_neighbors_lift_adjacent_turns() -> None:
    hits = [hit("q", score=1.0), hit("a", score=0.2, parent="q"), hit("z", score=0.5)]
    out = with_neighbors(hits, 0.5)
    scores = {h.message.id: h.score for h in out}
    assert scores["a"] == 0.2 + 0.5 * 1.0
    assert scores["q"] == 1.0 + 0.5 * 0.2
    assert scores["z"] == 0.5
    assert [h.message.id for h in out] == ["q", "a", "z"]


def test_threads_lift_their_turns() -> None:
    hits = [
        hit("x1", score=0.5, thread="x"),
        hit("y1", score=0.55, thread="y"),
        hit("x2", score=0.5, thread="x"),
        hit("x3", score=0.5, thread="x"),
    ]
    out = with_threads(hits, 1.0, 3)
    assert out[0].message.thread_id == "x"


def test_recency_prefers_new_turns() -> None:
    hits = [hit("old", score=0.5, at=0), hit("new", score=0.5, at=60)]
    out = with_recency(hits, 0.1, 30.0, T0 + timedelta(days=60))
    assert [h.message.id for h in out] == ["new", "old"]
    assert with_recency(hits, 0.0, 30.0, T0) == hits


def test_dedup_keeps_the_best_copy() -> None:
    hits = [hit("a", text="OK, thanks!"), hit("b", text="ok thanks"), hit("c", text="other")]
    assert [h.message.id for h in dedup(hits)] == ["a", "c"]


def test_rrf_fuse() -> None:
    out = rrf_fuse([[hit("a"), hit("b")], [hit("b"), hit("c")]], 3)
    assert out[0].message.id == "b"
