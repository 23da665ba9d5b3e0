"""The ``MessageStore`` contract every backend implements, and the records it returns.

**Ownership.** Every thread lives inside one user's namespace: a thread is identified by
``(user_id, thread_id)``, so Bob's ``"trip-42"`` and Ada's ``"trip-42"`` are two threads and
nobody can squat another user's id. Every thread operation therefore names the acting user
(``user_id=``, required, keyword-only); :meth:`MessageStore.for_user` binds it once and returns
a :class:`~tela_memory.stores.scoped.UserStore`, the handle applications and adapters use. A
thread, branch or message of another user is indistinguishable from a missing one (the same
``NotFoundError``, no owner named). Message ids stay unique across the whole store (they are
random by default); appending an id that exists anywhere is a ``ConflictError`` that names no
thread and no user. Cross-user work exists only as the named admin operations
:meth:`~MessageStore.erase_user` and :meth:`~MessageStore.apply_retention`.

Async-first with sync twins: each operation exists as ``name`` and ``aname`` with the same
arguments. A backend implements the sync side (and may override the async side with native
async I/O); the default async twin runs the sync one in a worker thread, never
``asyncio.run``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tela_memory.errors import InvalidMessageError, UnsupportedOperation
from tela_memory.messages import Message
from tela_memory.stores.changes import ChangeBatch
from tela_memory.stores.cursors import CursorStore, MemoryCursorStore

if TYPE_CHECKING:
    from tela_memory.stores.scoped import UserStore

DEFAULT_BRANCH = "main"
DEFAULT_USER = "local"
"""The user of single-user local use: the CLI acts as this user unless ``--user`` is given, and
threads written without an owner by Tela Memory before ownership was enforced belong to it."""


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class BranchInfo(_Record):
    """A named head in a thread's message tree."""

    thread_id: str
    name: str
    head_id: str | None
    is_default: bool = False
    forked_from: str | None = None
    created_at: datetime


class ThreadInfo(_Record):
    """A thread (one conversation) and its metadata."""

    id: str
    user_id: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    default_branch: str = DEFAULT_BRANCH
    message_count: int = 0
    created_at: datetime
    updated_at: datetime


class ThreadPage(_Record):
    """One page of a user's threads, newest activity first; pass ``next_cursor`` for more."""

    threads: tuple[ThreadInfo, ...]
    next_cursor: str | None = None


class ErasureReceipt(_Record):
    """What ``erase_user`` removed.

    ``scrubbed`` says which raw traces were wiped as well (SQLite: free pages, full-text
    segments, the WAL); ``traces_left`` what could not be, and why. Both are empty for stores
    that keep no such traces of their own."""

    user_id: str
    threads: int = 0
    messages: int = 0
    branches: int = 0
    extra: dict[str, int] = Field(default_factory=dict)
    scrubbed: tuple[str, ...] = ()
    traces_left: tuple[str, ...] = ()


class RetentionReport(_Record):
    """What ``apply_retention`` removed."""

    messages: int = 0
    threads: int = 0
    branches: int = 0


@dataclass(frozen=True, slots=True)
class UserData:
    """What the store held of a user, read before anything is erased.

    Attributes:
        user_id: the user.
        thread_ids: the user's threads (ids in the user's namespace).
        messages: every stored message of those threads (all branches); never a message of
            another user's thread of the same id.
    """

    user_id: str
    thread_ids: tuple[str, ...]
    messages: tuple[Message, ...]

    @property
    def message_ids(self) -> list[str]:
        """The ids of :attr:`messages`."""
        return [m.id for m in self.messages]


MAX_CHANGES_LIMIT = 10_000
"""The largest page :meth:`MessageStore.changes` returns."""


