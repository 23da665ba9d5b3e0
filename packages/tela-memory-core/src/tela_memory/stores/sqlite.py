"""The embedded default store: one SQLite file (WAL), no server, standard-library ``sqlite3``.

Messages form a tree by ``parent_id``; a branch is a row pointing at its head. Reading a branch
walks the ancestry from the head with a recursive query that stops after ``last`` rows, so the
cost of reading the newest 50 messages does not depend on how long the thread is. Threads and
branches are keyed by ``(user_id, thread_id)``: every query names the acting user. Every write is
one ``BEGIN IMMEDIATE`` transaction: several threads and processes may append to the same
thread without losing or reordering messages.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from pydantic import JsonValue

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidMessageError,
    NotFoundError,
    SchemaError,
    TelaMemoryError,
)
from tela_memory.messages import BLOCKS_ADAPTER, Message, Role
from tela_memory.stores import _common as common
from tela_memory.stores.base import (
    DEFAULT_BRANCH,
    BranchInfo,
    ErasureReceipt,
    MessageStore,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
    UserData,
    check_changes_limit,
)
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError, ChangeKind
from tela_memory.stores.cursors import CursorStore, SQLiteCursorStore
from tela_memory.stores.sqlite_db import connect, write_transaction
from tela_memory.stores.sqlite_schema import SCHEMA_VERSION, migrate
from tela_memory.stores.sqlite_scrub import scrub

DEFAULT_PATH = Path.home() / ".local" / "share" / "tela-memory" / "tela.db"

MESSAGE_COLUMNS = "id, thread_id, user_id, parent_id, role, name, content, metadata, created_at"
_CHAIN = f"""
WITH RECURSIVE chain(seq, depth, {MESSAGE_COLUMNS}) AS (
    SELECT seq, depth, {MESSAGE_COLUMNS} FROM messages WHERE id = :start
    UNION ALL
    SELECT m.seq, m.depth, m.id, m.thread_id, m.user_id, m.parent_id, m.role, m.name,
           m.content, m.metadata, m.created_at
    FROM messages AS m JOIN chain AS c ON m.id = c.parent_id
    WHERE c.created_at >= :since
    LIMIT :limit
)
SELECT {MESSAGE_COLUMNS} FROM chain WHERE created_at >= :since
"""


class SQLiteStore(MessageStore):
    """Message store in one SQLite file (or in memory with ``":memory:"``).

    Args:
        path: database file; ``None`` uses ``~/.local/share/tela-memory/tela.db``.
        timeout: seconds to wait for another writer's lock before failing.
    """

    schemes = ("sqlite",)

    def __init__(self, path: str | Path | None = None, *, timeout: float = 30.0) -> None:
        self._path = ":memory:" if str(path) == ":memory:" else Path(path or DEFAULT_PATH)
        self._timeout = timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._feed_id = ""
        self._cursors: SQLiteCursorStore | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """``sqlite://`` (default file), ``sqlite:///:memory:``, ``sqlite:///relative.db``,
        ``sqlite:////absolute/path.db`` (the SQLAlchemy convention)."""
        parts = urlsplit(url)
        raw = unquote(parts.path)
        path = raw[1:] if raw.startswith("/") else raw
        return cls(path or None, **options)

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self._path)!r})"

    @property
    def path(self) -> Path | None:
        """The database file, or ``None`` for an in-memory database."""
        return None if self._path == ":memory:" else Path(self._path)

    # -- connection -------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """The open connection (opened and migrated on first use). Other components that
        keep their tables in the same file use it under :meth:`transaction`."""
        if self._conn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        target = str(self._path)
        conn = connect(target, what="SQLite store", timeout=self._timeout)
        try:
            migrate(conn)
            (self._feed_id,) = conn.execute(
                "SELECT value FROM meta WHERE key = 'feed_id'"
            ).fetchone()
        except SchemaError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise BackendUnavailable(f"cannot open SQLite store at {target}: {exc}") from exc
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): commit on success, roll back on error.

        Whatever interrupts it, at any line (an exception in the body, ``KeyboardInterrupt``
        between ``BEGIN`` and ``COMMIT``, task cancellation), the transaction is rolled back
        and the write lock released before the error propagates.
        """
        conn = self.connection()
        with self._lock:
            try:
                with write_transaction(conn):
                    yield conn
            except sqlite3.Error as exc:
                raise _wrap(exc, self._path) from exc

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection under the store's lock, for reads (driver errors become
        :class:`~tela_memory.errors.TelaMemoryError`); :meth:`transaction` for writes."""
        conn = self.connection()
        with self._lock:
            try:
                yield conn
            except sqlite3.Error as exc:
                raise _wrap(exc, self._path) from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- writing ----------------------------------------------------------------------------

    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        *,
        user_id: str,
        branch: str | None = None,
    ) -> list[Message]:
        """Append messages after the branch head atomically; see :class:`MessageStore`."""
        common.check_id("thread_id", thread_id)
        common.check_id("user_id", user_id)
        items = common.as_list(messages)
        if not items:
            return []
        now = common.to_micros(datetime.now(UTC))
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT default_branch FROM threads WHERE user_id = ? AND id = ?",
                (user_id, thread_id),
            ).fetchone()
            if row is None:
                default = common.check_id("branch", branch or DEFAULT_BRANCH)
                conn.execute(
                    "INSERT INTO threads (user_id, id, default_branch, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user_id, thread_id, default, now, now),
                )
                conn.execute(
                    "INSERT INTO branches (user_id, thread_id, name, head_id, created_at)"
                    " VALUES (?, ?, ?, NULL, ?)",
                    (user_id, thread_id, default, now),
                )
            else:
                (default,) = row
            name = branch or default
            head_id, head_depth = self._head(conn, user_id, thread_id, name)
            if common.needs_history_for_tools(items):
                earlier = self._chain(conn, head_id, common.ORPHAN_LOOKBACK, None)
            else:
                earlier = []
            common.check_tool_results(items, earlier)
            bound = common.bind(items, thread_id=thread_id, user_id=user_id, head_id=head_id)
            rows = [
                (
                    m.id,
                    thread_id,
                    user_id,
                    m.parent_id,
                    head_depth + i + 1,
                    m.role.value,
                    m.name,
                    _dump_blocks(m),
                    json.dumps(m.metadata, ensure_ascii=False),
                    common.to_micros(m.created_at),
                )
                for i, m in enumerate(bound)
            ]
            try:
                conn.executemany(
                    "INSERT INTO messages (id, thread_id, user_id, parent_id, depth, role, name,"
                    " content, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(
                    f"a message id in this append is already stored: {exc}"
                ) from exc
            _log(conn, "append", [(user_id, thread_id, m.id) for m in bound], now)
            conn.execute(
                "UPDATE branches SET head_id = ? WHERE user_id = ? AND thread_id = ? AND name = ?",
                (bound[-1].id, user_id, thread_id, name),
            )
            conn.execute(
                "UPDATE threads SET updated_at = ?, message_count = message_count + ?"
                " WHERE user_id = ? AND id = ?",
                (now, len(bound), user_id, thread_id),
            )
        return bound

    def update_message(self, message: Message, *, user_id: str) -> Message:
        """Replace a stored message's content, name and metadata."""
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE messages SET content = ?, name = ?, metadata = ?"
                " WHERE id = ? AND user_id = ?",
                (
                    _dump_blocks(message),
                    message.name,
                    json.dumps(message.metadata, ensure_ascii=False),
                    message.id,
                    user_id,
                ),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no message with id {message.id!r}")
            row = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message.id,)
            ).fetchone()
            _log(conn, "update", [(user_id, row[1], message.id)])
        return row_to_message(row)

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
        """Messages of a branch, oldest first; see :meth:`MessageStore.read`."""
        if last is not None and last < 0:
            raise InvalidMessageError(f"last must be >= 0, got {last}")
        if last == 0:
            return []
        with self.reading() as conn:
            row = conn.execute(
                "SELECT default_branch FROM threads WHERE user_id = ? AND id = ?",
                (user_id, thread_id),
            ).fetchone()
            if row is None:
                if branch is not None:
                    raise NotFoundError(f"no thread {thread_id!r}")
                return []
            head_id, head_depth = self._head(conn, user_id, thread_id, branch or row[0])
            start = head_id
            if before is not None:
                start = self._parent_on_branch(conn, head_id, head_depth, before)
            messages = self._chain(conn, start, last, since)
        messages.reverse()
        return messages

    def get(self, message_id: str, *, user_id: str) -> Message:
        """One message by id."""
        with self.reading() as conn:
            row = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ? AND user_id = ?",
                (message_id, user_id),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"no message with id {message_id!r}")
        return row_to_message(row)

    def _head(
        self, conn: sqlite3.Connection, user_id: str, thread_id: str, name: str
    ) -> tuple[str | None, int]:
        row = conn.execute(
            "SELECT b.head_id, m.depth FROM branches AS b LEFT JOIN messages AS m"
            " ON m.id = b.head_id WHERE b.user_id = ? AND b.thread_id = ? AND b.name = ?",
            (user_id, thread_id, name),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"thread {thread_id!r} has no branch {name!r}")
        return row[0], row[1] or 0

    def _chain(
        self,
        conn: sqlite3.Connection,
        start: str | None,
        last: int | None,
        since: datetime | None,
    ) -> list[Message]:
        """Walk from ``start`` towards the root, newest first, at most ``last`` messages."""
        if start is None:
            return []
        params = {
            "start": start,
            "limit": -1 if last is None else last,
            "since": common.to_micros(since) if since is not None else -(2**62),
        }
        return [row_to_message(r) for r in conn.execute(_CHAIN, params)]

    def _parent_on_branch(
        self, conn: sqlite3.Connection, head_id: str | None, head_depth: int, before: str
    ) -> str | None:
        row = conn.execute(
            "SELECT depth, parent_id FROM messages WHERE id = ?", (before,)
        ).fetchone()
        if row is None or head_id is None or row[0] > head_depth:
            raise NotFoundError(f"message {before!r} is not on this branch")
        depth, parent_id = row
        # The ancestor of the head at ``depth`` must be ``before`` itself.
        found = conn.execute(
            "WITH RECURSIVE up(id, parent_id, depth) AS ("
            " SELECT id, parent_id, depth FROM messages WHERE id = ?"
            " UNION ALL SELECT m.id, m.parent_id, m.depth FROM messages AS m"
            " JOIN up ON m.id = up.parent_id WHERE up.depth > ?)"
            " SELECT id FROM up WHERE depth = ?",
            (head_id, depth, depth),
        ).fetchone()
        if found is None or found[0] != before:
            raise NotFoundError(f"message {before!r} is not on this branch")
        parent: str | None = parent_id
        return parent

    # -- branches ---------------------------------------------------------------------------

    def fork(
        self, thread_id: str, at_message_id: str, *, user_id: str, name: str | None = None
    ) -> BranchInfo:
        """Create a branch whose head is ``at_message_id`` (O(1), nothing copied)."""
        now = common.to_micros(datetime.now(UTC))
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT thread_id FROM messages WHERE id = ? AND user_id = ?",
                (at_message_id, user_id),
            ).fetchone()
            if row is None or row[0] != thread_id:
                raise NotFoundError(f"thread {thread_id!r} has no message {at_message_id!r}")
            if name is None:
                (count,) = conn.execute(
                    "SELECT count(*) FROM branches WHERE user_id = ? AND thread_id = ?",
                    (user_id, thread_id),
                ).fetchone()
                name = f"branch-{count}"
            common.check_id("branch", name)
            try:
                conn.execute(
                    "INSERT INTO branches (user_id, thread_id, name, head_id, forked_from,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, thread_id, name, at_message_id, at_message_id, now),
                )
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"thread {thread_id!r} already has a branch {name!r}") from exc
        return BranchInfo(
            thread_id=thread_id,
            name=name,
            head_id=at_message_id,
            forked_from=at_message_id,
            created_at=common.from_micros(now),
        )

    def branches(self, thread_id: str, *, user_id: str) -> list[BranchInfo]:
        """The branches of a thread, default first."""
        with self.reading() as conn:
            rows = conn.execute(
                "SELECT b.name, b.head_id, b.forked_from, b.created_at,"
                " b.name = t.default_branch FROM branches AS b JOIN threads AS t"
                " ON t.user_id = b.user_id AND t.id = b.thread_id"
                " WHERE b.user_id = ? AND b.thread_id = ?"
                " ORDER BY b.name = t.default_branch DESC, b.created_at, b.name",
                (user_id, thread_id),
            ).fetchall()
        return [
            BranchInfo(
                thread_id=thread_id,
                name=r[0],
                head_id=r[1],
                forked_from=r[2],
                created_at=common.from_micros(r[3]),
                is_default=bool(r[4]),
            )
            for r in rows
        ]

    def set_default_branch(self, thread_id: str, name: str, *, user_id: str) -> None:
        """Make ``name`` the thread's default branch."""
        with self.transaction() as conn:
            self._head(conn, user_id, thread_id, name)
            conn.execute(
                "UPDATE threads SET default_branch = ? WHERE user_id = ? AND id = ?",
                (name, user_id, thread_id),
            )

    def delete_branch(self, thread_id: str, name: str, *, user_id: str) -> int:
        """Delete a non-default branch and the messages no other branch reaches."""
        with self.transaction() as conn:
            head_id, _ = self._head(conn, user_id, thread_id, name)
            (default,) = conn.execute(
                "SELECT default_branch FROM threads WHERE user_id = ? AND id = ?",
                (user_id, thread_id),
            ).fetchone()
            if name == default:
                raise ConflictError(
                    f"{name!r} is the default branch of {thread_id!r}; switch the default first"
                )
            conn.execute(
                "DELETE FROM branches WHERE user_id = ? AND thread_id = ? AND name = ?",
                (user_id, thread_id, name),
            )
            deleted = 0
            current = head_id
            while current is not None:
                shared = conn.execute(
                    "SELECT EXISTS(SELECT 1 FROM branches WHERE head_id = ?)"
                    " OR EXISTS(SELECT 1 FROM messages WHERE parent_id = ?)",
                    (current, current),
                ).fetchone()[0]
                if shared:
                    break
                (parent,) = conn.execute(
                    "SELECT parent_id FROM messages WHERE id = ?", (current,)
                ).fetchone()
                conn.execute("DELETE FROM messages WHERE id = ?", (current,))
                _log(conn, "delete", [(user_id, thread_id, current)])
                deleted += 1
                current = parent
            conn.execute(
                "UPDATE threads SET message_count = message_count - ? WHERE user_id = ? AND id = ?",
                (deleted, user_id, thread_id),
            )
        return deleted

    # -- threads ----------------------------------------------------------------------------

    def get_thread(self, thread_id: str, *, user_id: str) -> ThreadInfo:
        """A thread's metadata."""
        with self.reading() as conn:
            found = conn.execute(_THREAD_BY_KEY, (user_id, thread_id)).fetchone()
        if found is None:
            raise NotFoundError(f"no thread {thread_id!r}")
        return _to_thread(found)

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
        meta_json = common.check_json(metadata, "thread metadata") if metadata is not None else None
        now = common.to_micros(datetime.now(UTC))
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE threads SET title = coalesce(?, title), tags = coalesce(?, tags),"
                " metadata = coalesce(?, metadata), updated_at = ? WHERE user_id = ? AND id = ?",
                (
                    title,
                    json.dumps(list(tags)) if tags is not None else None,
                    meta_json,
                    now,
                    user_id,
                    thread_id,
                ),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no thread {thread_id!r}")
            found = conn.execute(_THREAD_BY_KEY, (user_id, thread_id)).fetchone()
        return _to_thread(found)

    def list_threads(
        self, user_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> ThreadPage:
        """A user's threads, most recently updated first."""
        if limit < 1:
            raise InvalidMessageError(f"limit must be >= 1, got {limit}")
        after = common.decode_cursor(cursor) if cursor else (2**62, "")
        with self.reading() as conn:
            rows = conn.execute(
                f"SELECT {_THREAD_COLS} FROM threads WHERE user_id = ?"
                " AND (updated_at < ? OR (updated_at = ? AND id < ?) OR ? = '')"
                " ORDER BY updated_at DESC, id DESC LIMIT ?",
                (user_id, after[0], after[0], after[1], after[1], limit + 1),
            ).fetchall()
        threads = tuple(_to_thread(r) for r in rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = common.encode_cursor(last[_UPDATED], last[0])
        return ThreadPage(threads=threads, next_cursor=next_cursor)

    def delete_thread(self, thread_id: str, *, user_id: str) -> int:
        """Delete a thread, its branches and messages."""
        with self.transaction() as conn:
            threads, messages, _ = self._delete_threads(conn, [(user_id, thread_id)])
            if threads:
                _log(conn, "thread_deleted", [(user_id, thread_id, None)])
            return messages

    def _delete_threads(
        self, conn: sqlite3.Connection, keys: list[tuple[str, str]]
    ) -> tuple[int, int, int]:
        threads = messages = branches = 0
        for key in keys:
            messages += conn.execute(
                "DELETE FROM messages WHERE user_id = ? AND thread_id = ?", key
            ).rowcount
            branches += conn.execute(
                "DELETE FROM branches WHERE user_id = ? AND thread_id = ?", key
            ).rowcount
            threads += conn.execute(
                "DELETE FROM threads WHERE user_id = ? AND id = ?", key
            ).rowcount
        return threads, messages, branches

    # -- privacy and retention ------------------------------------------------------------

    def erase_user(self, user_id: str) -> ErasureReceipt:
        """Delete every thread and message of a user."""
        with self.transaction() as conn:
            keys = [
                (user_id, r[0])
                for r in conn.execute("SELECT id FROM threads WHERE user_id = ?", (user_id,))
            ]
            threads, messages, branches = self._delete_threads(conn, keys)
            messages += conn.execute("DELETE FROM messages WHERE user_id = ?", (user_id,)).rowcount
            # the feed keeps nothing of the user but the fact of the erasure
            events = conn.execute("DELETE FROM changes WHERE user_id = ?", (user_id,)).rowcount
            if threads or messages or events:
                _log(conn, "user_erased", [(user_id, None, None)])
        with self.reading() as conn:
            traces = scrub(conn, "store file")
        return ErasureReceipt(
            user_id=user_id,
            threads=threads,
            messages=messages,
            branches=branches,
            scrubbed=traces.done,
            traces_left=traces.left,
        )

    def apply_retention(
        self, *, max_age: timedelta | None = None, max_messages: int | None = None
    ) -> RetentionReport:
        """Delete old messages; orphaned children become roots, emptied threads go."""
        if max_messages is not None and max_messages < 0:
            raise InvalidMessageError(f"max_messages must be >= 0, got {max_messages}")
        removed = 0
        with self.transaction() as conn:
            if max_age is not None:
                cutoff = common.to_micros(datetime.now(UTC) - max_age)
                gone = conn.execute(
                    "DELETE FROM messages WHERE created_at < ? RETURNING user_id, thread_id, id",
                    (cutoff,),
                ).fetchall()
                _log(conn, "delete", gone)
                removed += len(gone)
            if max_messages is not None:
                gone = conn.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM (SELECT seq,"
                    " row_number() OVER (PARTITION BY user_id, thread_id ORDER BY seq DESC) AS n"
                    " FROM messages) WHERE n > ?) RETURNING user_id, thread_id, id",
                    (max_messages,),
                ).fetchall()
                _log(conn, "delete", gone)
                removed += len(gone)
            if not removed:
                return RetentionReport()
            conn.execute(
                "UPDATE messages SET parent_id = NULL WHERE parent_id IS NOT NULL AND NOT"
                " EXISTS (SELECT 1 FROM messages AS p WHERE p.id = messages.parent_id)"
            )
            conn.execute(
                "UPDATE branches SET head_id = NULL WHERE head_id IS NOT NULL AND NOT EXISTS"
                " (SELECT 1 FROM messages AS m WHERE m.id = branches.head_id)"
            )
            branches = conn.execute(
                "DELETE FROM branches WHERE head_id IS NULL AND name != (SELECT default_branch"
                " FROM threads AS t WHERE t.user_id = branches.user_id"
                " AND t.id = branches.thread_id)"
            ).rowcount
            conn.execute(
                "UPDATE threads SET message_count ="
                " (SELECT count(*) FROM messages AS m WHERE m.user_id = threads.user_id"
                " AND m.thread_id = threads.id)"
            )
            empty = [
                (r[0], r[1])
                for r in conn.execute("SELECT user_id, id FROM threads WHERE message_count = 0")
            ]
            threads, _, more_branches = self._delete_threads(conn, empty)
            _log(conn, "thread_deleted", [(u, t, None) for u, t in empty])
        return RetentionReport(messages=removed, threads=threads, branches=branches + more_branches)

    # -- admin reads: a user's data, the change feed --------------------------------------

    def user_data(self, user_id: str) -> UserData:
        """Everything stored of a user, in two queries (threads by creation, messages in
        store order, in one transaction)."""
        with self.transaction() as conn:
            tids = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT id FROM threads WHERE user_id = ? ORDER BY created_at, id", (user_id,)
                )
            )
            rows = conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE user_id = ? ORDER BY seq",
                (user_id,),
            ).fetchall()
        return UserData(user_id, tids, tuple(row_to_message(r) for r in rows))

    def changes(self, since: str | None = None, *, limit: int = 1000) -> ChangeBatch:
        """The change feed (table ``changes``, written in each write's transaction); a
        cursor is ``<feed id>:<event number>``. See :meth:`MessageStore.changes`."""
        check_changes_limit(limit)
        with self.reading() as conn:
            after = self._position(conn, since)
            rows = conn.execute(
                "SELECT id, kind, user_id, thread_id, message_id, at FROM changes"
                " WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        if rows:
            after = rows[-1][0]
        times: dict[int, datetime] = {}  # the events of one write share their time
        events = [
            Change(
                r[1],
                r[2],
                r[3],
                r[4],
                times.get(r[5]) or times.setdefault(r[5], common.from_micros(r[5])),
            )
            for r in rows
        ]
        return ChangeBatch(events, f"{self._feed_id}:{after}", more)

    def _position(self, conn: sqlite3.Connection, since: str | None) -> int:
        if since is None:
            return 0
        feed, _, number = since.rpartition(":") if isinstance(since, str) else ("", "", "")
        if feed != self._feed_id or not number.isdigit() or not number.isascii():
            raise ChangeFeedGapError("this cursor is not one of this store's change feed")
        position = int(number)
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        if position > (int(row[0]) if row else 0):
            raise ChangeFeedGapError("this cursor is ahead of this store's change feed")
        return position

    def cursor_store(self) -> CursorStore:
        """Followers' cursors in this file (table ``recall_cursors``), written under this
        store's lock."""
        if self._cursors is None:
            self._cursors = SQLiteCursorStore(self)
        return self._cursors


_THREAD_COLS = (
    "id, user_id, title, tags, metadata, default_branch, message_count, created_at, updated_at"
)
_UPDATED = 8
_THREAD_BY_KEY = f"SELECT {_THREAD_COLS} FROM threads WHERE user_id = ? AND id = ?"


def _log(
    conn: sqlite3.Connection,
    kind: ChangeKind,
    rows: Sequence[tuple[str, str | None, str | None]],
    now: int | None = None,
) -> None:
    """Record ``(user_id, thread_id, message_id)`` events of one kind in the feed, in the
    caller's transaction."""
    if not rows:
        return
    at = common.to_micros(datetime.now(UTC)) if now is None else now
    conn.executemany(
        "INSERT INTO changes (kind, user_id, thread_id, message_id, at) VALUES (?, ?, ?, ?, ?)",
        [(kind, u, t, m, at) for u, t, m in rows],
    )


def _dump_blocks(message: Message) -> str:
    return BLOCKS_ADAPTER.dump_json(message.content, exclude_none=True).decode()


def row_to_message(row: Sequence[Any]) -> Message:
    """A ``messages`` row (selected as :data:`MESSAGE_COLUMNS`) as a :class:`Message`."""
    return Message.model_construct(
        id=row[0],
        thread_id=row[1],
        user_id=row[2],
        parent_id=row[3],
        role=Role(row[4]),
        name=row[5],
        content=BLOCKS_ADAPTER.validate_json(row[6]),
        metadata=json.loads(row[7]),
        created_at=common.from_micros(row[8]),
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
        created_at=common.from_micros(row[7]),
        updated_at=common.from_micros(row[8]),
    )


def _wrap(exc: sqlite3.Error, path: object) -> TelaMemoryError:
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(f"SQLite store {path}: {text}")
    if "readonly" in text or "read-only" in text:
        return BackendUnavailable(f"SQLite store {path} is read-only: {text}")
    if "locked" in text or "busy" in text:
        return ConflictError(f"SQLite store {path} stayed locked by another writer: {text}")
    return BackendUnavailable(f"SQLite store {path}: {text}")


__all__ = ["DEFAULT_PATH", "MESSAGE_COLUMNS", "SCHEMA_VERSION", "SQLiteStore", "row_to_message"]
