"""Adapting a budgeted recaller (``tela_memory.recall.Recaller``) to the recall slot.

The context engine's :class:`~tela_memory.context.parts.RecallSource` protocol is
``recall(query, thread, budget) -> list[Message]``. :class:`RecallerSlot` wraps anything with
``recall(query, *, user_id, budget)`` / ``arecall(...)`` returning an object with a
``messages`` list (``tela_memory.recall.Recaller`` does), so it can fill a :class:`Recall`
slot. No import of the recall package happens here.
"""

from __future__ import annotations

from typing import Any, Protocol

from tela_memory.messages import Message


class _Result(Protocol):
    @property
    def messages(self) -> list[Message]: ...


class BudgetedRecaller(Protocol):
    """What :class:`RecallerSlot` wraps (``tela_memory.recall.Recaller`` fits)."""

    def recall(self, query: str, *, user_id: str | None, budget: int) -> Any:
        """Recall within ``budget`` tokens; the result has ``messages``."""
        ...


class RecallerSlot:
    """Fills the recall slot from a budgeted recaller, for one user.

    Args:
        recaller: e.g. ``tela_memory.recall.Recaller``.
        user_id: whose history to search (recall never crosses users).
        same_thread: also return messages of the thread being built (they are removed when
            already in the context); ``False`` keeps only other threads.
    """

    def __init__(
        self, recaller: BudgetedRecaller, *, user_id: str | None, same_thread: bool = True
    ) -> None:
        self.recaller = recaller
        self.user_id = user_id
        self.same_thread = same_thread

    def _keep(self, result: _Result, thread: str | None) -> list[Message]:
        messages = list(result.messages)
        if self.same_thread or thread is None:
            return messages
        return [m for m in messages if m.thread_id != thread]

    def recall(self, query: str, thread: str | None, budget: int) -> list[Message]:
        """Messages relevant to ``query`` within ``budget`` tokens."""
        result = self.recaller.recall(query, user_id=self.user_id, budget=budget)
        return self._keep(result, thread)

    async def arecall(self, query: str, thread: str | None, budget: int) -> list[Message]:
        """Async twin of :meth:`recall` (uses the recaller's ``arecall`` when it has one)."""
        arecall = getattr(self.recaller, "arecall", None)
        if arecall is None:
            return self.recall(query, thread, budget)
        result = await arecall(query, user_id=self.user_id, budget=budget)
        return self._keep(result, thread)


__all__ = ["BudgetedRecaller", "RecallerSlot"]
