"""The ``RecordStore`` contract: user-scoped, namespaced, versioned JSON records.

A record is one value under ``(user_id, namespace, key)``: a fact, an episode summary, a
profile entry, an agent's note. The namespace is a tuple of segments (``("facts",)``,
``("agent", "planner", "notes")``); listing by a prefix of it is how a tier or an agent reads
its own records. Every operation names the acting user (``user_id=``, keyword-only, or bind it
once with :meth:`RecordStore.for_user`); a record of another user is indistinguishable from a
missing one, under any namespace, key, kind or filter.

**Versions.** Each key has a version sequence starting at 1; every write adds one, and the
key's version is always that of its newest stored row (an invalidation is a write: the ended
value is stored again under the next version, so the record it returns is the one to pass as
``expected_version`` next). A write may
pass ``expected_version``: the version it read (``0``: the key must not exist); when another
writer got there first the write raises :class:`VersionConflictError` and changes nothing, so
read-modify-write loops never lose an update. ``put`` replaces the current value;
:meth:`~RecordStore.supersede` keeps the old version as history (``invalid_at`` set) and
:meth:`~RecordStore.invalidate` ends a value without a successor. :meth:`~RecordStore.history`
returns every kept version, oldest first. ``delete`` removes a key with its history (its
versions then start again at 1).

**Time to live.** A write may give ``ttl``; the key (with its history) expires together, at
``expires_at``, and is then invisible to every read; :meth:`~RecordStore.purge_expired`
removes expired keys (and a write to an expired key starts it afresh). The clock is injected
(``now=``), so expiry and validity are testable without sleeping.

**Change feed.** :meth:`~RecordStore.changes` returns what happened to records, in order, as
:class:`RecordChange` events with an opaque cursor (an admin read across users, like the
message store's feed). Erasing a user who had records drops their earlier events and records
one ``user_erased`` event (erasing a user with none changes nothing).

Async twins (``aput``, ``aget``, ...) run the sync method in a worker thread, the same
strategy as :class:`~tela_memory.stores.base.MessageStore`. Backends implement a few
primitives (:meth:`RecordStore._write`, :meth:`RecordStore._read`, ...); the rules above live
here once, so every backend applies them the same way.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, JsonValue

from tela_memory.errors import ConflictError, InvalidMessageError, NotFoundError
from tela_memory.stores import _common as common
from tela_memory.stores.base import UserData
from tela_memory.stores.sqlite_scrub import Scrub

if TYPE_CHECKING:
    from tela_memory.records.scoped import UserRecords

Namespace = tuple[str, ...]
"""A record namespace: one or more segments, each a printable string of 1 to 200 characters."""

MAX_NAMESPACE_DEPTH = 10
MAX_VALUE_BYTES = 1_000_000
"""The largest value (as UTF-8 JSON) a record may hold."""
MAX_PROVENANCE = 1_000
MAX_LIMIT = 10_000
DEFAULT_KIND = "record"

ChangeKind = Literal["put", "supersede", "invalidate", "delete", "user_erased"]
"""``put`` / ``supersede`` / ``invalidate``: a key got version ``version``; ``delete``: a key
and its history are gone (also when it expired and was purged); ``user_erased``: every record
of a user is gone (``namespace``, ``key`` and ``version`` are ``None``)."""


class Record(BaseModel):
    """One stored version of a record.

    Attributes:
        user_id: the owner.
        namespace: where it lives, e.g. ``("facts",)`` or ``("agent", "planner", "notes")``.
        key: its key inside the namespace.
        kind: what it is (``"fact"``, ``"episode"``, ``"profile"``, ... ``"record"`` by default).
        value: any JSON value.
        provenance: ids of the messages it came from (not checked here: the writer must only
            cite messages of ``user_id``).
        version: 1 for the first write of the key, one more for each later write.
        valid_from: since when this value holds.
        invalid_at: when it stopped holding (superseded or invalidated); ``None``: current.
        created_at: when the key was first written.
        updated_at: when this version was last written.
        expires_at: when the key expires (``None``: never).
    """

    model_config = ConfigDict(frozen=True)

    user_id: str
    namespace: Namespace
    key: str
    kind: str = DEFAULT_KIND
    value: JsonValue
    provenance: tuple[str, ...] = ()
    version: int
    valid_from: datetime
    invalid_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None

    @property
    def current(self) -> bool:
        """Whether this version still holds (not superseded or invalidated)."""
        return self.invalid_at is None


_Records = list[Record]


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One event of the record change feed.

    Attributes:
        kind: what happened (:data:`ChangeKind`).
        user_id: whose record it concerns.
        namespace: the record's namespace (``None`` for ``user_erased``).
        key: the record's key (``None`` for ``user_erased``).
        version: the version written (``None`` for ``delete`` and ``user_erased``).
        at: when the store recorded it (the store's clock).
    """

    kind: ChangeKind
    user_id: str
    namespace: Namespace | None
    key: str | None
    version: int | None
    at: datetime


