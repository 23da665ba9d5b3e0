"""The record conformance suite on the in-memory record store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tela_memory.records import InMemoryRecordStore
from tela_memory.testing import FakeClock, RecordConformance


class TestInMemoryRecords(RecordConformance):
    @pytest.fixture
    def records(self, clock: FakeClock) -> Iterator[InMemoryRecordStore]:
        with InMemoryRecordStore(now=clock) as r:
            yield r


def test_cursor_of_another_store_is_refused() -> None:
    from tela_memory.stores.changes import ChangeFeedGapError

    a, b = InMemoryRecordStore(), InMemoryRecordStore()
    a.put(("facts",), "k", 1, user_id="ada")
    with pytest.raises(ChangeFeedGapError):
        b.changes(a.changes().cursor)
