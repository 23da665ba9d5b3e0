"""Retrieval metrics without an LLM: turn recall, NDCG, session recall, budgeted evidence."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence


def recall_any(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 if any relevant item is in the top ``k``."""
    top = set(ranked[:k])
    return 1.0 if any(r in top for r in relevant) else 0.0


def recall_all(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 if every relevant item is in the top ``k``."""
    top = set(ranked[:k])
    return 1.0 if relevant and all(r in top for r in relevant) else 0.0


def ndcg(ranked: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Binary-relevance NDCG@k (ideal: every relevant item first)."""
    rel = set(relevant)
    if not rel:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(ranked[:k]) if item in rel)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), k)))
    return dcg / ideal


def group_ranking(ranked: Sequence[str], group_of: Callable[[str], str]) -> list[str]:
    """Groups (sessions) in order of their best-ranked member."""
    out: list[str] = []
    for item in ranked:
        g = group_of(item)
        if g not in out:
            out.append(g)
    return out


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) by nearest rank; 0.0 for no samples."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


__all__ = ["group_ranking", "ndcg", "percentile", "recall_all", "recall_any"]
