"""Edit a thread's history in place without reordering, through the ``MessageStore`` contract.

The contract has no "delete one message": a thread is a chain of messages under a branch head.
To drop or replace the tail after position ``keep`` we fork at message ``keep - 1`` (O(1),
ancestors are shared), append the new tail there, make that branch the default and delete the
old one (which removes only the messages it alone reached). The default branch keeps its name.
Every step leaves a readable thread: a crash part way leaves an extra branch, never a loss.

Every operation goes through one user's :class:`~tela_memory.stores.scoped.UserStore`: the
thread is always the acting user's own.
"""

from __future__ import annotations

from collections.abc import Sequence

from tela_memory.ids import new_id
from tela_memory.messages import Message
from tela_memory.stores.base import ThreadInfo
from tela_memory.stores.scoped import UserStore


def fresh_copy(message: Message) -> Message:
    """A stored message made ready to be appended again (new id, no parent)."""
    return message.model_copy(update={"id": new_id(), "parent_id": None})


def replace_tail(
    user: UserStore,
    thread_id: str,
    current: Sequence[Message],
    keep: int,
    tail: Sequence[Message],
) -> list[Message]:
    """Make the user's thread read ``current[:keep] + tail``; return the stored tail.

    ``current`` is the thread as read from its default branch; ``tail`` holds new messages
    (use :func:`fresh_copy` for ones taken from ``current``).
    """
    if keep > len(current) or keep < 0:
        raise ValueError(f"keep={keep} outside 0..{len(current)}")
    if keep == len(current):
        return user.append(thread_id, list(tail)) if tail else []
    if keep == 0:
        return _rewrite(user, thread_id, current, tail)
    info = user.get_thread(thread_id)
    default = info.default_branch
    scratch = f"{default}.edit-{new_id()}"
    user.fork(thread_id, current[keep - 1].id, name=scratch)
    try:
        stored = user.append(thread_id, list(tail), branch=scratch) if tail else []
    except BaseException:
        user.delete_branch(thread_id, scratch)  # the default branch was never touched
        raise
    head = stored[-1].id if stored else current[keep - 1].id
    user.set_default_branch(thread_id, scratch)
    user.delete_branch(thread_id, default)
    user.fork(thread_id, head, name=default)
    user.set_default_branch(thread_id, default)
    user.delete_branch(thread_id, scratch)
    return stored


def _rewrite(
    user: UserStore,
    thread_id: str,
    current: Sequence[Message],
    tail: Sequence[Message],
) -> list[Message]:
    """Replace a whole thread (its first message changes), keeping title, tags and metadata.

    If the new messages are refused, the old ones are put back as they were.
    """
    info = user.get_thread(thread_id)
    user.delete_thread(thread_id)
    if not tail:
        return []
    try:
        stored = user.append(thread_id, list(tail))
    except BaseException:
        restored = [m.model_copy(update={"parent_id": None}) for m in current]
        user.append(thread_id, restored)
        _restore_info(user, info)
        raise
    _restore_info(user, info)
    return stored


def _restore_info(user: UserStore, info: ThreadInfo) -> None:
    if info.title is not None or info.tags or info.metadata:
        user.update_thread(
            info.id, title=info.title, tags=list(info.tags), metadata=dict(info.metadata)
        )


__all__ = ["fresh_copy", "replace_tail"]
