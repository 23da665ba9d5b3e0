"""Errors of the context engine; all are ``TelaMemoryError`` subclasses."""

from __future__ import annotations

from tela_memory.errors import InvalidMessageError


class BudgetError(InvalidMessageError):
    """A budget is invalid or cannot hold what must be sent (the message gives the sizes)."""


class BrokenHistoryError(InvalidMessageError):
    """Stored history has a broken tool pair and the policy says ``on_broken="raise"``."""


__all__ = ["BrokenHistoryError", "BudgetError"]
