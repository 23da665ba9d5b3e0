"""The store conformance suite (and the change-feed cases) on the embedded backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing import StoreConformance
from tela_memory.testing.store_suite import ChangeFeedConformance


class TestSQLiteFileStore(StoreConformance, ChangeFeedConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SQLiteStore]:
        with SQLiteStore(tmp_path / "store.db") as s:
            yield s


class TestSQLiteMemoryStore(StoreConformance, ChangeFeedConformance):
    @pytest.fixture
    def store(self) -> Iterator[SQLiteStore]:
        with SQLiteStore(":memory:") as s:
            yield s


class TestInMemoryStore(StoreConformance, ChangeFeedConformance):
    @pytest.fixture
    def store(self) -> Iterator[InMemoryStore]:
        with InMemoryStore() as s:
            yield s
