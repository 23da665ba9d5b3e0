"""Payload, point ids, sparse vectors and the SearchFilter -> Qdrant Filter translation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from qdrant_client import models

from tela_memory.messages import Role
from tela_memory.recall.types import SearchFilter
from tela_memory.testing.index_suite import msg
from tela_memory_qdrant import sparse
from tela_memory_qdrant.payload import (
    FILTER_KEYS,
    PAYLOAD_INDEXES,
    meta_term,
    meta_terms,
    micros,
    payload,
    point_id,
    to_filter,
)

scalars = st.one_of(st.text(max_size=20), st.integers(), st.booleans())


def test_every_filter_field_has_an_indexed_key() -> None:
    assert set(FILTER_KEYS) == set(SearchFilter.model_fields)
    indexed = set(PAYLOAD_INDEXES)
    assert set(FILTER_KEYS.values()) - {"id"} <= indexed
    assert "id" in indexed  # message ids also match by point id (HasIdCondition)


def test_payload_carries_the_filter_fields() -> None:
    m = msg(
        "hi", user="u", thread="t", role=Role.SYSTEM, metadata={"a": 1, "b": {"x": 1}, "c": 0.5}
    )
    p = payload(m, "hi")
    assert p["user_id"] == "u"
    assert p["thread_id"] == "t"
    assert p["role"] == "system"
    assert p["ts"] == micros(m.created_at)
    assert p["meta_kv"] == ["a:i:1"]  # nested and float values are not filterable


@given(st.text(min_size=1, max_size=50), st.text(min_size=1, max_size=50))
def test_point_ids_are_stable_and_distinct(a: str, b: str) -> None:
    assert point_id(a) == point_id(a)
    assert (point_id(a) == point_id(b)) == (a == b)


@given(scalars, scalars)
def test_meta_terms_are_typed(a: str | int | bool, b: str | int | bool) -> None:
    same = type(a) is type(b) and a == b
    assert (meta_term("k", a) == meta_term("k", b)) == same


@given(st.lists(st.tuples(st.sampled_from(["a", "b_1", "c-2"]), scalars), max_size=5))
def test_meta_terms_of_a_message(items: list[tuple[str, str | int | bool]]) -> None:
    md = dict(items)
    assert sorted(meta_terms(md)) == sorted(meta_term(k, v) for k, v in md.items())


@given(st.integers(-(10**6), 10**6))
def test_micros_is_exact_and_ordered(delta: int) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(microseconds=delta)
    assert micros(t1) - micros(t0) == delta


def test_filter_translation() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    flt = SearchFilter(
        user_id="x' OR 1=1",
        thread_ids=("t1", "t2"),
        message_ids=("m",),
        roles=("user",),
        since=t0,
        until=t0 + timedelta(seconds=1),
        metadata={"tag": ("a", 1), "flag": True},
    )
    got = to_filter(flt)
    assert got is not None
    must = got.must
    assert isinstance(must, list)
    by_key = {c.key: c for c in must if isinstance(c, models.FieldCondition) and c.key != "meta_kv"}
    assert by_key["user_id"].match == models.MatchValue(value="x' OR 1=1")
    assert by_key["thread_id"].match == models.MatchAny(any=["t1", "t2"])
    assert by_key["role"].match == models.MatchValue(value="user")
    assert by_key["ts"].range == models.Range(gte=micros(t0), lt=micros(t0) + 1_000_000)
    assert models.HasIdCondition(has_id=[point_id("m")]) in must
    metas = [c.match for c in must if isinstance(c, models.FieldCondition) and c.key == "meta_kv"]
    assert models.MatchAny(any=["tag:s:a", "tag:i:1"]) in metas
    assert models.MatchValue(value="flag:b:true") in metas
    assert to_filter(SearchFilter()) == models.Filter(must=[])


def test_filters_that_match_nothing() -> None:
    assert to_filter(SearchFilter(thread_ids=())) is None
    assert to_filter(SearchFilter(message_ids=())) is None
    assert to_filter(SearchFilter(roles=())) is None
    assert to_filter(SearchFilter(metadata={"k": ()})) is None


# -- sparse vectors ---------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_document_vectors_are_well_formed(text: str) -> None:
    vec = sparse.document_vector(text)
    ws = sparse.words(text)
    if not ws:
        assert vec is None
        return
    assert vec is not None
    assert vec.indices == sorted(set(vec.indices))
    assert all(v > 0 for v in vec.values)
    assert set(vec.indices) == {sparse.term_id(w) for w in ws}


def test_words_drop_stopwords_unless_nothing_is_left() -> None:
    assert sparse.words("What is the Budget?") == ["budget"]
    assert sparse.words("and or not") == ["and", "or", "not"]
    assert sparse.words("… ?") == []


def test_term_frequency_saturates_and_length_normalises() -> None:
    one = sparse.document_vector("apple")
    three = sparse.document_vector("apple apple apple")
    long = sparse.document_vector("apple " + " ".join(f"w{i}" for i in range(60)))
    assert one is not None
    assert three is not None
    assert long is not None
    a = sparse.term_id("apple")
    v1 = one.values[one.indices.index(a)]
    v3 = three.values[three.indices.index(a)]
    vl = long.values[long.indices.index(a)]
    assert v1 < v3 < 3 * v1  # more is better, with diminishing returns
    assert vl < v1  # the same word counts less in a long turn
    assert v3 < sparse.K1 + 1


def test_query_vector_weights_terms_once() -> None:
    q = sparse.query_vector("budget budget meeting")
    assert q is not None
    assert sorted(q.indices) == sorted({sparse.term_id("budget"), sparse.term_id("meeting")})
    assert q.values == [1.0, 1.0]
    assert sparse.query_vector("?!") is None
