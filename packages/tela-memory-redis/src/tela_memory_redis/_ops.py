"""The store operations as sans-I/O generators, run by both the sync and the async twins.

Every thread operation names the acting user, and the user is part of every key of the
thread (``<prefix>:t:{<user>:<thread>}:``), so another user's thread is simply not there: no
ownership check can be forgotten, and a foreign thread answers exactly like a missing one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import time
import uuid
from binascii import crc_hqx
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from pydantic import JsonValue, ValidationError

from tela_memory.errors import (
    BackendUnavailable,
    ConflictError,
    InvalidMessageError,
    NotFoundError,
    SchemaError,
    TelaMemoryError,
)
from tela_memory.messages import Message, load_stored, load_stored_branch
from tela_memory.stores import _common as common
from tela_memory.stores.base import (
    DEFAULT_USER,
    BranchInfo,
    ErasureReceipt,
    RetentionReport,
    ThreadInfo,
    ThreadPage,
)
from tela_memory.stores.changes import Change, ChangeBatch, ChangeFeedGapError, ChangeKind
from tela_memory_redis import _lua
from tela_memory_redis._driver import Batch, Cmd, Op, Script, Sleep, text
from tela_memory_redis._persistence import persistence_traces

log = logging.getLogger("tela_memory_redis")

_BOUND = {"thread_id", "user_id", "parent_id"}
_CHUNK = 1000
SCHEMA = 2
"""Key layout version: 1 = thread keys by thread id alone (0.1.0 as released), 2 = by
(user, thread)."""


# stored JSON was validated on the way in: reading it back checks its shape natively and skips
# the Python-level rules (twice as fast; a read of the last 50 is mostly this)
_validate_message = load_stored


@functools.lru_cache(maxsize=8192)
def _scope(user_id: str, thread_id: str) -> str:
    """The hash tag of a thread: ``enc(user):enc(thread)``. ``enc`` escapes ``:``, so the
    pair is injective (user ``a:b`` / thread ``c`` and user ``a`` / thread ``b:c`` differ).
    Both ids are checked here, once per pair (invalid ones raise and are not cached)."""
    common.check_id("user_id", user_id)
    common.check_id("thread_id", thread_id)
    return f"{enc(user_id)}:{enc(thread_id)}"


def enc(value: str) -> str:
    """Escape an id for use inside a key: every byte but ``[A-Za-z0-9_.~-]`` is %-encoded, so
    ``{ } : * @ |`` and spaces can never change a key's hash tag or shape."""
    return quote(value, safe="")


def check_prefix(prefix: str) -> str:
    """A key prefix: printable, no braces (they would move the hash tag)."""
    if not prefix or "{" in prefix or "}" in prefix or not prefix.isprintable():
        raise TelaMemoryError(f"invalid Redis key prefix {prefix!r}: printable, no braces")
    return prefix


_SLOTS = 16384
_SLOT_TAGS: list[str] = []
_KINDS: dict[str, ChangeKind] = {
    k: k for k in ("append", "update", "delete", "thread_deleted", "user_erased")
}
_BKINDS: dict[bytes, ChangeKind] = {k.encode(): v for k, v in _KINDS.items()}
_CURSOR = re.compile(r"^([0-9a-f]{16})\.([0-9]{1,20}-[0-9]{1,20})$")
MAX_CHANGES = 10_000


def _slot(tag: str) -> int:
    """The cluster slot of a hash tag (CRC16 / XMODEM, as Redis computes it)."""
    return crc_hqx(tag.encode(), 0) % _SLOTS


def slot_tag(slot: int) -> str:
    """A short hash tag that lands in ``slot`` (the table is built once, ~0.1 s)."""
    if not _SLOT_TAGS:
        table: list[str | None] = [None] * _SLOTS
        left, i = _SLOTS, 0
        while left:
            tag = f"o{i}"
            n = _slot(tag)
            if table[n] is None:
                table[n] = tag
                left -= 1
            i += 1
        _SLOT_TAGS.extend(t for t in table if t is not None)
    return _SLOT_TAGS[slot]


