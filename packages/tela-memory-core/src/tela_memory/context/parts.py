"""The composable parts of a :class:`~tela_memory.context.policy.ContextPolicy`.

Each part is a small frozen dataclass configuring one behaviour: the pinned prefix, the recent
window, importance pruning, progressive summarisation, the recall slot and memory pressure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from tela_memory.context.errors import BudgetError
from tela_memory.context.report import PressureEvent, PressureLevel
from tela_memory.context.summarize import ExtractiveSummarizer, Summarizer
from tela_memory.messages import Message, Role


@dataclass(frozen=True)
class PinnedPrefix:
    """Always-kept head of the conversation (the attention-sink idea applied to messages).

    Args:
        system: pin the system / developer messages that open the thread.
        first_turns: also pin the first K user turns (each with the replies up to the next
            user message). If the budget cannot hold them, they are released to the window
            (reported in ``notes``); if the system messages alone do not fit, ``BudgetError``.
    """

    system: bool = True
    first_turns: int = 1

    def __post_init__(self) -> None:
        if self.first_turns < 0:
            raise BudgetError(f"first_turns must be >= 0, got {self.first_turns}")


@dataclass(frozen=True)
class RecentWindow:
    """The recent window: fills what the budget leaves, newest first.

    Args:
        low_water: after the window overflows, it is cut back to this share of its room, so
            the next turns append without changing the prefix (prompt caches keep hitting).
    """

    low_water: float = 0.7

    def __post_init__(self) -> None:
        if not 0 < self.low_water <= 1:
            raise BudgetError(f"low_water must be in (0, 1], got {self.low_water}")


@dataclass(frozen=True)
class Importance:
    """Importance-based pruning of middle turns (least important dropped first).

    Score = ``recency * r + role[role] + length * l + references * refs + pinned`` (+
    ``similarity * sim`` when a query is given), where ``r`` is the unit's position in the
    window (0 oldest .. 1 newest), ``l`` is ``1 - tokens / largest`` (short turns are cheap to
    keep), ``refs`` counts later turns quoting this one (a shared run of 6 words), ``pinned``
    is a large bonus for messages whose metadata has ``"tela.pin": true``, and ``sim`` is the
    word-overlap (Jaccard) with the query, or the ``similarity`` callable's value.

    Args:
        overflow: the window may grow to this multiple of its room before the oldest part is
            folded into the summary; pruning picks within it.
    """

    recency: float = 1.0
    length: float = 0.3
    references: float = 0.5
    similarity: float = 1.0
    pin: float = 100.0
    roles: dict[str, float] = field(
        default_factory=lambda: {"system": 2.0, "developer": 2.0, "user": 0.4, "assistant": 0.2}
    )
    overflow: float = 1.5
    similarity_fn: Callable[[str, str], float] | None = None

    def __post_init__(self) -> None:
        if self.overflow < 1:
            raise BudgetError(f"overflow must be >= 1, got {self.overflow}")


@dataclass(frozen=True)
class Summary:
    """Progressive summarisation of what leaves the window.

    Args:
        summarizer: a :class:`~tela_memory.context.summarize.Summarizer` (default: extractive).
        share: the summary's share of the budget (its token cap).
        role: the role of the summary message (``system`` by default).
        prefix: text put before the summary inside the message.
    """

    summarizer: Summarizer = field(default_factory=ExtractiveSummarizer)
    share: float = 0.15
    role: Role = Role.SYSTEM
    prefix: str = "Summary of the earlier conversation:\n"

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise BudgetError(f"summary share must be in (0, 1), got {self.share}")


@runtime_checkable
class RecallSource(Protocol):
    """Finds earlier messages relevant to a query (filled by the recall component)."""

    def recall(self, query: str, thread: str | None, budget: int) -> list[Message]:
        """Messages relevant to ``query`` (best first), about ``budget`` tokens at most."""
        ...


@dataclass(frozen=True)
class Recall:
    """A slot for recalled messages with its own share of the budget.

    The share is reserved whenever a query is given (so the window does not move with the
    query); recalled messages already in the context, or whose tool pairs are incomplete, are
    left out; the rest fill the slot best-first and are sent in time order after the summary.
    """

    recaller: RecallSource
    share: float = 0.15

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise BudgetError(f"recall share must be in (0, 1), got {self.share}")


@dataclass(frozen=True)
class Pressure:
    """Memory-pressure thresholds (ratio of unpruned history to budget), MemGPT style.

    A callback receives a :class:`PressureEvent` each time the level rises (``warn`` at
    ``warn``, ``compress`` at ``compress``, ``overflow`` when pruning was needed); the level
    resets when the window is folded back below the thresholds.
    """

    warn: float = 0.70
    compress: float = 0.85
    callbacks: Sequence[Callable[[PressureEvent], object]] = ()

    def __post_init__(self) -> None:
        if not 0 < self.warn <= self.compress <= 1:
            raise BudgetError(
                f"need 0 < warn <= compress <= 1, got warn={self.warn} compress={self.compress}"
            )

    def level(self, ratio: float) -> PressureLevel:
        """The level of a ratio."""
        if ratio > 1:
            return PressureLevel.OVERFLOW
        if ratio >= self.compress:
            return PressureLevel.COMPRESS
        if ratio >= self.warn:
            return PressureLevel.WARN
        return PressureLevel.OK


def has_user(messages: Sequence[Message]) -> bool:
    """Whether any message is from the user."""
    return any(m.role is Role.USER for m in messages)


__all__ = [
    "Importance",
    "PinnedPrefix",
    "Pressure",
    "Recall",
    "RecallSource",
    "RecentWindow",
    "Summary",
]
