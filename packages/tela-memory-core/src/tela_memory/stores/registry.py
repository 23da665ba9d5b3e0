"""``open_store(url)``: find the installed backend for a URL scheme through entry points."""

from __future__ import annotations

from typing import Any

from tela_memory.plugins import from_url
from tela_memory.stores.base import MessageStore

STORE_GROUP = "tela_memory.stores"

#: Schemes served by packages that may not be installed, and the extra that brings each.
KNOWN_EXTRAS = {
    "redis": "redis",
    "rediss": "redis",
    "redis+sentinel": "redis",
    "redis+cluster": "redis",
    "unix": "redis",
    "postgres": "postgres",
    "postgresql": "postgres",
}


def open_store(url: str | None = None, **options: Any) -> MessageStore:
    """Open a message store by URL; ``None`` opens the embedded default SQLite file.

    Examples: ``sqlite:///path/to/chat.db``, ``sqlite:///:memory:``, ``memory://``,
    ``redis://localhost:6379/0`` (with ``tela-memory[redis]``),
    ``postgresql://host/db`` (with ``tela-memory[postgres]``). No I/O happens until first use.
    """
    store: MessageStore = from_url(
        STORE_GROUP, url or "sqlite://", "store", KNOWN_EXTRAS, **options
    )
    return store


__all__ = ["open_store"]
