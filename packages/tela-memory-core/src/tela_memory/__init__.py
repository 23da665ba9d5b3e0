"""Tela Memory: conversation memory for LLM applications.

The core: the message model, message stores with branches, and (as they land) the context
engine and recall. No framework or backend client is imported here.
"""

import importlib
from typing import TYPE_CHECKING, Any

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidArgumentError,
    InvalidMessageError,
    MissingDependency,
    NotFoundError,
    SchemaError,
    ScopeError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.ids import new_id
from tela_memory.messages import (
    AudioBlock,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from tela_memory.stores import (
    DEFAULT_BRANCH,
    DEFAULT_USER,
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    UserStore,
    open_store,
)

__version__ = "0.1.0"

# The larger parts load on first use, so that ``import tela_memory`` stays cheap.
_LAZY = {
    "Context": "tela_memory.context",
    "ContextEngine": "tela_memory.context",
    "ContextPolicy": "tela_memory.context",
    "ChatModel": "tela_memory.models",
    "OpenAICompatible": "tela_memory.models",
    "Recaller": "tela_memory.recall.recaller",
    "Record": "tela_memory.records",
    "RecordStore": "tela_memory.records",
    "SQLiteRecordStore": "tela_memory.records",
    "UserRecords": "tela_memory.records",
    "SQLiteIndex": "tela_memory.recall",
    "SearchFilter": "tela_memory.recall",
    "Session": "tela_memory.session",
    "counter_for_model": "tela_memory.tokens",
    "erase_user": "tela_memory.privacy",
    "aerase_user": "tela_memory.privacy",
}

if TYPE_CHECKING:
    from tela_memory.context import Context, ContextEngine, ContextPolicy
    from tela_memory.models import ChatModel, OpenAICompatible
    from tela_memory.privacy import aerase_user, erase_user
    from tela_memory.recall import SearchFilter, SQLiteIndex
    from tela_memory.recall.recaller import Recaller
    from tela_memory.records import Record, RecordStore, SQLiteRecordStore, UserRecords
    from tela_memory.session import Session
    from tela_memory.tokens import counter_for_model


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tela_memory' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_USER",
    "AudioBlock",
    "BackendUnavailable",
    "BranchInfo",
    "ChatModel",
    "ConflictError",
    "ContentBlock",
    "Context",
    "ContextEngine",
    "ContextPolicy",
    "DocumentBlock",
    "ErasureReceipt",
    "ImageBlock",
    "InvalidArgumentError",
    "InvalidMessageError",
    "Message",
    "MessageStore",
    "MissingDependency",
    "NotFoundError",
    "OpaqueBlock",
    "OpenAICompatible",
    "Recaller",
    "Record",
    "RecordStore",
    "RetentionReport",
    "Role",
    "SQLiteIndex",
    "SQLiteRecordStore",
    "SchemaError",
    "ScopeError",
    "SearchFilter",
    "Session",
    "TelaMemoryError",
    "TextBlock",
    "ThinkingBlock",
    "ThreadInfo",
    "ThreadPage",
    "ToolCallBlock",
    "ToolResultBlock",
    "UnsupportedOperation",
    "UserRecords",
    "UserStore",
    "__version__",
    "aerase_user",
    "counter_for_model",
    "erase_user",
    "new_id",
    "open_store",
]
