"""``RecordConformance``: the behaviour every ``RecordStore`` backend must show.

Subclass it and provide a ``records`` fixture that yields an empty store built with the
suite's clock (``now=clock``), so that expiry is tested without sleeping::

    class TestMyRecords(RecordConformance):
        @pytest.fixture
        def records(self, clock):
            with MyRecordStore(..., now=clock) as r:
                yield r

Persistent backends should also run :func:`cas_increment_worker` from several processes (or
clients) against one store and check that no increment is lost.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory.errors import (
    ConflictError,
    InvalidMessageError,
    NotFoundError,
    TelaMemoryError,
)
from tela_memory.records.base import (
    MAX_VALUE_BYTES,
    Record,
    RecordErasureReceipt,
    RecordStore,
    VersionConflictError,
)
from tela_memory.stores.changes import ChangeFeedGapError
from tela_memory.testing.ownership import HOSTILE_USER_IDS, INVALID_USER_IDS

U = "suite-user"
FACTS = ("facts",)


class FakeClock:
    """A settable clock for ``now=``: starts at 2026-01-01 UTC, moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.at += timedelta(microseconds=1)  # every reading is a distinct instant
            return self.at

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        with self._lock:
            self.at += delta


def cas_increment_worker(
    open_records: Callable[[], AbstractContextManager[RecordStore]], user_id: str, times: int
) -> int:
    """Increment the counter record ``("counters",)/"n"`` of ``user_id`` ``times`` times with
    compare-and-set and retry on conflict; return how many conflicts it retried. Run it from
    several processes or clients at once: the final value must be the total of increments."""
    retries = 0
    with open_records() as records:
        for _ in range(times):
            while True:
                current = records.get(("counters",), "n", user_id=user_id)
                seen = current.version if current else 0
                value = (current.value if current else 0) or 0
                assert isinstance(value, int)
                try:
                    records.put(("counters",), "n", value + 1, user_id=user_id,
                                expected_version=seen)  # fmt: skip
                    break
                except VersionConflictError:
                    retries += 1
    return retries


_SPACES: list[tuple[str, ...]] = [("a",), ("a", "b"), ("b",), ("a", "b", "c")]
_OPS = st.tuples(
    st.sampled_from(["put", "put", "supersede", "invalidate", "delete", "delete_where"]),
    st.integers(0, len(_SPACES) - 1),
    st.integers(0, 2),
    st.integers(0, 9),
)


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"


