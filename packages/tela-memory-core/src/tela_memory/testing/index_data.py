"""Shared data of the index suites: a fixed start time, hostile strings, message makers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tela_memory.messages import Message, Role

T0 = datetime(2024, 1, 1, tzinfo=UTC)

ADVERSARIAL = [
    "x' OR '1'='1",
    'a"b',
    "*",
    "%",
    "_",
    "\\",
    "OR",
    "NOT alice",
    "scope : *",
    "u" + "0" * 40,
    "unull",
    "NEAR(a b)",
    "alice\n",
    "ålice ☃",
    "); DROP TABLE recall_docs; --",
    "$.user",
    "{}",
    "",
]


def uid(prefix: str = "u") -> str:
    """A unique name for this test run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def msg(
    text: str,
    *,
    user: str | None,
    thread: str,
    role: Role = Role.USER,
    at: int = 0,
    metadata: dict[str, Any] | None = None,
    content: list[Any] | None = None,
) -> Message:
    """A stored-looking message (thread and user set) created ``at`` minutes after T0."""
    return Message(
        role=role,
        content=content if content is not None else text,
        user_id=user,
        thread_id=thread,
        created_at=T0 + timedelta(minutes=at),
        metadata=metadata or {},
    )


__all__ = ["ADVERSARIAL", "T0", "msg", "uid"]
