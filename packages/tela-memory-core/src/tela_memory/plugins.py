"""Backends found by URL scheme through entry points: what :func:`~tela_memory.open_store`
and :func:`~tela_memory.recall.open_index` share.

A package registers a class under an entry-point group (``tela_memory.stores``,
``tela_memory.indexes``) with the scheme as the name; the class builds itself with
``from_url(url, **options)`` and does no I/O there.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any
from urllib.parse import urlsplit

from tela_memory.errors import BackendUnavailable, MissingDependency, TelaMemoryError


@cache
def backends(group: str) -> dict[str, EntryPoint]:
    """The installed backends of an entry-point group, by scheme."""
    return {ep.name: ep for ep in entry_points(group=group)}


def from_url(group: str, url: str, what: str, extras: dict[str, str], **options: Any) -> Any:
    """Build the backend of ``group`` registered for ``url``'s scheme.

    Raises:
        MissingDependency: the scheme belongs to a known extra that is not installed.
        TelaMemoryError: no backend serves the scheme (the message lists those installed).
        BackendUnavailable: the backend's package fails to import.
    """
    scheme = urlsplit(url).scheme.lower()
    if not scheme:
        raise TelaMemoryError(f"{what} URL {url!r} has no scheme; try 'sqlite:///{url}'")
    entry = backends(group).get(scheme)
    if entry is None:
        extra = extras.get(scheme)
        if extra:
            raise MissingDependency(f"tela-memory-{extra}", extra)
        known = ", ".join(sorted(backends(group))) or "none"
        raise TelaMemoryError(f"no {what} backend for scheme {scheme!r} (installed: {known})")
    try:
        backend = entry.load()
    except ImportError as exc:
        raise BackendUnavailable(f"{what} backend for {scheme!r} failed to import: {exc}") from exc
    return backend.from_url(url, **options)
