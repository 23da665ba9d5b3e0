"""Message stores: the contract, the embedded backends and ``open_store``."""

from tela_memory.stores.base import (
    DEFAULT_BRANCH,
    DEFAULT_USER,
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    UserData,
)
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError, ChangeKind
from tela_memory.stores.cursors import CursorStore, MemoryCursorStore, SQLiteCursorStore
from tela_memory.stores.registry import open_store
from tela_memory.stores.scoped import UserStore

__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_USER",
    "BranchInfo",
    "Change",
    "ChangeBatch",
    "ChangeFeedGapError",
    "ChangeKind",
    "CursorStore",
    "ErasureReceipt",
    "MemoryCursorStore",
    "MessageStore",
    "RetentionReport",
    "SQLiteCursorStore",
    "ThreadInfo",
    "ThreadPage",
    "UserData",
    "UserStore",
    "open_store",
]
