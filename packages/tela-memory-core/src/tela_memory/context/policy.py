"""``ContextPolicy``: the parts composed into one configuration, and its one-shot ``build``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tela_memory.context.budget import Budget, TaskKind
from tela_memory.context.errors import BudgetError
from tela_memory.context.parts import (
    Importance,
    PinnedPrefix,
    Pressure,
    Recall,
    RecentWindow,
    Summary,
)
from tela_memory.context.report import Context
from tela_memory.messages import Message
from tela_memory.tokens.base import TokenCounter
from tela_memory.tokens.cache import CachedCounter
from tela_memory.tokens.counters import TiktokenCounter, counter_for_model

if TYPE_CHECKING:
    from tela_memory.context.builder import ContextBuilder


@dataclass(frozen=True)
class ContextPolicy:
    """How a context is built: a budget, a counter and the parts.

    Args:
        budget: a :class:`Budget` or a plain number of tokens.
        counter: the token counter (default: the budget model's best counter, else tiktoken
            ``o200k_base``). It is wrapped in a :class:`CachedCounter` shared by every build
            of this policy, so a message is counted once.
        pinned: the pinned prefix.
        window: the recent window.
        importance: importance-based pruning of middle turns (off by default: oldest first).
        summary: progressive summarisation of what leaves the window (off by default).
        recall: the recall slot (off by default).
        pressure: memory-pressure thresholds and callbacks (off by default).
        on_broken: what to do with broken tool pairs in stored history: ``"drop"`` them
            (reported, never sent) or ``"raise"`` :class:`BrokenHistoryError`.
    """

    budget: Budget | int
    counter: TokenCounter | None = None
    pinned: PinnedPrefix = field(default_factory=PinnedPrefix)
    window: RecentWindow = field(default_factory=RecentWindow)
    importance: Importance | None = None
    summary: Summary | None = None
    recall: Recall | None = None
    pressure: Pressure | None = None
    on_broken: Literal["drop", "raise"] = "drop"
    cached: CachedCounter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        budget = self.budget
        if isinstance(budget, bool) or not isinstance(budget, Budget | int):
            raise BudgetError(f"budget must be a Budget or an int, got {budget!r}")
        if isinstance(budget, int):
            object.__setattr__(self, "budget", Budget.fixed(budget))
        if self.on_broken not in ("drop", "raise"):
            raise BudgetError(f"on_broken must be 'drop' or 'raise', got {self.on_broken!r}")
        counter = self.counter
        if counter is None:
            model = self.budget_spec.model
            counter = counter_for_model(model) if model else TiktokenCounter(encoding="o200k_base")
            object.__setattr__(self, "counter", counter)
        if not isinstance(counter, TokenCounter):
            raise BudgetError(f"counter must implement TokenCounter, got {type(counter).__name__}")
        cached = counter if isinstance(counter, CachedCounter) else CachedCounter(counter)
        object.__setattr__(self, "cached", cached)

    @property
    def budget_spec(self) -> Budget:
        """The budget as a :class:`Budget`."""
        assert isinstance(self.budget, Budget)
        return self.budget

    def resolve_budget(
        self, *, query: str | None = None, task: TaskKind | str | None = None
    ) -> int:
        """The budget in tokens for one request."""
        return self.budget_spec.resolve(query=query, task=task)

    def builder(self, *, thread_id: str | None = None) -> ContextBuilder:
        """A stateful, incremental builder for one thread (O(window) per new turn)."""
        from tela_memory.context.builder import ContextBuilder

        return ContextBuilder(self, thread_id=thread_id)

    def build(
        self,
        messages: Sequence[Message],
        *,
        query: str | None = None,
        task: TaskKind | str | None = None,
    ) -> Context:
        """Build a context from a whole history, with no state kept between calls.

        For a conversation that grows turn by turn, keep a :meth:`builder` (or use a
        ``ContextEngine``) instead: it is O(window) per turn and keeps the prefix stable.
        """
        return self.builder().build(messages, query=query, task=task)

    async def abuild(
        self,
        messages: Sequence[Message],
        *,
        query: str | None = None,
        task: TaskKind | str | None = None,
    ) -> Context:
        """Async twin of :meth:`build` (awaits async summarisers and recallers)."""
        return await self.builder().abuild(messages, query=query, task=task)


__all__ = ["ContextPolicy"]