@dataclass(frozen=True, slots=True)
class RecordChangeBatch:
    """A page of the record feed: ``changes`` oldest first, ``cursor`` to pass as ``since=``
    next time (the same cursor when nothing happened), ``more`` when ``limit`` cut it short."""

    changes: list[RecordChange]
    cursor: str
    more: bool = False


@dataclass(frozen=True, slots=True)
class RecordErasureReceipt:
    """What :meth:`RecordStore.erase_user` removed: ``records`` keys with ``versions`` stored
    versions (history included)."""

    user_id: str
    records: int = 0
    versions: int = 0


class VersionConflictError(ConflictError):
    """A write's ``expected_version`` is not the key's version: another writer got there
    first. Nothing was written; read the record again and retry.

    Attributes:
        expected: the version the caller passed.
        actual: the key's version now (``0``: no such key).
    """

    def __init__(self, namespace: Namespace, key: str, expected: int, actual: int) -> None:
        super().__init__(
            f"record {key!r} in {'/'.join(namespace)!r} is at version {actual},"
            f" not {expected}; read it again and retry"
        )
        self.expected = expected
        self.actual = actual


@dataclass(slots=True)
class KeyWrite:
    """What one write does to a key, handed to :meth:`RecordStore._write`: store ``upsert``
    (whole rows, replacing rows of the same version), drop the versions in ``remove``, then
    append ``events`` to the feed."""

    upsert: list[Record] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)
    events: list[RecordChange] = field(default_factory=list)


# -- argument checks ---------------------------------------------------------------------


def check_namespace(namespace: object, *, prefix: bool = False) -> Namespace:
    """A namespace as a tuple of checked segments; ``prefix=True`` also accepts ``()``."""
    if isinstance(namespace, str) or not isinstance(namespace, (tuple, list)):
        raise InvalidMessageError(
            f"a namespace is a tuple of strings such as ('facts',), got {type(namespace).__name__}"
        )
    segments = tuple(namespace)
    if not segments and not prefix:
        raise InvalidMessageError("a record namespace needs at least one segment")
    if len(segments) > MAX_NAMESPACE_DEPTH:
        raise InvalidMessageError(
            f"a namespace has at most {MAX_NAMESPACE_DEPTH} segments, got {len(segments)}"
        )
    for seg in segments:
        common.check_id("namespace segment", seg)
    return segments


def check_limit(limit: int, offset: int) -> None:
    """``limit`` in 1..10,000 and ``offset`` >= 0, else ``InvalidMessageError``."""
    for name, val, low in (("limit", limit, 1), ("offset", offset, 0)):
        if isinstance(val, bool) or not isinstance(val, int) or val < low:
            raise InvalidMessageError(f"{name} must be an integer >= {low}, got {val!r}")
    if limit > MAX_LIMIT:
        raise InvalidMessageError(f"limit must be at most {MAX_LIMIT}, got {limit}")


def _check_value(value: object) -> JsonValue:
    text = common.check_json(value, "a record value")
    if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
        raise InvalidMessageError(f"a record value is at most {MAX_VALUE_BYTES} bytes of JSON")
    loaded: JsonValue = json.loads(text)
    return loaded


