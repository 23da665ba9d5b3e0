"""Chat models: the protocol a session talks to, chunk types, role rules, built-in client.

``OpenAICompatible`` (needs ``httpx``, extra ``openai``) is imported lazily from
:mod:`tela_memory.models.openai`, so this package imports without httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tela_memory.models.assemble import ChunkAssembler
from tela_memory.models.base import (
    ChatChunk,
    ChatModel,
    ChatResult,
    EmptyReplyError,
    InvalidToolCallError,
    ModelError,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from tela_memory.models.roles import (
    ProviderFamily,
    RoleMap,
    adapt_roles,
    family_for,
    role_map,
)

if TYPE_CHECKING:
    from tela_memory.models.openai import OpenAICompatible


def __getattr__(name: str) -> Any:
    if name == "OpenAICompatible":
        from tela_memory.models.openai import OpenAICompatible

        return OpenAICompatible
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChatChunk",
    "ChatModel",
    "ChatResult",
    "ChunkAssembler",
    "EmptyReplyError",
    "InvalidToolCallError",
    "ModelError",
    "OpenAICompatible",
    "ProviderFamily",
    "RoleMap",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "adapt_roles",
    "family_for",
    "role_map",
]
