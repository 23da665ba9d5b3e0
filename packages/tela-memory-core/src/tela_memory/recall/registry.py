"""``open_index(url)``: find the installed recall index for a URL scheme through entry
points, as :func:`~tela_memory.stores.registry.open_store` does for stores."""

from __future__ import annotations

from typing import Any

from tela_memory.plugins import from_url
from tela_memory.recall.index import Index

INDEX_GROUP = "tela_memory.indexes"

#: Schemes served by packages that may not be installed, and the extra that brings each.
KNOWN_EXTRAS = {
    "chroma": "chroma",
    "chroma+http": "chroma",
    "chroma+https": "chroma",
    "postgres": "postgres",
    "postgresql": "postgres",
}


def open_index(url: str, **options: Any) -> Index:
    """Open a recall index by URL (options such as ``embedder=`` go to the index).

    Examples: ``sqlite:///recall.db``, ``sqlite:///:memory:``, ``chroma:///folder``,
    ``chroma+http://localhost:8000`` (with ``tela-memory[chroma]``),
    ``postgresql://host/db`` (pgvector + full text, with ``tela-memory[postgres]``). No I/O
    happens until first use. Follow a store with ``open_index(url).follow(store)``.
    """
    index: Index = from_url(INDEX_GROUP, url, "index", KNOWN_EXTRAS, **options)
    return index


__all__ = ["open_index"]
