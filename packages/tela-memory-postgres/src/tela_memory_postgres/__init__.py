"""Tela Memory on PostgreSQL: message store (psycopg 3, sync and async from one
implementation) with branches, a change feed and versioned schema migrations; the record
store in the same database; a pgvector + full-text index.

``PostgresRecords`` and ``PostgresIndex`` are imported on first access only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tela_memory_postgres.store import PostgresCursorStore, PostgresStore

if TYPE_CHECKING:
    from tela_memory_postgres.index import PostgresIndex
    from tela_memory_postgres.records import PostgresRecords


def __getattr__(name: str) -> Any:
    if name == "PostgresRecords":
        from tela_memory_postgres.records import PostgresRecords

        return PostgresRecords
    if name == "PostgresIndex":
        from tela_memory_postgres.index import PostgresIndex

        return PostgresIndex
    raise AttributeError(f"module 'tela_memory_postgres' has no attribute {name!r}")


__all__ = ["PostgresCursorStore", "PostgresIndex", "PostgresRecords", "PostgresStore"]
