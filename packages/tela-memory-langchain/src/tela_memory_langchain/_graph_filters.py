"""LangGraph's filter and namespace-match semantics (for ``graph_store``)."""

from __future__ import annotations

from typing import Any, cast

from langgraph.store.base import MatchCondition

from tela_memory.errors import InvalidMessageError


def ns_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    if not path:
        return True
    return all(p == "*" or p == n for p, n in zip(path, part, strict=True))


def matches(value: Any, flt: dict[str, Any]) -> bool:
    return all(
        _compare(value.get(k) if isinstance(value, dict) else None, v) for k, v in flt.items()
    )


def _compare(have: Any, want: Any) -> bool:
    """LangGraph's filter semantics: equality, nested objects, ``$eq $ne $gt $gte $lt $lte``."""
    if isinstance(want, dict):
        if any(k.startswith("$") for k in want):
            return all(_operator(have, op, arg) for op, arg in want.items())
        return isinstance(have, dict) and all(_compare(have.get(k), v) for k, v in want.items())
    if isinstance(want, list | tuple):
        return (
            isinstance(have, list | tuple)
            and len(have) == len(want)
            and all(_compare(h, w) for h, w in zip(have, want, strict=True))
        )
    return cast("bool", have == want)


def _operator(have: Any, op: str, arg: Any) -> bool:
    if op == "$eq":
        return cast("bool", have == arg)
    if op == "$ne":
        return cast("bool", have != arg)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if have is None:
            return False
        try:
            a, b = float(have), float(arg)
        except (TypeError, ValueError):
            return False
        return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]
    raise InvalidMessageError(f"unsupported filter operator {op!r} (use $eq $ne $gt $gte $lt $lte)")


__all__ = ["matches", "ns_matches"]
