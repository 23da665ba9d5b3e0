"""``HostileInputCases``: what an index does with hostile or malformed input.

Part of :class:`~tela_memory.testing.index_suite.IndexConformance` (which inherits it): filter
values with quotes and query-language syntax in every field, queries full of syntax or at the
length limit, unknown filter fields, other models and dimensions, and users that must never
see each other's turns.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message, Role
from tela_memory.recall.errors import EmbeddingMismatchError, InvalidQueryError
from tela_memory.recall.index import Index
from tela_memory.recall.types import MAX_IDS, MAX_QUERY_CHARS, SearchMode
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import ADVERSARIAL, T0, msg, uid


class HostileInputCases:
    """Hostile-input tests; mixed into ``IndexConformance`` (which provides the fixtures)."""

    lexical: bool
    dense: bool

    def modes(self) -> list[SearchMode]:  # pragma: no cover - IndexConformance overrides it
        """The search modes this backend offers."""
        raise NotImplementedError

    def test_query_syntax_is_plain_text(self, index: Index) -> None:
        user, thread = uid(), uid("t")
        index.upsert(msg("plain words only here", user=user, thread=thread))
        for query in [
            '"',
            "*",
            "AND OR NOT",
            "(",
            "text: words",
            "NEAR(plain words)",
            "^x",
            "words*",
            "-plain",
            "'; DROP TABLE x; --",
            "\\",
            "?",
            "…",
        ]:
            for mode in self.modes():
                hits = index.search(query, filter={"user_id": user}, mode=mode)
                assert all(h.message.user_id == user for h in hits)

    # -- filters ----------------------------------------------------------------------------

    def test_no_hit_crosses_users(self, index: Index) -> None:
        alice, bob, thread_a, thread_b = uid(), uid(), uid("t"), uid("t")
        index.upsert(
            [msg("secret recipe with saffron", user=bob, thread=thread_b, at=i) for i in range(30)]
        )
        index.upsert(msg("my garden has tomatoes", user=alice, thread=thread_a))
        for mode in self.modes():
            hits = index.search("secret recipe saffron", filter={"user_id": alice}, k=10, mode=mode)
            assert all(h.message.user_id == alice for h in hits), mode
        if self.dense:
            # not a post-filtered global top-k: alice's only turn still comes back
            hits = index.search(
                "secret recipe saffron", filter={"user_id": alice}, k=1, mode="dense"
            )
            assert [h.message.user_id for h in hits] == [alice]

    def test_adversarial_filter_values(self, index: Index) -> None:
        run = uuid.uuid4().hex[:6]
        users = [f"{v}{run}" for v in ADVERSARIAL]
        thread_of = {u: f"t-{i}-{run}" for i, u in enumerate(users)}
        index.upsert([msg("shared words everywhere", user=u, thread=thread_of[u]) for u in users])
        for u in users:
            assert index.count({"user_id": u}) == 1
            assert index.count({"thread_ids": [thread_of[u]]}) == 1
            for mode in self.modes():
                hits = index.search("shared words everywhere", filter={"user_id": u}, mode=mode)
                assert [h.message.user_id for h in hits] == [u], (u, mode)
        for bad in ["*", "%", "' OR 1=1 --", 'x" OR "1"="1']:
            assert index.count({"user_id": bad}) == 0
            assert index.search("shared words", filter={"user_id": bad}) == []
            assert index.search("shared", filter={"metadata": {"k": bad}}) == []

    def test_adversarial_values_in_every_filter_field(self, index: Index) -> None:
        """Hostile strings as thread ids, message ids and metadata values are plain data.

        Two users share every thread id and metadata value, so a filter that leaked past its
        user (or matched by pattern instead of equality) would show the other user's turn.
        """
        run = uuid.uuid4().hex[:6]
        alice, bob = f"a'{run}", f'b"{run}'
        rows: dict[str, dict[str, Message]] = {alice: {}, bob: {}}
        for i, value in enumerate(ADVERSARIAL):
            for user in (alice, bob):
                rows[user][value] = Message(
                    id=f"{value}{user}{i}",
                    role=Role.USER,
                    content="hostile values everywhere",
                    user_id=user,
                    thread_id=f"{value}{run}",
                    created_at=T0 + timedelta(minutes=i),
                    metadata={"k": f"{value}{run}"},
                )
        index.upsert([m for user in (alice, bob) for m in rows[user].values()])
        for value in ADVERSARIAL:
            for user in (alice, bob):
                want = {rows[user][value].id}
                cases: list[dict[str, Any]] = [
                    {"user_id": user, "thread_ids": [f"{value}{run}"]},
                    {"user_id": user, "metadata": {"k": f"{value}{run}"}},
                    {"user_id": user, "message_ids": [rows[user][value].id]},
                ]
                for flt in cases:
                    assert index.count(flt) == 1, (value, flt)
                    for mode in self.modes():
                        hits = index.search("hostile values", filter=flt, k=50, mode=mode)
                        assert {h.message.id for h in hits} == want, (value, flt, mode)
            other = {"user_id": alice, "message_ids": [rows[bob][value].id]}
            assert index.count(other) == 0, value
            for mode in self.modes():
                assert index.search("hostile values", filter=other, mode=mode) == [], value
        for pattern in ["%", "*", "_", ".*", "?"]:
            flt = {"user_id": alice, "metadata": {"k": pattern}}
            assert index.count(flt) == 0, pattern
            assert index.search("hostile values", filter=flt) == [], pattern

    def test_neighbors_never_cross_users(self, index: Index) -> None:
        """Two users with the same thread id: two threads. Neighbours come from the message's
        own thread ``(user, thread id)``, whatever the filter, and a filter of another user
        around someone else's message gives nothing."""
        alice, bob, thread = uid(), uid(), uid("t")
        mine = [msg(f"mine {i}", user=alice, thread=thread, at=2 * i) for i in range(3)]
        theirs = [msg(f"theirs {i}", user=bob, thread=thread, at=2 * i + 1) for i in range(3)]
        index.upsert([*mine, *theirs])
        got = index.neighbors(mine[1].id, before=5, after=5, filter={"user_id": alice})
        assert [h.message.id for h in got] == [mine[0].id, mine[2].id]
        around_theirs = index.neighbors(theirs[1].id, before=5, after=5, filter={"user_id": alice})
        assert all(h.message.user_id == alice for h in around_theirs)
        assert around_theirs == []  # Bob's thread, seen as Alice: nothing
        for flt in (None, {"thread_ids": [thread]}, {"user_id": bob}):
            got = index.neighbors(theirs[1].id, before=5, after=5, filter=flt)
            assert [h.message.id for h in got] == [theirs[0].id, theirs[2].id], flt
        for mode in self.modes():
            hits = index.search(
                "theirs", filter={"user_id": alice, "thread_ids": [thread]}, mode=mode
            )
            assert all(h.message.user_id == alice for h in hits), mode

    def test_longest_query_is_served(self, index: Index) -> None:
        """A query at the length limit, full of distinct words and syntax, is answered."""
        user, thread = uid(), uid("t")
        index.upsert(
            [
                msg("needle in the haystack", user=user, thread=thread),
                msg("needle", user=uid(), thread=uid("t")),
            ]
        )
        words = itertools.cycle(['"q', "w*", "OR", "(x", "NEAR", "-y", "z:", "needle"])
        parts: list[str] = []
        size = 0
        for i, word in enumerate(words):
            part = f"{word}{i} " if word != "needle" else "needle "
            if size + len(part) > MAX_QUERY_CHARS:
                break
            parts.append(part)
            size += len(part)
        query = "".join(parts).strip()
        assert len(query) <= MAX_QUERY_CHARS
        for mode in self.modes():
            hits = index.search(query, filter={"user_id": user}, mode=mode)
            assert [h.message.user_id for h in hits] == [user], mode
        with pytest.raises(InvalidQueryError):
            index.search("x" * (MAX_QUERY_CHARS + 1), filter={"user_id": user})

    def test_largest_id_filter_is_served(self, index: Index) -> None:
        """A branch of a long thread becomes a long ``message_ids`` list: up to the limit."""
        user, thread = uid(), uid("t")
        ms = [msg(f"branch turn {i}", user=user, thread=thread, at=i) for i in range(5)]
        index.upsert(ms)
        wanted = [ms[1].id, ms[3].id]
        ids = wanted + [f"absent-{i}" for i in range(MAX_IDS - len(wanted))]
        flt = {"user_id": user, "message_ids": ids}
        assert index.count(flt) == 2
        for mode in self.modes():
            hits = index.search("branch turn", filter=flt, mode=mode)
            assert {h.message.id for h in hits} == set(wanted), mode
        around = index.neighbors(ms[2].id, before=2, after=2, filter=flt)
        assert [h.message.id for h in around] == wanted
        with pytest.raises(InvalidQueryError):
            index.search("branch turn", filter={"message_ids": [*ids, "one-too-many"]})

    def test_bad_input_is_refused(self, index: Index) -> None:
        with pytest.raises(InvalidQueryError):
            index.search("")
        with pytest.raises(InvalidQueryError):
            index.search("   \n")
        with pytest.raises(InvalidQueryError):
            index.search("word " * 5000)
        with pytest.raises(InvalidQueryError):
            index.search("x", filter={"user": "a"})  # unknown field
        with pytest.raises(InvalidQueryError):
            index.search("x", filter={"metadata": {"a.b": 1}})
        with pytest.raises(InvalidQueryError):
            index.search("x", filter={"metadata": {"a": 1.5}})
        with pytest.raises(InvalidQueryError):
            index.search("x", filter={"roles": ["wizard"]})
        with pytest.raises(InvalidQueryError):
            index.search("x", k=0)
        with pytest.raises(InvalidQueryError):
            index.search("x", mode="fuzzy")  # type: ignore[arg-type]
        with pytest.raises(TelaMemoryError):
            index.delete_where({"nope": 1})
        with pytest.raises(InvalidQueryError):
            index.count({"user": "a"})
        with pytest.raises(InvalidQueryError):
            index.neighbors("some-id", filter={"thread": "t"})
        with pytest.raises(InvalidQueryError):
            index.search("x", filter="user_id = 'a'")  # type: ignore[arg-type]

    def test_dimension_and_model_mismatch(self, index: Index) -> None:
        if not self.dense:
            return
        user, thread = uid(), uid("t")
        index.upsert(msg("vectors here", user=user, thread=thread))
        with pytest.raises(EmbeddingMismatchError):
            index.search("vectors", mode="dense", query_vector=np.ones(7, dtype=np.float32))
        index.embedder = HashEmbedder(64, seed=1)  # same size, another model
        with pytest.raises(EmbeddingMismatchError):
            index.upsert(msg("more vectors", user=user, thread=thread, at=1))
        modes: list[SearchMode] = ["dense", "hybrid"]
        for mode in modes:
            with pytest.raises(EmbeddingMismatchError):
                index.search("vectors", mode=mode)
        index.embedder = HashEmbedder(32)  # another size
        with pytest.raises(EmbeddingMismatchError):
            index.upsert(msg("more vectors", user=user, thread=thread, at=2))
        with pytest.raises(EmbeddingMismatchError):
            index.search("vectors", mode="dense")
        assert index.count({"user_id": user}) == 1  # nothing was written by the refused calls


__all__ = ["HostileInputCases"]