class RecordConformance:
    """Shared tests for record stores. Override the ``records`` fixture (build it with
    ``now=clock``)."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def records(self, clock: FakeClock) -> RecordStore:
        raise NotImplementedError("a RecordConformance subclass must provide `records`")

    # -- put, get, list --------------------------------------------------------------------

    def test_put_and_get_round_trip(self, records: RecordStore, clock: FakeClock) -> None:
        value: Any = {"text": "lives in Porto", "confidence": 0.9, "tags": ["home"], "n": None}
        rec = records.put(FACTS, "home", value, user_id=U, kind="fact", provenance=["m1", "m2"])
        assert (rec.user_id, rec.namespace, rec.key, rec.kind) == (U, FACTS, "home", "fact")
        assert (rec.value, rec.provenance, rec.version) == (value, ("m1", "m2"), 1)
        assert rec.current
        assert rec.invalid_at is None
        assert rec.expires_at is None
        assert rec.created_at == rec.updated_at == rec.valid_from <= clock.at
        assert records.get(FACTS, "home", user_id=U) == rec
        assert records.get(FACTS, "other", user_id=U) is None
        assert records.get(("elsewhere",), "home", user_id=U) is None
        scalars: list[Any] = ["text", 3, 2.5, True, None, [1, "a"], "日本語 ✓"]
        for scalar in scalars:
            assert records.put(("scalars",), "v", scalar, user_id=U).value == scalar
            got = records.get(("scalars",), "v", user_id=U)
            assert got is not None
            assert got.value == scalar

    def test_put_replaces_without_history(self, records: RecordStore) -> None:
        first = records.put(FACTS, "k", "a", user_id=U)
        second = records.put(FACTS, "k", "b", user_id=U, kind="fact")
        assert second.version == 2
        assert second.created_at == first.created_at
        assert second.updated_at > first.updated_at
        assert records.history(FACTS, "k", user_id=U) == [second]
        assert records.get(FACTS, "k", user_id=U) == second

    def test_namespaces_and_prefix_listing(self, records: RecordStore) -> None:
        spaces = [("agent",), ("agent", "planner"), ("agent", "planner", "notes"),
                  ("agentx",), ("agent", "plannerx"), ("facts",)]  # fmt: skip
        for ns in spaces:
            for key in ("b", "a"):
                records.put(ns, key, {"ns": list(ns)}, user_id=U, kind=ns[-1])

        def keys(prefix: tuple[str, ...], **kw: Any) -> list[tuple[tuple[str, ...], str]]:
            return [(r.namespace, r.key) for r in records.list(prefix, user_id=U, **kw)]

        assert keys(("agent", "planner")) == [
            (("agent", "planner"), "a"),
            (("agent", "planner"), "b"),
            (("agent", "planner", "notes"), "a"),
            (("agent", "planner", "notes"), "b"),
        ]
        assert [ns for ns, _ in keys(("agent",))] == [
            ns for ns in sorted(spaces) if ns[0] == "agent" for _ in "ab"
        ]
        assert len(keys(())) == 12
        assert keys((), kind="notes") == [(spaces[2], "a"), (spaces[2], "b")]
        assert keys(("agent", "plan")) == []
        assert keys(("facts",), limit=1) == [(("facts",), "a")]
        assert keys(("facts",), limit=5, offset=1) == [(("facts",), "b")]
        assert keys(("nothing",)) == []

    def test_supersede_keeps_history(self, records: RecordStore) -> None:
        old = records.put(FACTS, "home", "lives in Porto", user_id=U, kind="fact",
                          provenance=["m1"])  # fmt: skip
        new = records.supersede(FACTS, "home", "moved to Lisbon", user_id=U, provenance=["m7"])
        assert (new.version, new.kind, new.provenance) == (2, "fact", ("m7",))
        assert records.get(FACTS, "home", user_id=U) == new
        history = records.history(FACTS, "home", user_id=U)
        assert [h.value for h in history] == ["lives in Porto", "moved to Lisbon"]
        assert history[0].invalid_at == new.valid_from
        assert not history[0].current
        assert history[0].valid_from == old.valid_from
        assert history[0].provenance == ("m1",)
        assert records.list(FACTS, user_id=U) == [new]
        assert records.list(FACTS, user_id=U, current_only=False) == history
        with pytest.raises(NotFoundError):
            records.supersede(FACTS, "missing", "x", user_id=U)

    def test_invalidate_ends_a_value(self, records: RecordStore) -> None:
        records.put(FACTS, "job", "works at Acme", user_id=U)
        ended = records.invalidate(FACTS, "job", user_id=U)
        assert not ended.current
        assert ended.version == 2  # the invalidation was a write: the key is at version 2
        assert ended.value == "works at Acme"
        assert records.get(FACTS, "job", user_id=U) is None
        assert records.history(FACTS, "job", user_id=U) == [ended]
        assert records.list(FACTS, user_id=U) == []
        with pytest.raises(NotFoundError):
            records.invalidate(FACTS, "job", user_id=U)
        with pytest.raises(VersionConflictError) as info:
            records.put(FACTS, "job", "x", user_id=U, expected_version=1)
        assert info.value.actual == 2
        again = records.put(FACTS, "job", "works at Initech", user_id=U,
                            expected_version=ended.version)  # fmt: skip
        assert again.version == 3
        assert [h.version for h in records.history(FACTS, "job", user_id=U)] == [2, 3]

    def test_put_keeps_kind_and_history(self, records: RecordStore) -> None:
        records.put(FACTS, "home", "Porto", user_id=U, kind="fact")
        records.supersede(FACTS, "home", "Lisbon", user_id=U)
        now = records.put(FACTS, "home", "Lisbon, Alfama", user_id=U, expected_version=2)
        assert (now.version, now.kind) == (3, "fact")
        history = records.history(FACTS, "home", user_id=U)
        assert [(h.version, h.value, h.current) for h in history] == [
            (1, "Porto", False),
            (3, "Lisbon, Alfama", True),
        ]
        assert records.put(FACTS, "home", "Braga", user_id=U, kind="note").kind == "note"
        assert records.put(("new",), "k", 1, user_id=U).kind == "record"

    # -- time to live ----------------------------------------------------------------------

    def test_ttl_expires_the_key_with_its_history(
        self, records: RecordStore, clock: FakeClock
    ) -> None:
        records.put(FACTS, "mood", "tired", user_id=U, ttl=timedelta(hours=1))
        rec = records.supersede(FACTS, "mood", "rested", user_id=U, ttl=timedelta(hours=1))
        assert rec.expires_at is not None
        kept = records.history(FACTS, "mood", user_id=U)
        assert all(h.expires_at == rec.expires_at for h in kept)
        records.put(FACTS, "name", "Ada", user_id=U)
        clock.advance(timedelta(minutes=59))
        assert records.get(FACTS, "mood", user_id=U) == rec
        clock.advance(timedelta(minutes=2))
        assert records.get(FACTS, "mood", user_id=U) is None
        assert records.history(FACTS, "mood", user_id=U) == []
        assert [r.key for r in records.list(FACTS, user_id=U, current_only=False)] == ["name"]
        assert records.search(FACTS, user_id=U, text="rested") == []
        with pytest.raises(VersionConflictError):
            records.put(FACTS, "mood", "x", user_id=U, expected_version=2)
        fresh = records.put(FACTS, "mood", "happy", user_id=U, expected_version=0)
        assert fresh.version == 1
        assert fresh.expires_at is None
        assert records.history(FACTS, "mood", user_id=U) == [fresh]

    def test_purge_expired(self, records: RecordStore, clock: FakeClock) -> None:
        user = _user()
        for i in range(3):
            records.put(FACTS, f"k{i}", i, user_id=user, ttl=timedelta(seconds=10 * (i + 1)))
        records.put(FACTS, "keep", 1, user_id=user)
        clock.advance(timedelta(seconds=25))
        assert records.purge_expired() == 2
        assert records.purge_expired() == 0
        assert [r.key for r in records.list(FACTS, user_id=user)] == ["k2", "keep"]

    # -- compare-and-set -------------------------------------------------------------------

    def test_compare_and_set_conflicts_change_nothing(self, records: RecordStore) -> None:
        first = records.put(FACTS, "k", "a", user_id=U, expected_version=0)
        with pytest.raises(VersionConflictError) as info:
            records.put(FACTS, "k", "b", user_id=U, expected_version=0)
        assert isinstance(info.value, ConflictError)
        assert (info.value.expected, info.value.actual) == (0, 1)
        for op in (
            lambda: records.put(FACTS, "k", "b", user_id=U, expected_version=2),
            lambda: records.supersede(FACTS, "k", "b", user_id=U, expected_version=0),
            lambda: records.invalidate(FACTS, "k", user_id=U, expected_version=3),
            lambda: records.delete(FACTS, "k", user_id=U, expected_version=7),
        ):
            with pytest.raises(VersionConflictError):
                op()
        assert records.history(FACTS, "k", user_id=U) == [first]
        second = records.supersede(FACTS, "k", "b", user_id=U, expected_version=1)
        assert second.version == 2
        with pytest.raises(VersionConflictError):
            records.put(FACTS, "new", 1, user_id=U, expected_version=1)
        assert records.get(FACTS, "new", user_id=U) is None
        assert records.delete(FACTS, "k", user_id=U, expected_version=2)

    def test_concurrent_compare_and_set_loses_nothing(self, records: RecordStore) -> None:
        user = _user()
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                cas_increment_worker(lambda: _Borrowed(records), user, 25)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        final = records.get(("counters",), "n", user_id=user)
        assert final is not None
        assert (final.value, final.version) == (150, 150)

    # -- search and delete -----------------------------------------------------------------

    def test_search_filters_by_fields_and_text(self, records: RecordStore) -> None:
        records.put(FACTS, "a", {"category": "home", "text": "Lives in PORTO", "n": 1},
                    user_id=U, kind="fact")  # fmt: skip
        records.put(FACTS, "b", {"category": "work", "text": "Engineer", "n": True},
                    user_id=U, kind="fact")  # fmt: skip
        records.put(FACTS, "c", {"category": "home", "text": "has a cat", "n": 1.5}, user_id=U)
        records.put(FACTS, "porto-note", "plain string", user_id=U)

        def keys(**kw: Any) -> list[str]:
            return [r.key for r in records.search(FACTS, user_id=U, **kw)]

        assert keys(where={"category": "home"}) == ["a", "c"]
        assert keys(where={"category": "home"}, kind="fact") == ["a"]
        assert keys(where={"n": 1}) == ["a"]  # 1 is not true and not 1.5
        assert keys(where={"n": True}) == ["b"]
        assert keys(where={"missing": None}) == []
        assert keys(text="porto") == ["a", "porto-note"]
        assert keys(text="ENGINEER") == ["b"]
        assert keys(where={"category": "home"}, text="cat") == ["c"]
        assert keys(where={"category": "home"}, limit=1, offset=1) == ["c"]
        assert keys(limit=2) == ["a", "b"]

    def test_delete_and_delete_where(self, records: RecordStore) -> None:
        other = _user()
        for user in (U, other):
            records.put(FACTS, "a", {"topic": "pets"}, user_id=user, kind="fact")
            records.put(FACTS, "b", {"topic": "work"}, user_id=user, kind="fact")
            records.supersede(FACTS, "b", {"topic": "pets too"}, user_id=user)
            records.put(("facts", "old"), "c", {"topic": "pets"}, user_id=user, kind="episode")
            records.put(("notes",), "d", "pets", user_id=user)
        assert records.delete(FACTS, "a", user_id=U)
        assert not records.delete(FACTS, "a", user_id=U)
        assert records.get(FACTS, "a", user_id=U) is None
        assert records.delete_where(FACTS, user_id=U, where={"topic": "work"}) == 1  # history
        assert records.history(FACTS, "b", user_id=U) == []
        assert records.delete_where(user_id=U, kind="episode") == 1
        assert records.delete_where(("nothing",), user_id=U) == 0
        assert records.delete_where(user_id=U, text="PETS") == 1
        assert records.list(user_id=U, current_only=False) == []
        assert len(records.list(user_id=other, current_only=False)) == 5
        again = records.put(FACTS, "b", "fresh", user_id=U, expected_version=0)
        assert again.version == 1

    # -- erasure and the feed --------------------------------------------------------------

    def test_erase_user_removes_only_that_user(self, records: RecordStore) -> None:
        ada, bob = _user(), _user()
        for user in (ada, bob):
            records.put(FACTS, "a", 1, user_id=user)
            records.put(FACTS, "b", 1, user_id=user)
            records.supersede(FACTS, "b", 2, user_id=user)
            records.put(("profile",), "lang", "pt", user_id=user)
        receipt = records.erase_user(ada)
        assert (receipt.user_id, receipt.records, receipt.versions) == (ada, 3, 4)
        assert records.list(user_id=ada, current_only=False) == []
        assert len(records.list(user_id=bob, current_only=False)) == 4
        assert records.erase_user(ada).records == 0
        events = _all_changes(records)
        assert [e.kind for e in events if e.user_id == ada] == ["user_erased"]
        nobody = _user()
        cursor = _drain(records, records.changes().cursor)
        assert records.erase_user(nobody) == RecordErasureReceipt(user_id=nobody)
        assert records.changes(cursor).changes == []  # nothing to erase: no event
        assert len([e for e in events if e.user_id == bob]) == 4

    def test_change_feed(self, records: RecordStore, clock: FakeClock) -> None:
        start = records.changes()
        user = _user()
        cursor = _drain(records, start.cursor)
        records.put(FACTS, "k", 1, user_id=user)
        records.supersede(FACTS, "k", 2, user_id=user)
        records.invalidate(FACTS, "k", user_id=user)
        records.put(("notes",), "n", "x", user_id=user, ttl=timedelta(seconds=1))
        records.delete(FACTS, "k", user_id=user)
        clock.advance(timedelta(seconds=2))
        records.purge_expired()
        batch = records.changes(cursor, limit=2)
        assert batch.more
        assert len(batch.changes) == 2
        rest = records.changes(batch.cursor)
        events = batch.changes + rest.changes
        assert [(e.kind, e.namespace, e.key, e.version) for e in events] == [
            ("put", FACTS, "k", 1),
            ("supersede", FACTS, "k", 2),
            ("invalidate", FACTS, "k", 3),
            ("put", ("notes",), "n", 1),
            ("delete", FACTS, "k", None),
            ("delete", ("notes",), "n", None),
        ]
        assert {e.user_id for e in events} == {user}
        assert all(a.at <= b.at for a, b in itertools.pairwise(events))
        idle = records.changes(rest.cursor)
        assert (idle.changes, idle.cursor, idle.more) == ([], rest.cursor, False)
        for bad in ("nonsense", rest.cursor + "0", "rec-x:y:1", rest.cursor.rsplit(":", 1)[0]):
            with pytest.raises(ChangeFeedGapError):
                records.changes(bad)
        for limit in (0, -1, 10_001, True):
            with pytest.raises(InvalidMessageError):
                records.changes(limit=limit)

    # -- ownership -------------------------------------------------------------------------

    def test_hostile_users_see_nothing(self, records: RecordStore) -> None:
        spaces = [("facts",), ("agent", "planner", "notes"), ("profile",)]
        markers = []
        for ns in spaces:
            marker = f"ada-secret-{uuid.uuid4().hex[:8]}"
            markers.append(marker)
            records.put(ns, "k", {"text": marker, "category": "home"}, user_id="ada",
                        kind="fact")  # fmt: skip
            records.supersede(ns, "k", {"text": marker + "-v2", "category": "home"},
                              user_id="ada")  # fmt: skip
        for hostile in HOSTILE_USER_IDS:
            seen: list[Record] = []
            for ns in spaces:
                got = records.get(ns, "k", user_id=hostile)
                seen += [got] if got else []
                seen += records.history(ns, "k", user_id=hostile)
            for prefix in [(), ("facts",), ("agent",), ("*",), ("%",)]:
                seen += records.list(prefix, user_id=hostile, current_only=False)
                seen += records.search(prefix, user_id=hostile, where={"category": "home"},
                                       current_only=False)  # fmt: skip
                seen += records.search(prefix, user_id=hostile, text="ada")
            assert seen == [], hostile
            assert records.delete_where(user_id=hostile) == 0
            assert not records.delete(("facts",), "k", user_id=hostile)
            with pytest.raises(NotFoundError):
                records.supersede(("facts",), "k", "x", user_id=hostile)
            assert records.erase_user(hostile).records == 0
            view = records.for_user(hostile)
            assert view.list(current_only=False) == []
            assert view.get(("facts",), "k") is None
        for hostile in HOSTILE_USER_IDS:  # as namespaces and keys of Ada herself
            assert records.get((hostile,), "k", user_id="ada") is None
            assert records.get(("facts",), hostile, user_id="ada") is None
            assert records.list((hostile,), user_id="ada") == []
        mine = records.list(user_id="ada", current_only=False)  # the control
        assert len(mine) == 6
        assert {m.user_id for m in mine} == {"ada"}
        dumped = json.dumps([m.value for m in mine])
        assert all(marker in dumped for marker in markers)

    @pytest.mark.parametrize("bad", INVALID_USER_IDS)
    def test_invalid_user_ids_are_refused(self, records: RecordStore, bad: str) -> None:
        calls: list[Callable[[], object]] = [
            lambda: records.put(FACTS, "k", 1, user_id=bad),
            lambda: records.supersede(FACTS, "k", 1, user_id=bad),
            lambda: records.invalidate(FACTS, "k", user_id=bad),
            lambda: records.get(FACTS, "k", user_id=bad),
            lambda: records.history(FACTS, "k", user_id=bad),
            lambda: records.list(user_id=bad),
            lambda: records.search(user_id=bad, text="x"),
            lambda: records.delete(FACTS, "k", user_id=bad),
            lambda: records.delete_where(user_id=bad),
            lambda: records.erase_user(bad),
            lambda: records.for_user(bad),
        ]
        for call in calls:
            with pytest.raises(InvalidMessageError):
                call()
        assert records.list(user_id=U, current_only=False) == []

    def test_bad_arguments_are_clear_errors(self, records: RecordStore) -> None:
        records.put(FACTS, "k", 1, user_id=U)
        bad_calls: list[Callable[[], object]] = [
            lambda: records.put("facts", "k", 1, user_id=U),  # type: ignore[arg-type]
            lambda: records.put((), "k", 1, user_id=U),
            lambda: records.put(("a\x00",), "k", 1, user_id=U),
            lambda: records.put(("facts", ""), "k", 1, user_id=U),
            lambda: records.put(tuple("abcdefghijk"), "k", 1, user_id=U),
            lambda: records.put(FACTS, "", 1, user_id=U),
            lambda: records.put(FACTS, "x" * 201, 1, user_id=U),
            lambda: records.put(FACTS, "k\n", 1, user_id=U),
            lambda: records.put(FACTS, "k", float("nan"), user_id=U),
            lambda: records.put(FACTS, "k", {1, 2}, user_id=U),  # type: ignore[arg-type]
            lambda: records.put(FACTS, "k", "x" * (MAX_VALUE_BYTES + 1), user_id=U),
            lambda: records.put(FACTS, "k", 1, user_id=U, kind=""),
            lambda: records.put(FACTS, "k", 1, user_id=U, provenance="m1"),
            lambda: records.put(FACTS, "k", 1, user_id=U, provenance=["ok", "bad\x00"]),
            lambda: records.put(FACTS, "k", 1, user_id=U, ttl=timedelta(0)),
            lambda: records.put(FACTS, "k", 1, user_id=U, ttl=5),  # type: ignore[arg-type]
            lambda: records.put(FACTS, "k", 1, user_id=U, expected_version=-1),
            lambda: records.put(FACTS, "k", 1, user_id=U, expected_version=True),
            lambda: records.list(FACTS, user_id=U, limit=0),
            lambda: records.list(FACTS, user_id=U, limit=10_001),
            lambda: records.list(FACTS, user_id=U, offset=-1),
            lambda: records.list("facts", user_id=U),  # type: ignore[arg-type]
            lambda: records.search(FACTS, user_id=U, where=["a"]),  # type: ignore[arg-type]
            lambda: records.search(FACTS, user_id=U, where={"a": {1}}),  # type: ignore[dict-item]
            lambda: records.search(FACTS, user_id=U, text=3),  # type: ignore[arg-type]
        ]
        for call in bad_calls:
            with pytest.raises(TelaMemoryError):
                call()
        history = records.history(FACTS, "k", user_id=U)
        assert [(h.version, h.value) for h in history] == [(1, 1)]

    def test_user_view_binds_the_user(self, records: RecordStore) -> None:
        ada, bob = records.for_user("ada"), records.for_user("bob")
        ada.put(FACTS, "k", "mine", kind="fact")
        ada.supersede(FACTS, "k", "mine v2")
        assert bob.get(FACTS, "k") is None
        assert bob.list() == []
        assert bob.delete_where() == 0
        got = ada.get(FACTS, "k")
        assert got is not None
        assert got.value == "mine v2"
        assert got.user_id == "ada"
        assert len(ada.history(FACTS, "k")) == 2
        assert [r.key for r in ada.search(FACTS, text="V2")] == ["k"]
        assert ada.invalidate(FACTS, "k").version == 3
        assert ada.delete(FACTS, "k")
        ada.put(FACTS, "j", 1)
        assert ada.delete_where() == 1

    # -- async -----------------------------------------------------------------------------

    async def test_async_twins(self, records: RecordStore) -> None:
        user = _user()
        view = records.for_user(user)
        rec = await records.aput(FACTS, "k", 1, user_id=user, kind="fact")
        assert await records.aget(FACTS, "k", user_id=user) == rec
        await records.asupersede(FACTS, "k", 2, user_id=user)
        assert len(await records.ahistory(FACTS, "k", user_id=user)) == 2
        assert [r.value for r in await records.alist(FACTS, user_id=user)] == [2]
        assert [r.value for r in await view.asearch(FACTS, where={})] == [2]
        await view.ainvalidate(FACTS, "k")
        assert await view.aget(FACTS, "k") is None

        async def bump(i: int) -> None:
            await view.aput(("c",), f"k{i}", i)

        await asyncio.gather(*(bump(i) for i in range(8)))
        assert len(await view.alist(("c",))) == 8
        assert await view.adelete(("c",), "k0")
        assert await view.adelete_where(("c",)) == 7
        assert len(await view.ahistory(FACTS, "k")) == 2
        await view.aput(FACTS, "j", 1, ttl=timedelta(days=1))
        assert (await records.achanges()).changes != []
        assert await records.apurge_expired() == 0
        assert (await records.aerase_user(user)).records == 2

    # -- the store behaves like a dictionary model --------------------------------------------

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.differing_executors,
        ],
    )
    @given(ops=st.lists(_OPS, min_size=1, max_size=25))
    def test_matches_a_dictionary_model(
        self, records: RecordStore, ops: list[tuple[str, int, int, int]]
    ) -> None:
        user = _user()
        model: dict[tuple[tuple[str, ...], str], list[list[Any]]] = {}  # [version, value, cur]
        for op, ns_i, key_i, value in ops:
            ns, key = _SPACES[ns_i], f"k{key_i}"
            rows = model.get((ns, key), [])
            kv = rows[-1][0] if rows else 0
            has_current = bool(rows) and rows[-1][2]
            if op == "put":
                if has_current:
                    rows.pop()
                model[(ns, key)] = [*rows, [kv + 1, value, True]]
                assert records.put(ns, key, value, user_id=user).version == kv + 1
            elif op in ("supersede", "invalidate") and not has_current:
                call = (
                    functools.partial(records.supersede, ns, key, value, user_id=user)
                    if op == "supersede"
                    else functools.partial(records.invalidate, ns, key, user_id=user)
                )
                with pytest.raises(NotFoundError):
                    call()
            elif op == "supersede":
                rows[-1][2] = False
                rows.append([kv + 1, value, True])
                records.supersede(ns, key, value, user_id=user, expected_version=kv)
            elif op == "invalidate":
                rows[-1][0], rows[-1][2] = kv + 1, False
                ended = records.invalidate(ns, key, user_id=user, expected_version=kv)
                assert ended.version == kv + 1
            elif op == "delete":
                assert records.delete(ns, key, user_id=user) == bool(model.pop((ns, key), None))
            else:  # delete_where under the namespace's first segment
                prefix = ns[:1]
                gone = [k for k in model if k[0][:1] == prefix]
                for k in gone:
                    del model[k]
                assert records.delete_where(prefix, user_id=user) == len(gone)
            expected = [
                (k[0], k[1], v, val, cur) for k in sorted(model) for v, val, cur in model[k]
            ]
            stored = records.list(user_id=user, current_only=False, limit=1000)
            assert [(r.namespace, r.key, r.version, r.value, r.current) for r in stored] == (
                expected
            )
            for (ns2, key2), rows2 in model.items():
                got = records.get(ns2, key2, user_id=user)
                want = rows2[-1][1] if rows2[-1][2] else None
                assert (got.value if got else None) == want
        records.erase_user(user)


class _Borrowed:
    """A shared store handed to :func:`cas_increment_worker` without closing it after."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def __enter__(self) -> RecordStore:
        return self.records

    def __exit__(self, *exc: object) -> None:
        return None


def _drain(records: RecordStore, cursor: str) -> str:
    while True:
        batch = records.changes(cursor, limit=10_000)
        cursor = batch.cursor
        if not batch.more:
            return cursor


def _all_changes(records: RecordStore) -> list[Any]:
    out: list[Any] = []
    cursor: str | None = None
    while True:
        batch = records.changes(cursor, limit=10_000)
        out += batch.changes
        cursor = batch.cursor
        if not batch.more:
            return out


__all__ = ["FakeClock", "RecordConformance", "cas_increment_worker"]
