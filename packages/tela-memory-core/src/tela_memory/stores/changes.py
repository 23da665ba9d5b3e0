"""The store's change feed: what happened to stored messages, in order, for followers.

Followers (indexers, extractors, caches) read ``store.changes(since=cursor)`` and keep the
returned cursor; a follower that crashes resumes from the last cursor it persisted and sees
every later change at least once (applying a change twice must be harmless).

Events name the user and thread they concern, so a follower can act on one user's data
without reading anybody else's. Reading the feed is an operator's act (it spans every user),
like :meth:`~tela_memory.stores.base.MessageStore.erase_user`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tela_memory.errors import TelaMemoryError

ChangeKind = Literal["append", "update", "delete", "thread_deleted", "user_erased"]
"""``append`` / ``update`` / ``delete``: one message (``message_id`` set); ``thread_deleted``:
a whole thread (``message_id`` is ``None``); ``user_erased``: every thread of a user
(``thread_id`` and ``message_id`` are ``None``)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One event of the feed.

    Attributes:
        kind: what happened (:data:`ChangeKind`).
        user_id: whose data it concerns.
        thread_id: the thread (in ``user_id``'s namespace), ``None`` for ``user_erased``.
        message_id: the message, for ``append``, ``update`` and ``delete``.
        at: when the store recorded it (the store's clock).
    """

    kind: ChangeKind
    user_id: str
    thread_id: str | None
    message_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """A page of the feed.

    Attributes:
        changes: the events after the cursor that was passed, oldest first.
        cursor: an opaque string; pass it as ``since=`` to read what comes next (it is the
            same cursor when nothing happened).
        more: whether more events were already waiting than ``limit`` let through.
    """

    changes: list[Change]
    cursor: str
    more: bool = False


class ChangeFeedGapError(TelaMemoryError):
    """The cursor points before what the feed still retains (or is not one of this store's):
    some events are gone, so the follower must rebuild (for an indexer: ``reindex()``)."""


__all__ = ["Change", "ChangeBatch", "ChangeFeedGapError", "ChangeKind"]
