"""Cursors of the record change feed, shared by the backends.

A cursor is ``<scheme>:<feed id>:<event number>``: the feed id is random per store (per file
for SQLite), so a cursor of another store is refused instead of silently skipping events.
"""

from __future__ import annotations

from tela_memory.errors import InvalidMessageError
from tela_memory.stores.changes import ChangeFeedGapError

MAX_FEED_LIMIT = 10_000


def check_feed_limit(limit: int) -> int:
    """``limit`` if it is 1 to 10,000, else ``InvalidMessageError``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FEED_LIMIT:
        raise InvalidMessageError(
            f"limit must be an integer from 1 to {MAX_FEED_LIMIT}, got {limit!r}"
        )
    return limit


def parse_cursor(since: str | None, scheme: str, feed_id: str, last: int) -> int:
    """The event number after which to read (``0`` for ``None``); ``ChangeFeedGapError`` when
    ``since`` is not a cursor of this feed (malformed, another store's, or ahead of it)."""
    if since is None:
        return 0
    if not isinstance(since, str):
        raise ChangeFeedGapError(f"not a record feed cursor: {type(since).__name__}")
    parts = since.split(":")
    if len(parts) != 3 or parts[0] != scheme or parts[1] != feed_id or not parts[2].isdigit():
        shown = since if len(since) <= 80 else since[:80] + "..."
        raise ChangeFeedGapError(f"{shown!r} is not a cursor of this record feed")
    number = int(parts[2])
    if number > last:
        raise ChangeFeedGapError("the cursor is ahead of this record feed")
    return number


__all__ = ["MAX_FEED_LIMIT", "ChangeFeedGapError", "check_feed_limit", "parse_cursor"]