def _check_provenance(provenance: Sequence[str]) -> tuple[str, ...]:
    if isinstance(provenance, str) or not isinstance(provenance, (tuple, list)):
        raise InvalidMessageError("provenance is a list of message ids, not one string")
    if len(provenance) > MAX_PROVENANCE:
        raise InvalidMessageError(f"provenance names at most {MAX_PROVENANCE} message ids")
    return tuple(common.check_id("provenance message id", m) for m in provenance)


def _check_ttl(ttl: timedelta | None) -> None:
    if ttl is not None and (not isinstance(ttl, timedelta) or ttl <= timedelta(0)):
        raise InvalidMessageError(f"ttl must be a positive timedelta, got {ttl!r}")


def _check_expected(expected: int | None) -> None:
    if expected is not None and (
        isinstance(expected, bool) or not isinstance(expected, int) or expected < 0
    ):
        raise InvalidMessageError(f"expected_version must be an integer >= 0, got {expected!r}")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def matches(record: Record, where: Mapping[str, str] | None, text: str | None) -> bool:
    """Whether a record's value has every ``where`` field (top-level, compared as canonical
    JSON; ``where`` holds those JSON texts) and contains ``text`` (case-insensitive, in any
    string of the value or in the key)."""
    if where:
        value = record.value
        if not isinstance(value, dict):
            return False
        for name, want in where.items():
            if name not in value or _canonical(value[name]) != want:
                return False
    if text is not None:
        needle = text.casefold()
        return needle in record.key.casefold() or any(
            needle in s.casefold() for s in _strings(record.value)
        )
    return True


def _strings(value: JsonValue) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _exact(when: datetime) -> datetime:
    """``when`` as every backend stores it: UTC, whole microseconds."""
    return common.from_micros(common.to_micros(when))


