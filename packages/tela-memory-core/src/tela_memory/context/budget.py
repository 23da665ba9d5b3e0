"""Budget sizing: a fixed number, a fraction of a model's window, or dynamic by task.

Dynamic rule (documented, deterministic): the task is given explicitly or classified from the
query by :func:`classify_task`, then the budget is ``fraction[task] * window - reserve_output``
with fractions ``qa`` 0.30, ``chat`` 0.50, ``code`` 0.70, ``reasoning`` 0.90.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from tela_memory.context.errors import BudgetError
from tela_memory.tokens.models import context_window


class TaskKind(StrEnum):
    """Kinds of request that need different amounts of history."""

    QA = "qa"
    CHAT = "chat"
    CODE = "code"
    REASONING = "reasoning"


DEFAULT_FRACTIONS: Mapping[TaskKind, float] = {
    TaskKind.QA: 0.30,
    TaskKind.CHAT: 0.50,
    TaskKind.CODE: 0.70,
    TaskKind.REASONING: 0.90,
}

_REASONING = re.compile(
    r"\b(step by step|prove|proof|analy[sz]e|derive|plan|design|trade-?offs?|compare|why)\b",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"```|\bdef |\bclass |\bfunction\b|\btraceback\b|\bstack trace\b|\bcompile|\bbug\b",
    re.IGNORECASE,
)
_QUESTION_START = re.compile(
    r"^\s*(who|what|when|where|which|how (many|much)|is|are|does|do)\b", re.I
)


def classify_task(query: str | None) -> TaskKind:
    """The rule: code markers -> ``code``; reasoning words or > 150 words -> ``reasoning``;
    a short question (<= 25 words ending in ``?`` or opening with who/what/when/...) -> ``qa``;
    anything else (including no query) -> ``chat``."""
    if not query or not query.strip():
        return TaskKind.CHAT
    words = len(query.split())
    if _CODE.search(query):
        return TaskKind.CODE
    if words > 150 or _REASONING.search(query):
        return TaskKind.REASONING
    if words <= 25 and (query.rstrip().endswith("?") or _QUESTION_START.match(query)):
        return TaskKind.QA
    return TaskKind.CHAT


@dataclass(frozen=True)
class Budget:
    """How many tokens the context may use. Build with :meth:`fixed`, :meth:`for_model` or
    :meth:`dynamic`."""

    tokens: int | None = None
    model: str | None = None
    window: int | None = None
    fraction: float | None = None
    reserve_output: int = 0
    fractions: Mapping[TaskKind, float] | None = field(default=None)

    def __post_init__(self) -> None:
        if self.tokens is not None and self.tokens <= 0:
            raise BudgetError(f"a budget must be > 0 tokens, got {self.tokens}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise BudgetError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.reserve_output < 0:
            raise BudgetError(f"reserve_output must be >= 0, got {self.reserve_output}")
        if self.window is not None and self.window <= 0:
            raise BudgetError(f"window must be > 0, got {self.window}")
        for kind, value in (self.fractions or {}).items():
            if not 0 < value <= 1:
                raise BudgetError(f"fraction for {kind} must be in (0, 1], got {value}")

    @classmethod
    def fixed(cls, tokens: int) -> Budget:
        """Exactly ``tokens``."""
        return cls(tokens=tokens)

    @classmethod
    def for_model(
        cls,
        model: str,
        *,
        fraction: float = 0.75,
        window: int | None = None,
        reserve_output: int = 0,
    ) -> Budget:
        """``fraction`` of the model's context window (``window`` overrides the known one)."""
        if window is None:
            context_window(model)  # fail early on unknown names
        return cls(model=model, window=window, fraction=fraction, reserve_output=reserve_output)

    @classmethod
    def dynamic(
        cls,
        model: str,
        *,
        window: int | None = None,
        reserve_output: int = 0,
        fractions: Mapping[TaskKind | str, float] | None = None,
    ) -> Budget:
        """A share of the window chosen per request by task (see :func:`classify_task`)."""
        if window is None:
            context_window(model)
        table = dict(DEFAULT_FRACTIONS)
        table.update({TaskKind(k): v for k, v in (fractions or {}).items()})
        return cls(model=model, window=window, reserve_output=reserve_output, fractions=table)

    @property
    def is_dynamic(self) -> bool:
        """Whether the size depends on the task."""
        return self.fractions is not None

    def resolve(self, *, query: str | None = None, task: TaskKind | str | None = None) -> int:
        """The budget in tokens for this request."""
        if self.tokens is not None:
            return self.tokens
        window = self.window
        if window is None:
            if self.model is None:
                raise BudgetError("a budget needs tokens=, or a model / window")
            window = context_window(self.model)
        if self.fractions is not None:
            kind = TaskKind(task) if task is not None else classify_task(query)
            share = self.fractions[kind]
        else:
            share = self.fraction if self.fraction is not None else 1.0
        tokens = int(window * share) - self.reserve_output
        if tokens <= 0:
            raise BudgetError(
                f"reserve_output {self.reserve_output} leaves no room in {share:.0%} of a "
                f"{window}-token window"
            )
        return tokens


__all__ = ["DEFAULT_FRACTIONS", "Budget", "TaskKind", "classify_task"]
