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

Imports are all-or-nothing by default. Every conversation of the input is decoded, validated
(message model, ids, branches, what the store can hold) and checked against the store before
the first write, so a bad input writes nothing. The stores have no transaction spanning many
calls, so the writes are made safe in two ways: if a write fails, the threads this import
created are deleted again; and an import is idempotent by message id, so if the process dies
mid-import, running the same import again completes the thread it was writing (a thread
holding a prefix of the conversation's messages, by id) and leaves the finished ones as they
are. With ``continue_on_error`` a failing conversation is skipped (and removed if half
written) and the others are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tela_memory.errors import ConflictError, NotFoundError, ScopeError, TelaMemoryError
from tela_memory.formats._model import Conversation, FormatError
from tela_memory.ids import new_id
from tela_memory.messages import Message, value_problem
from tela_memory.stores._common import check_id
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
    resumed: list[str] = field(default_factory=list)
    """Threads found partly imported (an interrupted import) and completed; also in
    :attr:`threads`."""
    unchanged: list[str] = field(default_factory=list)
    """Threads the store held completely already: nothing written (not in :attr:`threads`)."""

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


@dataclass
class _Plan:
    """One conversation checked against the store, with the writes still to do."""

    target: UserStore
    conv: Conversation
    thread_id: str
    stored: dict[str, list[str]]
    """Branch name -> message ids already in the store (empty: a new thread)."""
    steps: list[tuple[str, list[Message], str | None]]
    """``(branch, messages to append, message to fork at or None)``, in order."""
    messages: int
    """How many messages the steps write."""
    complete: bool
    """The store holds the whole conversation already (nothing to write but metadata)."""


def _plan(target: UserStore, conv: Conversation, thread_id: str | None, where: str) -> _Plan:
    """Check a conversation completely and work out its writes, writing nothing.

    A thread of that id that holds a part of this conversation (the same message ids, each
    branch a prefix of the conversation's) is resumed; one holding anything else is a
    ``ConflictError``.
    """
    conv.validate(where)
    tid = thread_id or conv.id or new_id()
    check_id("thread_id", tid)
    if not conv.messages:
        raise FormatError(f"conversation {tid!r} has no messages", where)
    for i, m in enumerate(conv.messages):
        check_id("message id", m.id)
        problem = value_problem(m, f"{where}.messages[{i}]")
        if problem is not None:
            raise FormatError(problem)
    names = [conv.default_branch, *(b for b in conv.branches if b != conv.default_branch)]
    paths = {name: conv.path(name) for name in names}
    for name in names:
        check_id("branch", name)
    stored = _stored(target, tid)
    if stored and conv.default_branch not in stored:
        raise ConflictError(f"thread {tid!r} already exists in the store; not imported twice")
    have: set[str] = {i for ids in stored.values() for i in ids}
    written = set(have)
    steps: list[tuple[str, list[Message], str | None]] = []
    count = 0
    for name in names:
        path = paths[name]
        ids = [m.id for m in path]
        if name in stored:
            if ids[: len(stored[name])] != stored[name]:
                raise ConflictError(
                    f"thread {tid!r} already exists in the store; not imported twice"
                )
            rest = path[len(stored[name]) :]
            fork_at = None
        else:
            shared = 0
            while shared < len(path) and path[shared].id in written:
                shared += 1
            if shared == 0 and name != conv.default_branch:
                raise FormatError(
                    f"branch {name!r} shares no message with {conv.default_branch!r}", where
                )
            if any(m.id in have for m in path[shared:]):
                raise ConflictError(
                    f"thread {tid!r} already exists in the store; not imported twice"
                )
            rest = path[shared:]
            fork_at = path[shared - 1].id if name != conv.default_branch else None
        if rest or fork_at is not None:
            steps.append((name, [_strip(m) for m in rest], fork_at))
        written.update(m.id for m in rest)
        count += len(rest)
    return _Plan(target, conv, tid, stored, steps, count, bool(stored) and not steps)


def _stored(target: UserStore, thread_id: str) -> dict[str, list[str]]:
    try:
        target.get_thread(thread_id)
    except NotFoundError:
        return {}
    return {
        b.name: [m.id for m in target.read(thread_id, branch=b.name)]
        for b in target.branches(thread_id)
    }


def _write(plan: _Plan) -> None:
    """Do a plan's writes; the first append of a new thread creates it."""
    target, tid, conv = plan.target, plan.thread_id, plan.conv
    for name, messages, fork_at in plan.steps:
        if fork_at is not None:
            target.fork(tid, fork_at, name=name)
        if messages:
            target.append(tid, messages, branch=name)
    if conv.title is not None or conv.tags or conv.metadata:
        target.update_thread(
            tid, title=conv.title, tags=list(conv.tags) or None, metadata=conv.metadata or None
        )


def import_conversation(
    store: StoreLike,
    conv: Conversation,
    *,
    user_id: str | None = None,
    thread_id: str | None = None,
) -> tuple[str, int, int]:
    """Write one conversation (all its branches) as a thread.

    The thread goes to the user of a ``UserStore``, else to ``user_id``, else to the owner the
    conversation carries (``ScopeError`` if none of the three names one).

    Returns ``(thread id, messages written, branches)``. Everything is checked before the
    first write. A thread of that id holding part of the conversation (the same message ids)
    is completed, one holding all of it is left as it is (0 messages written); one holding
    other messages is a ``ConflictError``. If a write fails, a thread this call created is
    deleted again.
    """
    target = _target(store, conv, user_id, 0)
    plan = _plan(target, conv, thread_id, "$")
    try:
        _write(plan)
    except BaseException:
        if not plan.stored:
            _forget(target, plan.thread_id)
        raise
    return plan.thread_id, plan.messages, len(conv.branches)


def _forget(target: UserStore, thread_id: str) -> None:
    with contextlib.suppress(Exception):
        target.delete_thread(thread_id)


class ImportAborted(TelaMemoryError):
    """An all-or-nothing import failed on one conversation; nothing was kept."""

    def __init__(self, conversation: str, cause: Exception) -> None:
        why = str(cause) if isinstance(cause, TelaMemoryError) else _foreign(cause)
        super().__init__(f"conversation {conversation} not imported: {why}; nothing was imported")
        self.conversation = conversation
        self.cause = cause


def _foreign(exc: BaseException) -> str:
    """A store's own error (a bug, or a backend failing): named by type, without its text,
    which could show stored data."""
    return f"the store failed with {type(exc).__name__}"


def import_conversations(
    store: StoreLike,
    conversations: Sequence[Conversation],
    *,
    user_id: str | None = None,
    continue_on_error: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Write conversations as threads: all or nothing unless ``continue_on_error``.

    Every conversation is decoded, validated and checked against the store before the first
    write, so bad input never writes anything. Importing is idempotent by message id: a
    thread that already holds a conversation is left as it is (listed in
    :attr:`ImportReport.unchanged`), one that holds a part of it (an import that was
    interrupted) is completed (:attr:`ImportReport.resumed`). If a write fails, the threads
    this import created are deleted again; run the import again to complete it.

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
    report = ImportReport()
    plans: list[tuple[int, _Plan]] = []
    seen: set[tuple[str, str]] = set()
    # 1. every owner, conversation and thread is checked before the first write
    for i, conv in enumerate(conversations):
        try:
            target = _target(store, conv, user_id, i)
            plan = _plan(target, conv, None, f"$[{i}]")
            key = (target.user_id, plan.thread_id)
            if key in seen:
                raise ConflictError(f"thread {plan.thread_id!r} appears twice in this import")
            seen.add(key)
        except ScopeError:
            raise
        except Exception as exc:  # every failure becomes a clean error
            if not continue_on_error:
                raise ImportAborted(_label(conv, i), exc) from exc
            report.skipped.append((str(conv.id or f"#{i}"), _reason(exc)))
            continue
        plans.append((i, plan))
    # 2. the writes; a failure undoes the threads this import created
    created: list[_Plan] = []
    try:
        for i, plan in plans:
            conv = plan.conv
            try:
                _write(plan)
            except Exception as exc:
                if not plan.stored:
                    _forget(plan.target, plan.thread_id)
                if not continue_on_error:
                    raise ImportAborted(_label(conv, i), exc) from exc
                report.skipped.append((str(conv.id or f"#{i}"), _reason(exc)))
            else:
                if not plan.stored:
                    created.append(plan)
                _record(report, plan)
            if on_progress is not None:
                on_progress(i + 1)
    except BaseException:
        for done in created:
            _forget(done.target, done.thread_id)
        raise
    return report


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, TelaMemoryError) else _foreign(exc)


def _record(report: ImportReport, plan: _Plan) -> None:
    if plan.complete:
        report.unchanged.append(plan.thread_id)
        return
    if plan.stored:
        report.resumed.append(plan.thread_id)
    report.threads.append(plan.thread_id)
    report.users.append(plan.target.user_id)
    report.messages += plan.messages
    report.branches += len(plan.conv.branches)


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