class RecordStore(ABC):
    """Versioned, namespaced JSON records of many users (see the module docs).

    Args:
        now: the clock (aware ``datetime`` in UTC); ``datetime.now(UTC)`` by default.
    """

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self._clock = now or _utcnow

    def _now(self) -> datetime:
        return _exact(self._clock())

    # -- backend primitives ------------------------------------------------------------------

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A write transaction: everything read and written inside it is atomic with respect
        to every other writer (threads and, for persistent backends, processes)."""

    @abstractmethod
    def _reading(self) -> AbstractContextManager[Any]:
        """A consistent read context (may be the write transaction)."""

    @abstractmethod
    def _rows(self, tx: Any, user_id: str, namespace: Namespace, key: str) -> _Records:
        """Every stored version of one key, expired or not, oldest first."""

    @abstractmethod
    def _write(self, tx: Any, user_id: str, namespace: Namespace, key: str, w: KeyWrite) -> None:
        """Apply one :class:`KeyWrite` inside ``tx``."""

    @abstractmethod
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
    ) -> _Records:
        """Unexpired versions of the user's keys under ``prefix``, ordered by namespace, key
        and version; only current ones when ``current_only``."""

    @abstractmethod
    def _expired_keys(self, tx: Any, now: datetime) -> list[tuple[str, Namespace, str]]:
        """Every ``(user_id, namespace, key)`` whose ``expires_at`` is at or before ``now``."""

    @abstractmethod
    def _erase(self, tx: Any, user_id: str, at: datetime) -> RecordErasureReceipt:
        """Remove every row and feed event of a user; when there were any (other than an
        earlier ``user_erased``), end the feed with one ``user_erased`` event, else change
        nothing."""

    @abstractmethod
    def changes(self, since: str | None = None, *, limit: int = 1000) -> RecordChangeBatch:
        """Record events after the cursor ``since`` (``None``: from the start of what the
        feed keeps), oldest first, at most ``limit`` (1 to 10,000). An admin read across users.

        Raises:
            ChangeFeedGapError: ``since`` is not a cursor of this store's feed.
        """

    # -- writing -------------------------------------------------------------------------

    def put(
        self,
        namespace: Namespace,
        key: str,
        value: JsonValue,
        *,
        user_id: str,
        kind: str | None = None,
        provenance: Sequence[str] = (),
        ttl: timedelta | None = None,
        expected_version: int | None = None,
    ) -> Record:
        """Write ``value`` as the key's current version (replacing the previous current
        value, which is not kept; use :meth:`supersede` to keep it) and return it.

        Args:
            kind: what the record is; ``None`` keeps the kind of the key's newest version
                (``"record"`` for a new key).
            expected_version: the version the caller read (``0``: the key must not exist);
                ``VersionConflictError`` if it is not the key's version. ``None``: no check.
            ttl: the key (with its history) expires this long from now; ``None``: never.
        """
        return self._versioned("put", namespace, key, value, user_id, kind, provenance, ttl,
                               expected_version)  # fmt: skip

    def supersede(
        self,
        namespace: Namespace,
        key: str,
        value: JsonValue,
        *,
        user_id: str,
        kind: str | None = None,
        provenance: Sequence[str] = (),
        ttl: timedelta | None = None,
        expected_version: int | None = None,
    ) -> Record:
        """Replace the current value, keeping it as history (its ``invalid_at`` becomes now);
        ``kind=None`` keeps the old kind. ``NotFoundError`` when there is no current value."""
        return self._versioned("supersede", namespace, key, value, user_id, kind, provenance,
                               ttl, expected_version)  # fmt: skip

    def invalidate(
        self,
        namespace: Namespace,
        key: str,
        *,
        user_id: str,
        expected_version: int | None = None,
    ) -> Record:
        """End the current value without a successor and return it as stored: kept as
        history with ``invalid_at`` now, under the key's next version (pass that version as
        ``expected_version`` to write after it); ``NotFoundError`` when there is no current
        value."""
        return self._versioned("invalidate", namespace, key, None, user_id, None, (), None,
                               expected_version)  # fmt: skip

    def _versioned(
        self,
        op: Literal["put", "supersede", "invalidate"],
        namespace: Namespace,
        key: str,
        value: JsonValue,
        user_id: str,
        kind: str | None,
        provenance: Sequence[str],
        ttl: timedelta | None,
        expected: int | None,
    ) -> Record:
        common.check_id("user_id", user_id)
        ns = check_namespace(namespace)
        common.check_id("record key", key)
        if kind is not None:
            common.check_id("record kind", kind)
        value = _check_value(value)
        prov = _check_provenance(provenance)
        _check_ttl(ttl)
        _check_expected(expected)
        with self._transaction() as tx:
            now = self._now()
            rows = self._rows(tx, user_id, ns, key)
            w = KeyWrite()
            if rows and rows[-1].expires_at is not None and rows[-1].expires_at <= now:
                w.remove = [r.version for r in rows]
                w.events.append(RecordChange("delete", user_id, ns, key, None, now))
                rows = []
            version = _key_version(rows)
            if expected is not None and expected != version:
                raise VersionConflictError(ns, key, expected, version)
            head = rows[-1] if rows and rows[-1].current else None
            if op != "put" and head is None:
                raise NotFoundError(f"no current record {key!r} in {'/'.join(ns)!r}")
            if op == "invalidate":
                assert head is not None
                expires = head.expires_at
            else:
                expires = now + ttl if ttl is not None else None
            kept = list(rows)
            if head is not None and op == "put":
                kept.pop()
                w.remove.append(head.version)
            elif head is not None and op == "invalidate":
                kept[-1] = head.model_copy(
                    update={"invalid_at": now, "updated_at": now, "version": version + 1}
                )
                w.remove.append(head.version)
            elif head is not None:
                kept[-1] = head.model_copy(update={"invalid_at": now})
            before = {r.version: r for r in rows}
            for r in kept:
                r = r.model_copy(update={"expires_at": expires}) if r.expires_at != expires else r
                if before.get(r.version) != r:
                    w.upsert.append(r)
            if op == "invalidate":
                assert head is not None
                result = kept[-1].model_copy(update={"expires_at": expires})
                w.events.append(RecordChange("invalidate", user_id, ns, key, version + 1, now))
            else:
                result = Record(
                    user_id=user_id,
                    namespace=ns,
                    key=key,
                    kind=kind if kind is not None else (rows[-1].kind if rows else DEFAULT_KIND),
                    value=value,
                    provenance=prov,
                    version=version + 1,
                    valid_from=now,
                    created_at=rows[0].created_at if rows else now,
                    updated_at=now,
                    expires_at=expires,
                )
                w.upsert.append(result)
                w.events.append(RecordChange(op, user_id, ns, key, version + 1, now))
            self._write(tx, user_id, ns, key, w)
        return result

    def delete(
        self,
        namespace: Namespace,
        key: str,
        *,
        user_id: str,
        expected_version: int | None = None,
    ) -> bool:
        """Remove a key with its whole history; ``False`` when there was none."""
        common.check_id("user_id", user_id)
        ns = check_namespace(namespace)
        common.check_id("record key", key)
        _check_expected(expected_version)
        with self._transaction() as tx:
            now = self._now()
            rows = self._rows(tx, user_id, ns, key)
            live = [r for r in rows if r.expires_at is None or r.expires_at > now]
            version = _key_version(live)
            if expected_version is not None and expected_version != version:
                raise VersionConflictError(ns, key, expected_version, version)
            if not rows:
                return False
            self._write(tx, user_id, ns, key, KeyWrite(
                remove=[r.version for r in rows],
                events=[RecordChange("delete", user_id, ns, key, None, now)],
            ))  # fmt: skip
        return bool(live)

    def delete_where(
        self,
        namespace_prefix: Namespace = (),
        *,
        user_id: str,
        kind: str | None = None,
        where: Mapping[str, JsonValue] | None = None,
        text: str | None = None,
    ) -> int:
        """Delete, with its history, every unexpired key of the user under the prefix of which
        some kept version matches the filters (as in :meth:`search`; no filter: every key);
        return how many keys went."""
        common.check_id("user_id", user_id)
        prefix = check_namespace(namespace_prefix, prefix=True)
        wants = _where(where)
        if kind is not None:
            common.check_id("record kind", kind)
        deleted = 0
        with self._transaction() as tx:
            now = self._now()
            found = self._matching(tx, user_id, prefix, kind, wants, text, False, now, None, 0)
            keys = dict.fromkeys((r.namespace, r.key) for r in found)
            for ns, key in keys:
                rows = self._rows(tx, user_id, ns, key)
                self._write(tx, user_id, ns, key, KeyWrite(
                    remove=[r.version for r in rows],
                    events=[RecordChange("delete", user_id, ns, key, None, now)],
                ))  # fmt: skip
                deleted += 1
        return deleted

    # -- reading -------------------------------------------------------------------------

    def get(self, namespace: Namespace, key: str, *, user_id: str) -> Record | None:
        """The key's current version, or ``None`` (missing, invalidated, expired or another
        user's)."""
        common.check_id("user_id", user_id)
        ns = check_namespace(namespace)
        common.check_id("record key", key)
        with self._reading() as tx:
            now = self._now()
            rows = self._rows(tx, user_id, ns, key)
        if not rows or not rows[-1].current:
            return None
        head = rows[-1]
        return head if head.expires_at is None or head.expires_at > now else None

    def history(self, namespace: Namespace, key: str, *, user_id: str) -> _Records:
        """Every kept version of the key, oldest first (empty when missing or expired)."""
        common.check_id("user_id", user_id)
        ns = check_namespace(namespace)
        common.check_id("record key", key)
        with self._reading() as tx:
            now = self._now()
            rows = self._rows(tx, user_id, ns, key)
        return [r for r in rows if r.expires_at is None or r.expires_at > now]

    def list(
        self,
        namespace_prefix: Namespace = (),
        *,
        user_id: str,
        kind: str | None = None,
        current_only: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> _Records:
        """The user's records under a namespace prefix (``()``: all), ordered by namespace,
        key and version; with ``current_only=False`` superseded versions too."""
        return self.search(namespace_prefix, user_id=user_id, kind=kind,
                           current_only=current_only, limit=limit, offset=offset)  # fmt: skip

    def search(
        self,
        namespace_prefix: Namespace = (),
        *,
        user_id: str,
        kind: str | None = None,
        where: Mapping[str, JsonValue] | None = None,
        text: str | None = None,
        current_only: bool = True,
        limit: int = 10,
        offset: int = 0,
    ) -> _Records:
        """Records under the prefix whose value is an object with every ``where`` field equal
        (JSON equality: ``1`` is not ``true``) and that contain ``text`` (case-insensitive, in
        the key or any string of the value). A filtered scan, no ranking (there is no
        semantic index over records yet)."""
        common.check_id("user_id", user_id)
        prefix = check_namespace(namespace_prefix, prefix=True)
        if kind is not None:
            common.check_id("record kind", kind)
        check_limit(limit, offset)
        wants = _where(where)
        if text is not None and not isinstance(text, str):
            raise InvalidMessageError(f"text must be a string, got {type(text).__name__}")
        with self._reading() as tx:
            now = self._now()
            return self._matching(tx, user_id, prefix, kind, wants, text, current_only, now,
                                  limit, offset)  # fmt: skip

    def _matching(
        self,
        tx: Any,
        user_id: str,
        prefix: Namespace,
        kind: str | None,
        wants: dict[str, str] | None,
        text: str | None,
        current_only: bool,
        now: datetime,
        limit: int | None,
        offset: int,
    ) -> _Records:
        if not wants and text is None and limit is not None:
            return self._scan(tx, user_id, prefix, kind=kind, current_only=current_only,
                              now=now, limit=limit, offset=offset)  # fmt: skip
        found: _Records = []
        skipped = 0
        page, at = 500, 0
        while True:
            rows = self._scan(tx, user_id, prefix, kind=kind, current_only=current_only,
                              now=now, limit=page, offset=at)  # fmt: skip
            for r in rows:
                if matches(r, wants, text):
                    if skipped < offset:
                        skipped += 1
                        continue
                    found.append(r)
                    if limit is not None and len(found) >= limit:
                        return found
            if len(rows) < page:
                return found
            at += page

    # -- admin ---------------------------------------------------------------------------

    def erase_user(self, user_id: str) -> RecordErasureReceipt:
        """Remove every record (and history, and feed event) of a user."""
        common.check_id("user_id", user_id)
        with self._transaction() as tx:
            return self._erase(tx, user_id, self._now())

    def erase_user_data(self, user: UserData) -> int:
        """The hook :func:`tela_memory.privacy.erase_user` calls when this store is given to
        it: erase the user's records; return how many stored versions went."""
        return self.erase_user(user.user_id).versions

    def scrub(self) -> Scrub:
        """After an erasure: wipe raw traces in the backend's own files (SQLite: free
        pages and the WAL). The default keeps none to wipe."""
        return Scrub()

    def purge_expired(self) -> int:
        """Remove every expired key with its history (a ``delete`` event each); return how
        many went. Expired keys are invisible to reads either way."""
        with self._transaction() as tx:
            now = self._now()
            keys = self._expired_keys(tx, now)
            for user_id, ns, key in keys:
                rows = self._rows(tx, user_id, ns, key)
                self._write(tx, user_id, ns, key, KeyWrite(
                    remove=[r.version for r in rows],
                    events=[RecordChange("delete", user_id, ns, key, None, now)],
                ))  # fmt: skip
        return len(keys)

    def for_user(self, user_id: str) -> UserRecords:
        """This store as seen by one user: the same operations without ``user_id=``."""
        from tela_memory.records.scoped import UserRecords

        return UserRecords(self, user_id)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the store holds; it must not be used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async twins (a worker thread, like MessageStore) ------------------------------------

    async def aput(
        self,
        namespace: Namespace,
        key: str,
        value: JsonValue,
        *,
        user_id: str,
        kind: str | None = None,
        provenance: Sequence[str] = (),
        ttl: timedelta | None = None,
        expected_version: int | None = None,
    ) -> Record:
        """Async twin of :meth:`put`."""
        return await asyncio.to_thread(
            self.put, namespace, key, value, user_id=user_id, kind=kind,
            provenance=provenance, ttl=ttl, expected_version=expected_version,
        )  # fmt: skip

    async def asupersede(
        self,
        namespace: Namespace,
        key: str,
        value: JsonValue,
        *,
        user_id: str,
        kind: str | None = None,
        provenance: Sequence[str] = (),
        ttl: timedelta | None = None,
        expected_version: int | None = None,
    ) -> Record:
        """Async twin of :meth:`supersede`."""
        return await asyncio.to_thread(
            self.supersede, namespace, key, value, user_id=user_id, kind=kind,
            provenance=provenance, ttl=ttl, expected_version=expected_version,
        )  # fmt: skip

    async def ainvalidate(
        self,
        namespace: Namespace,
        key: str,
        *,
        user_id: str,
        expected_version: int | None = None,
    ) -> Record:
        """Async twin of :meth:`invalidate`."""
        return await asyncio.to_thread(
            self.invalidate, namespace, key, user_id=user_id, expected_version=expected_version
        )

    async def adelete(
        self,
        namespace: Namespace,
        key: str,
        *,
        user_id: str,
        expected_version: int | None = None,
    ) -> bool:
        """Async twin of :meth:`delete`."""
        return await asyncio.to_thread(
            self.delete, namespace, key, user_id=user_id, expected_version=expected_version
        )

    async def adelete_where(
        self,
        namespace_prefix: Namespace = (),
        *,
        user_id: str,
        kind: str | None = None,
        where: Mapping[str, JsonValue] | None = None,
        text: str | None = None,
    ) -> int:
        """Async twin of :meth:`delete_where`."""
        return await asyncio.to_thread(
            self.delete_where, namespace_prefix, user_id=user_id, kind=kind, where=where,
            text=text,
        )  # fmt: skip

    async def aget(self, namespace: Namespace, key: str, *, user_id: str) -> Record | None:
        """Async twin of :meth:`get`."""
        return await asyncio.to_thread(self.get, namespace, key, user_id=user_id)

    async def ahistory(self, namespace: Namespace, key: str, *, user_id: str) -> _Records:
        """Async twin of :meth:`history`."""
        return await asyncio.to_thread(self.history, namespace, key, user_id=user_id)

    async def alist(
        self,
        namespace_prefix: Namespace = (),
        *,
        user_id: str,
        kind: str | None = None,
        current_only: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> _Records:
        """Async twin of :meth:`list`."""
        return await asyncio.to_thread(
            self.list, namespace_prefix, user_id=user_id, kind=kind,
            current_only=current_only, limit=limit, offset=offset,
        )  # fmt: skip

    async def asearch(
        self,
        namespace_prefix: Namespace = (),
        *,
        user_id: str,
        kind: str | None = None,
        where: Mapping[str, JsonValue] | None = None,
        text: str | None = None,
        current_only: bool = True,
        limit: int = 10,
        offset: int = 0,
    ) -> _Records:
        """Async twin of :meth:`search`."""
        return await asyncio.to_thread(
            self.search, namespace_prefix, user_id=user_id, kind=kind, where=where, text=text,
            current_only=current_only, limit=limit, offset=offset,
        )  # fmt: skip

    async def aerase_user(self, user_id: str) -> RecordErasureReceipt:
        """Async twin of :meth:`erase_user`."""
        return await asyncio.to_thread(self.erase_user, user_id)

    async def apurge_expired(self) -> int:
        """Async twin of :meth:`purge_expired`."""
        return await asyncio.to_thread(self.purge_expired)

    async def achanges(self, since: str | None = None, *, limit: int = 1000) -> RecordChangeBatch:
        """Async twin of :meth:`changes`."""
        return await asyncio.to_thread(self.changes, since, limit=limit)

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        await asyncio.to_thread(self.close)


def _key_version(rows: Sequence[Record]) -> int:
    """The version a write must expect: the newest row's; ``0`` without rows."""
    return rows[-1].version if rows else 0


def _where(where: Mapping[str, JsonValue] | None) -> dict[str, str] | None:
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise InvalidMessageError(f"where must be a mapping of field to value, got {where!r}")
    out: dict[str, str] = {}
    for name, want in where.items():
        if not isinstance(name, str):
            raise InvalidMessageError(f"where field names are strings, got {name!r}")
        out[name] = _canonical(_check_value(want))
    return out


__all__ = [
    "DEFAULT_KIND",
    "MAX_VALUE_BYTES",
    "ChangeKind",
    "KeyWrite",
    "Namespace",
    "Record",
    "RecordChange",
    "RecordChangeBatch",
    "RecordErasureReceipt",
    "RecordStore",
    "VersionConflictError",
    "check_limit",
    "check_namespace",
]
