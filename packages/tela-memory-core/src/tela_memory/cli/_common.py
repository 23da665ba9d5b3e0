"""Shared options and helpers of the CLI commands: ``--db``, ``--json``, output, progress."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tela_memory.stores.base import DEFAULT_USER, MessageStore
from tela_memory.stores.scoped import UserStore

DB_ENV = "TELA_MEMORY_DB"

console = Console()
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar=DB_ENV,
        help="Store URL (sqlite:///path.db, memory://, redis://...). "
        "Default: the embedded SQLite file.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
UserOption = Annotated[
    str,
    typer.Option(
        "--user",
        "-u",
        help=f"The acting user: whose threads this command reads and writes "
        f"(default: {DEFAULT_USER!r}).",
    ),
]
"""``--user``: the acting user. Thread ids live in their user's namespace, so a command sees
only this user's threads; another user's thread looks exactly like a missing one."""


@contextmanager
def open_db(url: str | None) -> Iterator[MessageStore]:
    """Open the store named by ``--db`` (default: the embedded SQLite file) and close it."""
    from tela_memory.stores.registry import open_store

    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def open_user(url: str | None, user: str) -> Iterator[UserStore]:
    """Open the store named by ``--db`` as seen by the acting user, and close it."""
    with open_db(url) as store:
        yield store.for_user(user)


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def emit_json(data: Any) -> None:
    """Print ``data`` as one JSON document on stdout (pydantic models and datetimes allowed)."""
    typer.echo(json.dumps(data, default=_default, ensure_ascii=False, indent=2))


def progress(*, disable: bool = False) -> Progress:
    """A rich progress bar on stderr (so that stdout stays parseable)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=disable,
        transient=False,
    )


def plural(n: int, word: str) -> str:
    """``word`` or ``word + "s"`` for a count."""
    return word if n == 1 else f"{word}s"


def default_db_url() -> str | None:
    """The store URL used when ``--db`` is absent (``$TELA_MEMORY_DB`` or ``None``)."""
    return os.environ.get(DB_ENV)


__all__ = [
    "DB_ENV",
    "DEFAULT_USER",
    "DbOption",
    "JsonOption",
    "UserOption",
    "console",
    "default_db_url",
    "emit_json",
    "err_console",
    "open_db",
    "open_user",
    "plural",
    "progress",
]
