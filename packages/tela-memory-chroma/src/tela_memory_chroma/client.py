"""Where a :class:`~tela_memory_chroma.ChromaIndex` lives: opening Chroma clients, reading
``chroma://`` URLs, and turning Chroma's errors into Tela Memory's."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, unquote, urlsplit

import chromadb
from chromadb.api import ClientAPI
from chromadb.config import Settings

from tela_memory.errors import BackendUnavailable, InvalidArgumentError, SchemaError

#: URL schemes of :func:`parse_url` (also the ``tela_memory.indexes`` entry points' names).
SCHEMES = ("chroma", "chroma+http", "chroma+https")

_F = TypeVar("_F", bound=Callable[..., Any])

_CORRUPT = ("not a database", "malformed", "corrupt", "no such table", "unsupported file format")


@dataclass(frozen=True)
class Target:
    """One way to reach Chroma: a folder, a server, an in-process ephemeral client."""

    path: str | None = None
    url: str | None = None
    ephemeral: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """Where the data is, for messages."""
        if self.url is not None:
            return self.url
        if self.path is not None:
            return f"path {self.path}"
        return "ephemeral (in process)"


def settings() -> Settings:
    """Client settings: no telemetry (nothing leaves the machine)."""
    return Settings(anonymized_telemetry=False)


def open_client(target: Target) -> ClientAPI:
    """Open the client for a target; a clear ``TelaMemoryError`` if Chroma cannot."""
    try:
        if target.url is not None:
            parts = urlsplit(target.url)
            ssl = parts.scheme == "https"
            return chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if ssl else 8000),
                ssl=ssl,
                headers=target.headers or None,
                settings=settings(),
            )
        if target.path is not None:
            folder = Path(target.path)
            if folder.exists() and not folder.is_dir():
                raise BackendUnavailable(f"Chroma path {target.path} is a file, not a folder")
            folder.mkdir(parents=True, exist_ok=True)
            return chromadb.PersistentClient(path=str(folder), settings=settings())
        return chromadb.EphemeralClient(settings=settings())
    except BackendUnavailable:
        raise
    except Exception as exc:
        raise failure(f"cannot open Chroma at {target.describe()}", exc) from exc


def failure(what: str, exc: BaseException) -> BackendUnavailable:
    """The Tela Memory error for a Chroma failure: ``SchemaError`` when the stored data is
    corrupt or not Chroma's, else ``BackendUnavailable``."""
    text = f"{type(exc).__name__}: {exc}"
    if any(mark in str(exc).lower() for mark in _CORRUPT):
        return SchemaError(
            f"{what}: {text}; the folder is corrupt or not a Chroma folder (restore it from a "
            "backup, or point the index at an empty folder and index again)"
        )
    return BackendUnavailable(f"{what}: {text}")


class Stale(Exception):
    """A collection an index had open was deleted meanwhile (by another client)."""


def fresh(method: _F) -> _F:
    """Run an index method once more, collections opened anew, if one it had open was
    deleted meanwhile (the index raises :class:`Stale` after forgetting its open ones)."""

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Stale:
            try:
                return method(self, *args, **kwargs)
            except Stale as exc:
                raise BackendUnavailable(
                    f"Chroma at {self.address}: collections of index {self.name!r} keep being "
                    "deleted while in use"
                ) from exc

    return cast(_F, run)


def parse_url(url: str) -> tuple[Target, dict[str, Any]]:
    """A target and options from a URL.

    - ``chroma:///abs/folder`` or ``chroma://./relative`` (persistent client),
    - ``chroma://:memory:`` (ephemeral client, data for the life of the process),
    - ``chroma+http://host:8000`` / ``chroma+https://host`` (a Chroma server);

    with ``?name=...`` for the index's name (prefix of its collections).
    """
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidArgumentError(f"not a Chroma URL (schemes {SCHEMES}): {url!r}")
    query = parse_qs(parts.query)
    unknown = sorted(set(query) - {"name"})
    if unknown:
        raise InvalidArgumentError(f"unknown option(s) {unknown} in {url!r}; known: ['name']")
    options: dict[str, Any] = {}
    if "name" in query:
        options["name"] = query["name"][-1]
    if parts.scheme != "chroma":
        server = f"{parts.scheme.removeprefix('chroma+')}://{parts.netloc}{parts.path}"
        return Target(url=server.rstrip("/")), options
    if parts.netloc == ":memory:":
        return Target(ephemeral=True), options
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise InvalidArgumentError(f"a Chroma URL needs a folder or :memory: : {url!r}")
    return Target(path=path), options


__all__ = [
    "SCHEMES",
    "Stale",
    "Target",
    "failure",
    "fresh",
    "open_client",
    "parse_url",
    "settings",
]
