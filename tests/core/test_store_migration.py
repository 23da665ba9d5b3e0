"""A SQLite file written before ownership was enforced (schema v1) opens and keeps its data.

``tests/data/store_v1.db`` was written by tela-memory-core at 0057bd3 (schema 1): Ada's thread
``trip-42`` with a tool pair, a fork ``terse`` and thread metadata; an ownerless thread
``notes``; Bob's thread ``1``.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tela_memory import DEFAULT_USER, Message
from tela_memory.stores.sqlite import SCHEMA_VERSION, SQLiteStore
from tela_memory.stores.sqlite_schema import current_version

LEGACY = Path(__file__).parent.parent / "data" / "store_v1.db"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.db"
    shutil.copy(LEGACY, path)
    with sqlite3.connect(path) as conn:
        assert current_version(conn) == 1
    return path


def test_legacy_file_migrates_without_loss(legacy: Path) -> None:
    with SQLiteStore(legacy) as store:
        ada = store.for_user("ada")
        main = ada.read("trip-42")
        assert [m.role.value for m in main] == ["system", "user", "assistant", "tool", "assistant"]
        assert main[2].tool_calls[0].arguments == {"city": "Lisbon"}
        terse = ada.read("trip-42", branch="terse")
        assert [m.text for m in terse][-1] == "Sunny."
        assert terse[:4] == main[:4]
        info = ada.get_thread("trip-42")
        assert (info.title, info.tags, info.metadata, info.message_count) == (
            "Lisbon",
            ("travel",),
            {"k": 1},
            6,
        )
        assert {b.name for b in ada.branches("trip-42")} == {"main", "terse"}
        # the ownerless thread belongs to the default user now, messages included
        notes = store.for_user(DEFAULT_USER).read("notes")
        assert [m.text for m in notes] == ["an ownerless note", "noted"]
        assert {m.user_id for m in notes} == {DEFAULT_USER}
        assert [m.text for m in store.for_user("bob").read("1")] == ["bob's first session"]
        # and ownership holds on the migrated data
        assert store.for_user("bob").read("trip-42") == []
        assert store.for_user("ada").read("1") == []
        # the migrated file takes new writes in the new model
        store.for_user("ada").append("1", Message.user("ada's own session 1"))
        assert [m.text for m in store.for_user("bob").read("1")] == ["bob's first session"]
    with sqlite3.connect(legacy) as conn:
        assert current_version(conn) == SCHEMA_VERSION


def test_erase_after_migration_takes_everything(legacy: Path) -> None:
    with SQLiteStore(legacy) as store:
        receipt = store.erase_user("ada")
        assert (receipt.threads, receipt.messages) == (1, 6)
        assert store.for_user("ada").read("trip-42") == []
        assert len(store.for_user(DEFAULT_USER).read("notes")) == 2
