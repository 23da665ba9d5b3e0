"""Rules every store applies the same way: argument checks and how appended messages are bound."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message, Role

_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
ORPHAN_LOOKBACK = 200
"""How far back (messages) a tool result's call is looked for on append."""


def check_id(kind: str, value: str) -> str:
    """Reject empty, over-long, control-character or non-UTF-8 (lone surrogate) ids and names
    with a clear error; any other string is an opaque id."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or not _encodes(value):
        shown = repr(value) if not isinstance(value, str) or len(value) <= 80 else "a longer one"
        raise InvalidMessageError(
            f"{kind} must be a non-empty string of at most 200 printable characters, got {shown}"
        )
    return value


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def as_list(messages: Message | Sequence[Message]) -> list[Message]:
    """Normalise the ``messages`` argument of ``append`` and type-check it."""
    items = [messages] if isinstance(messages, Message) else list(messages)
    for item in items:
        if not isinstance(item, Message):
            raise InvalidMessageError(f"append takes Message objects, got {type(item).__name__}")
    ids = [m.id for m in items]
    if len(set(ids)) != len(ids):
        raise InvalidMessageError("the same message id appears twice in one append")
    return items


def bind(
    messages: list[Message],
    *,
    thread_id: str,
    user_id: str,
    head_id: str | None,
) -> list[Message]:
    """Return the messages as they will be stored: thread, user and parent filled in, chained.

    A message that names another thread or another user is refused (the error repeats only
    what the caller passed in, never anything stored).
    """
    bound: list[Message] = []
    parent = head_id
    for m in messages:
        if m.thread_id is not None and m.thread_id != thread_id:
            raise InvalidMessageError(
                f"message {m.id} names thread {m.thread_id!r} but is appended to {thread_id!r}"
            )
        if m.user_id is not None and m.user_id != user_id:
            raise InvalidMessageError(
                f"message {m.id} names user {m.user_id!r} but is appended as {user_id!r}"
            )
        bound.append(
            m.model_copy(update={"thread_id": thread_id, "user_id": user_id, "parent_id": parent})
        )
        parent = m.id
    return bound


def check_tool_results(messages: Sequence[Message], earlier: Iterable[Message]) -> None:
    """Every tool result must answer a call made in this batch or shortly before it."""
    pending = {r.tool_call_id for m in messages for r in m.tool_results}
    if not pending:
        return
    known = {c.id for m in earlier for c in m.tool_calls}
    for m in messages:
        known.update(c.id for c in m.tool_calls)
        for r in m.tool_results:
            if r.tool_call_id not in known:
                raise InvalidMessageError(
                    f"orphan tool result in message {m.id}: no assistant tool call with id "
                    f"{r.tool_call_id!r} precedes it on this branch"
                )


def needs_history_for_tools(messages: Sequence[Message]) -> bool:
    """True when some tool result's call is not in the batch itself."""
    calls = {c.id for m in messages for c in m.tool_calls}
    return any(
        r.tool_call_id not in calls for m in messages if m.role is Role.TOOL for r in m.tool_results
    )


def check_json(value: object, what: str) -> str:
    """Serialise ``value`` to JSON or raise ``InvalidMessageError`` saying what was wrong."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(f"{what} must be JSON-serialisable: {exc}") from exc


def to_micros(value: datetime) -> int:
    """A datetime as integer microseconds since the epoch (UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value - _EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    """Inverse of :func:`to_micros`."""
    return _EPOCH + timedelta(microseconds=value)


def encode_cursor(updated: int, thread_id: str) -> str:
    """An opaque page cursor for ``list_threads``."""
    return base64.urlsafe_b64encode(f"{updated}|{thread_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Inverse of :func:`encode_cursor`; a bad cursor raises ``InvalidMessageError``."""
    try:
        updated, thread_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return int(updated), thread_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidMessageError(f"invalid page cursor {cursor!r}") from exc
