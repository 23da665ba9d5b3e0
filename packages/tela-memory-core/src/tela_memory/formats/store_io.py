"""Moving conversations between documents and a :class:`~tela_memory.stores.base.MessageStore`.

**Whose threads.** Every function here acts for one user at a time: pass a
:class:`~tela_memory.stores.scoped.UserStore` (``store.for_user("ada")``) or the backend store
with ``user_id=``; without either a :class:`~tela_memory.errors.ScopeError` is raised.
:func:`load_conversation` reads only that user's thread: another user's thread with the same
id is a different thread, and it looks exactly like a missing one.

Imports keep the owners the conversations carry (the lossless ``tela`` and ``jsonl`` formats
store them), so that an export of two users comes back as two users. Importing into one user
is explicit: pass a ``UserStore`` or ``user_id=``, which then owns every imported thread. A
conversation that names no owner needs one of the two (``ScopeError`` otherwise, before
anything is written).

Imports are all-or-nothing by default: every conversation is checked before its first write,
and if a write fails the threads this import created are deleted again. With
``continue_on_error`` a failing conversation is skipped (and removed if half written) and the
others are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tela_memory.errors import ConflictError, NotFoundError, ScopeError, TelaMemoryError
from tela_memory.formats._model import Conversation, FormatError
from tela_memory.ids import new_id
from tela_memory.messages import Message
from tela_memory.stores.base import MessageStore, ThreadInfo
from tela_memory.stores.scoped import UserStore

StoreLike = MessageStore | UserStore
"""A backend store (then ``user_id=`` names the acting user) or one user's view of it."""


def as_user(store: StoreLike, user_id: str | None = None) -> UserStore:
    """The :class:`UserStore` a function acts through.

    Args:
        store: a backend store, or a ``UserStore`` (``store.for_user(...)``).
        user_id: the acting user; required with a backend store, and with a ``UserStore``
            only allowed when it is that view's user.

    Raises:
        ScopeError: no user given for a backend store, or a user that contradicts the view's.
    """
    if isinstance(store, UserStore):
        if user_id is not None and user_id != store.user_id:
            raise ScopeError(
                "user_id= differs from the user this UserStore is bound to; pass one or the other"
            )
        return store
    if user_id is None:
        raise ScopeError(
            "name the acting user: pass user_id=... or a store.for_user(...) view "
            "(threads live in their user's namespace)"
        )
    return store.for_user(user_id)


@dataclass
class ImportReport:
    """What an import wrote and what it skipped."""

    threads: list[str] = field(default_factory=list)
    """The ids of the threads written, in input order."""
    users: list[str] = field(default_factory=list)
    """The owner of each thread in :attr:`threads` (same order)."""
    messages: int = 0
    branches: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(conversation, reason)`` for each conversation left out (``continue_on_error``)."""

    def per_user(self) -> dict[str, int]:
        """How many threads each owner received."""
        out: dict[str, int] = {}
        for user in self.users:
            out[user] = out.get(user, 0) + 1
        return out


def _strip(m: Message) -> Message:
    return m.model_copy(update={"thread_id": None, "user_id": None, "parent_id": None})


def _label(conv: Conversation, index: int) -> str:
    return repr(conv.id) if conv.id else f"#{index}"


def _target(store: StoreLike, conv: Conversation, user_id: str | None, index: int) -> UserStore:
    """Where a conversation goes: the explicit user, else the owner stored with it."""
    if isinstance(store, UserStore) or user_id is not None:
        return as_user(store, user_id)
    if conv.user_id is None:
        raise ScopeError(
            f"conversation {_label(conv, index)} names no owner: pass user_id=... (or a "
            "store.for_user(...) view) to import it into one user"
        )
    return store.for_user(conv.user_id)


def import_conversation(
    store: StoreLike,
    conv: Conversation,
    *,
    user_id: str | None = None,
    thread_id: str | None = None,
) -> tuple[str, int, int]:
    """Write one conversation (all its branches) as a new thread.

    The thread goes to the user of a ``UserStore``, else to ``user_id``, else to the owner the
    conversation carries (``ScopeError`` if none of the three names one).

    Returns ``(thread id, messages written, branches)``. ``ConflictError`` if the user already
    has that thread; on any failure the half-written thread is deleted again.
    """
    target = _target(store, conv, user_id, 0)
    return _import_one(target, conv, thread_id)


def _import_one(
    target: UserStore, conv: Conversation, thread_id: str | None
) -> tuple[str, int, int]:
    conv.validate()
    tid = thread_id or conv.id or new_id()
    try:
        existing: ThreadInfo | None = target.get_thread(tid)
    except NotFoundError:
        existing = None
    if existing is not None:
        raise ConflictError(f"thread {tid!r} already exists in the store; not imported twice")
    if not conv.messages:
        raise FormatError(f"conversation {tid!r} has no messages")
    written: set[str] = set()
    count = 0
    main = conv.path()
    # the first append creates the thread, all or nothing: if it fails there is nothing to undo
    target.append(tid, [_strip(m) for m in main], branch=conv.default_branch)
    try:
        written.update(m.id for m in main)
        count += len(main)
        for name in conv.branches:
            if name == conv.default_branch:
                continue
            path = conv.path(name)
            shared = 0
            while shared < len(path) and path[shared].id in written:
                shared += 1
            if shared == 0:
                raise FormatError(f"branch {name!r} shares no message with {conv.default_branch!r}")
            target.fork(tid, path[shared - 1].id, name=name)
            rest = path[shared:]
            if rest:
                target.append(tid, [_strip(m) for m in rest], branch=name)
                written.update(m.id for m in rest)
                count += len(rest)
        if conv.title is not None or conv.tags or conv.metadata:
            target.update_thread(
                tid, title=conv.title, tags=list(conv.tags) or None, metadata=conv.metadata or None
            )
    except BaseException:
        _forget(target, tid)
        raise
    return tid, count, len(conv.branches)


def _forget(target: UserStore, thread_id: str) -> None:
    with contextlib.suppress(TelaMemoryError):
        target.delete_thread(thread_id)


class ImportAborted(TelaMemoryError):
    """An all-or-nothing import failed on one conversation; nothing was kept."""

    def __init__(self, conversation: str, cause: TelaMemoryError) -> None:
        super().__init__(f"conversation {conversation} not imported: {cause}; nothing was imported")
        self.conversation = conversation
        self.cause = cause


def import_conversations(
    store: StoreLike,
    conversations: Sequence[Conversation],
    *,
    user_id: str | None = None,
    continue_on_error: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write conversations as new threads: all or nothing unless ``continue_on_error``.

    Args:
        store: a backend store, or one user's view (``store.for_user("ada")``), which then
            owns every imported thread.
        conversations: what to write (e.g. ``read_file(path).conversations``).
        user_id: import everything as this user. When neither this nor a ``UserStore`` is
            given, each conversation goes to the owner it carries (``Conversation.user_id``,
            kept by the ``tela`` and ``jsonl`` formats), so several users come back as several.
        continue_on_error: skip a failing conversation and keep the others.
        on_progress: called with the number of conversations done after each one.

    Raises:
        ScopeError: a conversation has no owner and no user was given (nothing is written).
        ImportAborted: a conversation failed (all or nothing); nothing was kept.
    """
    targets: list[UserStore | TelaMemoryError] = []
    for i, conv in enumerate(conversations):  # every owner is settled before the first write
        try:
            targets.append(_target(store, conv, user_id, i))
        except ScopeError:
            raise
        except TelaMemoryError as exc:  # an invalid owner id in the file: that conversation's
            targets.append(exc)
    report = ImportReport()
    done: list[tuple[UserStore, str]] = []
    for i, (conv, target) in enumerate(zip(conversations, targets, strict=True)):
        try:
            if isinstance(target, TelaMemoryError):
                raise target
            owner = target
            tid, n, b = _import_one(owner, conv, None)
        except TelaMemoryError as exc:
            if not continue_on_error:
                for written, thread in done:
                    _forget(written, thread)
                raise ImportAborted(_label(conv, i), exc) from exc
            report.skipped.append((str(conv.id or f"#{i}"), str(exc)))
        else:
            done.append((owner, tid))
            report.threads.append(tid)
            report.users.append(owner.user_id)
            report.messages += n
            report.branches += b
        if on_progress is not None:
            on_progress(i + 1)
    return report


