"""Records of recall: the search filter, hits, and query validation shared by every index."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tela_memory.messages import Message, Role, text_problem, value_problem
from tela_memory.recall.errors import InvalidQueryError

MetaScalar: TypeAlias = str | int | bool
"""A metadata filter value: strings, integers and booleans compare by type and value."""

SearchMode: TypeAlias = Literal["lexical", "dense", "hybrid"]

ThreadKey: TypeAlias = tuple[str | None, str | None]
"""A thread's identity, ``(user_id, thread_id)``: thread ids are only unique within a user, so
Bob's ``"t1"`` and Ada's ``"t1"`` are two threads (see :func:`thread_key`)."""

MAX_QUERY_CHARS = 8192
"""Longer queries are rejected: they are documents, not questions."""
MAX_K = 1000
MAX_IDS = 100_000

_META_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class SearchFilter(BaseModel):
    """What a search may return; every backend enforces it inside its query.

    All fields are optional and combine with AND; a list means "any of". ``None`` means
    "do not filter on this". An index applies the filter exactly as given; the readers built
    on it (:class:`~tela_memory.recall.recaller.Recaller`, the retrievers) always set
    ``user_id`` (or say ``all_users=True``), so no hit of another user can come back.

    Thread ids live inside a user's namespace: ``thread_ids`` names threads *of*
    ``user_id``. Without ``user_id`` (an operator's filter) they match a thread of that id in
    every user's namespace.

    Attributes:
        user_id: only this user's messages.
        thread_ids: only these threads (of ``user_id``).
        message_ids: only these messages (how a branch is searched: pass the ids on it).
        roles: only these roles.
        since: created at or after (inclusive).
        until: created before (exclusive).
        metadata: top-level message metadata equal to a value (or any of a list of values);
            keys are 1-64 characters of ``A-Z a-z 0-9 _ -``; values are str, int or bool.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str | None = None
    thread_ids: tuple[str, ...] | None = None
    message_ids: tuple[str, ...] | None = None
    roles: tuple[Role, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    metadata: dict[str, MetaScalar | tuple[MetaScalar, ...]] = Field(default_factory=dict)

    @field_validator("thread_ids", "message_ids", mode="before")
    @classmethod
    def _id_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value

    @field_validator("message_ids")
    @classmethod
    def _bounded(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and len(value) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} message ids, got {len(value)}")
        return value

    @field_validator("roles", mode="before")
    @classmethod
    def _role_list(cls, value: Any) -> Any:
        if isinstance(value, str | Role):
            return (value,)
        return value

    @field_validator("since", "until")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("metadata", mode="before")
    @classmethod
    def _meta(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        out: dict[str, Any] = {}
        for key, val in value.items():
            if not isinstance(key, str) or not _META_KEY.match(key):
                raise ValueError(
                    f"metadata filter key {key!r} is not allowed: use 1-64 characters of "
                    "A-Z a-z 0-9 _ -"
                )
            out[key] = tuple(val) if isinstance(val, list | set | frozenset) else val
            for item in out[key] if isinstance(out[key], tuple) else (out[key],):
                if isinstance(item, float) or item is None:
                    raise ValueError(
                        f"metadata filter {key!r}: values must be str, int or bool, got {item!r}"
                    )
        return out

    @model_validator(mode="after")
    def _storable(self) -> SearchFilter:
        # what a backend cannot bind (lone surrogates, integers beyond 64 bits) is refused here,
        # not by the driver
        for name, value in self.__dict__.items():
            if name in ("since", "until"):
                continue
            problem = value_problem(value, name)
            if problem is not None:
                raise ValueError(problem)
        return self

    @classmethod
    def coerce(cls, value: SearchFilter | Mapping[str, Any] | None) -> SearchFilter:
        """Accept a filter, a mapping of its fields, or ``None``; raise ``InvalidQueryError``."""
        if value is None:
            return cls()
        if isinstance(value, SearchFilter):
            return value
        if not isinstance(value, Mapping):
            raise InvalidQueryError(f"a filter must be a SearchFilter or a mapping, not {value!r}")
        unknown = sorted(set(value) - set(cls.model_fields))
        if unknown:
            raise InvalidQueryError(
                f"unknown filter field(s) {unknown}; known: {sorted(cls.model_fields)}"
            )
        return cls(**dict(value))  # __init__ raises InvalidQueryError

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidQueryError(_explain(exc)) from exc

    def narrowed(self, **fields: Any) -> SearchFilter:
        """A copy with some fields replaced (validated)."""
        return SearchFilter(**{**self.model_dump(), **fields})

    def matches(self, message: Message) -> bool:
        """Whether a message passes this filter (reference semantics for backends and tests)."""
        if self.user_id is not None and message.user_id != self.user_id:
            return False
        if self.thread_ids is not None and message.thread_id not in self.thread_ids:
            return False
        if self.message_ids is not None and message.id not in self.message_ids:
            return False
        if self.roles is not None and message.role not in self.roles:
            return False
        if self.since is not None and message.created_at < self.since:
            return False
        if self.until is not None and message.created_at >= self.until:
            return False
        for key, want in self.metadata.items():
            if key not in message.metadata:
                return False
            have = message.metadata[key]
            options = want if isinstance(want, tuple) else (want,)
            if not any(type(have) is type(o) and have == o for o in options):
                return False
        return True


class Hit(BaseModel):
    """One search result: the message, its searchable text and its scores (higher is better).

    ``lexical_score`` (BM25) and ``dense_score`` (cosine) are given by the ranker that found
    the hit; ``score`` is what the list is sorted by.
    """

    model_config = ConfigDict(frozen=True)

    message: Message
    text: str
    score: float
    lexical_score: float | None = None
    dense_score: float | None = None


def thread_key(message: Message) -> ThreadKey:
    """The thread a message belongs to, as ``(user_id, thread_id)``."""
    return message.user_id, message.thread_id


def check_query(query: str) -> str:
    """Validate a query string; return it stripped."""
    if not isinstance(query, str):
        raise InvalidQueryError(f"a query must be a string, not {type(query).__name__}")
    stripped = query.strip()
    problem = text_problem(stripped)
    if problem is not None:
        raise InvalidQueryError(f"the query has a {problem}")
    if not stripped:
        raise InvalidQueryError("the query is empty")
    if len(stripped) > MAX_QUERY_CHARS:
        raise InvalidQueryError(
            f"the query is {len(stripped)} characters long; the limit is {MAX_QUERY_CHARS}"
        )
    return stripped


def check_k(k: int) -> int:
    """Validate a result count."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQueryError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    return k


def check_ids(ids: Sequence[str]) -> list[str]:
    """Validate a list of message ids."""
    if isinstance(ids, str):
        ids = [ids]
    out = list(ids)
    if not all(isinstance(i, str) and i for i in out):
        raise InvalidQueryError("message ids must be non-empty strings")
    return out


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "invalid search filter: " + "; ".join(parts)


__all__ = [
    "MAX_K",
    "MAX_QUERY_CHARS",
    "Hit",
    "MetaScalar",
    "SearchFilter",
    "SearchMode",
    "ThreadKey",
    "check_ids",
    "check_k",
    "check_query",
    "thread_key",
]
