"""Edit a thread's history in place without reordering, through the ``MessageStore`` contract.

The contract has no "delete one message": a thread is a chain of messages under a branch head.
To drop or replace the tail after position ``keep`` we fork at message ``keep - 1`` (O(1),
ancestors are shared), append the new tail there, make that branch the default and delete the
old one (which removes only the messages it alone reached). The default branch keeps its name.
Every step leaves a readable thread: a crash part way leaves an extra branch, never a loss.
"""

from __future__ import annotations

from collections.abc import Sequence

from tela_memory.ids import new_id
from tela_memory.messages import Message
from tela_memory.stores.base import MessageStore, ThreadInfo


def fresh_copy(message: Message) -> Message:
    """A stored message made ready to be appended again (new id, no parent)."""
    return message.model_copy(update={"id": new_id(), "parent_id": None})


def replace_tail(
    store: MessageStore,
    thread_id: str,
    current: Sequence[Message],
    keep: int,
    tail: Sequence[Message],
    *,
    user_id: str | None,
) -> list[Message]:
    """Make the thread read ``current[:keep] + tail``; return the stored tail.

    ``current`` is the thread as read from its default branch; ``tail`` holds new messages
    (use :func:`fresh_copy` for ones taken from ``current``).
    """
    if keep > len(current) or keep < 0:
        raise ValueError(f"keep={keep} outside 0..{len(current)}")
    if keep == len(current):
        return store.append(thread_id, list(tail), user_id=user_id) if tail else []
    if keep == 0:
        return _rewrite(store, thread_id, current, tail, user_id=user_id)
    info = store.get_thread(thread_id)
    default = info.default_branch
    scratch = f"{default}.edit-{new_id()}"
    store.fork(thread_id, current[keep - 1].id, name=scratch)
    try:
        stored = store.append(thread_id, list(tail), branch=scratch) if tail else []
    except BaseException:
        store.delete_branch(thread_id, scratch)  # the default branch was never touched
        raise
    head = stored[-1].id if stored else current[keep - 1].id
    store.set_default_branch(thread_id, scratch)
    store.delete_branch(thread_id, default)
    store.fork(thread_id, head, name=default)
    store.set_default_branch(thread_id, default)
    store.delete_branch(thread_id, scratch)
    return stored


def _rewrite(
    store: MessageStore,
    thread_id: str,
    current: Sequence[Message],
    tail: Sequence[Message],
    *,
    user_id: str | None,
) -> list[Message]:
    """Replace a whole thread (its first message changes), keeping title, tags and metadata.

    If the new messages are refused, the old ones are put back as they were.
    """
    info = store.get_thread(thread_id)
    store.delete_thread(thread_id)
    if not tail:
        return []
    try:
        stored = store.append(thread_id, list(tail), user_id=user_id or info.user_id)
    except BaseException:
        restored = [m.model_copy(update={"parent_id": None}) for m in current]
        store.append(thread_id, restored, user_id=info.user_id)
        _restore_info(store, info)
        raise
    _restore_info(store, info)
    return stored


def _restore_info(store: MessageStore, info: ThreadInfo) -> None:
    if info.title is not None or info.tags or info.metadata:
        store.update_thread(
            info.id, title=info.title, tags=list(info.tags), metadata=dict(info.metadata)
        )


__all__ = ["fresh_copy", "replace_tail"]
