"""Records: user-scoped, namespaced, versioned JSON values (facts, episodes, profiles, notes).

See :mod:`tela_memory.records.base` for the contract and ``docs/records.md`` for a guide.
"""

from tela_memory.records.base import (
    ChangeKind,
    Namespace,
    Record,
    RecordChange,
    RecordChangeBatch,
    RecordErasureReceipt,
    RecordStore,
    VersionConflictError,
)
from tela_memory.records.memory import InMemoryRecordStore
from tela_memory.records.scoped import UserRecords
from tela_memory.records.sqlite import SQLiteRecordStore

__all__ = [
    "ChangeKind",
    "InMemoryRecordStore",
    "Namespace",
    "Record",
    "RecordChange",
    "RecordChangeBatch",
    "RecordErasureReceipt",
    "RecordStore",
    "SQLiteRecordStore",
    "UserRecords",
    "VersionConflictError",
]