async def aimport_conversations(
    store: StoreLike,
    conversations: Sequence[Conversation],
    *,
    user_id: str | None = None,
    continue_on_error: bool = False,
) -> ImportReport:
    """Async twin of :func:`import_conversations`."""
    return await asyncio.to_thread(
        import_conversations,
        store,
        conversations,
        user_id=user_id,
        continue_on_error=continue_on_error,
    )


def load_conversation(
    store: StoreLike, thread_id: str, *, user_id: str | None = None
) -> Conversation:
    """One of the acting user's threads with all its branches, as a :class:`Conversation`.

    Args:
        store: a backend store (then ``user_id=`` is required) or a ``UserStore``.
        thread_id: the thread, in the acting user's namespace.
        user_id: the acting user.

    Raises:
        NotFoundError: the user has no such thread (another user's looks the same).
        ScopeError: no acting user was given.
    """
    user = as_user(store, user_id)
    info = user.get_thread(thread_id)
    seen: dict[str, Message] = {}
    heads: dict[str, str] = {}
    for b in user.branches(thread_id):
        for m in user.read(thread_id, branch=b.name):
            seen.setdefault(m.id, m)
        if b.head_id is not None:
            heads[b.name] = b.head_id
    return _conversation(info, list(seen.values()), heads)


def _conversation(info: ThreadInfo, msgs: list[Message], heads: dict[str, str]) -> Conversation:
    return Conversation(
        messages=msgs,
        id=info.id,
        branches=heads,
        default_branch=info.default_branch,
        user_id=info.user_id,
        title=info.title,
        tags=tuple(info.tags),
        metadata=dict(info.metadata),
        created_at=info.created_at,
    )


def user_thread_ids(store: StoreLike, user_id: str | None = None) -> list[str]:
    """Every thread of the acting user, oldest first."""
    user = as_user(store, user_id)
    infos: list[ThreadInfo] = []
    cursor: str | None = None
    while True:
        page = user.list_threads(limit=200, cursor=cursor)
        infos.extend(page.threads)
        cursor = page.next_cursor
        if cursor is None:
            break
    infos.sort(key=lambda t: (t.created_at, t.id))
    return [t.id for t in infos]


async def aload_conversation(
    store: StoreLike, thread_id: str, *, user_id: str | None = None
) -> Conversation:
    """Async twin of :func:`load_conversation`."""
    return await asyncio.to_thread(load_conversation, store, thread_id, user_id=user_id)


__all__ = [
    "ImportAborted",
    "ImportReport",
    "StoreLike",
    "aimport_conversations",
    "aload_conversation",
    "as_user",
    "import_conversation",
    "import_conversations",
    "load_conversation",
    "user_thread_ids",
]
