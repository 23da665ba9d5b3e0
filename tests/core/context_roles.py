"""The role-order check shared by the context tests (what every provider family accepts)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from tela_memory import Message, Role
from tela_memory.context import Context

_SYSTEMS = (Role.SYSTEM, Role.DEVELOPER)


def check_roles(ctx: Context, history: Sequence[Message]) -> None:
    """The role order every provider accepts (Anthropic and Gemini the strictest): the first
    non-system message is a user turn, no answer is sent without its question, and no two
    assistant messages are side by side unless only system messages were between them."""
    position = {m.id: i for i, m in enumerate(history)}
    sent = [m for m in ctx.messages if m.role not in _SYSTEMS]
    if sent:
        assert sent[0].role is Role.USER, f"context starts with {sent[0].role.value}"
    ids = {m.id for m in ctx.messages}
    for m in sent:
        if m.role is Role.USER:
            continue
        at = position[m.id]
        question = next(
            (history[k] for k in range(at, -1, -1) if history[k].role is Role.USER), None
        )
        assert question is not None, f"{m.role.value} {at} answers no question"
        assert question.id in ids, f"{m.role.value} {at} sent without its question"
    for before, after in itertools.pairwise(sent):
        if before.role is Role.ASSISTANT and after.role is Role.ASSISTANT:
            between = history[position[before.id] + 1 : position[after.id]]
            assert all(m.role in _SYSTEMS for m in between), (
                f"assistant {position[before.id]} then {position[after.id]}: apart in history"
            )


__all__ = ["check_roles"]
