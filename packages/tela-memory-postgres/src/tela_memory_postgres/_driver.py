"""Sans-I/O operations and their two runners, so sync and async share every line of logic.

An operation is a generator that yields :class:`Fetch`, :class:`Exec` or :class:`Many`
requests (one SQL statement each, parameters apart) and receives their replies;
:func:`run_sync` and :func:`run_async` drive it on a psycopg ``Connection`` or
``AsyncConnection``, inside one transaction when the operation writes. Driver errors become
Tela Memory errors here, in one place (:func:`wrap`).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidMessageError,
    SchemaError,
    TelaMemoryError,
)

T = TypeVar("T")
Params = Sequence[Any] | dict[str, Any]


@dataclass(frozen=True, slots=True)
class Fetch:
    """Run one statement; the reply is its rows (a list of tuples)."""

    query: bytes
    params: Params = ()


@dataclass(frozen=True, slots=True)
class Exec:
    """Run one statement; the reply is its row count."""

    query: bytes
    params: Params = ()


@dataclass(frozen=True, slots=True)
class Many:
    """Run one statement once per parameter set (psycopg pipelines them); no reply."""

    query: bytes
    params: Sequence[Params]


@dataclass(frozen=True, slots=True)
class Send:
    """Run one statement whose result is not needed; no reply. In a write transaction it
    travels with what follows (at the end: with the ``COMMIT``, one round trip for both), so
    its error surfaces there."""

    query: bytes
    params: Params = ()


Request = Fetch | Exec | Many | Send
Op = Generator[Request, Any, T]


class RetryableConflict(ConflictError):
    """A serialization failure or deadlock: the transaction was rolled back and may be run
    again (the runners do, a few times, before raising it)."""


def wrap(exc: BaseException, address: str) -> TelaMemoryError:
    """A psycopg (or encoding) error as the Tela Memory error that says what to do."""
    if isinstance(exc, UnicodeEncodeError):
        return InvalidMessageError(f"a value is not valid UTF-8 text (lone surrogate?): {exc}")
    if isinstance(exc, pg_errors.UniqueViolation):
        if exc.diag.constraint_name == "messages_pkey":
            return ConflictError("a message id in this write is already stored")
        return ConflictError("a row with this key is already stored")
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return RetryableConflict(f"PostgreSQL at {address} aborted a conflicting write: {exc}")
    if isinstance(exc, pg_errors.LockNotAvailable | pg_errors.QueryCanceled):
        return ConflictError(f"PostgreSQL at {address} timed out waiting: {exc}")
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return BackendUnavailable(
            f"PostgreSQL at {address} refused: {exc}; grant the role rights on the store's schema"
        )
    if isinstance(exc, pg_errors.UndefinedTable | pg_errors.UndefinedColumn):
        return SchemaError(
            f"PostgreSQL at {address}: a Tela Memory table is missing or altered ({exc});"
            " was the schema dropped while the store was open?"
        )
    if isinstance(exc, psycopg.DataError):
        why = str(exc)
        if "NUL" in why or "0x00" in why:
            why = "PostgreSQL text cannot hold NUL characters (\\x00) in ids, names or titles"
        return InvalidMessageError(why)
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return BackendUnavailable(f"PostgreSQL at {address} is unreachable: {exc}")
    return BackendUnavailable(f"PostgreSQL at {address} failed: {exc}")


DRIVER_ERRORS = (psycopg.Error, UnicodeEncodeError)


def _chained(exc: BaseException, address: str) -> TelaMemoryError:
    wrapped = wrap(exc, address)
    wrapped.__cause__ = exc
    return wrapped


def _drive_sync(
    conn: psycopg.Connection[Any], op: Op[T], address: str, pipe: psycopg.Pipeline | None
) -> T:
    reply: Any = None
    try:
        req = op.send(None)
        while True:
            try:
                if isinstance(req, Fetch):
                    reply = conn.execute(req.query, req.params).fetchall()
                elif isinstance(req, Exec):
                    cur = conn.execute(req.query, req.params)
                    if pipe is not None:
                        pipe.sync()
                    reply = cur.rowcount
                elif isinstance(req, Send):
                    conn.execute(req.query, req.params)
                    reply = None
                else:
                    with conn.cursor() as many:
                        many.executemany(req.query, req.params)
                    reply = None
            except DRIVER_ERRORS as exc:
                req = op.throw(_chained(exc, address))  # the op may say it better
                continue
            req = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def _drive_async(
    conn: psycopg.AsyncConnection[Any],
    op: Op[T],
    address: str,
    pipe: psycopg.AsyncPipeline | None,
) -> T:
    reply: Any = None
    try:
        req = op.send(None)
        while True:
            try:
                if isinstance(req, Fetch):
                    cur = await conn.execute(req.query, req.params)
                    reply = await cur.fetchall()
                elif isinstance(req, Exec):
                    cur = await conn.execute(req.query, req.params)
                    if pipe is not None:
                        await pipe.sync()
                    reply = cur.rowcount
                elif isinstance(req, Send):
                    await conn.execute(req.query, req.params)
                    reply = None
                else:
                    async with conn.cursor() as many:
                        await many.executemany(req.query, req.params)
                    reply = None
            except DRIVER_ERRORS as exc:
                req = op.throw(_chained(exc, address))
                continue
            req = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


def run_sync(conn: psycopg.Connection[Any], op: Op[T], *, write: bool, address: str) -> T:
    """Drive ``op`` on a sync connection. A writing op runs in one transaction in pipeline
    mode (``BEGIN`` travels with the first statement, the ``COMMIT`` with the last
    :class:`Send`); a reading op statement by statement (in a transaction of its own when
    the connection is not in autocommit mode)."""
    try:
        if write:
            with conn.pipeline() as pipe, conn.transaction():
                return _drive_sync(conn, op, address, pipe)
        if not conn.autocommit:
            with conn.transaction():
                return _drive_sync(conn, op, address, None)
        return _drive_sync(conn, op, address, None)
    except DRIVER_ERRORS as exc:
        raise wrap(exc, address) from exc


async def run_async(
    conn: psycopg.AsyncConnection[Any], op: Op[T], *, write: bool, address: str
) -> T:
    """Async twin of :func:`run_sync`."""
    try:
        if write:
            async with conn.pipeline() as pipe, conn.transaction():
                return await _drive_async(conn, op, address, pipe)
        if not conn.autocommit:
            async with conn.transaction():
                return await _drive_async(conn, op, address, None)
        return await _drive_async(conn, op, address, None)
    except DRIVER_ERRORS as exc:
        raise wrap(exc, address) from exc


__all__ = [
    "DRIVER_ERRORS",
    "Exec",
    "Fetch",
    "Many",
    "Op",
    "RetryableConflict",
    "Send",
    "run_async",
    "run_sync",
    "wrap",
]
