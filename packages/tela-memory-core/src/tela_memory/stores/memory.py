"""An in-process store (``memory://``): dictionaries, nothing persisted. For tests and demos.

Threads are keyed by ``(user_id, thread_id)``; a message is visible to its owner only. The
change feed is a list of events numbered from 1, kept for the life of the store (an erased
user's earlier events are dropped); a cursor is ``mem:<store id>:<event number>``.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from pydantic import JsonValue

from tela_memory.errors import ConflictError, InvalidMessageError, NotFoundError
from tela_memory.messages import Message
from tela_memory.stores import _common as common
from tela_memory.stores.base import (
    DEFAULT_BRANCH,
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    check_changes_limit,
)
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError, ChangeKind


@dataclass
class _Thread:
    info: ThreadInfo
    branches: dict[str, BranchInfo] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # message ids in append order


class InMemoryStore(MessageStore):
    """Message store held in process memory; same behaviour as the SQLite store."""

    schemes = ("memory",)

    def __init__(self) -> None:
        self._messages: dict[str, Message] = {}
        self._children: dict[str, int] = {}
        self._threads: dict[tuple[str, str], _Thread] = {}
        self._lock = threading.RLock()
        self._feed_id = uuid.uuid4().hex
        self._feed: list[tuple[int, Change]] = []
        self._last_event = 0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``memory://`` (a fresh, empty store each call)."""
        return cls(**options)

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Append messages after the branch head atomically."""
        common.check_id("thread_id", thread_id)
        common.check_id("user_id", user_id)
        items = common.as_list(messages)
        if not items:
            return []
        key = (user_id, thread_id)
        with self._lock:
            now = datetime.now(UTC)
            thread = self._threads.get(key)
            if thread is None:
                default = common.check_id("branch", branch or DEFAULT_BRANCH)
                info = ThreadInfo(
                    id=thread_id,
                    user_id=user_id,
                    default_branch=default,
                    created_at=now,
                    updated_at=now,
                )
                thread = _Thread(info=info)
                thread.branches[default] = BranchInfo(
                    thread_id=thread_id, name=default, head_id=None, created_at=now
                )
            name = branch or thread.info.default_branch
            current = thread.branches.get(name)
            if current is None:
                raise NotFoundError(f"thread {thread_id!r} has no branch {name!r}")
            if common.needs_history_for_tools(items):
                earlier = self._walk(current.head_id, common.ORPHAN_LOOKBACK, None)
            else:
                earlier = []
            common.check_tool_results(items, earlier)
            bound = common.bind(
                items, thread_id=thread_id, user_id=user_id, head_id=current.head_id
            )
            for m in items:
                if m.id in self._messages:
                    raise ConflictError(f"message id {m.id!r} is already stored")
            # everything checked: commit
            self._threads[key] = thread
            for m in bound:
                self._messages[m.id] = m
                if m.parent_id is not None:
                    self._children[m.parent_id] = self._children.get(m.parent_id, 0) + 1
                thread.order.append(m.id)
            thread.branches[name] = current.model_copy(update={"head_id": bound[-1].id})
            self._log("append", [(user_id, thread_id, m.id) for m in bound], now)
            thread.info = thread.info.model_copy(
                update={"updated_at": now, "message_count": thread.info.message_count + len(bound)}
            )
        return bound

    def update_message(self, message: Message, *, user_id: str) -> Message:
        """Replace a stored message's content, name and metadata."""
        with self._lock:
            stored = self._messages.get(message.id)
            if stored is None or stored.user_id != user_id:
                raise NotFoundError(f"no message with id {message.id!r}")
            updated = stored.model_copy(
                update={
                    "content": message.content,
                    "name": message.name,
                    "metadata": message.metadata,
                }
            )
            self._messages[message.id] = updated
            self._log("update", [(user_id, stored.thread_id, message.id)])
        return updated

    # -- reading ----------------------------------------------------------------------------

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
        """Messages of a branch, oldest first."""
        if last is not None and last < 0:
            raise InvalidMessageError(f"last must be >= 0, got {last}")
        with self._lock:
            thread = self._threads.get((user_id, thread_id))
            if thread is None:
                if branch is not None:
                    raise NotFoundError(f"no thread {thread_id!r}")
                return []
            name = branch or thread.info.default_branch
            current = thread.branches.get(name)
            if current is None:
                raise NotFoundError(f"thread {thread_id!r} has no branch {name!r}")
            start = current.head_id
            if before is not None:
                chain = self._walk(start, None, None)
                ids = [m.id for m in chain]
                if before not in ids:
                    raise NotFoundError(f"message {before!r} is not on this branch")
                start = self._messages[before].parent_id
            found = self._walk(start, last, since)
        found.reverse()
        return found

    def _walk(self, start: str | None, last: int | None, since: datetime | None) -> list[Message]:
        out: list[Message] = []
        current = start
        while current is not None and (last is None or len(out) < last):
            m = self._messages.get(current)
            if m is None:
                break
            if since is not None and m.created_at < since:
                break
            out.append(m)
            current = m.parent_id
        return out

    def get(self, message_id: str, *, user_id: str) -> Message:
        """One message by id."""
        with self._lock:
            m = self._messages.get(message_id)
        if m is None or m.user_id != user_id:
            raise NotFoundError(f"no message with id {message_id!r}")
        return m

    # -- branches ---------------------------------------------------------------------------

    def fork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Create a branch whose head is ``at_message_id``."""
        with self._lock:
            m = self._messages.get(at_message_id)
            thread = self._threads.get((user_id, thread_id))
            if m is None or thread is None or m.thread_id != thread_id or m.user_id != user_id:
                raise NotFoundError(f"thread {thread_id!r} has no message {at_message_id!r}")
            name = common.check_id("branch", name or f"branch-{len(thread.branches)}")
            if name in thread.branches:
                raise ConflictError(f"thread {thread_id!r} already has a branch {name!r}")
            info = BranchInfo(
                thread_id=thread_id,
                name=name,
                head_id=at_message_id,
                forked_from=at_message_id,
                created_at=datetime.now(UTC),
            )
            thread.branches[name] = info
        return info

    def branches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """The branches of a thread, default first."""
        with self._lock:
            thread = self._threads.get((user_id, thread_id))
            if thread is None:
                return []
            default = thread.info.default_branch
            items = sorted(
                thread.branches.values(),
                key=lambda b: (b.name != default, b.created_at, b.name),
            )
        return [b.model_copy(update={"is_default": b.name == default}) for b in items]

    def set_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Make ``name`` the thread's default branch."""
        with self._lock:
            thread = self._thread(user_id, thread_id)
            if name not in thread.branches:
                raise NotFoundError(f"thread {thread_id!r} has no branch {name!r}")
            thread.info = thread.info.model_copy(update={"default_branch": name})

    def delete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Delete a non-default branch and the messages no other branch reaches."""
        with self._lock:
            thread = self._thread(user_id, thread_id)
            if name not in thread.branches:
                raise NotFoundError(f"thread {thread_id!r} has no branch {name!r}")
            if name == thread.info.default_branch:
                raise ConflictError(
                    f"{name!r} is the default branch of {thread_id!r}; switch the default first"
                )
            head = thread.branches.pop(name).head_id
            heads = {b.head_id for b in thread.branches.values()}
            doomed: list[str] = []
            current = head
            while current is not None and current not in heads and not self._children.get(current):
                doomed.append(current)
                parent = self._messages[current].parent_id
                if parent is not None:
                    self._children[parent] -= 1
                current = parent
            self._drop(thread, doomed)
            self._log("delete", [(user_id, thread_id, mid) for mid in doomed])
        return len(doomed)

    def _drop(self, thread: _Thread, ids: list[str]) -> None:
        gone = set(ids)
        for mid in ids:
            self._messages.pop(mid, None)
            self._children.pop(mid, None)
        thread.order = [i for i in thread.order if i not in gone]
        thread.info = thread.info.model_copy(update={"message_count": len(thread.order)})

    # -- threads ----------------------------------------------------------------------------

    def _thread(self, user_id: str, thread_id: str) -> _Thread:
        thread = self._threads.get((user_id, thread_id))
        if thread is None:
            raise NotFoundError(f"no thread {thread_id!r}")
        return thread

    def get_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """A thread's metadata."""
        with self._lock:
            return self._thread(user_id, thread_id).info

    def update_thread(
        self,
        thread_id: str,
        *,
        user_id: str,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """Set title, tags or metadata of a thread."""
        if isinstance(tags, str):
            raise InvalidMessageError("tags must be a list of strings, not one string")
        update: dict[str, Any] = {"updated_at": datetime.now(UTC)}
        if title is not None:
            update["title"] = title
        if tags is not None:
            update["tags"] = tuple(tags)
        if metadata is not None:
            common.check_json(metadata, "thread metadata")
            update["metadata"] = dict(metadata)
        with self._lock:
            thread = self._thread(user_id, thread_id)
            thread.info = thread.info.model_copy(update=update)
            return thread.info

    def list_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """A user's threads, most recently updated first."""
        if limit < 1:
            raise InvalidMessageError(f"limit must be >= 1, got {limit}")
        with self._lock:
            mine = [t.info for t in self._threads.values() if t.info.user_id == user_id]
        keyed = sorted(((common.to_micros(t.updated_at), t.id, t) for t in mine), reverse=True)
        if cursor:
            after = common.decode_cursor(cursor)
            keyed = [k for k in keyed if (k[0], k[1]) < after]
        page = keyed[:limit]
        next_cursor = None
        if len(keyed) > limit:
            next_cursor = common.encode_cursor(page[-1][0], page[-1][1])
        return ThreadPage(threads=tuple(k[2] for k in page), next_cursor=next_cursor)

    def delete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Delete a thread, its branches and messages."""
        with self._lock:
            removed = self._remove_thread(user_id, thread_id)
            if removed is not None:
                self._log("thread_deleted", [(user_id, thread_id, None)])
            return removed or 0

    def _remove_thread(self, user_id: str, thread_id: str) -> int | None:
        thread = self._threads.pop((user_id, thread_id), None)
        if thread is None:
            return None
        for mid in thread.order:
            self._messages.pop(mid, None)
            self._children.pop(mid, None)
        return len(thread.order)

    # -- privacy and retention ------------------------------------------------------------

    def erase_user(self, user_id: str) -> ErasureReceipt:
        """Delete every thread and message of a user."""
        with self._lock:
            ids = [t for (u, t) in self._threads if u == user_id]
            branches = sum(len(self._threads[(user_id, t)].branches) for t in ids)
            messages = sum(self._remove_thread(user_id, t) or 0 for t in ids)
            # the feed keeps nothing of the user but the fact of the erasure
            before = len(self._feed)
            self._feed = [e for e in self._feed if e[1].user_id != user_id]
            if ids or before != len(self._feed):
                self._log("user_erased", [(user_id, None, None)])
        return ErasureReceipt(
            user_id=user_id, threads=len(ids), messages=messages, branches=branches
        )

    def apply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Delete old messages; orphaned children become roots, emptied threads go."""
        if max_messages is not None and max_messages < 0:
            raise InvalidMessageError(f"max_messages must be >= 0, got {max_messages}")
        cutoff = datetime.now(UTC) - max_age if max_age is not None else None
        removed = threads_gone = branches_gone = 0
        with self._lock:
            for key, thread in list(self._threads.items()):
                doomed = {
                    mid
                    for mid in thread.order
                    if cutoff is not None and self._messages[mid].created_at < cutoff
                }
                if max_messages is not None:
                    keep = [m for m in thread.order if m not in doomed]
                    doomed.update(keep[: max(0, len(keep) - max_messages)])
                if not doomed:
                    continue
                removed += len(doomed)
                gone = [m for m in thread.order if m in doomed]
                self._drop(thread, gone)
                self._log("delete", [(key[0], key[1], mid) for mid in gone])
                for mid in thread.order:
                    m = self._messages[mid]
                    if m.parent_id in doomed:
                        self._messages[mid] = m.model_copy(update={"parent_id": None})
                for name, b in list(thread.branches.items()):
                    if b.head_id in doomed:
                        if name == thread.info.default_branch:
                            thread.branches[name] = b.model_copy(update={"head_id": None})
                        else:
                            del thread.branches[name]
                            branches_gone += 1
                if not thread.order:
                    branches_gone += len(thread.branches)
                    del self._threads[key]
                    threads_gone += 1
                    self._log("thread_deleted", [(key[0], key[1], None)])
        return RetentionReport(messages=removed, threads=threads_gone, branches=branches_gone)

    # -- the change feed ------------------------------------------------------------------

    def _log(
        self,
        kind: ChangeKind,
        rows: Sequence[tuple[str, str | None, str | None]],
        at: datetime | None = None,
    ) -> None:
        """Record events (under the store lock, with the write they describe)."""
        when = at or datetime.now(UTC)
        for user_id, thread_id, message_id in rows:
            self._last_event += 1
            self._feed.append(
                (self._last_event, Change(kind, user_id, thread_id, message_id, when))
            )

    def changes(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """The change feed; see :meth:`MessageStore.changes`."""
        check_changes_limit(limit)
        with self._lock:
            after = self._position(since)
            start = bisect.bisect_right(self._feed, after, key=lambda e: e[0])
            page = self._feed[start : start + limit + 1]
        more = len(page) > limit
        page = page[:limit]
        if page:
            after = page[-1][0]
        return ChangeBatch([c for _, c in page], f"mem:{self._feed_id}:{after}", more)

    def _position(self, since: str | None) -> int:
        if since is None:
            return 0
        parts = since.split(":") if isinstance(since, str) else []
        if (
            len(parts) != 3
            or parts[:2] != ["mem", self._feed_id]
            or not (parts[2].isascii() and parts[2].isdigit())
        ):
            raise ChangeFeedGapError("this cursor is not one of this store's change feed")
        position = int(parts[2])
        if position > self._last_event:
            raise ChangeFeedGapError("this cursor is ahead of this store's change feed")
        return position
