"""``IndexConformance``: the behaviour every recall ``Index`` backend must show.

Subclass it in a backend's tests and provide an ``index`` fixture that yields an empty index
built with the suite's ``embedder`` fixture (a deterministic :class:`HashEmbedder`)::

    class TestMyIndex(IndexConformance):
        lexical = True   # the backend ranks by words
        dense = True     # the backend ranks by vectors

        @pytest.fixture
        def index(self, embedder):
            with MyIndex(..., embedder=embedder) as idx:
                yield idx

A backend without lexical (or dense) search must say so with ``UnsupportedOperation``; the
suite checks that instead of skipping.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory.errors import InvalidMessageError, UnsupportedOperation
from tela_memory.messages import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
)
from tela_memory.recall.errors import InvalidQueryError
from tela_memory.recall.index import Index
from tela_memory.recall.types import Hit, SearchFilter, SearchMode
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import ADVERSARIAL, T0, msg, uid
from tela_memory.testing.index_hostile import HostileInputCases


def _ranked(hits: list[Hit]) -> list[tuple[float, str]]:
    return sorted((-round(h.score, 9), h.message.id) for h in hits)


class IndexConformance(HostileInputCases):
    """Shared tests for recall indexes. Override the ``index`` fixture and the flags."""

    #: the backend ranks by words (BM25 or similar)
    lexical: bool = True
    #: the backend ranks by vectors
    dense: bool = True

    @pytest.fixture
    def embedder(self) -> HashEmbedder:
        """The embedder the ``index`` fixture must be built with."""
        return HashEmbedder(64)

    @pytest.fixture
    def index(self, embedder: HashEmbedder) -> Index:
        """An empty index built with ``embedder``; override in the backend's test class."""
        raise NotImplementedError("provide an `index` fixture yielding an empty index")

    def modes(self) -> list[SearchMode]:
        """The search modes this backend offers."""
        out: list[SearchMode] = ["hybrid"]
        if self.lexical:
            out.append("lexical")
        if self.dense:
            out.append("dense")
        return out

    # -- capabilities -----------------------------------------------------------------------

    def test_flags_match_the_backend(self, index: Index) -> None:
        assert index.supports_lexical is self.lexical
        assert index.supports_dense is self.dense

    def test_unsupported_modes_say_so(self, index: Index) -> None:
        index.upsert(msg("hello world", user="a", thread="t"))
        if not self.lexical:
            with pytest.raises(UnsupportedOperation):
                index.search("hello", mode="lexical")
        if not self.dense:
            with pytest.raises(UnsupportedOperation):
                index.search("hello", mode="dense")

    # -- writing ----------------------------------------------------------------------------

    def test_upsert_and_count(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        n = index.upsert(
            [msg(f"turn number {i}", user=user, thread=thread, at=i) for i in range(5)]
        )
        assert n == 5
        assert index.count({"user_id": user}) == 5
        assert index.count({"thread_ids": [thread]}) == 5
        assert index.count({"user_id": uid()}) == 0

    def test_upsert_replaces_by_id(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        first = msg("the cat sat on the mat", user=user, thread=thread)
        index.upsert(first)
        index.upsert(first.model_copy(update={"content": [TextBlock(text="zebra crossing")]}))
        assert index.count({"user_id": user}) == 1
        for mode in self.modes():
            hits = index.search("zebra crossing", filter={"user_id": user}, mode=mode)
            assert [h.message.id for h in hits][:1] == [first.id]
            assert hits[0].text == "zebra crossing"
        if self.lexical:
            assert index.search("cat mat", filter={"user_id": user}, mode="lexical") == []

    def test_round_trips_the_message(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        m = msg(
            "round trip check",
            user=user,
            thread=thread,
            role=Role.ASSISTANT,
            at=7,
            metadata={"topic": "travel", "n": 3, "flag": True, "nested": {"a": [1, 2]}},
        )
        index.upsert(m)
        hits = index.search("round trip check", filter={"user_id": user})
        assert hits[0].message == m

    def test_unstored_messages_are_refused(self, index: Index) -> None:
        with pytest.raises(InvalidMessageError):
            index.upsert(Message.user("no thread"))

    def test_delete_by_id(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        ms = [msg(f"delete me {i}", user=user, thread=thread, at=i) for i in range(3)]
        index.upsert(ms)
        assert index.delete([ms[0].id, "missing-id"]) == 1
        assert index.count({"user_id": user}) == 2
        for mode in self.modes():
            ids = {
                h.message.id for h in index.search("delete me", filter={"user_id": user}, mode=mode)
            }
            assert ms[0].id not in ids

    def test_delete_where(self, index: Index) -> None:
        user, t1, t2 = uid(), uid("t"), uid("t")
        index.upsert([msg("alpha", user=user, thread=t1), msg("alpha", user=user, thread=t2)])
        assert index.delete_where({"thread_ids": [t1]}) == 1
        assert index.count({"user_id": user}) == 1
        with pytest.raises(InvalidQueryError):
            index.delete_where({})
        assert index.clear() == 1
        assert index.count() == 0

    # -- searching --------------------------------------------------------------------------

    def test_finds_by_words(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        index.upsert(
            [
                msg("I adopted a puppy named Biscuit last spring", user=user, thread=thread, at=0),
                msg(
                    "The quarterly budget meeting moved to Thursday", user=user, thread=thread, at=1
                ),
                msg("Paris was lovely, we saw the Louvre", user=user, thread=thread, at=2),
            ]
        )
        for mode in self.modes():
            hits = index.search("budget meeting Thursday", filter={"user_id": user}, mode=mode)
            assert hits, mode
            assert "budget" in hits[0].text, mode
            assert all(a.score >= b.score for a, b in itertools.pairwise(hits)), mode

    def test_scores_are_reported(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        index.upsert(msg("scores for the lexical and dense sides", user=user, thread=thread))
        if self.lexical:
            h = index.search("lexical sides", filter={"user_id": user}, mode="lexical")[0]
            assert h.lexical_score is not None
            assert h.lexical_score > 0
        if self.dense:
            h = index.search("lexical sides", filter={"user_id": user}, mode="dense")[0]
            assert h.dense_score is not None
            assert -1.0 <= h.dense_score <= 1.0 + 1e-5

    def test_k_limits_hits(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        index.upsert([msg(f"apple pie {i}", user=user, thread=thread, at=i) for i in range(8)])
        for mode in self.modes():
            assert len(index.search("apple pie", filter={"user_id": user}, k=3, mode=mode)) == 3

    def test_searchable_blocks(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        index.upsert(
            [
                msg(
                    "",
                    user=user,
                    thread=thread,
                    at=0,
                    content=[
                        ImageBlock(url="https://x.test/a.png", alt_text="a lighthouse at dusk")
                    ],
                ),
                msg(
                    "",
                    user=user,
                    thread=thread,
                    at=1,
                    content=[DocumentBlock(text="invoice for plumbing repairs", title="bill")],
                ),
                msg(
                    "",
                    user=user,
                    thread=thread,
                    at=2,
                    content=[AudioBlock(ref="f1", transcript="voicemail about the dentist")],
                ),
                Message(
                    role=Role.TOOL,
                    content=[
                        ToolResultBlock(
                            tool_call_id="call-2",
                            content=[
                                TextBlock(text="camera snapshot"),
                                ImageBlock(data="aGk=", alt_text="a flamingo on the porch"),
                            ],
                        )
                    ],
                    user_id=user,
                    thread_id=thread,
                    created_at=T0 + timedelta(minutes=5),
                ),
                Message.tool(
                    "call-1",
                    "forecast says hailstorm",
                    user_id=user,
                    thread_id=thread,
                    created_at=T0 + timedelta(minutes=3),
                ),
                msg(
                    "",
                    user=user,
                    thread=thread,
                    role=Role.ASSISTANT,
                    at=4,
                    content=[
                        ThinkingBlock(text="secret pondering of marmalade"),
                        TextBlock(text="ok"),
                    ],
                ),
            ]
        )
        for query, needle in [
            ("lighthouse", "lighthouse"),
            ("plumbing invoice", "plumbing"),
            ("dentist voicemail", "dentist"),
            ("hailstorm forecast", "hailstorm"),
            ("flamingo porch", "flamingo"),
        ]:
            hits = index.search(query, filter={"user_id": user}, k=1)
            assert needle in hits[0].text
        if self.lexical:
            assert index.search("marmalade", filter={"user_id": user}, mode="lexical") == []

    def test_filter_by_thread_role_and_time(self, index: Index) -> None:
        user, t1, t2 = uid(), uid("t"), uid("t")
        ms = [
            msg("holiday plans", user=user, thread=t1, role=Role.USER, at=0),
            msg("holiday plans", user=user, thread=t1, role=Role.ASSISTANT, at=10),
            msg("holiday plans", user=user, thread=t2, role=Role.USER, at=20),
            msg("holiday plans", user=user, thread=t2, role=Role.ASSISTANT, at=30),
        ]
        index.upsert(ms)
        cases: list[tuple[dict[str, Any], set[str]]] = [
            ({"thread_ids": [t1]}, {ms[0].id, ms[1].id}),
            ({"thread_ids": [t1, t2], "roles": ["assistant"]}, {ms[1].id, ms[3].id}),
            ({"since": T0 + timedelta(minutes=10)}, {ms[1].id, ms[2].id, ms[3].id}),
            ({"until": T0 + timedelta(minutes=10)}, {ms[0].id}),
            (
                {"since": T0 + timedelta(minutes=10), "until": T0 + timedelta(minutes=30)},
                {ms[1].id, ms[2].id},
            ),
            ({"message_ids": [ms[0].id, ms[3].id]}, {ms[0].id, ms[3].id}),
            ({"thread_ids": []}, set()),
        ]
        for extra, want in cases:
            flt = {"user_id": user, **extra}
            assert index.count(flt) == len(want), extra
            for mode in self.modes():
                got = {h.message.id for h in index.search("holiday plans", filter=flt, mode=mode)}
                assert got == want, (extra, mode)

    def test_filter_by_metadata_is_typed(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        ms = [
            msg("note", user=user, thread=thread, at=0, metadata={"tag": "work", "n": 1}),
            msg("note", user=user, thread=thread, at=1, metadata={"tag": "home", "n": "1"}),
            msg("note", user=user, thread=thread, at=2, metadata={"tag": "work", "flag": True}),
            msg("note", user=user, thread=thread, at=3, metadata={"n": 1, "flag": 1}),
        ]
        index.upsert(ms)
        cases: list[tuple[dict[str, Any], set[str]]] = [
            ({"tag": "work"}, {ms[0].id, ms[2].id}),
            ({"tag": ["work", "home"]}, {ms[0].id, ms[1].id, ms[2].id}),
            ({"n": 1}, {ms[0].id, ms[3].id}),
            ({"n": "1"}, {ms[1].id}),
            ({"flag": True}, {ms[2].id}),
            ({"flag": 1}, {ms[3].id}),
            ({"tag": "work", "flag": True}, {ms[2].id}),
            ({"missing": "x"}, set()),
        ]
        for meta, want in cases:
            flt = {"user_id": user, "metadata": meta}
            assert index.count(flt) == len(want), meta
            for mode in self.modes():
                got = {h.message.id for h in index.search("note", filter=flt, mode=mode)}
                assert got == want, (meta, mode)

    def test_precomputed_query_vector(self, index: Index, embedder: HashEmbedder) -> None:
        if not self.dense:
            return
        user, thread = uid(), uid("t")
        index.upsert(
            [
                msg("green tea", user=user, thread=thread),
                msg("black coffee", user=user, thread=thread, at=1),
            ]
        )
        vec = embedder.embed_query("black coffee")
        hits = index.search(
            "ignored words", filter={"user_id": user}, mode="dense", query_vector=vec
        )
        assert hits[0].text == "black coffee"

    # -- neighbours -------------------------------------------------------------------------

    def test_neighbors(self, index: Index) -> None:
        user, thread, other = uid(), uid("t"), uid("t")
        ms = [
            msg(
                f"step {i}",
                user=user,
                thread=thread,
                at=i,
                role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
            )
            for i in range(6)
        ]
        index.upsert([*ms[::-1], msg("elsewhere", user=user, thread=other, at=3)])
        ids = [h.message.id for h in index.neighbors(ms[3].id, before=1, after=1)]
        assert ids == [ms[2].id, ms[4].id]
        ids = [h.message.id for h in index.neighbors(ms[3].id, before=2, after=0)]
        assert ids == [ms[1].id, ms[2].id]
        ids = [h.message.id for h in index.neighbors(ms[0].id, before=3, after=1)]
        assert ids == [ms[1].id]
        ids = [
            h.message.id
            for h in index.neighbors(ms[3].id, before=2, after=2, filter={"roles": ["user"]})
        ]
        assert ids == [ms[0].id, ms[2].id, ms[4].id]
        assert index.neighbors("no-such-id") == []

    # -- threads are per user -----------------------------------------------------------------

    def test_threads_are_per_user(self, index: Index) -> None:
        """Thread ids are only unique within a user: Ada's and Bob's ``t`` are two threads.
        A thread filter with a user selects that user's thread only; per-thread work (word
        counts, neighbours) never mixes the two."""
        run = uuid.uuid4().hex[:8]
        ada, bob, thread = f"ada-{run}", f"bob-{run}", f"t-{run}"
        hers = [
            msg(f"lighthouse ADA{run} {i}", user=ada, thread=thread, at=2 * i) for i in range(3)
        ]
        his = [msg(f"lighthouse bob {i}", user=bob, thread=thread, at=2 * i + 1) for i in range(2)]
        index.upsert([*hers, *his])
        scoped = {"user_id": bob, "thread_ids": [thread]}
        assert index.count(scoped) == 2
        assert index.count({"user_id": ada, "thread_ids": [thread]}) == 3  # the control
        for mode in self.modes():
            got = index.search(f"lighthouse ADA{run}", filter=scoped, k=20, mode=mode)
            assert {h.message.id for h in got} == {m.id for m in his}, mode
            mine = {"user_id": ada, "thread_ids": [thread]}
            got = index.search(f"lighthouse ADA{run}", filter=mine, k=20, mode=mode)
            assert {h.message.id for h in got} == {m.id for m in hers}, mode
        around = index.neighbors(his[0].id, before=5, after=5, filter=scoped)
        assert [h.message.id for h in around] == [his[1].id]
        assert index.neighbors(hers[1].id, before=5, after=5, filter=scoped) == []
        around = index.neighbors(hers[1].id, before=5, after=5)
        assert [h.message.id for h in around] == [hers[0].id, hers[2].id]
        if index.supports_thread_terms:
            counts = index.thread_term_counts(f"lighthouse ADA{run}", filter=scoped)
            assert counts.turns == {(bob, thread): 2}
            assert counts.terms.get(f"ada{run}", {}) == {}
            everyone = index.thread_term_counts(
                f"lighthouse ADA{run}", filter={"thread_ids": [thread]}
            )
            assert everyone.turns == {(ada, thread): 3, (bob, thread): 2}
            assert everyone.terms[f"ada{run}"] == {(ada, thread): 3}
        assert index.delete_where(scoped) == 2
        assert index.count({"user_id": ada, "thread_ids": [thread]}) == 3

    def test_messages_need_a_user(self, index: Index) -> None:
        """Indexed messages carry their owner (as the store returns them): a turn without a
        user could be found by no user, so it is refused."""
        with pytest.raises(InvalidMessageError, match="user_id"):
            index.upsert(Message.user("no owner", thread_id=uid("t")))

    # -- async parity -----------------------------------------------------------------------

    def test_async_twins(self, index: Index) -> None:
        user, thread = uid(), uid("t")

        async def go() -> None:
            ms = [msg(f"async words {i}", user=user, thread=thread, at=i) for i in range(3)]
            assert await index.aupsert(ms) == 3
            assert await index.acount({"user_id": user}) == 3
            for mode in self.modes():
                a = await index.asearch("async words", filter={"user_id": user}, mode=mode)
                s = index.search("async words", filter={"user_id": user}, mode=mode)
                # the same hits; scores may move a little between calls on engines whose
                # collection statistics change in the background (RediSearch's garbage
                # collector updates BM25's document counts), and ties may swap places
                assert {h.message.id for h in a} == {h.message.id for h in s}
                assert sorted(h.score for h in a) == pytest.approx(
                    sorted(h.score for h in s), rel=1e-3
                )
            assert len(await index.aneighbors(ms[1].id)) == 2
            assert await index.adelete(ms[0].id) == 1
            assert await index.adelete_where({"user_id": user}) == 2

        asyncio.run(go())

    # -- property: every hit passes the filter; lexical finds every match ------------------

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        rows=st.lists(
            st.tuples(
                st.sampled_from(["u1", "u2", "u'3"]),
                st.sampled_from(["t1", "t2", "t3"]),
                st.sampled_from([Role.USER, Role.ASSISTANT]),
                st.integers(0, 50),
                st.sampled_from(["red", "blue", "red blue", "green"]),
                st.sampled_from([{}, {"k": "a"}, {"k": 1}, {"k": True}]),
            ),
            min_size=1,
            max_size=15,
        ),
        user=st.sampled_from([None, "u1", "u2", "u'3"]),
        threads=st.one_of(st.none(), st.lists(st.sampled_from(["t1", "t2", "t3"]), max_size=2)),
        role=st.one_of(st.none(), st.sampled_from([Role.USER, Role.ASSISTANT])),
        since=st.one_of(st.none(), st.integers(0, 50)),
        meta=st.sampled_from([{}, {"k": "a"}, {"k": 1}, {"k": [1, "a"]}]),
    )
    def test_property_hits_respect_filters(
        self,
        index: Index,
        rows: list[tuple[Any, ...]],
        user: str | None,
        threads: list[str] | None,
        role: Role | None,
        since: int | None,
        meta: dict[str, Any],
    ) -> None:
        run = uuid.uuid4().hex[:6]
        ms = [
            msg(text, user=f"{u}{run}", thread=f"{t}{run}", role=r, at=at, metadata=md)
            for u, t, r, at, text, md in rows
        ]
        index.upsert(ms)
        flt = SearchFilter(
            user_id=None if user is None else f"{user}{run}",
            thread_ids=None if threads is None else tuple(f"{t}{run}" for t in threads),
            roles=None if role is None else (role,),
            since=None if since is None else T0 + timedelta(minutes=since),
            metadata=meta,
        )
        if user is None:  # keep other examples' rows out of the picture
            flt = flt.narrowed(message_ids=tuple(m.id for m in ms))
        expected = {m.id for m in ms if flt.matches(m)}
        assert index.count(flt) == len(expected)
        for mode in self.modes():
            hits = index.search("red", filter=flt, k=50, mode=mode)
            got = {h.message.id for h in hits}
            assert got <= expected, mode
            if mode == "lexical":
                assert got == {m.id for m in ms if m.id in expected and "red" in m.text}
            if mode == "dense":
                assert got == {m.id for m in ms if m.id in expected}
        index.delete([m.id for m in ms])


__all__ = ["ADVERSARIAL", "T0", "HostileInputCases", "IndexConformance", "msg", "uid"]
