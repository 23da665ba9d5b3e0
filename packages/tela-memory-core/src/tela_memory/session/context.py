"""What a session sends to the model: the branch, shaped by a context policy.

A policy is one of:

- a :class:`~tela_memory.context.ContextPolicy` (the context engine: budget, pinned prefix,
  window, summary, recall ...); the session builds through a
  :class:`~tela_memory.context.ContextEngine` on its store, so a turn reads O(window), and the
  report is a :class:`~tela_memory.context.ContextReport`;
- a :class:`~tela_memory.context.ContextEngine` already bound to the session's store;
- anything with a ``select(messages)`` method, or a plain callable, returning the messages to
  send or ``(messages, report)``;
- ``None``: the whole branch is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tela_memory.context import ContextEngine, ContextPolicy, Decision
from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message
from tela_memory.stores import MessageStore


@runtime_checkable
class SelectsContext(Protocol):
    """A simple context policy: picks the messages to send from a branch."""

    def select(self, messages: Sequence[Message]) -> Any:
        """Return the messages to send, or ``(messages, report)``."""


ContextPolicyLike = (
    ContextPolicy | ContextEngine | SelectsContext | Callable[[Sequence[Message]], Any]
)


@dataclass(frozen=True, slots=True)
class SessionContext:
    """The messages a turn would send now, and the policy's report on how they were chosen.

    ``history_size`` is the branch length when the whole branch was read (``None`` with the
    context engine, which reads O(window)); ``dropped`` lists ids left out by this build.
    """

    messages: list[Message]
    report: Any = None
    history_size: int | None = None
    dropped: list[str] = field(default_factory=list)


def build_context(policy: ContextPolicyLike | None, history: list[Message]) -> SessionContext:
    """Apply a simple ``policy`` (callable / ``select``) to a branch's ``history``."""
    if policy is None:
        return SessionContext(
            messages=list(history),
            report={"policy": "whole_branch", "messages": len(history)},
            history_size=len(history),
        )
    if isinstance(policy, SelectsContext):
        out = policy.select(history)
    elif callable(policy):
        out = policy(history)
    else:
        raise InvalidMessageError(
            "a context policy must be a ContextPolicy, a ContextEngine, have a "
            f"select(messages) method or be callable; got {type(policy).__name__}"
        )
    report: Any = None
    if isinstance(out, tuple) and len(out) == 2:
        out, report = out
    messages = list(out)
    if not all(isinstance(m, Message) for m in messages):
        raise InvalidMessageError("a context policy must return Message objects")
    kept = {m.id for m in messages}
    return SessionContext(
        messages=messages,
        report=report,
        history_size=len(history),
        dropped=[m.id for m in history if m.id not in kept],
    )


class ContextPlanner:
    """Builds a session's context with whatever kind of policy it was given."""

    def __init__(
        self, store: MessageStore, policy: ContextPolicyLike | None, *, user_id: str
    ) -> None:
        if isinstance(policy, ContextEngine) and policy.store is not store:
            raise InvalidMessageError(
                "the ContextEngine given as policy works on another store than the session"
            )
        self.policy = policy
        self._store = store
        self._user_id = user_id
        self._engine: ContextEngine | None = policy if isinstance(policy, ContextEngine) else None

    @property
    def uses_engine(self) -> bool:
        """True when the context engine reads the store itself (no full branch read needed)."""
        return isinstance(self.policy, ContextPolicy | ContextEngine)

    def _engine_for(self) -> ContextEngine:
        if self._engine is None:
            assert isinstance(self.policy, ContextPolicy)
            self._engine = ContextEngine(self._store, self.policy)
        return self._engine

    @staticmethod
    def _from_engine(ctx: Any) -> SessionContext:
        report = ctx.report
        dropped = report.ids(Decision.DROPPED)  # dropped by this build (earlier ones: summary)
        return SessionContext(messages=list(ctx.messages), report=report, dropped=dropped)

    def build(
        self,
        thread_id: str,
        branch: str | None,
        history: list[Message] | None,
        query: str | None = None,
    ) -> SessionContext:
        """The context of ``thread_id`` (``history`` is the branch, unless the engine reads it)."""
        if self.uses_engine:
            return self._from_engine(
                self._engine_for().build(
                    thread_id, user_id=self._user_id, branch=branch, query=query
                )
            )
        return build_context(self.policy, history or [])

    async def abuild(
        self,
        thread_id: str,
        branch: str | None,
        history: list[Message] | None,
        query: str | None = None,
    ) -> SessionContext:
        """Async twin of :meth:`build`."""
        if self.uses_engine:
            ctx = await self._engine_for().abuild(
                thread_id, user_id=self._user_id, branch=branch, query=query
            )
            return self._from_engine(ctx)
        return build_context(self.policy, history or [])

    def forget(self) -> None:
        """Drop the engine's cached state (after a fork or switch it re-reads the store)."""
        if self._engine is not None:
            self._engine.forget(user_id=self._user_id)


__all__ = [
    "ContextPlanner",
    "ContextPolicyLike",
    "SelectsContext",
    "SessionContext",
    "build_context",
]
