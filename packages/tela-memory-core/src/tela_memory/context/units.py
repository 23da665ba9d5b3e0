"""Atomic units: the smallest runs of messages that may be kept or dropped together.

Rules (the tool-pair and thinking invariants):

* An assistant message with tool calls, and the tool messages answering *all* its calls, form
  one unit. Further assistant messages with tool calls arriving before the results (parallel
  calls split over messages) join the same unit.
* An assistant message holding only thinking blocks joins the assistant message after it.
* A unit whose calls are not all answered when another kind of message arrives, or a tool
  result whose call is not in the open unit, is *broken*: it is never sent (reported as
  dropped, reason ``broken_tool_pair``).
* At the end of the history, a unit still waiting for tool results is *pending*: not sent
  until its results arrive.

Every unit also carries its *turn*: a user message opens a new turn (it is always a unit of
its own) and the replies up to the next user message share its number; units before the first
user message have turn 0 (they answer no question). The builder keeps a question and its
answers together by turn, the way a unit keeps a tool pair together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from tela_memory.messages import Message, Role, ThinkingBlock


@dataclass(slots=True)
class Unit:
    """A run of messages kept or dropped as a whole."""

    messages: list[Message]
    tokens: int = 0
    seq: int = 0
    broken: bool = False
    shingles: frozenset[int] | None = None
    turn: int = 0
    _user: bool = field(init=False, repr=False, compare=False)
    _free: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._user = any(m.role is Role.USER for m in self.messages)
        self._free = all(m.role in (Role.SYSTEM, Role.DEVELOPER) for m in self.messages)

    @property
    def ids(self) -> list[str]:
        """Message ids, in order."""
        return [m.id for m in self.messages]

    @property
    def first_role(self) -> Role:
        """Role of the first message."""
        return self.messages[0].role

    @property
    def has_user(self) -> bool:
        """Whether a user message is in the unit (then it is that message alone)."""
        return self._user

    @property
    def is_free(self) -> bool:
        """Whether the unit holds only system / developer messages (bound to no turn)."""
        return self._free

    @property
    def last_id(self) -> str:
        """Id of the last message."""
        return self.messages[-1].id


def is_thinking_only(message: Message) -> bool:
    """An assistant message whose blocks are all thinking blocks."""
    return (
        message.role is Role.ASSISTANT
        and bool(message.content)
        and all(isinstance(b, ThinkingBlock) for b in message.content)
    )


@dataclass
class Grouper:
    """Groups messages into units incrementally (feed messages in order; units come out).

    ``count`` gives each message's tokens (a cached counter's ``count_message``); ``seq`` and
    ``turn`` continue the numbering of an earlier grouper (units are numbered in order).
    """

    count: Callable[[Message], int]
    seq: int = 0
    turn: int = 0
    _open: list[Message] = field(default_factory=list)
    _awaiting: set[str] = field(default_factory=set)
    _answered: bool = False

    def _make(self, messages: list[Message], *, broken: bool = False) -> Unit:
        self.seq += 1
        if messages[0].role is Role.USER:  # a user message is always a unit of its own
            self.turn += 1
        tokens = sum(self.count(m) for m in messages)
        return Unit(messages, tokens=tokens, seq=self.seq, broken=broken, turn=self.turn)

    def _flush_open(self, out: list[Unit]) -> None:
        if self._open:
            out.append(self._make(self._open, broken=bool(self._awaiting)))
        self._open, self._awaiting, self._answered = [], set(), False

    def feed(self, messages: Iterable[Message]) -> list[Unit]:
        """Add messages; return the units they closed, in order."""
        out: list[Unit] = []
        for m in messages:
            self._one(m, out)
        return out

    def _one(self, m: Message, out: list[Unit]) -> None:
        calls = m.tool_calls
        if self._awaiting:
            if m.role is Role.TOOL:
                ids = {r.tool_call_id for r in m.tool_results}
                if ids <= self._awaiting:
                    self._open.append(m)
                    self._awaiting -= ids
                    self._answered = True
                    if not self._awaiting:
                        self._flush_open(out)
                    return
                self._flush_open(out)  # results for calls we do not have: both broken
                out.append(self._make([m], broken=True))
                return
            if calls and m.role is Role.ASSISTANT and not self._answered:
                self._open.append(m)
                self._awaiting |= {c.id for c in calls}
                return
            self._flush_open(out)  # the open calls never got all their results
        elif self._open:  # a held thinking-only assistant message
            if m.role is Role.ASSISTANT:
                if is_thinking_only(m):
                    self._open.append(m)
                    return
                held = self._open
                self._open = []
                self._start(held, m, out)
                return
            self._flush_open(out)
        self._start([], m, out)

    def _start(self, held: list[Message], m: Message, out: list[Unit]) -> None:
        if m.role is Role.TOOL:
            if held:
                out.append(self._make(held))
            out.append(self._make([m], broken=True))
            return
        calls = m.tool_calls
        if calls:
            self._open = [*held, m]
            self._awaiting = {c.id for c in calls}
            self._answered = False
            return
        if is_thinking_only(m):
            self._open = [*held, m]
            return
        out.append(self._make([*held, m]))

    def tail(self) -> tuple[Unit | None, bool]:
        """The open unit, if any, without closing it, and whether it waits for tool results.

        A held thinking-only message is sendable (``False``); open tool calls are pending.
        """
        if not self._open:
            return None, False
        tokens = sum(self.count(m) for m in self._open)
        unit = Unit(list(self._open), tokens=tokens, seq=self.seq + 1, turn=self.turn)
        return unit, bool(self._awaiting)


def group(messages: Sequence[Message], count: Callable[[Message], int]) -> list[Unit]:
    """Group a complete history into units (the open tail, if any, comes last)."""
    g = Grouper(count)
    units = g.feed(messages)
    tail, pending = g.tail()
    if tail is not None:
        tail.broken = pending
        units.append(tail)
    return units


def can_cut_before(messages: Sequence[Message], i: int) -> bool:
    """Whether a unit may start at index ``i`` (no tool pair or thinking run spans it)."""
    if i <= 0 or i >= len(messages):
        return True
    m, prev = messages[i], messages[i - 1]
    if m.role is Role.TOOL:
        return False
    if m.role is Role.ASSISTANT and is_thinking_only(prev):
        return False
    return not (m.tool_calls and prev.tool_calls)


def find_cut(
    messages: Sequence[Message],
    *,
    start: int,
    target: int,
    count: Callable[[Message], int],
    keep_from: int | None = None,
) -> int:
    """The smallest index ``>= start`` such that ``messages[cut:]`` fits ``target`` tokens,
    moved forward to a unit boundary. Walks backwards: O(kept), not O(history).

    ``keep_from`` (an index) is always kept even if it alone exceeds ``target``.
    """
    n = len(messages)
    total = 0
    i = n
    while i > start:
        cost = count(messages[i - 1])
        if total + cost > target and (keep_from is None or i - 1 < keep_from):
            break
        total += cost
        i -= 1
    while i < n and not can_cut_before(messages, i):
        i += 1
    return i


__all__ = ["Grouper", "Unit", "can_cut_before", "find_cut", "group", "is_thinking_only"]
