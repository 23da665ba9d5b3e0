"""What a point carries (payload, id) and how a :class:`SearchFilter` becomes a Qdrant ``Filter``.

A thread is ``(user_id, thread_id)``: thread ids are only unique within a user, so whatever is
done per thread (neighbours) matches both keys (:func:`same_thread`), and ``thread_ids`` in a
reader's filter always comes with the user's ``user_id``.

Every filter field maps to an indexed payload key and is matched exactly by the engine
(keyword ``MatchValue`` / ``MatchAny``, integer ``Range``, ``HasIdCondition``), so filter
values are data, never query syntax. Metadata filters are typed (``1`` is not ``"1"`` nor
``True``): top-level str / int / bool metadata values are also stored as keywords
``key:s:value``, ``key:i:value``, ``key:b:true`` in one indexed array, since keys are limited
to ``A-Z a-z 0-9 _ -`` and so never contain the ``:`` separator.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from qdrant_client import models

from tela_memory.messages import Message
from tela_memory.recall.types import MetaScalar, SearchFilter

_NAMESPACE = uuid.UUID("6f1c7f0e-4a43-5b8e-9d3a-7e1a2c4b5d60")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Payload keys and the index each gets (the filter fields and the neighbour order).
PAYLOAD_INDEXES: dict[str, models.PayloadSchemaType | models.KeywordIndexParams] = {
    "user_id": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
    "thread_id": models.PayloadSchemaType.KEYWORD,
    "id": models.PayloadSchemaType.KEYWORD,
    "role": models.PayloadSchemaType.KEYWORD,
    "ts": models.PayloadSchemaType.INTEGER,
    "meta_kv": models.PayloadSchemaType.KEYWORD,
}

#: Which payload key enforces each :class:`SearchFilter` field.
FILTER_KEYS: dict[str, str] = {
    "user_id": "user_id",
    "thread_ids": "thread_id",
    "message_ids": "id",
    "roles": "role",
    "since": "ts",
    "until": "ts",
    "metadata": "meta_kv",
}


def point_id(message_id: str) -> str:
    """The point id of a message: a UUID derived from its id (Qdrant wants UUIDs or ints)."""
    return str(uuid.uuid5(_NAMESPACE, message_id))


def micros(when: datetime) -> int:
    """Microseconds since the epoch (exact integer, for ``Range`` filters and ordering)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(microseconds=1)


def meta_term(key: str, value: MetaScalar) -> str:
    """The keyword standing for one typed metadata value."""
    if isinstance(value, bool):
        return f"{key}:b:{'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{key}:i:{value}"
    return f"{key}:s:{value}"


def meta_terms(metadata: dict[str, Any]) -> list[str]:
    """Keywords of a message's filterable (top-level str / int / bool) metadata."""
    return [
        meta_term(k, v)
        for k, v in metadata.items()
        if isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, float)
    ]


def payload(message: Message, text: str) -> dict[str, Any]:
    """The payload of a message's point."""
    return {
        "id": message.id,
        "user_id": message.user_id,
        "thread_id": message.thread_id,
        "role": message.role.value,
        "ts": micros(message.created_at),
        "meta_kv": meta_terms(message.metadata),
        "text": text,
        "message": message.model_dump_json(exclude_none=True),
    }


def to_filter(flt: SearchFilter) -> models.Filter | None:
    """The Qdrant filter for a search filter; ``None`` when it can match nothing."""
    must: list[models.Condition] = []
    if flt.user_id is not None:
        must.append(
            models.FieldCondition(key="user_id", match=models.MatchValue(value=flt.user_id))
        )
    if flt.thread_ids is not None:
        if not flt.thread_ids:
            return None
        must.append(_any("thread_id", list(flt.thread_ids)))
    if flt.message_ids is not None:
        if not flt.message_ids:
            return None
        must.append(models.HasIdCondition(has_id=[point_id(i) for i in flt.message_ids]))
    if flt.roles is not None:
        if not flt.roles:
            return None
        must.append(_any("role", [r.value for r in flt.roles]))
    if flt.since is not None or flt.until is not None:
        must.append(
            models.FieldCondition(
                key="ts",
                range=models.Range(
                    gte=None if flt.since is None else micros(flt.since),
                    lt=None if flt.until is None else micros(flt.until),
                ),
            )
        )
    for key, want in flt.metadata.items():
        options = want if isinstance(want, tuple) else (want,)
        if not options:
            return None
        must.append(_any("meta_kv", [meta_term(key, v) for v in options]))
    return models.Filter(must=must)


def _any(key: str, values: list[str]) -> models.FieldCondition:
    if len(values) == 1:
        return models.FieldCondition(key=key, match=models.MatchValue(value=values[0]))
    return models.FieldCondition(key=key, match=models.MatchAny(any=values))


def same_thread(anchor: dict[str, Any]) -> list[models.Condition]:
    """Conditions selecting the thread of a point's payload: ``(user_id, thread_id)``, so that
    another user's thread of the same id is never reached."""
    return [
        models.FieldCondition(key="user_id", match=models.MatchValue(value=anchor["user_id"])),
        models.FieldCondition(key="thread_id", match=models.MatchValue(value=anchor["thread_id"])),
    ]


def with_conditions(base: models.Filter, *extra: models.Condition) -> models.Filter:
    """A copy of a filter with more ``must`` conditions."""
    return models.Filter(must=[*(base.must or []), *extra])


__all__ = [
    "FILTER_KEYS",
    "PAYLOAD_INDEXES",
    "meta_term",
    "meta_terms",
    "micros",
    "payload",
    "point_id",
    "same_thread",
    "to_filter",
    "with_conditions",
]
