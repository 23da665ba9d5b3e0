"""How a message becomes a Chroma record, and how a :class:`SearchFilter` becomes ``where``.

One record per message, in its user's collection (see :mod:`tela_memory_chroma.collections`):

- id: the message id (any non-empty string; Chroma takes it as data);
- embedding: the message's vector, or a placeholder unit vector (``has_vec`` false) when the
  message has no text or the index has no embedder, since Chroma needs one per record;
- no document (Chroma's embedded engine stores it with the metadata, and reads it all back);
- metadata: the filter fields (``thread``, ``role``, ``ts`` in microseconds, ``has_vec``),
  typed metadata terms (``m:<key>`` -> ``"s:value"`` / ``"i:1"`` / ``"b:true"``, so ``1``,
  ``"1"`` and ``True`` stay apart), the distinct words ``w`` (an array, for finding turns by
  word: :mod:`tela_memory_chroma.lexical`) and the ``message`` as JSON (a hit's text is extracted
  from it again, which keeps records small: Chroma's local ``get`` slows with metadata size).

Filters are Chroma ``where`` dictionaries built here from the filter's fields: every value is
a dictionary value, never parsed, so ``$`` operators or quotes in a value are plain data.
Metadata filter keys are the core's ``A-Z a-z 0-9 _ -`` keys behind the ``m:`` prefix.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tela_memory.messages import load_stored
from tela_memory.recall.index import Document
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import Hit, MetaScalar, SearchFilter
from tela_memory_chroma.lexical import words

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_META_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")

Where = dict[str, Any]


class Nothing(Exception):
    """The filter can match nothing (an empty list of allowed values)."""


def micros(when: datetime) -> int:
    """Microseconds since the epoch (an exact integer, for ranges and ordering)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def meta_term(value: MetaScalar) -> str:
    """The typed string standing for one metadata value."""
    if isinstance(value, bool):
        return "b:true" if value else "b:false"
    if isinstance(value, int):
        return f"i:{value}"
    return f"s:{value}"


def meta_fields(metadata: dict[str, Any]) -> dict[str, str]:
    """``m:<key>`` fields of a message's filterable (top-level str / int / bool) metadata."""
    return {
        f"m:{k}": meta_term(v)
        for k, v in metadata.items()
        if isinstance(k, str) and _META_KEY.match(k) and isinstance(v, str | int)
    }


def _one_of(key: str, values: list[Any]) -> Where:
    if not values:
        raise Nothing
    if len(values) == 1:
        return {key: {"$eq": values[0]}}
    return {key: {"$in": values}}


def conditions(flt: SearchFilter) -> list[Where]:
    """The ``where`` conditions of a filter's fields, except ``user_id`` (a collection per
    user enforces it) and ``message_ids`` (passed as Chroma ``ids``). Raises
    :class:`Nothing` when the filter admits nothing."""
    out: list[Where] = []
    if flt.thread_ids is not None:
        out.append(_one_of("thread", list(dict.fromkeys(flt.thread_ids))))
    if flt.roles is not None:
        out.append(_one_of("role", list(dict.fromkeys(r.value for r in flt.roles))))
    if flt.since is not None:
        out.append({"ts": {"$gte": micros(flt.since)}})
    if flt.until is not None:
        out.append({"ts": {"$lt": micros(flt.until)}})
    for key, want in flt.metadata.items():
        options = want if isinstance(want, tuple) else (want,)
        out.append(_one_of(f"m:{key}", list(dict.fromkeys(meta_term(v) for v in options))))
    return out


def where(parts: list[Where]) -> Where | None:
    """Chroma's form of an AND of conditions (``None`` for none, ``$and`` for two or more)."""
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return {"$and": parts}


def metadata(doc: Document) -> dict[str, Any]:
    """The metadata of a message's record."""
    m = doc.message
    found = words(doc.search_text)
    return {
        "tela_id": m.id,
        "thread": m.thread_id,
        "role": m.role.value,
        "ts": micros(m.created_at),
        "has_vec": doc.vector is not None,
        "message": m.model_dump_json(exclude_none=True),
        **meta_fields(m.metadata),
        **({"w": found} if found else {}),
    }


def hit(
    meta: Any,
    *,
    score: float,
    lexical_score: float | None = None,
    dense_score: float | None = None,
) -> Hit:
    """A ``Hit`` from a record's metadata."""
    message = load_stored(str((meta or {})["message"]))
    return Hit(
        message=message,
        text=extract_text(message),
        score=score,
        lexical_score=lexical_score,
        dense_score=dense_score,
    )


__all__ = [
    "Nothing",
    "Where",
    "conditions",
    "hit",
    "meta_fields",
    "meta_term",
    "metadata",
    "micros",
    "where",
]
