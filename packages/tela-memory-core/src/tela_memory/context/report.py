"""What a build returns: the messages to send and a report of every decision."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import overload

from tela_memory.messages import Message


class IdView(Sequence[str]):
    """The ids of a list of messages, read lazily (no copy of a long folded span)."""

    __slots__ = ("_messages",)

    def __init__(self, messages: Sequence[Message]) -> None:
        self._messages = messages

    def __len__(self) -> int:
        return len(self._messages)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [m.id for m in self._messages[index]]
        return self._messages[index].id

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"IdView({len(self)} ids)"


class Decision(StrEnum):
    """What happened to a message."""

    PINNED = "pinned"
    KEPT = "kept"
    TRUNCATED = "truncated"
    SUMMARY = "summary"
    SUMMARISED = "summarised"
    DROPPED = "dropped"
    RECALLED = "recalled"
    PENDING = "pending"


class Reason(StrEnum):
    """Why a message was dropped, truncated or left out."""

    NONE = ""
    WINDOW = "window"  # older than the recent window (no summariser configured)
    IMPORTANCE = "importance"  # a less important middle turn
    BUDGET = "budget"  # did not fit what was left
    BROKEN_TOOL_PAIR = "broken_tool_pair"  # a call without all results, or a result alone
    AWAITING_RESULTS = "awaiting_results"  # the newest tool calls have no results yet
    TOO_LARGE = "too_large"  # one message larger than the whole window (cut by the rule)
    DUPLICATE = "duplicate"  # a recalled message already in the context
    UNPAIRED = "unpaired"  # an answer whose question is not sent (or that answers none)
    ROLE_ORDER = "role_order"  # would put two assistant messages together that were apart


@dataclass(frozen=True, slots=True)
class MessageReport:
    """One message's fate."""

    id: str
    decision: Decision
    tokens: int
    reason: Reason = Reason.NONE


class PressureLevel(StrEnum):
    """How full the history is relative to the budget."""

    OK = "ok"
    WARN = "warn"
    COMPRESS = "compress"
    OVERFLOW = "overflow"


@dataclass(frozen=True, slots=True)
class PressureEvent:
    """Emitted when the pressure level rises (``ratio`` = unpruned tokens / budget)."""

    level: PressureLevel
    ratio: float
    budget: int
    tokens: int
    thread_id: str | None = None


@dataclass
class ContextReport:
    """Tokens in and out, and per-message decisions.

    ``messages`` lists the pinned prefix, the summary, the un-summarised window (kept or
    dropped), recalled messages and pending ones. ``folded`` holds the ids of the messages
    that left the window in this build (``folded_as``: summarised, or dropped with reason
    ``window`` when no summariser is configured); messages folded by earlier builds are
    represented by the summary (``summary_covers`` counts them), so a report stays O(window).
    """

    budget: int
    tokens_out: int
    tokens_in: int
    messages: list[MessageReport] = field(default_factory=list)
    folded: Sequence[str] = field(default_factory=tuple)
    folded_as: Decision = Decision.DROPPED
    summary_covers: int = 0
    summary_changed: bool = False
    summary_upto: str | None = None
    stable_prefix_messages: int = 0
    stable_prefix_tokens: int = 0
    stable_prefix_hash: str = ""
    pressure: PressureLevel = PressureLevel.OK
    pressure_ratio: float = 0.0
    recall_budget: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def budget_used(self) -> float:
        """``tokens_out / budget``."""
        return self.tokens_out / self.budget if self.budget else 0.0

    def ids(self, decision: Decision) -> list[str]:
        """Ids of the messages with this decision (folded ones included)."""
        ids = [r.id for r in self.messages if r.decision is decision]
        return [*self.folded, *ids] if decision is self.folded_as else ids


@dataclass
class Context:
    """The messages to send, in order, and the report explaining them."""

    messages: list[Message]
    report: ContextReport

    @property
    def tokens(self) -> int:
        """Tokens of ``messages`` as one request (by the policy's counter)."""
        return self.report.tokens_out

    def __len__(self) -> int:
        return len(self.messages)


def prefix_hash(messages: Sequence[Message]) -> str:
    """SHA-256 over the JSON of ``messages``: equal hashes mean a byte-identical prefix."""
    digest = hashlib.sha256()
    for m in messages:
        digest.update(m.model_dump_json().encode())
        digest.update(b"\x00")
    return digest.hexdigest()


__all__ = [
    "Context",
    "ContextReport",
    "Decision",
    "MessageReport",
    "PressureEvent",
    "PressureLevel",
    "Reason",
    "prefix_hash",
]
