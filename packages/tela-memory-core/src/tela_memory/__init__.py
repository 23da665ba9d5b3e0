"""Tela Memory: conversation memory for LLM applications.

The core: the message model, message stores with branches, and (as they land) the context
engine and recall. No framework or backend client is imported here.
"""

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidMessageError,
    MissingDependency,
    NotFoundError,
    SchemaError,
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
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    open_store,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BRANCH",
    "AudioBlock",
    "BackendUnavailable",
    "BranchInfo",
    "ConflictError",
    "ContentBlock",
    "DocumentBlock",
    "ErasureReceipt",
    "ImageBlock",
    "InvalidMessageError",
    "Message",
    "MessageStore",
    "MissingDependency",
    "NotFoundError",
    "OpaqueBlock",
    "RetentionReport",
    "Role",
    "SchemaError",
    "TelaMemoryError",
    "TextBlock",
    "ThinkingBlock",
    "ThreadInfo",
    "ThreadPage",
    "ToolCallBlock",
    "ToolResultBlock",
    "UnsupportedOperation",
    "__version__",
    "new_id",
    "open_store",
]
