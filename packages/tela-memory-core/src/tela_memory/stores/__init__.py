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
)
from tela_memory.stores.registry import open_store
from tela_memory.stores.scoped import UserStore

__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_USER",
    "BranchInfo",
    "ErasureReceipt",
    "MessageStore",
    "RetentionReport",
    "ThreadInfo",
    "ThreadPage",
    "UserStore",
    "open_store",
]
