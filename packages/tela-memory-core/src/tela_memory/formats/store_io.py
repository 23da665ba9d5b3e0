"""Moving conversations between documents and a :class:`~tela_memory.stores.base.MessageStore`.

Imports are all-or-nothing by default: every conversation is decoded and checked before the
first write, and if a write fails the threads this import created are deleted again. With
``continue_on_error`` a failing conversation is skipped (and removed if half written) and
the others are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tela_memory.errors import ConflictError, NotFoundError, TelaMemoryError
from tela_memory.formats._model import Conversation, FormatError
from tela_memory.ids import new_id
from tela_memory.messages import Message
from tela_memory.stores.base import MessageStore, ThreadInfo


@dataclass
class ImportReport:
    """What an import wrote and what it skipped."""

    threads: list[str] = field(default_factory=list)
    messages: int = 0
    branches: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(conversation, reason)`` for each conversation left out (``continue_on_error``)."""


def _strip(m: Message) -> Message:
    return m.model_copy(update={"thread_id": None, "user_id": None, "parent_id": None})


def import_conversation(
    store: MessageStore,
    conv: Conversation,
    *,
    user_id: str | None = None,
    thread_id: str | None = None,
) -> tuple[str, int, int]:
    """Write one conversation (all its branches) as a new thread.

    Returns ``(thread id, messages written, branches)``. ``ConflictError`` if the thread
    already exists; on any failure the half-written thread is deleted again.
    """
    conv.validate()
    tid = thread_id or conv.id or new_id()
    try:
        existing = store.get_thread(tid)
    except NotFoundError:
        existing = None
    if existing is not None:
        raise ConflictError(f"thread {tid!r} already exists in the store; not imported twice")
    if not conv.messages:
        raise FormatError(f"conversation {tid!r} has no messages")
    user = user_id or conv.user_id
    written: set[str] = set()
    count = 0
    main = conv.path()
    # the first append creates the thread, all or nothing: if it fails there is nothing to undo
    store.append(tid, [_strip(m) for m in main], branch=conv.default_branch, user_id=user)
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
            store.fork(tid, path[shared - 1].id, name=name)
            rest = path[shared:]
            if rest:
                store.append(tid, [_strip(m) for m in rest], branch=name)
                written.update(m.id for m in rest)
                count += len(rest)
        if conv.title is not None or conv.tags or conv.metadata:
            store.update_thread(
                tid, title=conv.title, tags=list(conv.tags) or None, metadata=conv.metadata or None
            )
    except BaseException:
        _forget(store, tid)
        raise
    return tid, count, len(conv.branches)


def _forget(store: MessageStore, thread_id: str) -> None:
    with contextlib.suppress(TelaMemoryError):
        store.delete_thread(thread_id)


class ImportAborted(TelaMemoryError):
    """An all-or-nothing import failed on one conversation; nothing was kept."""

    def __init__(self, conversation: str, cause: TelaMemoryError) -> None:
        super().__init__(f"conversation {conversation} not imported: {cause}; nothing was imported")
        self.conversation = conversation
        self.cause = cause


def import_conversations(
    store: MessageStore,
    conversations: Sequence[Conversation],
    *,
    user_id: str | None = None,
    continue_on_error: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write conversations as new threads: all or nothing unless ``continue_on_error``."""
    report = ImportReport()
    for i, conv in enumerate(conversations):
        try:
            tid, n, b = import_conversation(store, conv, user_id=user_id)
        except TelaMemoryError as exc:
            if not continue_on_error:
                for done in report.threads:
                    _forget(store, done)
                raise ImportAborted(repr(conv.id) if conv.id else f"#{i}", exc) from exc
            report.skipped.append((str(conv.id or f"#{i}"), str(exc)))
        else:
            report.threads.append(tid)
            report.messages += n
            report.branches += b
        if on_progress is not None:
            on_progress(i + 1)
    return report


async def aimport_conversations(
    store: MessageStore,
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


def load_conversation(store: MessageStore, thread_id: str) -> Conversation:
    """A stored thread with all its branches, as a :class:`Conversation`."""
    info = store.get_thread(thread_id)
    seen: dict[str, Message] = {}
    heads: dict[str, str] = {}
    for b in store.branches(thread_id):
        for m in store.read(thread_id, branch=b.name):
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


def user_thread_ids(store: MessageStore, user_id: str) -> list[str]:
    """Every thread of a user, oldest first."""
    infos: list[ThreadInfo] = []
    cursor: str | None = None
    while True:
        page = store.list_threads(user_id, limit=200, cursor=cursor)
        infos.extend(page.threads)
        cursor = page.next_cursor
        if cursor is None:
            break
    infos.sort(key=lambda t: (t.created_at, t.id))
    return [t.id for t in infos]


async def aload_conversation(store: MessageStore, thread_id: str) -> Conversation:
    """Async twin of :func:`load_conversation`."""
    return await asyncio.to_thread(load_conversation, store, thread_id)


__all__ = [
    "ImportAborted",
    "ImportReport",
    "aimport_conversations",
    "aload_conversation",
    "import_conversation",
    "import_conversations",
    "load_conversation",
    "user_thread_ids",
]
