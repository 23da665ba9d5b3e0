"""Sans-I/O index operations and their two runners, so sync and async share every line of logic.

An operation is a generator that yields :class:`Batch` requests (statements sent together,
pipelined, in one round trip) or :class:`UseVectors`, and receives their replies.
:func:`run_sync` and :func:`run_async` drive one operation inside one transaction on one
connection. Driver errors become Tela Memory errors here, in one place.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import psycopg
from pgvector.psycopg import register_vector, register_vector_async
from psycopg import errors as pg_errors

from tela_memory.errors import (
    BackendUnavailable,
    SchemaError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory_postgres._index_connection import Connections
from tela_memory_postgres._index_sql import Query

T = TypeVar("T")

Params = Mapping[str, Any]


class MissingExtensionError(UnsupportedOperation):
    """The server has no pgvector (the ``vector`` extension), or it may not be created."""


@dataclass(frozen=True, slots=True)
class Stmt:
    """One statement; ``many`` runs it once per parameter set (``executemany``)."""

    query: Query
    params: Params | None = None
    fetch: Literal["rows", "rowcount", "none"] = "rows"
    many: Sequence[Params] | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Statements sent together; the reply is the list of their results (rows, a rowcount or
    ``None``)."""

    stmts: tuple[Stmt, ...]
    context: str = ""


@dataclass(frozen=True, slots=True)
class UseVectors:
    """Make the connection read and write pgvector types (once per connection)."""

    context: str = "loading the pgvector types"


Request = Batch | UseVectors
Op = Generator[Request, Any, T]


def _hint(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = getattr(diag, "message_hint", None) if diag is not None else None
    return f"{text} (hint: {hint})" if hint else text


def wrap(exc: Exception, context: str, address: str) -> TelaMemoryError:
    """A driver error as the Tela Memory error that says what to do."""
    where = f" ({context})" if context else ""
    if isinstance(exc, pg_errors.UndefinedFile | pg_errors.FeatureNotSupported) or (
        isinstance(exc, psycopg.ProgrammingError) and "vector type not found" in str(exc)
    ):
        return MissingExtensionError(
            f"PostgreSQL at {address} has no pgvector (the 'vector' extension){where}: install "
            "pgvector on the server (https://github.com/pgvector/pgvector#installation) and run "
            "CREATE EXTENSION vector in this database, or use PostgresIndex without an embedder "
            f"(full-text search only). Server said: {_hint(exc)}"
        )
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return BackendUnavailable(
            f"PostgreSQL at {address} refused{where}: {_hint(exc)}. The role needs CREATE on "
            "the schema for the first write (or a table made by its owner, see "
            "PostgresIndex.grant) and, for an embedder, the 'vector' extension created by a "
            "superuser (CREATE EXTENSION vector)"
        )
    if isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
        return SchemaError(
            f"PostgreSQL at {address}: the index's tables changed under it{where}: {_hint(exc)}"
        )
    if isinstance(exc, psycopg.OperationalError):
        return BackendUnavailable(f"PostgreSQL at {address} is unreachable{where}: {_hint(exc)}")
    return BackendUnavailable(f"PostgreSQL at {address} failed{where}: {_hint(exc)}")


def _reply(cur: psycopg.Cursor[Any] | psycopg.AsyncCursor[Any], stmt: Stmt) -> Any:
    if stmt.fetch == "rowcount":
        return cur.rowcount
    return None


def run_sync(conns: Connections, op: Op[T]) -> T:
    """Drive ``op`` on a sync connection, in one transaction."""
    context = ""
    try:
        with conns.sync() as conn, conn.transaction():
            try:
                req = op.send(None)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            while True:
                context = req.context
                reply = _exec_sync(conn, req)
                try:
                    req = op.send(reply)
                except StopIteration as stop:
                    result: T = stop.value
                    break
        return result
    except psycopg.Error as exc:
        raise wrap(exc, context, conns.address) from exc


def _exec_sync(conn: psycopg.Connection[Any], req: Request) -> Any:
    if isinstance(req, UseVectors):
        if conn.adapters.types.get("vector") is None:
            register_vector(conn)
        return None
    out: list[Any] = []
    if len(req.stmts) == 1:
        stmt = req.stmts[0]
        cur = conn.cursor()
        if stmt.many is not None:
            cur.executemany(stmt.query, stmt.many)
        else:
            cur.execute(stmt.query, stmt.params)
        out.append(cur.fetchall() if stmt.fetch == "rows" else _reply(cur, stmt))
        return out
    with conn.pipeline():
        curs = []
        for stmt in req.stmts:
            cur = conn.cursor()
            if stmt.many is not None:
                cur.executemany(stmt.query, stmt.many)
            else:
                cur.execute(stmt.query, stmt.params)
            curs.append(cur)
    for cur, stmt in zip(curs, req.stmts, strict=True):
        out.append(cur.fetchall() if stmt.fetch == "rows" else _reply(cur, stmt))
    return out


async def run_async(conns: Connections, op: Op[T]) -> T:
    """Drive ``op`` on an async connection, in one transaction."""
    context = ""
    try:
        async with conns.aconn() as conn, conn.transaction():
            try:
                req = op.send(None)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
            while True:
                context = req.context
                reply = await _exec_async(conn, req)
                try:
                    req = op.send(reply)
                except StopIteration as stop:
                    result: T = stop.value
                    break
        return result
    except psycopg.Error as exc:
        raise wrap(exc, context, conns.address) from exc


async def _exec_async(conn: psycopg.AsyncConnection[Any], req: Request) -> Any:
    if isinstance(req, UseVectors):
        if conn.adapters.types.get("vector") is None:
            await register_vector_async(conn)
        return None
    out: list[Any] = []
    if len(req.stmts) == 1:
        stmt = req.stmts[0]
        cur = conn.cursor()
        if stmt.many is not None:
            await cur.executemany(stmt.query, stmt.many)
        else:
            await cur.execute(stmt.query, stmt.params)
        out.append(await cur.fetchall() if stmt.fetch == "rows" else _reply(cur, stmt))
        return out
    async with conn.pipeline():
        curs = []
        for stmt in req.stmts:
            cur = conn.cursor()
            if stmt.many is not None:
                await cur.executemany(stmt.query, stmt.many)
            else:
                await cur.execute(stmt.query, stmt.params)
            curs.append(cur)
    for cur, stmt in zip(curs, req.stmts, strict=True):
        out.append(await cur.fetchall() if stmt.fetch == "rows" else _reply(cur, stmt))
    return out


__all__ = [
    "Batch",
    "MissingExtensionError",
    "Op",
    "Request",
    "Stmt",
    "UseVectors",
    "run_async",
    "run_sync",
    "wrap",
]
