"""The ``TokenCounter`` protocol and the shared message-costing rules.

A counter turns text into a token count (``count_text``); :class:`BaseCounter` turns a whole
:class:`~tela_memory.messages.Message` into what it costs when sent: a per-message overhead for
the provider family, the role and name, every text block, thinking, tool calls as the JSON the
API receives, tool results with their call id, and media by :mod:`tela_memory.tokens.media`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tela_memory.messages import (
    AudioBlock,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from tela_memory.tokens import media
from tela_memory.tokens.models import Family


@dataclass(frozen=True)
class Overhead:
    """Tokens a provider adds around messages (chat-format framing)."""

    per_message: int
    per_name: int
    reply_priming: int


#: Per-family framing. OpenAI's figures are those of its token-counting cookbook (exact for
#: the chat format); the others are conservative estimates (providers do not publish them).
OVERHEAD: dict[Family, Overhead] = {
    Family.OPENAI: Overhead(per_message=3, per_name=1, reply_priming=3),
    Family.ANTHROPIC: Overhead(per_message=5, per_name=1, reply_priming=5),
    Family.GEMINI: Overhead(per_message=5, per_name=1, reply_priming=5),
    Family.GENERIC: Overhead(per_message=5, per_name=1, reply_priming=5),
}


@runtime_checkable
class TokenCounter(Protocol):
    """Counts tokens of text and of messages as a provider would bill them."""

    @property
    def id(self) -> str:
        """A stable identifier (tokenizer + family); cache keys include it."""
        ...

    @property
    def family(self) -> Family:
        """The provider family whose overhead and media rules apply."""
        ...

    def count_text(self, text: str) -> int:
        """Tokens of a plain string."""
        ...

    def count_message(self, message: Message) -> int:
        """Tokens one message costs, framing included."""
        ...

    def count_messages(self, messages: Iterable[Message]) -> int:
        """Tokens a list of messages costs as one request (reply priming included)."""
        ...

    @property
    def reply_priming(self) -> int:
        """Tokens added once per request."""
        ...


def tool_call_wire(block: ToolCallBlock) -> str:
    """The text a tool call is counted as: the call's id, type and name as JSON, then the
    arguments as the compact JSON text an OpenAI-style API carries in ``function.arguments``
    (the decoded string the model reads, not the escaped form inside the request body)."""
    arguments = json.dumps(block.arguments, ensure_ascii=False, separators=(",", ":"))
    payload = {"id": block.id, "type": "function", "function": {"name": block.name}}
    wire = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return wire + arguments


class BaseCounter(ABC):
    """Implements message costing on top of an abstract ``count_text``."""

    def __init__(self, family: Family | str = Family.OPENAI) -> None:
        self._family = Family(family)
        self._overhead = OVERHEAD[self._family]

    @property
    @abstractmethod
    def id(self) -> str:
        """A stable identifier for cache keys."""

    @property
    def family(self) -> Family:
        """The provider family."""
        return self._family

    @property
    def reply_priming(self) -> int:
        """Tokens added once per request (the assistant reply header)."""
        return self._overhead.reply_priming

    @abstractmethod
    def count_text(self, text: str) -> int:
        """Tokens of a plain string."""

    def count_block(self, block: ContentBlock) -> int:
        """Tokens of one content block as sent."""
        if isinstance(block, TextBlock):
            return self.count_text(block.text)
        if isinstance(block, ThinkingBlock):
            if block.redacted and not block.text:
                return self.count_text(block.signature or "")
            return self.count_text(block.text)
        if isinstance(block, ToolCallBlock):
            return self.count_text(tool_call_wire(block))
        if isinstance(block, ToolResultBlock):
            total = self.count_text(block.tool_call_id)
            if isinstance(block.content, str):
                return total + self.count_text(block.content)
            return total + sum(self.count_block(b) for b in block.content)
        if isinstance(block, ImageBlock):
            return media.image_tokens(block, self._family)
        if isinstance(block, DocumentBlock):
            return self._document(block)
        if isinstance(block, AudioBlock):
            by_time = media.audio_seconds_tokens(block, self._family)
            if by_time is not None:
                return by_time
            if block.transcript:
                return self.count_text(block.transcript)
            return media.UNKNOWN_AUDIO
        if isinstance(block, OpaqueBlock):
            return self.count_text(json.dumps(block.data, ensure_ascii=False))
        raise TypeError(f"unknown block {type(block).__name__}")  # pragma: no cover

    def _document(self, block: DocumentBlock) -> int:
        title = self.count_text(block.title) if block.title else 0
        if block.text is not None:
            return title + self.count_text(block.text)
        if block.pages is not None:
            return title + block.pages * media.PAGE_COST[self._family]
        return title + media.UNKNOWN_DOCUMENT

    def count_message(self, message: Message) -> int:
        """Tokens one message costs: framing, role, name and every block."""
        total = self._overhead.per_message + self.count_text(message.role.value)
        if message.name:
            total += self._overhead.per_name + self.count_text(message.name)
        return total + sum(self.count_block(b) for b in message.content)

    def count_messages(self, messages: Iterable[Message]) -> int:
        """Tokens of a request: every message plus reply priming."""
        return self.reply_priming + sum(self.count_message(m) for m in messages)


__all__ = ["OVERHEAD", "BaseCounter", "Overhead", "TokenCounter", "tool_call_wire"]
