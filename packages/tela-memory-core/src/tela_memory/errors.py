"""The error hierarchy: every error Tela Memory raises is a ``TelaMemoryError``."""

from __future__ import annotations


class TelaMemoryError(Exception):
    """Root of every error raised by Tela Memory."""


class InvalidArgumentError(TelaMemoryError, ValueError):
    """An argument is out of range or of the wrong kind (``ttl=0``, an unknown option, a
    malformed URL ...). It is a ``ValueError`` too, so callers (and the frameworks) that
    catch ``ValueError`` for bad arguments catch it."""


class InvalidMessageError(InvalidArgumentError):
    """A message, block or argument is malformed (unknown role, orphan tool result, ...)."""


class NotFoundError(TelaMemoryError, LookupError):
    """A thread, branch or message that was asked for does not exist."""


class ScopeError(TelaMemoryError, ValueError):
    """A reader was built or called without the user it acts for, and without the named
    cross-user opt-in (``all_users=True``); the message says which argument to pass."""


class ConflictError(TelaMemoryError):
    """A write lost a race or contradicts what is stored (duplicate id, moved head, ...)."""


class BackendUnavailable(TelaMemoryError):
    """A backend cannot be reached or opened (server down, read-only path, corrupt file)."""


class SchemaError(BackendUnavailable):
    """The stored data has a schema this version cannot use (newer or corrupt)."""


class UnsupportedOperation(TelaMemoryError, NotImplementedError):
    """A backend cannot do what was asked; the message says what to use instead."""


class MissingDependency(TelaMemoryError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` to fix it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f'{module!r} is not installed. Install it with: pip install "tela-memory[{extra}]"'
        )
        self.module = module
        self.extra = extra


__all__ = [
    "BackendUnavailable",
    "ConflictError",
    "InvalidArgumentError",
    "InvalidMessageError",
    "MissingDependency",
    "NotFoundError",
    "SchemaError",
    "ScopeError",
    "TelaMemoryError",
    "UnsupportedOperation",
]
