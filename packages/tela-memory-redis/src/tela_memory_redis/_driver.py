"""Sans-I/O operations and their two runners, so sync and async share every line of logic.

An operation is a generator that yields :class:`Script` or :class:`Cmd` requests and receives
their replies; :func:`run_sync` and :func:`run_async` drive it with a redis-py client or a
``redis.asyncio`` client. Driver errors become Tela Memory errors here, in one place.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import redis.exceptions

import redis
from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidMessageError,
    NotFoundError,
    SchemaError,
    TelaMemoryError,
)

T = TypeVar("T")


class Script:
    """Run a Lua script (EVALSHA, loading it on NOSCRIPT)."""

    __slots__ = ("args", "context", "keys", "sha", "source")

    def __init__(self, source: str, keys: list[str], args: list[Any], context: str = "") -> None:
        self.source = source
        self.keys = keys
        self.args = args
        self.context = context
        self.sha = _sha(source)


@dataclass(frozen=True)
class Cmd:
    """Run one Redis command."""

    args: tuple[Any, ...]
    context: str = ""


@dataclass(frozen=True)
class Batch:
    """Run independent commands in one pipelined round trip (not a transaction; on a
    cluster redis-py splits it by node). The reply is the list of replies."""

    cmds: tuple[Cmd, ...]
    context: str = ""


@dataclass(frozen=True)
class Sleep:
    """Wait (another process holds a lock this operation needs); the reply is ``None``."""

    seconds: float
    context: str = ""


Request = Script | Cmd | Batch | Sleep
Op = Generator[Request, Any, T]

_SHAS: dict[str, str] = {}
# redis-py's cluster client raises RedisClusterException (no node reachable, slot not covered),
# which does not derive from RedisError
_DRIVER_ERRORS = (redis.exceptions.RedisError, redis.exceptions.RedisClusterException)


def _sha(source: str) -> str:
    sha = _SHAS.get(source)
    if sha is None:
        sha = _SHAS[source] = hashlib.sha1(source.encode()).hexdigest()
    return sha


def _wrap(exc: Exception, req: Request, address: str) -> TelaMemoryError:
    where = f" ({req.context})" if req.context else ""
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return BackendUnavailable(f"Redis at {address} is unreachable{where}: {exc}")
    if isinstance(exc, redis.exceptions.RedisClusterException):  # not a RedisError
        return BackendUnavailable(f"Redis Cluster at {address} failed{where}: {exc}")
    text = str(exc)
    if text.startswith("TELA ") or " TELA " in text:
        body = text[text.index("TELA ") + 5 :]
        kind, _, msg = body.partition(" ")
        msg = msg.split(" script:")[0]
        cls = {"NOTFOUND": NotFoundError, "CONFLICT": ConflictError}.get(kind, InvalidMessageError)
        return cls(f"{req.context}: {msg}" if req.context else msg)
    if "WRONGTYPE" in text:
        return SchemaError(
            f"Redis at {address}: a key{where} holds the wrong kind of value (written by "
            f"something else under this prefix?): {text}"
        )
    if isinstance(exc, redis.exceptions.ResponseError) and "unknown command" in text.lower():
        return BackendUnavailable(f"Redis at {address} lacks a command{where}: {text}")
    return BackendUnavailable(f"Redis at {address} failed{where}: {text}")


def _chained(exc: Exception, req: Request, address: str) -> TelaMemoryError:
    wrapped = _wrap(exc, req, address)
    wrapped.__cause__ = exc
    return wrapped


def run_sync(client: Any, op: Op[T], address: str) -> T:
    """Drive ``op`` with a sync redis-py client."""
    reply: Any = None
    try:
        req = op.send(None)
        while True:
            try:
                reply = _exec_sync(client, req)
            except _DRIVER_ERRORS as exc:
                req = op.throw(_chained(exc, req, address))
                continue
            req = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


def _exec_sync(client: Any, req: Request) -> Any:
    if isinstance(req, Sleep):
        time.sleep(req.seconds)
        return None
    if isinstance(req, Cmd):
        return client.execute_command(*req.args)
    if isinstance(req, Batch):
        if not req.cmds:
            return []
        pipe = client.pipeline(transaction=False)
        for cmd in req.cmds:
            pipe.execute_command(*cmd.args)
        return pipe.execute()
    argv = (len(req.keys), *req.keys, *req.args)
    try:
        return client.evalsha(req.sha, *argv)
    except redis.exceptions.NoScriptError:
        client.script_load(req.source)
        return client.evalsha(req.sha, *argv)


async def run_async(client: Any, op: Op[T], address: str) -> T:
    """Drive ``op`` with a ``redis.asyncio`` client."""
    reply: Any = None
    try:
        req = op.send(None)
        while True:
            try:
                reply = await _exec_async(client, req)
            except _DRIVER_ERRORS as exc:
                req = op.throw(_chained(exc, req, address))
                continue
            req = op.send(reply)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def _exec_async(client: Any, req: Request) -> Any:
    if isinstance(req, Sleep):
        await asyncio.sleep(req.seconds)
        return None
    if isinstance(req, Cmd):
        return await client.execute_command(*req.args)
    if isinstance(req, Batch):
        if not req.cmds:
            return []
        pipe = client.pipeline(transaction=False)
        for cmd in req.cmds:
            pipe.execute_command(*cmd.args)
        return await pipe.execute()
    argv = (len(req.keys), *req.keys, *req.args)
    try:
        return await client.evalsha(req.sha, *argv)
    except redis.exceptions.NoScriptError:
        await client.script_load(req.source)
        return await client.evalsha(req.sha, *argv)


def text(value: Any) -> str:
    """A reply value as ``str`` (replies are bytes; ``None`` / ``False`` become ``""``)."""
    if value is None or value is False:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