def check_changes_limit(limit: int) -> int:
    """``limit`` if it is a valid page size of the change feed (1 to 10,000), else
    ``InvalidMessageError``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CHANGES_LIMIT:
        raise InvalidMessageError(
            f"limit must be an integer from 1 to {MAX_CHANGES_LIMIT}, got {limit!r}"
        )
    return limit


class MessageStore(ABC):
    """Persistent conversation history: threads of messages forming a tree, with branches.

    A thread is created by its first append. Each append adds messages after the head of a
    branch (``main`` unless the thread's default was switched) and moves the head, atomically.
    """

    #: URL schemes this backend serves through :func:`tela_memory.open_store`.
    schemes: tuple[str, ...] = ()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a store from a URL of one of :attr:`schemes` (no I/O until first use)."""
        raise NotImplementedError

    # -- writing ----------------------------------------------------------------------------

    @abstractmethod
    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Append messages after the branch head, all or nothing; return them as stored.

        The thread is ``user_id``'s (created by its first append). Stored messages get
        ``thread_id``, ``user_id`` and ``parent_id`` (the previous head) filled in; a message
        that names another thread or user is refused.
        """

    @abstractmethod
    def update_message(self, message: Message, *, user_id: str) -> Message:
        """Replace the content, name and metadata of one of ``user_id``'s stored messages
        (same id, same place); ``NotFoundError`` if the user has no such message."""

    # -- reading ----------------------------------------------------------------------------

    @abstractmethod
    def read(
        self,
        thread_id: str,
        *,
        user_id: str,
        branch: str | None = None,
        last: int | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[Message]:
        """Messages of a branch, oldest first.

        Args:
            thread_id: the thread, in ``user_id``'s namespace.
            user_id: the acting user (owner of the thread).
            branch: branch name; the thread's default branch when ``None``.
            last: only the newest ``last`` messages.
            since: only messages created at or after this time.
            before: only messages strictly before this message id (which must be on the branch).

        An unknown thread reads as an empty list; an unknown branch raises ``NotFoundError``.
        """

    @abstractmethod
    def get(self, message_id: str, *, user_id: str) -> Message:
        """One of ``user_id``'s messages by id; ``NotFoundError`` if absent (or another's)."""

    # -- branches ---------------------------------------------------------------------------

    @abstractmethod
    def fork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Create a branch whose head is ``at_message_id``; O(1), nothing is copied."""

    @abstractmethod
    def branches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """The branches of a thread, default first (empty for an unknown thread)."""

    @abstractmethod
    def set_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Make ``name`` the branch that reads and appends use when none is given."""

    @abstractmethod
    def delete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Delete a branch and the messages only it reaches; return how many were deleted."""

    # -- threads ----------------------------------------------------------------------------

    @abstractmethod
    def get_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """A thread's metadata; ``NotFoundError`` if absent."""

    @abstractmethod
    def update_thread(
        self,
        thread_id: str,
        *,
        user_id: str,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """Set a thread's title, tags or metadata (``None`` leaves a field as it is)."""

    @abstractmethod
    def list_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """A user's threads, most recently updated first, ``limit`` per page."""

    @abstractmethod
    def delete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Delete a thread with all its messages and branches; return the message count
        (0 for an unknown thread)."""

    # -- scoping ----------------------------------------------------------------------------

    def for_user(self, user_id: str) -> UserStore:
        """This store as seen by one user: the same operations without ``user_id=``."""
        from tela_memory.stores.scoped import UserStore

        return UserStore(self, user_id)

    # -- admin: privacy and retention (across users) --------------------------------------

    @abstractmethod
    def erase_user(self, user_id: str) -> ErasureReceipt:
        """Remove everything stored for a user and say what was removed."""

    @abstractmethod
    def apply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Delete messages older than ``max_age`` and all but the newest ``max_messages``
        of each thread. A message whose parent is deleted becomes a root."""

    def user_data(self, user_id: str) -> UserData:
        """Everything stored of a user: their threads and the messages of every branch
        (an admin read; :func:`tela_memory.privacy.erase_user` gathers with it).

        The default lists the user's threads and reads each branch; backends override it
        with one query where they can."""
        tids: list[str] = []
        cursor: str | None = None
        while True:
            page = self.list_threads(user_id, limit=200, cursor=cursor)
            tids.extend(t.id for t in page.threads)
            if (cursor := page.next_cursor) is None:
                break
        seen: dict[str, Message] = {}
        for tid in tids:
            for branch in self.branches(tid, user_id=user_id):
                for m in self.read(tid, user_id=user_id, branch=branch.name):
                    seen.setdefault(m.id, m)
        return UserData(user_id, tuple(tids), tuple(seen.values()))

    # -- admin: the change feed (across users) ---------------------------------------------

    def changes(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """What happened to stored messages after the cursor ``since``, oldest first (an
        admin read: it spans every user; see :mod:`tela_memory.stores.changes`).

        Args:
            since: a cursor returned by an earlier call; ``None`` reads from the start of
                what the feed retains.
            limit: at most this many events (1 to 10,000); ``more`` says whether others
                were already waiting.

        Raises:
            ChangeFeedGapError: ``since`` is not a cursor of this store's feed, or points
                before what it still retains (the follower must rebuild).
            InvalidMessageError: ``limit`` is out of range.
            UnsupportedOperation: the backend has no change feed.
        """
        check_changes_limit(limit)
        raise UnsupportedOperation(
            f"{type(self).__name__} has no change feed; follow it with a full scan instead"
        )

    def cursor_store(self) -> CursorStore:
        """Where followers of this store (``StoreIndexer``) keep their feed cursors by
        default. This default lives in process memory, with the store object; backends
        with storage of their own override it so that a cursor survives a restart."""
        found: CursorStore | None = getattr(self, "_tela_cursors", None)
        if found is None:
            found = MemoryCursorStore()
            self._tela_cursors = found
        return found

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- async twins (override with native async I/O where the driver has it) --------------

    async def aappend(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Async twin of :meth:`append`."""
        return await asyncio.to_thread(
            self.append, thread_id, messages, user_id=user_id, branch=branch
        )

    async def aupdate_message(self, message: Message, *, user_id: str) -> Message:
        """Async twin of :meth:`update_message`."""
        return await asyncio.to_thread(self.update_message, message, user_id=user_id)

    async def aread(
        self,
        thread_id: str,
        *,
        user_id: str,
        branch: str | None = None,
        last: int | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[Message]:
        """Async twin of :meth:`read`."""
        return await asyncio.to_thread(
            self.read,
            thread_id,
            user_id=user_id,
            branch=branch,
            last=last,
            since=since,
            before=before,
        )

    async def aget(self, message_id: str, *, user_id: str) -> Message:
        """Async twin of :meth:`get`."""
        return await asyncio.to_thread(self.get, message_id, user_id=user_id)

    async def afork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Async twin of :meth:`fork`."""
        return await asyncio.to_thread(
            self.fork, thread_id, at_message_id, user_id=user_id, name=name
        )

    async def abranches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """Async twin of :meth:`branches`."""
        return await asyncio.to_thread(self.branches, thread_id, user_id=user_id)

    async def aset_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Async twin of :meth:`set_default_branch`."""
        await asyncio.to_thread(self.set_default_branch, thread_id, name, user_id=user_id)

    async def adelete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Async twin of :meth:`delete_branch`."""
        return await asyncio.to_thread(self.delete_branch, thread_id, name, user_id=user_id)

    async def aget_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """Async twin of :meth:`get_thread`."""
        return await asyncio.to_thread(self.get_thread, thread_id, user_id=user_id)

    async def aupdate_thread(
        self,
        thread_id: str,
        *,
        user_id: str,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """Async twin of :meth:`update_thread`."""
        return await asyncio.to_thread(
            self.update_thread,
            thread_id,
            user_id=user_id,
            title=title,
            tags=tags,
            metadata=metadata,
        )

    async def alist_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """Async twin of :meth:`list_threads`."""
        return await asyncio.to_thread(self.list_threads, user_id, limit=limit, cursor=cursor)

    async def adelete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Async twin of :meth:`delete_thread`."""
        return await asyncio.to_thread(self.delete_thread, thread_id, user_id=user_id)

    async def aerase_user(self, user_id: str) -> ErasureReceipt:
        """Async twin of :meth:`erase_user`."""
        return await asyncio.to_thread(self.erase_user, user_id)

    async def aapply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Async twin of :meth:`apply_retention`."""
        return await asyncio.to_thread(
            self.apply_retention, max_age=max_age, max_messages=max_messages
        )

    async def auser_data(self, user_id: str) -> UserData:
        """Async twin of :meth:`user_data`."""
        return await asyncio.to_thread(self.user_data, user_id)

    async def achanges(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """Async twin of :meth:`changes`."""
        return await asyncio.to_thread(self.changes, since, limit=limit)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await asyncio.to_thread(self.close)


__all__ = [
    "DEFAULT_BRANCH",
    "DEFAULT_USER",
    "MAX_CHANGES_LIMIT",
    "BranchInfo",
    "ErasureReceipt",
    "MessageStore",
    "RetentionReport",
    "ThreadInfo",
    "ThreadPage",
    "UserData",
    "check_changes_limit",
]
