"""Errors specific to recall; all are ``TelaMemoryError`` subclasses."""

from __future__ import annotations

from tela_memory.errors import ConflictError, InvalidMessageError


class InvalidQueryError(InvalidMessageError):
    """A search query, filter or argument is malformed (empty query, unknown field, bad k)."""


class EmbeddingMismatchError(ConflictError):
    """Vectors do not fit the index: another model or another dimension built it.

    Rebuild with ``reindex`` (or open the index with the model that built it).
    """


__all__ = ["EmbeddingMismatchError", "InvalidQueryError"]
