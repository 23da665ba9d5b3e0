"""An in-process record store: dictionaries under one lock, nothing persisted (tests, demos).

Keys are held per user (``user_id -> (namespace, key) -> versions``), so no read can reach
another user's records. The feed is a list of numbered events kept for the life of the store
(an erased user's earlier events are dropped); a cursor is ``rec-mem:<store id>:<number>``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from tela_memory.records.base import (
    KeyWrite,
    Namespace,
    Record,
    RecordChange,
    RecordChangeBatch,
    RecordErasureReceipt,
    RecordStore,
)
from tela_memory.records.feed import check_feed_limit, parse_cursor

_Key = tuple[Namespace, str]


class InMemoryRecordStore(RecordStore):
    """Record store held in process memory; same behaviour as :class:`SQLiteRecordStore`.

    Args:
        now: the clock (see :class:`~tela_memory.records.base.RecordStore`).
    """

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        super().__init__(now=now)
        self._users: dict[str, dict[_Key, list[Record]]] = {}
        self._lock = threading.RLock()
        self._feed_id = uuid.uuid4().hex
        self._feed: list[tuple[int, RecordChange]] = []
        self._last = 0

    def __repr__(self) -> str:
        return "InMemoryRecordStore()"

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            yield None

    _reading = _transaction

    def _rows(self, tx: Any, user_id: str, namespace: Namespace, key: str) -> list[Record]:
        return list(self._users.get(user_id, {}).get((namespace, key), ()))

    def _write(self, tx: Any, user_id: str, namespace: Namespace, key: str, w: KeyWrite) -> None:
        keys = self._users.setdefault(user_id, {})
        rows = {r.version: r for r in keys.get((namespace, key), ())}
        for v in w.remove:
            rows.pop(v, None)
        for r in w.upsert:
            rows[r.version] = r
        if rows:
            keys[(namespace, key)] = [rows[v] for v in sorted(rows)]
        else:
            keys.pop((namespace, key), None)
            if not keys:
                del self._users[user_id]
        self._emit(w.events)

    def _emit(self, events: list[RecordChange]) -> None:
        for e in events:
            self._last += 1
            self._feed.append((self._last, e))

    def _scan(
        self,
        tx: Any,
        user_id: str,
        prefix: Namespace,
        *,
        kind: str | None,
        current_only: bool,
        now: datetime,
        limit: int,
        offset: int,
    ) -> list[Record]:
        keys = self._users.get(user_id, {})
        n = len(prefix)
        found: list[Record] = []
        for ns, key in sorted(k for k in keys if k[0][:n] == prefix):
            for r in keys[(ns, key)]:
                if (
                    (kind is None or r.kind == kind)
                    and (not current_only or r.current)
                    and (r.expires_at is None or r.expires_at > now)
                ):
                    found.append(r)
        return found[offset : offset + limit]

    def _expired_keys(self, tx: Any, now: datetime) -> list[tuple[str, Namespace, str]]:
        return sorted(
            (user, ns, key)
            for user, keys in self._users.items()
            for (ns, key), rows in keys.items()
            if rows[-1].expires_at is not None and rows[-1].expires_at <= now
        )

    def _erase(self, tx: Any, user_id: str, at: datetime) -> RecordErasureReceipt:
        keys = self._users.pop(user_id, {})
        if keys or any(e.user_id == user_id and e.kind != "user_erased" for _, e in self._feed):
            self._feed = [(n, e) for n, e in self._feed if e.user_id != user_id]
            self._emit([RecordChange("user_erased", user_id, None, None, None, at)])
        return RecordErasureReceipt(
            user_id=user_id, records=len(keys), versions=sum(len(v) for v in keys.values())
        )

    def changes(self, since: str | None = None, *, limit: int = 1000) -> RecordChangeBatch:
        """Record events after ``since``; see :meth:`RecordStore.changes`."""
        check_feed_limit(limit)
        with self._lock:
            after = parse_cursor(since, "rec-mem", self._feed_id, self._last)
            start = _first_after(self._feed, after)
            page = self._feed[start : start + limit + 1]
            more = len(page) > limit
            page = page[:limit]
            last = page[-1][0] if page else after
            return RecordChangeBatch([e for _, e in page], f"rec-mem:{self._feed_id}:{last}", more)


def _first_after(feed: list[tuple[int, RecordChange]], after: int) -> int:
    lo, hi = 0, len(feed)
    while lo < hi:
        mid = (lo + hi) // 2
        if feed[mid][0] <= after:
            lo = mid + 1
        else:
            hi = mid
    return lo


__all__ = ["InMemoryRecordStore"]
