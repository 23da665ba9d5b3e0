"""Message stores: the contract, the embedded backends and ``open_store``."""

from tela_memory.stores.base import (
    DEFAULT_BRANCH,
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
)
from tela_memory.stores.registry import open_store

__all__ = [
    "DEFAULT_BRANCH",
    "BranchInfo",
    "ErasureReceipt",
    "MessageStore",
    "RetentionReport",
    "ThreadInfo",
    "ThreadPage",
    "open_store",
]