def _fields(raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {text(k): text(v) for k, v in raw.items()}
    return {text(raw[i]): text(raw[i + 1]) for i in range(0, len(raw), 2)}


def _entries(raw: Any) -> list[tuple[str, dict[str, str]]]:
    """Stream entries (XRANGE, raw or parsed by redis-py) as (id, fields)."""
    return [(text(e[0]), _fields(e[1])) for e in (raw or [])]


def _change(entry_id: str, f: dict[str, str]) -> Change:
    ms = int(f.get("a") or entry_id.split("-", 1)[0])
    kind = _KINDS.get(f.get("k", ""))
    if kind is None:
        raise SchemaError(f"change feed entry {entry_id} has an unknown kind {f.get('k')!r}")
    return Change(
        kind=kind,
        user_id=f.get("u", ""),
        thread_id=f.get("t") or None,
        message_id=f.get("m") or None,
        at=datetime.fromtimestamp(ms / 1000, UTC),
    )


def _id_lt(a: str, b: str) -> bool:
    am, _, aseq = a.partition("-")
    bm, _, bseq = b.partition("-")
    return (int(am), int(aseq or 0)) < (int(bm), int(bseq or 0))


def _changes(rows: Any, limit: int) -> list[Change]:
    """Decode up to ``limit`` feed entries (as redis-py parses XRANGE: ``(id, {field:
    value})`` with bytes) into changes; the hot loop of a follower's catch-up."""
    out: list[Change] = []
    times: dict[bytes, datetime] = {}
    names: dict[bytes, str] = {}  # users and threads repeat: decode each once
    kinds = _BKINDS
    for entry_id, f in rows[:limit]:
        if not isinstance(f, dict) or b"k" not in f:  # another reply shape: the slow path
            out.append(_change(text(entry_id), _fields(f)))
            continue
        ms: bytes = f.get(b"a") or entry_id.split(b"-", 1)[0]
        at = times.get(ms)
        if at is None:
            at = times[ms] = datetime.fromtimestamp(int(ms) / 1000, UTC)
        kind = kinds.get(f[b"k"])
        if kind is None:
            raise SchemaError(f"change feed entry {text(entry_id)} has an unknown kind")
        u, t, m = f[b"u"], f.get(b"t"), f.get(b"m")
        user = names.get(u)
        if user is None:
            user = names[u] = u.decode()
        thread = None
        if t:
            thread = names.get(t)
            if thread is None:
                thread = names[t] = t.decode()
        out.append(Change(kind, user, thread, m.decode() if m else None, at))
    return out


def _now_us() -> int:
    return time.time_ns() // 1000


def _ms(ttl: float | timedelta | None) -> str:
    if ttl is None:
        return ""
    seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
    if not seconds > 0:  # also NaN
        raise InvalidMessageError(f"ttl must be positive, got {ttl!r}")
    return str(max(1, int(seconds * 1000)))


class Ops:
    """Key layout plus every store operation as a generator of Redis requests."""

    def __init__(
        self,
        *,
        prefix: str,
        cluster: bool,
        ttl: float | timedelta | None,
        refresh_ttl_on_read: bool,
        on_corrupt: Literal["raise", "skip"],
        compact_on_erase: bool = False,
    ) -> None:
        self.prefix = check_prefix(prefix)
        self.compact_on_erase = compact_on_erase
        self.cluster = cluster
        self.ttl_ms = _ms(ttl)
        self.refresh = refresh_ttl_on_read
        if on_corrupt not in ("raise", "skip"):
            raise TelaMemoryError(f"on_corrupt must be 'raise' or 'skip', got {on_corrupt!r}")
        self.on_corrupt = on_corrupt
        g = f"{prefix}:g:{{{prefix}}}:"
        self.ids_key = g + "ids"
        self.activity_key = g + "activity"
        self.user_prefix = g + "u:"
        self.schema_key = g + "schema"
        self.lock_key = g + "migration"
        self.legacy_threads_key = g + "threads"  # schema 1's activity index (bare thread ids)
        self.changes_key = g + "changes"
        self.epoch_key = g + "changes:epoch"
        self.floor_key = g + "changes:floor"
        self.relayed_key = g + "changes:relayed"
        self.pending_key = g + "changes:pending"
        self.cursors_key = g + "cursors"
        self.lock_ms = 30_000
        self.migration_timeout = 600.0

    # -- keys -------------------------------------------------------------------------------

    def base(self, user_id: str, thread_id: str) -> str:
        """The key prefix of one user's thread (checks both ids)."""
        return f"{self.prefix}:t:{{{_scope(user_id, thread_id)}}}:"

    def base_of(self, member: str) -> str:
        """The key prefix of a thread from its member of the activity index."""
        return f"{self.prefix}:t:{{{member}}}:"

    def _owned_by(self, base: str, user_id: str) -> bool:
        return base.startswith(f"{self.prefix}:t:{{{enc(user_id)}:")

    def user_key(self, user_id: str) -> str:
        return self.user_prefix + enc(user_id)

    def _script(
        self, name: str, base: str, args: list[Any], context: str, feed: str | None = None
    ) -> Script:
        keys = [base + "meta"] if feed is None else [base + "meta", feed]
        return Script(_lua.SCRIPTS[name], keys, [base, *args], context)

    def outbox(self, slot: int) -> str:
        """Cluster: the stream in ``slot`` that the writes of that slot's threads XADD to."""
        return f"{self.prefix}:o:{{{slot_tag(slot)}}}"

    def _feed(self, member: str) -> str:
        """Where a write to the thread ``member`` records its events."""
        return self.outbox(_slot(member)) if self.cluster else self.changes_key

    def _emitting(self, member: str, script: Script) -> Op[Any]:
        """Run a thread script that records events. On a cluster its outbox is then relayed
        into the feed; a writer that dies in between leaves its slot counted as pending, and
        the next reader of the feed relays it."""
        if not self.cluster:
            return (yield script)
        slot = _slot(member)
        yield Cmd(("HINCRBY", self.pending_key, slot, 1), "change feed")
        try:
            reply = yield script
        except TelaMemoryError:
            yield from self._relay(slot, release=True)
            raise
        yield from self._relay(slot, release=True)
        return reply

    def _relay(self, slot: int, *, release: bool) -> Op[None]:
        """Cluster: copy a slot's outbox into the feed (exactly once) and trim it."""
        out = self.outbox(slot)
        keys = [self.changes_key, self.relayed_key, self.pending_key]
        while True:
            rows = _entries((yield Cmd(("XRANGE", out, "-", "+", "COUNT", _CHUNK), "change feed")))
            last = len(rows) < _CHUNK
            args: list[Any] = [slot, "1" if release and last else "0"]
            for eid, f in rows:
                args += [eid, f.get("k", ""), f.get("u", ""), f.get("t", ""), f.get("m", "")]
            mark = text((yield Script(_lua.RELAY, keys, args, "change feed")))
            if rows and mark != "0-0":
                ms, seq = mark.split("-")
                yield Cmd(("XTRIM", out, "MINID", f"{ms}-{int(seq) + 1}"), "change feed")
            if last:
                return

    # -- decoding ---------------------------------------------------------------------------

    def _decode(
        self, raw: Any, *, mid: str, tid: str, user: str, parent: str | None
    ) -> Message | None:
        try:
            if not isinstance(raw, bytes) or not raw.startswith(b"{"):
                raise ValueError("not a stored message (JSON object expected)")
            return _validate_message(raw, thread_id=tid, user_id=user, parent_id=parent)
        except (ValueError, SchemaError) as exc:
            problem = SchemaError(
                f"message {mid!r} of thread {tid!r} holds unreadable data "
                f"({str(exc).splitlines()[0][:200]}); the rest of the thread is intact"
            )
            if self.on_corrupt == "skip":
                log.warning("%s (skipped)", problem)
                return None
            raise problem from exc

    # -- append -----------------------------------------------------------------------------

    def append(
        self,
        thread_id: str,
        messages: Message | Sequence[Message],
        user_id: str,
        branch: str | None,
    ) -> Op[list[Message]]:
        base = self.base(user_id, thread_id)
        if branch is not None:
            common.check_id("branch", branch)
        items = common.as_list(messages)
        if not items:
            return []
        needed: list[str] = []
        produced: list[str] = []
        known: set[str] = set()
        for m in items:
            if m.thread_id is not None and m.thread_id != thread_id:
                raise InvalidMessageError(
                    f"message {m.id} names thread {m.thread_id!r} but is appended to {thread_id!r}"
                )
            if m.user_id is not None and m.user_id != user_id:
                raise InvalidMessageError(
                    f"message {m.id} names user {m.user_id!r} but is appended as {user_id!r}"
                )
            for c in m.tool_calls:
                known.add(c.id)
                produced += [c.id, m.id]
            needed += [r.tool_call_id for r in m.tool_results if r.tool_call_id not in known]
        now = _now_us()
        ukey = self.user_key(user_id)
        member = _scope(user_id, thread_id)
        args: list[Any] = [now, branch or "", user_id, ukey, self.ttl_ms, len(items)]
        for m in items:
            args += [m.id, m.model_dump_json(exclude=_BOUND), common.to_micros(m.created_at)]
        tail = [len(produced) // 2, *produced, thread_id, member]
        ctx = f"thread {thread_id!r}"
        keys = [base + "meta", self._feed(member)]
        if not self.cluster:
            keys += [self.ids_key, self.activity_key]
        fresh: list[str] = []
        added = False
        if self.cluster:
            ids = [m.id for m in items]
            fresh, added = yield from self._claim(base, member, thread_id, now, ids, ukey)
        try:
            script = Script(_lua.APPEND, keys, [base, *args, len(needed), *needed, *tail], ctx)
            reply = yield from self._emitting(member, script)
            if text(reply[0]) == "TOOLS":  # a call not found through the index: look properly
                earlier = yield from self.read(
                    thread_id, user_id, branch, common.ORPHAN_LOOKBACK, None, None
                )
                common.check_tool_results(items, earlier)  # raises on a real orphan
                script = Script(_lua.APPEND, keys, [base, *args, 0, *tail], ctx)
                reply = yield from self._emitting(member, script)
        except TelaMemoryError:
            if self.cluster:  # give the claimed ids back; nothing was written to the thread
                yield from self._unclaim(base, fresh)
                if added:
                    yield Cmd(("ZREM", ukey, thread_id), ctx)
            raise
        if self.cluster:  # activity order (and repair, should an earlier step have failed)
            yield Cmd(("ZADD", ukey, now, thread_id), ctx)
        return common.bind(
            items, thread_id=thread_id, user_id=user_id, head_id=text(reply[1]) or None
        )

    def _claim(
        self, base: str, member: str, thread_id: str, now: int, ids: list[str], ukey: str
    ) -> Op[tuple[list[str], bool]]:
        """Cluster: point the ids at this thread and index it under its user (another slot),
        before the thread is written; return the newly claimed ids and whether the user
        index entry is new."""
        keys = [self.ids_key, self.activity_key, ukey]
        for _ in range(3):
            args = [base, member, thread_id, now, *ids]
            reply = yield Script(_lua.CLAIM, keys, args, "message ids")
            if text(reply[0]) == "OK":
                return [text(x) for x in reply[2:]], bool(int(reply[1]))
            for i in range(1, len(reply), 2):
                mid, other = text(reply[i]), text(reply[i + 1])
                held = yield Cmd(("HEXISTS", other + "m", mid))
                if held:
                    raise common_conflict(mid)
                yield Cmd(("HDEL", self.ids_key, mid))  # stale pointer (thread expired)
        raise common_conflict(ids[0])

    def _unclaim(self, base: str, ids: list[str]) -> Op[None]:
        for i in range(0, len(ids), _CHUNK):
            yield Script(_lua.UNCLAIM, [self.ids_key], [base, *ids[i : i + _CHUNK]])

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
        if last is not None and last < 0:
            raise InvalidMessageError(f"last must be >= 0, got {last}")
        base = self.base(user_id, thread_id)
        if last == 0:
            return []
        refresh = (self.ttl_ms or "0") if self.refresh else ""
        since_s = str(common.to_micros(since)) if since is not None else ""
        args = [branch or "", -1 if last is None else last, since_s, before or "", refresh]
        ctx = f"thread {thread_id!r}"
        reply = yield self._script("read", base, [*args, ""], ctx)
        if text(reply[0]) == "NOTHREAD":
            if branch is not None:
                raise NotFoundError(f"no thread {thread_id!r}")
            return []
        with contextlib.suppress(SchemaError):  # the slow path names the unreadable entry
            return load_stored_branch(
                reply[2:],
                thread_id=thread_id,
                user_id=user_id,
                parent_id=text(reply[1]) or None,
            )
        # some entry is unreadable: read again with the ids, to name it and keep the rest
        reply = yield self._script("read", base, [*args, "ids"], ctx)
        if text(reply[0]) == "NOTHREAD":  # deleted in between
            if branch is not None:
                raise NotFoundError(f"no thread {thread_id!r}")
            return []
        parent = text(reply[1]) or None
        out: list[Message] = []
        for mid, raw in zip(reply[2::2], reply[3::2], strict=True):
            m = self._decode(raw, mid=text(mid), tid=thread_id, user=user_id, parent=parent)
            if m is not None:
                out.append(m)
            parent = text(mid)
        return out

    def get(self, message_id: str, user_id: str) -> Op[Message]:
        common.check_id("user_id", user_id)
        missing = NotFoundError(f"no message with id {message_id!r}")
        if not isinstance(message_id, str) or not message_id:
            raise missing
        base = text((yield Cmd(("HGET", self.ids_key, message_id))))
        if not base or not self._owned_by(base, user_id):  # another user's looks the same
            raise missing
        reply = yield Script(_lua.GET, [base + "meta"], [base, message_id], "message lookup")
        if text(reply[0]) != "OK" or text(reply[2]) != user_id:
            raise missing
        _, tid, _, parent, raw = reply
        m = self._decode(
            raw, mid=message_id, tid=text(tid), user=user_id, parent=text(parent) or None
        )
        if m is None:
            raise NotFoundError(f"message {message_id!r} is unreadable (skipped)")
        return m

    def update_message(self, message: Message, user_id: str) -> Op[Message]:
        stored = yield from self.get(message.id, user_id)
        updated = stored.model_copy(
            update={"content": message.content, "name": message.name, "metadata": message.metadata}
        )
        tid = stored.thread_id or ""
        base, member = self.base(user_id, tid), _scope(user_id, tid)
        args = [message.id, updated.model_dump_json(exclude=_BOUND), user_id, tid]
        script = self._script(
            "update_message", base, args, f"message {message.id!r}", self._feed(member)
        )
        reply = yield from self._emitting(member, script)
        if text(reply[0]) != "OK":
            raise NotFoundError(f"no message with id {message.id!r}")
        return updated

    # -- branches ---------------------------------------------------------------------------

    def fork(self, thread_id: str, at: str, user_id: str, name: str | None) -> Op[BranchInfo]:
        base = self.base(user_id, thread_id)
        if name is not None:
            common.check_id("branch", name)
        now = _now_us()
        args = [at, name or "", now, self.ttl_ms]
        reply = yield self._script("fork", base, args, f"thread {thread_id!r}")
        return BranchInfo(
            thread_id=thread_id,
            name=text(reply[1]),
            head_id=at,
            forked_from=at,
            created_at=common.from_micros(now),
        )

    def branches(self, thread_id: str, user_id: str) -> Op[list[BranchInfo]]:
        base = self.base(user_id, thread_id)
        reply = yield self._script("branches", base, [], f"thread {thread_id!r}")
        if not reply:
            return []
        default = text(reply[0])
        out = []
        for i in range(1, len(reply), 4):
            name = text(reply[i])
            out.append(
                BranchInfo(
                    thread_id=thread_id,
                    name=name,
                    head_id=text(reply[i + 3]) or None,
                    is_default=name == default,
                    forked_from=text(reply[i + 2]) or None,
                    created_at=common.from_micros(int(reply[i + 1])),
                )
            )
        out.sort(key=lambda b: (not b.is_default, b.created_at, b.name))
        return out

    def set_default_branch(self, thread_id: str, name: str, user_id: str) -> Op[None]:
        base = self.base(user_id, thread_id)
        common.check_id("branch", name)
        yield self._script("set_default", base, [name], f"thread {thread_id!r}")

    def delete_branch(self, thread_id: str, name: str, user_id: str) -> Op[int]:
        base = self.base(user_id, thread_id)
        common.check_id("branch", name)
        member = _scope(user_id, thread_id)
        script = self._script(
            "delete_branch", base, [name], f"thread {thread_id!r}", self._feed(member)
        )
        reply = yield from self._emitting(member, script)
        gone = [text(x) for x in reply[1:]]
        yield from self._drop_ids(gone)
        return len(gone)

    def _drop_ids(self, ids: list[str]) -> Op[None]:
        for i in range(0, len(ids), _CHUNK):
            yield Cmd(("HDEL", self.ids_key, *ids[i : i + _CHUNK]))

    # -- threads ----------------------------------------------------------------------------

    @staticmethod
    def _thread_info(raw: Any) -> ThreadInfo:
        if isinstance(raw, list):
            raw = dict(zip(raw[::2], raw[1::2], strict=True))
        f = {text(k): text(v) for k, v in raw.items()}
        try:
            return ThreadInfo(
                id=f["id"],
                user_id=f["user"],
                title=f.get("title") or None,
                tags=tuple(json.loads(f.get("tags") or "[]")),
                metadata=json.loads(f.get("md") or "{}"),
                default_branch=f["default"],
                message_count=int(f.get("count") or 0),
                created_at=common.from_micros(int(f["created"])),
                updated_at=common.from_micros(int(f["updated"])),
            )
        except (KeyError, ValueError, TypeError, ValidationError) as exc:
            raise SchemaError(f"thread metadata is unreadable: {exc}") from exc

    def get_thread(self, thread_id: str, user_id: str) -> Op[ThreadInfo]:
        base = self.base(user_id, thread_id)
        raw = yield Cmd(("HGETALL", base + "meta"), f"thread {thread_id!r}")
        if not raw:
            raise NotFoundError(f"no thread {thread_id!r}")
        return self._thread_info(raw)

    def update_thread(
        self,
        thread_id: str,
        user_id: str,
        title: str | None,
        tags: Sequence[str] | None,
        metadata: dict[str, JsonValue] | None,
    ) -> Op[ThreadInfo]:
        base = self.base(user_id, thread_id)
        if isinstance(tags, str):
            raise InvalidMessageError("tags must be a list of strings, not one string")
        flags = ("t" if title is not None else "") + ("g" if tags is not None else "")
        flags += "m" if metadata is not None else ""
        tags_json = common.check_json(list(tags), "tags") if tags is not None else ""
        md_json = common.check_json(metadata, "thread metadata") if metadata is not None else ""
        now = _now_us()
        args = [now, flags, title or "", tags_json, md_json]
        ctx = f"thread {thread_id!r}"
        reply = yield self._script("update_thread", base, args, ctx)
        if reply and text(reply[0]) == "MISSING":
            raise NotFoundError(f"no thread {thread_id!r}")
        info = self._thread_info(reply)
        yield Cmd(("ZADD", self.activity_key, "XX", now, _scope(user_id, thread_id)), ctx)
        yield Cmd(("ZADD", self.user_key(user_id), "XX", now, thread_id), ctx)
        return info

    def list_threads(self, user_id: str, limit: int, cursor: str | None) -> Op[ThreadPage]:
        if limit < 1:
            raise InvalidMessageError(f"limit must be >= 1, got {limit}")
        common.check_id("user_id", user_id)
        after = common.decode_cursor(cursor) if cursor else None
        ukey = self.user_key(user_id)
        found: list[tuple[int, str, ThreadInfo]] = []
        offset = 0
        top: str = f"{after[0]}" if after else "+inf"
        while len(found) <= limit:
            batch = limit + 1 - len(found) + 8
            rows = yield Cmd(
                ("ZRANGE", ukey, top, "-inf", "BYSCORE", "REV", "LIMIT", offset, batch,
                 "WITHSCORES"),
                f"threads of {user_id!r}",
            )  # fmt: skip
            if not rows:
                break
            offset += len(rows) // 2 if isinstance(rows[0], bytes) else len(rows)
            pairs = _pairs(rows)
            wanted = [(sc, t) for sc, t in pairs if after is None or (sc, t) < after]
            metas = yield Batch(
                tuple(Cmd(("HGETALL", self.base(user_id, t) + "meta")) for _, t in wanted),
                f"threads of {user_id!r}",
            )
            for (score, tid), raw in zip(wanted, metas, strict=True):
                if not raw:  # expired or deleted: clean the index lazily
                    yield Cmd(("ZREM", ukey, tid))
                    offset -= 1
                    continue
                found.append((score, tid, self._thread_info(raw)))
            if len(pairs) < batch:
                break
        page = found[:limit]
        next_cursor = None
        if len(found) > limit:
            next_cursor = common.encode_cursor(page[-1][0], page[-1][1])
        return ThreadPage(threads=tuple(t[2] for t in page), next_cursor=next_cursor)

    def delete_thread(
        self, thread_id: str, user_id: str, *, record: bool = True
    ) -> Op[tuple[int, int]]:
        """Delete a thread; return (messages, branches). ``record=False``: no
        ``thread_deleted`` event (erase_user records one ``user_erased`` instead)."""
        base = self.base(user_id, thread_id)
        member = _scope(user_id, thread_id)
        ctx = f"thread {thread_id!r}"
        if record:
            script = self._script("delete_thread", base, [], ctx, self._feed(member))
            reply = yield from self._emitting(member, script)
        else:
            reply = yield self._script("delete_thread", base, [], ctx)
        if text(reply[0]) != "OK":
            return 0, 0
        branches = int(reply[3])
        ids = [text(x) for x in reply[4:]]
        yield from self._drop_ids(ids)
        yield Cmd(("ZREM", self.activity_key, _scope(user_id, thread_id)))
        yield Cmd(("ZREM", self.user_key(user_id), thread_id))
        return len(ids), branches

    # -- privacy and retention ------------------------------------------------------------

    def erase_user(self, user_id: str) -> Op[ErasureReceipt]:
        common.check_id("user_id", user_id)
        ukey = self.user_key(user_id)
        tids = [text(t) for t in (yield Cmd(("ZRANGE", ukey, 0, -1), f"user {user_id!r}"))]
        threads = messages = branches = 0
        for tid in tids:
            n, b = yield from self.delete_thread(tid, user_id, record=False)
            if n or b:
                threads += 1
            messages += n
            branches += b
        yield Cmd(("DEL", ukey))
        yield from self._purge_changes(user_id)
        done, left = yield from persistence_traces(
            compact=self.compact_on_erase, cluster=self.cluster
        )
        return ErasureReceipt(
            user_id=user_id,
            threads=threads,
            messages=messages,
            branches=branches,
            scrubbed=done,
            traces_left=left,
        )

    def apply_retention(
        self, max_age: timedelta | None, max_messages: int | None
    ) -> Op[RetentionReport]:
        if max_messages is not None and max_messages < 0:
            raise InvalidMessageError(f"max_messages must be >= 0, got {max_messages}")
        if max_age is None and max_messages is None:
            return RetentionReport()
        cutoff = str(_now_us() - max_age // timedelta(microseconds=1)) if max_age else ""
        keep = "" if max_messages is None else str(max_messages)
        removed = threads = branches = 0
        offset = 0
        while True:  # pages of the activity index, oldest first (no keyspace scan)
            page = yield Cmd(
                ("ZRANGE", self.activity_key, offset, offset + _CHUNK - 1), "retention"
            )
            if not page:
                break
            offset += len(page)
            for member in (text(t) for t in page):
                base = self.base_of(member)
                script = self._script(
                    "retention", base, [cutoff, keep], "retention", self._feed(member)
                )
                reply = yield from self._emitting(member, script)
                gone_thread = text(reply[0]) != "OK" or bool(int(reply[1]))
                if text(reply[0]) == "OK":
                    ids = [text(x) for x in reply[5:]]
                    removed += len(ids)
                    branches += int(reply[2])
                    threads += int(reply[1])
                    yield from self._drop_ids(ids)
                    if gone_thread and text(reply[3]):
                        yield Cmd(("ZREM", text(reply[3]), text(reply[4])))
                if gone_thread:  # emptied, or already gone (expired): out of the index
                    yield Cmd(("ZREM", self.activity_key, member))
                    offset -= 1
        return RetentionReport(messages=removed, threads=threads, branches=branches)

    def _purge_changes(self, user_id: str) -> Op[None]:
        """Remove every event of ``user_id`` from the feed, then record ``user_erased``."""
        ctx = f"change feed of {user_id!r}"
        if self.cluster:  # events still in outboxes (a writer that died) come in first
            yield from self._relay_pending()
        start: str | None = "-"
        while start is not None:
            args = [user_id, start, _CHUNK]
            nxt = text((yield Script(_lua.PURGE, [self.changes_key], args, ctx)))
            start = f"({nxt}" if nxt else None
        yield Cmd(
            ("XADD", self.changes_key, "*", "k", "user_erased", "u", user_id, "t", "", "m", ""),
            ctx,
        )

    def _relay_pending(self) -> Op[None]:
        """Cluster: relay the outboxes of slots whose writers have not all relayed."""
        raw = yield Cmd(("HGETALL", self.pending_key), "change feed")
        for slot in sorted(int(k) for k, v in _fields(raw).items() if int(v or 0) > 0):
            yield from self._relay(slot, release=False)

    # -- change feed ------------------------------------------------------------------------

    def _parse_cursor(self, cursor: str) -> tuple[str, str]:
        m = _CURSOR.match(cursor) if isinstance(cursor, str) else None
        if m is None:
            raise ChangeFeedGapError(f"{cursor!r} is not a change feed cursor of this store")
        return m.group(1), m.group(2)

    def changes(self, since: str | None, limit: int) -> Op[ChangeBatch]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CHANGES:
            raise InvalidMessageError(f"limit must be between 1 and {MAX_CHANGES}, got {limit!r}")
        epoch, after = self._parse_cursor(since) if since is not None else ("", "0-0")
        if self.cluster:
            yield from self._relay_pending()
        start = "-" if since is None else f"({after}"
        ctx = "change feed"
        # one round trip (all three keys are in the globals' slot); the floor is read after
        # the entries, so a trim in between can only make this answer a gap, never skip one
        rows, current, floor = yield Batch(
            (
                Cmd(("XRANGE", self.changes_key, start, "+", "COUNT", limit + 1)),
                Cmd(("GET", self.epoch_key)),
                Cmd(("GET", self.floor_key)),
            ),
            ctx,
        )
        current = text(current)
        if not current and since is None:  # a fresh feed: name it (once, whoever is first)
            yield Cmd(("SET", self.epoch_key, uuid.uuid4().hex[:16], "NX"), ctx)
            current = text((yield Cmd(("GET", self.epoch_key), ctx)))
        if since is not None and (epoch != current or _id_lt(after, text(floor) or "0-0")):
            raise ChangeFeedGapError(
                f"cursor {since!r} points before what the change feed retains (or is not one "
                "of this store's): rebuild from the store"
            )
        if since is not None and not rows and after != "0-0":
            # nothing after the cursor: it must not point past the feed's last id either
            last = yield from self._last_id()
            if last is None or _id_lt(last, after):
                raise ChangeFeedGapError(f"cursor {since!r} is not one of this feed's")
        changes = _changes(rows, limit)
        if changes:
            after = text(rows[len(changes) - 1][0])
        return ChangeBatch(changes=changes, cursor=f"{current}.{after}", more=len(rows) > limit)

    def _last_id(self) -> Op[str | None]:
        """The id the feed's stream gave last (``None``: no stream)."""
        try:
            info = yield Cmd(("XINFO", "STREAM", self.changes_key), "change feed")
        except BackendUnavailable as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        if isinstance(info, list):
            info = dict(zip(info[::2], info[1::2], strict=False))
        fields = {text(k): v for k, v in info.items()}
        return text(fields.get("last-generated-id")) or None

    def trim_changes(self, before: str) -> Op[int]:
        epoch, upto = self._parse_cursor(before)
        last = yield from self._last_id()
        if upto != "0-0" and (last is None or _id_lt(last, upto)):
            raise ChangeFeedGapError(f"cursor {before!r} is not one of this feed's")
        keys = [self.changes_key, self.epoch_key, self.floor_key]
        reply = yield Script(_lua.TRIM, keys, [epoch, upto], "change feed")
        if text(reply[0]) != "OK":
            raise ChangeFeedGapError(f"cursor {before!r} is not a live cursor of this feed")
        return int(reply[1])

    def get_cursor(self, name: str) -> Op[str | None]:
        _check_name(name)
        return text((yield Cmd(("HGET", self.cursors_key, name), "feed cursors"))) or None

    def set_cursor(self, name: str, cursor: str | None) -> Op[None]:
        _check_name(name)
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidMessageError(f"a cursor is a string, got {type(cursor).__name__}")
        if cursor is None:
            yield Cmd(("HDEL", self.cursors_key, name), "feed cursors")
        else:
            yield Cmd(("HSET", self.cursors_key, name, cursor), "feed cursors")

    # -- ttl --------------------------------------------------------------------------------

    def set_ttl(self, thread_id: str, user_id: str, ttl: float | timedelta | None) -> Op[None]:
        base = self.base(user_id, thread_id)
        args = [_ms(ttl) or "0"]
        yield self._script("set_ttl", base, args, f"thread {thread_id!r}")

    # -- schema: migration from the layout before namespacing ------------------------------

    def ensure_schema(self) -> Op[int]:
        """Make sure the keyspace has the current layout: a fresh one is stamped, one written
        before namespacing (schema 1) is migrated, under a lock that other processes wait on.
        Return how many threads this call migrated."""
        waited = 0.0
        while True:
            version = text((yield Cmd(("GET", self.schema_key), "schema version")))
            if version == str(SCHEMA):
                return 0
            if version:
                raise SchemaError(
                    f"the keys under prefix {self.prefix!r} have layout version {version}, "
                    f"this tela-memory-redis knows {SCHEMA}: upgrade tela-memory-redis"
                )
            legacy = yield Cmd(("EXISTS", self.legacy_threads_key), "schema version")
            if not int(legacy):  # nothing written before namespacing: a fresh keyspace
                yield Cmd(("SET", self.schema_key, str(SCHEMA), "NX"), "schema version")
                continue
            token = uuid.uuid4().hex
            got = yield Cmd(
                ("SET", self.lock_key, token, "NX", "PX", self.lock_ms), "migration lock"
            )
            if got:
                try:
                    moved, done = yield from self._migrate(token)
                except TelaMemoryError:
                    yield Script(_lua.LOCK_RELEASE, [self.lock_key], [token], "migration lock")
                    raise
                if done:
                    yield Cmd(("SET", self.schema_key, str(SCHEMA)), "schema version")
                    yield Script(_lua.LOCK_RELEASE, [self.lock_key], [token], "migration lock")
                    log.info("migrated %d threads under prefix %r to layout %d", moved,
                             self.prefix, SCHEMA)  # fmt: skip
                    return moved
                continue  # lost the lock (we stalled past its TTL): someone else goes on
            if waited >= self.migration_timeout:
                raise BackendUnavailable(
                    f"another process has been migrating the keys under prefix "
                    f"{self.prefix!r} for {waited:.0f} s (lock {self.lock_key}); try again later"
                )
            yield Sleep(0.05, "migration lock")
            waited += 0.05

    def _migrate(self, token: str) -> Op[tuple[int, bool]]:
        """Move every thread of the legacy activity index to its user's namespace; return
        (threads moved, whether all is done). Threads leave the legacy index only once they
        are fully moved, so an interrupted run is resumed by the next one."""
        moved = 0
        while True:
            rows = yield Cmd(("ZRANGE", self.legacy_threads_key, 0, 99, "WITHSCORES"), "migration")
            if not rows:
                return moved, True
            for score, tid in _pairs(rows):
                moved += yield from self._migrate_thread(tid, score)
                ours = yield Script(
                    _lua.LOCK_REFRESH, [self.lock_key], [token, self.lock_ms], "migration lock"
                )
                if not int(ours):
                    return moved, False

    def _migrate_thread(self, tid: str, score: int) -> Op[int]:
        old = f"{self.prefix}:t:{{{enc(tid)}}}:"
        ctx = "migration"
        dump = yield Script(_lua.MIGRATE_DUMP, [old + "meta"], [old], ctx)
        if dump:  # else expired, or moved by a run that stopped before its last step
            user = text(dump[0]) or DEFAULT_USER
            new, member, ukey = self.base(user, tid), _scope(user, tid), self.user_key(user)
            args = [new, user, ukey, *dump[1:]]  # (key suffix, DUMP payload, PTTL) per key
            yield Script(_lua.MIGRATE_RESTORE, [new + "meta"], args, ctx)
            mids = [text(m) for m in (yield Cmd(("HKEYS", new + "m"), ctx))]
            for i in range(0, max(1, len(mids)), _CHUNK):
                keys = [self.ids_key, self.activity_key, ukey]
                args = [new, member, tid, score, *mids[i : i + _CHUNK]]
                yield Script(_lua.MIGRATE_INDEX, keys, args, ctx)
            yield Script(_lua.MIGRATE_DROP, [old + "meta"], [old], ctx)
        yield Cmd(("ZREM", self.legacy_threads_key, tid), ctx)
        return 1 if dump else 0


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise InvalidMessageError(f"a cursor name is a non-empty string, got {name!r}")


def _pairs(rows: list[Any]) -> list[tuple[int, str]]:
    if rows and isinstance(rows[0], list | tuple):  # RESP3 shape
        return [(int(float(s)), text(m)) for m, s in rows]
    return [(int(float(rows[i + 1])), text(rows[i])) for i in range(0, len(rows), 2)]


def common_conflict(mid: str) -> TelaMemoryError:
    return ConflictError(f"message id {mid!r} is already stored in another thread")
