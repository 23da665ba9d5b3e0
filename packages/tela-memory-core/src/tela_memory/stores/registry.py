"""``open_store(url)``: find the installed backend for a URL scheme through entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlsplit

from tela_memory.errors import BackendUnavailable, MissingDependency, TelaMemoryError
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


@cache
def _backends() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=STORE_GROUP)}


def open_store(url: str | None = None, **options: Any) -> MessageStore:
    """Open a message store by URL; ``None`` opens the embedded default SQLite file.

    Examples: ``sqlite:///path/to/chat.db``, ``sqlite:///:memory:``, ``memory://``,
    ``redis://localhost:6379/0`` (with ``tela-memory[redis]``). No I/O happens until first use.
    """
    if url is None:
        url = "sqlite://"
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise TelaMemoryError(f"store URL {url!r} has no scheme; try 'sqlite:///{url}'")
    entry = _backends().get(scheme)
    if entry is None:
        extra = KNOWN_EXTRAS.get(scheme)
        if extra:
            raise MissingDependency(f"tela-memory-{extra}", extra)
        known = ", ".join(sorted(_backends())) or "none"
        raise TelaMemoryError(f"no store backend for scheme {scheme!r} (installed: {known})")
    try:
        backend = entry.load()
    except ImportError as exc:
        raise BackendUnavailable(f"backend for {scheme!r} failed to import: {exc}") from exc
    store: MessageStore = backend.from_url(url, **options)
    return store


__all__ = ["open_store"]
