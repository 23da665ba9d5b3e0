"""The store operations as sans-I/O generators, run by both the sync and the async twins.

Threads are keyed by ``(user_id, thread_id)`` and every statement names the acting user, so
another user's thread is simply not found. Writers lock the thread's row first
(``SELECT ... FOR UPDATE``), which serialises the writes of one thread across processes and
keeps one lock order (thread, then its messages and branches) against deadlocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import JsonValue

from tela_memory.errors import ConflictError, InvalidMessageError, NotFoundError
from tela_memory.messages import BLOCKS_ADAPTER, Message, load_stored, load_stored_branch
from tela_memory.stores import _common as common
from tela_memory.stores.base import (
    DEFAULT_BRANCH,
    BranchInfo,
    ErasureReceipt,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    UserData,
    check_changes_limit,
)
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError, ChangeKind
from tela_memory_postgres._driver import Exec, Fetch, Op, Send
from tela_memory_postgres._sql import STORE, Statements

_ALL = 2**31 - 1  # "no limit" for a walk
_DAWN = datetime(1, 1, 1, tzinfo=UTC)  # "no since"


def _no_nul(what: str, value: str | None) -> None:
    if value is not None and "\x00" in value:
        raise InvalidMessageError(f"{what} cannot hold NUL characters (\\x00) in PostgreSQL")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def row_to_message(row: Sequence[Any]) -> Message:
    """A row selected as :data:`~tela_memory_postgres._sql.MESSAGE_COLS` as a message."""
    return load_stored(row[3], thread_id=row[0], user_id=row[1], parent_id=row[2])


def rows_to_branch(rows: Sequence[Sequence[Any]]) -> list[Message]:
    """Consecutive messages of one branch, oldest first (rows as :func:`row_to_message`)."""
    if not rows:
        return []
    first = rows[0]
    return load_stored_branch(
        [r[3] for r in rows], thread_id=first[0], user_id=first[1], parent_id=first[2]
    )


def _to_thread(row: Sequence[Any]) -> ThreadInfo:
    return ThreadInfo(
        id=row[0],
        user_id=row[1],
        title=row[2],
        tags=tuple(json.loads(row[3])),
        metadata=json.loads(row[4]),
        default_branch=row[5],
        message_count=row[6],
        created_at=_utc(row[7]),
        updated_at=_utc(row[8]),
    )


class Ops:
    """Every store operation of one PostgreSQL schema as a generator of SQL requests."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.q = Statements(schema, STORE)
        self.feed_id = ""

    # -- the feed ---------------------------------------------------------------------------

    def _log(
        self,
        kind: ChangeKind,
        user_id: str,
        keys: Sequence[tuple[str | None, str | None]],
    ) -> Op[None]:
        """Record ``(thread_id, message_id)`` events of one user, in this transaction."""
        if keys:
            threads = [k[0] for k in keys]
            messages = [k[1] for k in keys]
            yield Send(self.q.log, (kind, user_id, threads, messages))

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        user_id: str,
        branch: str | None,
    ) -> Op[list[Message]]:
        """See :meth:`MessageStore.append`."""
        common.check_id("thread_id", thread_id)
        common.check_id("user_id", user_id)
        items = common.as_list(messages)
        if not items:
            return []
        for m in items:
            _no_nul("a message id", m.id)
            _no_nul("a message name", m.name)
        q = self.q
        rows = yield Fetch(q.lock_head, (branch, user_id, thread_id))
        if not rows:  # a new thread, or a branch it does not have
            locked = yield Fetch(q.lock_thread, (user_id, thread_id))
            if not locked:
                created = common.check_id("branch", branch or DEFAULT_BRANCH)
                yield Exec(q.add_user, (user_id,))
                yield Exec(q.add_thread, (user_id, thread_id, created))
                yield Exec(q.add_branch, (user_id, thread_id, created))
            rows = yield Fetch(q.lock_head, (branch, user_id, thread_id))
            if not rows:
                raise NotFoundError(f"thread {thread_id!r} has no branch {branch!r}")
        default, head_id, depth = rows[0]
        name = branch or default
        earlier: list[Message] = []
        if common.needs_history_for_tools(items) and head_id is not None:
            earlier = yield from self._chain(head_id, common.ORPHAN_LOOKBACK, None)
        common.check_tool_results(items, earlier)
        bound = common.bind(items, thread_id=thread_id, user_id=user_id, head_id=head_id)
        params = {
            "ids": [m.id for m in bound],
            "parents": [m.parent_id for m in bound],
            "depths": list(range(depth + 1, depth + 1 + len(bound))),
            "roles": [m.role.value for m in bound],
            "names": [m.name for m in bound],
            "contents": [_dump_blocks(m) for m in bound],
            "metas": [json.dumps(m.metadata, ensure_ascii=False) for m in bound],
            "times": [m.created_at for m in bound],
            "user": user_id,
            "thread": thread_id,
            "head": bound[-1].id,
            "head_depth": depth + len(bound),
            "branch": name,
        }
        yield Send(q.insert_messages, params)  # with the COMMIT: one round trip
        return bound

    def update_message(self, message: Message, user_id: str) -> Op[Message]:
        """See :meth:`MessageStore.update_message`."""
        _no_nul("a message name", message.name)
        if "\x00" in message.id:
            raise NotFoundError("no message with this id")
        rows = yield Fetch(
            self.q.update_message,
            (
                _dump_blocks(message),
                message.name,
                json.dumps(message.metadata, ensure_ascii=False),
                message.id,
                user_id,
            ),
        )
        if not rows:
            raise NotFoundError(f"no message with id {message.id!r}")
        yield from self._log("update", user_id, [(rows[0][0], message.id)])
        return row_to_message(rows[0])

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        thread_id: str,
        user_id: str,
        branch: str | None,
        last: int | None,
        since: datetime | None,
        before: str | None,
    ) -> Op[list[Message]]:
        """See :meth:`MessageStore.read`."""
        if last is not None and last < 0:
            raise InvalidMessageError(f"last must be >= 0, got {last}")
        if last == 0:
            return []
        limit = _ALL if last is None else last
        low = _DAWN if since is None else since
        if before is not None:
            return (yield from self._read_before(thread_id, user_id, branch, limit, low, before))
        rows = yield Fetch(
            self.q.read,
            {"user": user_id, "thread": thread_id, "branch": branch, "limit": limit, "since": low},
        )
        has_thread, has_branch = rows[0][0], rows[0][1]
        if not has_thread:
            if branch is not None:
                raise NotFoundError(f"no thread {thread_id!r}")
            return []
        if not has_branch:
            raise NotFoundError(f"thread {thread_id!r} has no branch {branch!r}")
        return rows_to_branch([r[2:] for r in rows if r[5] is not None])

    def _read_before(
        self,
        thread_id: str,
        user_id: str,
        branch: str | None,
        limit: int,
        since: datetime,
        before: str,
    ) -> Op[list[Message]]:
        rows = yield Fetch(self.q.thread_head, (branch, user_id, thread_id))
        if not rows:
            if branch is not None:
                raise NotFoundError(f"no thread {thread_id!r}")
            return []
        default, has_branch, head_id, head_depth = rows[0]
        if not has_branch:
            raise NotFoundError(f"thread {thread_id!r} has no branch {branch or default!r}")
        found = yield Fetch(self.q.depth_of, (before,))
        if not found or head_id is None or found[0][0] > head_depth:
            raise NotFoundError(f"message {before!r} is not on this branch")
        depth, parent_id = found[0]
        # the ancestor of the head at ``depth`` must be ``before`` itself
        at = yield Fetch(self.q.ancestor_at, (head_id, depth, depth))
        if not at or at[0][0] != before:
            raise NotFoundError(f"message {before!r} is not on this branch")
        if parent_id is None:
            return []
        return (yield from self._chain(parent_id, limit, since))

    def _chain(self, start: str, limit: int, since: datetime | None) -> Op[list[Message]]:
        """From ``start`` towards the root, at most ``limit`` messages, oldest first."""
        rows = yield Fetch(self.q.chain, {"start": start, "limit": limit, "since": since or _DAWN})
        return rows_to_branch(rows)

    def get(self, message_id: str, user_id: str) -> Op[Message]:
        """See :meth:`MessageStore.get`."""
        rows = []
        if "\x00" not in message_id:  # no stored id holds one
            rows = yield Fetch(self.q.get, (message_id, user_id))
        if not rows:
            raise NotFoundError(f"no message with id {message_id!r}")
        return row_to_message(rows[0])

    # -- branches ---------------------------------------------------------------------------

    def fork(
        self, thread_id: str, at_message_id: str, user_id: str, name: str | None
    ) -> Op[BranchInfo]:
        """See :meth:`MessageStore.fork`: one row, nothing copied."""
        q = self.q
        rows = []
        if "\x00" not in at_message_id:
            rows = yield Fetch(q.message_thread, (at_message_id, user_id))
        if not rows or rows[0][0] != thread_id:
            raise NotFoundError(f"thread {thread_id!r} has no message {at_message_id!r}")
        if name is None:
            [(count,)] = yield Fetch(q.count_branches, (user_id, thread_id))
            name = f"branch-{count}"
        common.check_id("branch", name)
        depth = rows[0][1]
        made = yield Fetch(q.fork, (user_id, thread_id, name, at_message_id, depth, at_message_id))
        if not made:
            raise ConflictError(f"thread {thread_id!r} already has a branch {name!r}")
        return BranchInfo(
            thread_id=thread_id,
            name=name,
            head_id=at_message_id,
            forked_from=at_message_id,
            created_at=_utc(made[0][0]),
        )

    def branches(self, thread_id: str, user_id: str) -> Op[list[BranchInfo]]:
        """See :meth:`MessageStore.branches`."""
        rows = yield Fetch(self.q.branches, (user_id, thread_id))
        return [
            BranchInfo(
                thread_id=thread_id,
                name=r[0],
                head_id=r[1],
                forked_from=r[2],
                created_at=_utc(r[3]),
                is_default=bool(r[4]),
            )
            for r in rows
        ]

    def _locked_branch(self, thread_id: str, name: str, user_id: str) -> Op[tuple[str, Any]]:
        rows = yield Fetch(self.q.branch_of_locked_thread, (name, user_id, thread_id))
        if not rows:
            raise NotFoundError(f"thread {thread_id!r} has no branch {name!r}")
        default, head_id = rows[0]
        return default, head_id

    def set_default_branch(self, thread_id: str, name: str, user_id: str) -> Op[None]:
        """See :meth:`MessageStore.set_default_branch`."""
        yield from self._locked_branch(thread_id, name, user_id)
        yield Exec(self.q.set_default, (name, user_id, thread_id))

    def delete_branch(self, thread_id: str, name: str, user_id: str) -> Op[int]:
        """See :meth:`MessageStore.delete_branch`."""
        q = self.q
        default, head_id = yield from self._locked_branch(thread_id, name, user_id)
        if name == default:
            raise ConflictError(
                f"{name!r} is the default branch of {thread_id!r}; switch the default first"
            )
        yield Exec(q.drop_branch, (user_id, thread_id, name))
        if head_id is None:
            return 0
        gone = yield Fetch(q.prune_branch, {"head": head_id})
        gone.sort(key=lambda r: -r[1])  # the head first, as the walk went
        yield from self._log("delete", user_id, [(thread_id, r[0]) for r in gone])
        if gone:
            yield Exec(q.uncount, (len(gone), user_id, thread_id))
        return len(gone)

    # -- threads ----------------------------------------------------------------------------

    def get_thread(self, thread_id: str, user_id: str) -> Op[ThreadInfo]:
        """See :meth:`MessageStore.get_thread`."""
        rows = yield Fetch(self.q.get_thread, (user_id, thread_id))
        if not rows:
            raise NotFoundError(f"no thread {thread_id!r}")
        return _to_thread(rows[0])

    def update_thread(
        self,
        thread_id: str,
        user_id: str,
        title: str | None,
        tags: Sequence[str] | None,
        metadata: dict[str, JsonValue] | None,
    ) -> Op[ThreadInfo]:
        """See :meth:`MessageStore.update_thread`."""
        if isinstance(tags, str):
            raise InvalidMessageError("tags must be a list of strings, not one string")
        _no_nul("a thread title", title)
        meta = common.check_json(metadata, "thread metadata") if metadata is not None else None
        tags_json = common.check_json(list(tags), "thread tags") if tags is not None else None
        rows = yield Fetch(self.q.update_thread, (title, tags_json, meta, user_id, thread_id))
        if not rows:
            raise NotFoundError(f"no thread {thread_id!r}")
        return _to_thread(rows[0])

    def list_threads(self, user_id: str, limit: int, cursor: str | None) -> Op[ThreadPage]:
        """See :meth:`MessageStore.list_threads`."""
        if limit < 1:
            raise InvalidMessageError(f"limit must be >= 1, got {limit}")
        after: datetime | None = None
        after_id: str | None = None
        if cursor:
            micros, after_id = common.decode_cursor(cursor)
            after = common.from_micros(micros)
        rows = yield Fetch(self.q.list_threads, (user_id, after, after, after_id, limit + 1))
        threads = tuple(_to_thread(r) for r in rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            last = threads[-1]
            next_cursor = common.encode_cursor(common.to_micros(last.updated_at), last.id)
        return ThreadPage(threads=threads, next_cursor=next_cursor)

    def delete_thread(self, thread_id: str, user_id: str) -> Op[int]:
        """See :meth:`MessageStore.delete_thread`."""
        q = self.q
        locked = yield Fetch(q.lock_thread, (user_id, thread_id))
        if not locked:
            return 0
        messages = yield Exec(q.delete_thread_messages, (user_id, thread_id))
        yield Exec(q.delete_thread_branches, (user_id, thread_id))
        yield Exec(q.delete_thread, (user_id, thread_id))
        yield from self._log("thread_deleted", user_id, [(thread_id, None)])
        count: int = messages
        return count

    # -- admin ------------------------------------------------------------------------------

    def erase_user(self, user_id: str) -> Op[ErasureReceipt]:
        """See :meth:`MessageStore.erase_user`: one transaction over every table."""
        common.check_id("user_id", user_id)
        q = self.q
        yield Fetch(q.lock_user_threads, (user_id,))
        messages = yield Exec(q.erase_messages, (user_id,))
        branches = yield Exec(q.erase_branches, (user_id,))
        threads = yield Exec(q.erase_threads, (user_id,))
        yield Exec(q.erase_user_row, (user_id,))
        # the feed keeps nothing of the user but the fact of the erasure
        events = yield Exec(q.erase_events, (user_id,))
        if threads or messages or events:
            yield from self._log("user_erased", user_id, [(None, None)])
        return ErasureReceipt(
            user_id=user_id, threads=threads, messages=messages, branches=branches
        )

    def apply_retention(
        self, max_age: timedelta | None, max_messages: int | None
    ) -> Op[RetentionReport]:
        """See :meth:`MessageStore.apply_retention`."""
        if max_messages is not None and max_messages < 0:
            raise InvalidMessageError(f"max_messages must be >= 0, got {max_messages}")
        q = self.q
        gone: list[tuple[str, str, str]] = []
        if max_age is not None:
            gone += yield Fetch(q.retain_age, (datetime.now(UTC) - max_age,))
        if max_messages is not None:
            gone += yield Fetch(q.retain_count, (max_messages,))
        if not gone:
            return RetentionReport()
        by_user: dict[str, list[tuple[str | None, str | None]]] = {}
        for user_id, thread_id, message_id in gone:
            by_user.setdefault(user_id, []).append((thread_id, message_id))
        for user_id, keys in by_user.items():
            yield from self._log("delete", user_id, keys)
        ids = [g[2] for g in gone]
        touched = sorted({(g[0], g[1]) for g in gone})
        users, tids = [t[0] for t in touched], [t[1] for t in touched]
        yield Exec(q.orphans_to_roots, (ids,))
        yield Exec(q.lost_heads, (ids,))
        branches = yield Exec(q.empty_branches, (users, tids))
        yield Exec(q.recount, (users, tids))
        [(more_branches,)] = yield Fetch(q.empty_thread_branches, (users, tids))
        emptied = yield Fetch(q.drop_empty_threads, (users, tids))
        for user_id, thread_id in emptied:
            yield from self._log("thread_deleted", user_id, [(thread_id, None)])
        return RetentionReport(
            messages=len(gone), threads=len(emptied), branches=branches + more_branches
        )

    def user_data(self, user_id: str) -> Op[UserData]:
        """See :meth:`MessageStore.user_data`: two queries on one snapshot."""
        q = self.q
        yield Exec(q.repeatable_read)
        tids = yield Fetch(q.user_threads, (user_id,))
        rows = yield Fetch(q.user_messages, (user_id,))
        return UserData(user_id, tuple(r[0] for r in tids), tuple(row_to_message(r) for r in rows))

    def changes(self, since: str | None, limit: int) -> Op[ChangeBatch]:
        """See :meth:`MessageStore.changes`. A cursor is ``<feed id>:<xid>:<event id>``."""
        check_changes_limit(limit)
        xid, number = self._position(since)
        rows = yield Fetch(self.q.changes, (str(xid), number, limit + 1))
        if not rows and since is not None:
            end = yield Fetch(self.q.feed_end)
            last = (int(end[0][0]), int(end[0][1])) if end else (0, 0)
            if (xid, number) > last:
                raise ChangeFeedGapError("this cursor is ahead of this store's change feed")
        more = len(rows) > limit
        rows = rows[:limit]
        if rows:
            xid, number = int(rows[-1][0]), int(rows[-1][1])
        events = [Change(r[2], r[3], r[4], r[5], _utc(r[6])) for r in rows]
        return ChangeBatch(events, f"{self.feed_id}:{xid}:{number}", more)

    def _position(self, since: str | None) -> tuple[int, int]:
        if since is None:
            return 0, 0
        parts = since.split(":") if isinstance(since, str) else []
        if (
            len(parts) != 3
            or parts[0] != self.feed_id
            or not all(p.isascii() and p.isdigit() and len(p) <= 20 for p in parts[1:])
        ):
            raise ChangeFeedGapError("this cursor is not one of this store's change feed")
        return int(parts[1]), int(parts[2])

    def read_feed_id(self) -> Op[str]:
        """The random id of this store's feed (kept in ``meta``)."""
        [(value,)] = yield Fetch(self.q.feed_id)
        self.feed_id = str(value)
        return self.feed_id

    # -- followers' cursors -----------------------------------------------------------------

    def get_cursor(self, name: str) -> Op[str | None]:
        """The cursor a follower saved under ``name``."""
        rows = yield Fetch(self.q.get_cursor, (name,))
        return None if not rows else str(rows[0][0])

    def set_cursor(self, name: str, cursor: str | None) -> Op[None]:
        """Save (``None``: forget) a follower's cursor."""
        if cursor is None:
            yield Exec(self.q.forget_cursor, (name,))
        else:
            yield Exec(self.q.set_cursor, (name, cursor))


def _dump_blocks(message: Message) -> str:
    return BLOCKS_ADAPTER.dump_json(message.content, exclude_none=True).decode()


__all__ = ["Ops", "row_to_message"]
