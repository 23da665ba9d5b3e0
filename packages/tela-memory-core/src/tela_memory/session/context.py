"""What a session sends to the model: the branch, shaped by an optional context policy.

Until the context engine (:mod:`tela_memory.context`) is wired in, a policy is anything with a
``select(messages)`` method or a plain callable, returning the messages to send, or a pair
``(messages, report)``. Without a policy the whole branch is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message


@runtime_checkable
class SelectsContext(Protocol):
    """A context policy: picks the messages to send from a branch."""

    def select(self, messages: Sequence[Message]) -> Any:
        """Return the messages to send, or ``(messages, report)``."""


ContextPolicyLike = SelectsContext | Callable[[Sequence[Message]], Any]


@dataclass(frozen=True, slots=True)
class SessionContext:
    """The messages a turn would send now, and the policy's report on how they were chosen."""

    messages: list[Message]
    report: Any = None
    history_size: int = 0
    dropped: list[str] = field(default_factory=list)


def build_context(policy: ContextPolicyLike | None, history: list[Message]) -> SessionContext:
    """Apply ``policy`` to a branch's ``history`` (the whole branch when ``policy`` is None)."""
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
            f"a context policy needs a select(messages) method or must be callable; "
            f"got {type(policy).__name__}"
        )
    report: Any = None
    if isinstance(out, tuple) and len(out) == 2:
        out, report = out
    if hasattr(out, "messages") and not isinstance(out, list):
        report = getattr(out, "report", report)
        out = out.messages
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


__all__ = ["ContextPolicyLike", "SelectsContext", "SessionContext", "build_context"]
