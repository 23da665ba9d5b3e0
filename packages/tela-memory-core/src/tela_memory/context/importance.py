"""Importance scores for the units of the window.

See :class:`~tela_memory.context.parts.Importance` for the formula.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tela_memory.context.parts import Importance
from tela_memory.context.units import Unit

_WORD = re.compile(r"\w+", re.UNICODE)
SHINGLE = 6


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def unit_text(unit: Unit) -> str:
    """All text of a unit."""
    return "\n".join(m.text for m in unit.messages)


def shingles(unit: Unit) -> frozenset[int]:
    """Hashes of the unit's runs of ``SHINGLE`` words (cached on the unit)."""
    if unit.shingles is None:
        words = _words(unit_text(unit))
        unit.shingles = frozenset(
            hash(tuple(words[i : i + SHINGLE])) for i in range(len(words) - SHINGLE + 1)
        )
    return unit.shingles


def references(units: Sequence[Unit]) -> list[int]:
    """For each unit, how many later units share a run of words with it."""
    first: dict[int, int] = {}
    refs = [0] * len(units)
    for j, unit in enumerate(units):
        quoted: set[int] = set()
        for s in shingles(unit):
            i = first.get(s)
            if i is None:
                first[s] = j
            elif i != j:
                quoted.add(i)
        for i in quoted:
            refs[i] += 1
    return refs


def jaccard(a: str, b: str) -> float:
    """Word-set overlap of two texts."""
    wa, wb = set(_words(a)), set(_words(b))
    if not wa or not wb:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def scores(units: Sequence[Unit], config: Importance, query: str | None = None) -> list[float]:
    """One score per unit (higher is more important)."""
    n = len(units)
    if n == 0:
        return []
    largest = max(u.tokens for u in units) or 1
    refs = references(units)
    sim = config.similarity_fn or jaccard
    out: list[float] = []
    for i, unit in enumerate(units):
        recency = i / (n - 1) if n > 1 else 1.0
        role = max(config.roles.get(m.role.value, 0.0) for m in unit.messages)
        score = config.recency * recency + role
        score += config.length * (1 - unit.tokens / largest)
        score += config.references * refs[i]
        if any(m.metadata.get("tela.pin") is True for m in unit.messages):
            score += config.pin
        if query:
            score += config.similarity * sim(query, unit_text(unit))
        out.append(score)
    return out


__all__ = ["jaccard", "references", "scores", "shingles", "unit_text"]
