"""Fit a thread into a token budget: pinned prefix, newest turns, tool pairs kept together.

Used by :class:`~tela_memory_llamaindex.memory.TelaMemory` to build the view it sends to the
model. Pure functions over core messages; counting goes through a per-message cache so a new
turn costs O(window), not O(history).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

from tela_memory.messages import Message, Role

_PINNED = {Role.SYSTEM, Role.DEVELOPER}


class Counter(Protocol):
    """What the window needs from a token counter (``tela_memory.tokens`` counters fit)."""

    def count_message(self, message: Message) -> int:
        """Tokens one message costs in a prompt."""
        ...


class CountCache:
    """Token counts per message id (bounded LRU); a message is counted once."""

    def __init__(self, counter: Counter, size: int = 50_000) -> None:
        self.counter = counter
        self._size = size
        self._counts: OrderedDict[tuple[str, int], int] = OrderedDict()

    def count(self, message: Message) -> int:
        """Tokens of ``message``, from the cache when it was counted before."""
        key = (message.id, hash(message.model_dump_json(include={"content", "name"})))
        hit = self._counts.get(key)
        if hit is not None:
            self._counts.move_to_end(key)
            return hit
        value = self.counter.count_message(message)
        self._counts[key] = value
        if len(self._counts) > self._size:
            self._counts.popitem(last=False)
        return value


def pinned_prefix(messages: Sequence[Message]) -> list[Message]:
    """The leading system / developer messages of a thread."""
    out: list[Message] = []
    for m in messages:
        if m.role not in _PINNED:
            break
        out.append(m)
    return out


def units(messages: Sequence[Message]) -> list[list[Message]]:
    """Split into units that must stay together: a tool-calling assistant message with the
    tool messages that answer it; every other message alone."""
    out: list[list[Message]] = []
    open_calls: set[str] = set()
    for m in messages:
        answers = {r.tool_call_id for r in m.tool_results}
        if out and answers and answers & open_calls:
            out[-1].append(m)
            open_calls -= answers
            continue
        out.append([m])
        open_calls = {c.id for c in m.tool_calls}
    return out


def fit(
    prefix: Sequence[Message],
    recent: Sequence[Message],
    budget: int,
    cache: CountCache,
) -> tuple[list[Message], list[Message], int, bool]:
    """Choose what to send.

    Returns ``(prefix_kept, window, tokens_used, complete)``: the prefix messages that fit
    (all of them unless the prefix alone is over budget), the newest contiguous units of
    ``recent`` that fit after them, the tokens used, and whether every unit of ``recent``
    fit (so that a caller holding only the newest messages knows to read further back).
    """
    used = 0
    kept_prefix: list[Message] = []
    for m in prefix:
        cost = cache.count(m)
        if used + cost > budget:
            break
        kept_prefix.append(m)
        used += cost
    window: list[list[Message]] = []
    all_units = units(recent)
    for unit in reversed(all_units):
        cost = sum(cache.count(m) for m in unit)
        if used + cost > budget:
            return kept_prefix, [m for u in reversed(window) for m in u], used, False
        window.append(unit)
        used += cost
    return kept_prefix, [m for u in reversed(window) for m in u], used, True


__all__ = ["CountCache", "Counter", "fit", "pinned_prefix", "units"]
