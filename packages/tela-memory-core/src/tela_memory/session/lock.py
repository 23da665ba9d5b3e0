"""Per-thread turn locks: two turns on the same thread in one process serialise or fail clearly.

Locks are shared by every :class:`~tela_memory.session.Session` of the process that points at
the same store and thread, so two session objects on one thread do not interleave turns either.
The same lock works from threads and from asyncio tasks (the async side polls, so a cancelled
waiter never leaves a lock held).

Interruption safety: a turn holds the lock through a :class:`Claim`, created before the lock is
taken. Taking the lock and recording it in the claim happen in one statement, and so do
releasing it and clearing the claim, so a ``KeyboardInterrupt`` landing on any line leaves the
claim telling the truth; :meth:`TurnLock.hold` releases by claim on every way out (twice over,
so an interrupt on the release line itself is caught by the second ``finally``), and releasing
is idempotent. A waiting turn waits at most ``timeout`` seconds, never forever.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Literal

from tela_memory.errors import ConflictError, InvalidMessageError

DEFAULT_LOCK_TIMEOUT = 300.0
"""Seconds a turn waits for the thread's running turn by default (``concurrency="wait"``)."""


class SessionBusyError(ConflictError):
    """Another turn on this thread is still running (``concurrency="fail"`` or timeout)."""


Concurrency = Literal["wait", "fail"]

_registry_lock = threading.Lock()
_locks: weakref.WeakValueDictionary[tuple[object, str], TurnLock] = weakref.WeakValueDictionary()


def check_timeout(timeout: object) -> float:
    """``timeout`` as a finite number of seconds > 0 (``InvalidMessageError`` otherwise)."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise InvalidMessageError(
            f"lock_timeout must be a finite number of seconds > 0, not {timeout!r} "
            "(a waiting turn never waits forever)"
        )
    return float(timeout)


def _me() -> tuple[int, int | None]:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), (id(task) if task is not None else None)


class Claim:
    """One turn's hold on a :class:`TurnLock`; ``held`` is true exactly while it holds it."""

    __slots__ = ("held", "task", "thread")

    def __init__(self) -> None:
        self.held = False
        self.thread, self.task = _me()


class TurnLock:
    """A non-reentrant lock guarding the turns of one thread (conversation)."""

    __slots__ = ("__weakref__", "_claim", "_lock", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._claim: Claim | None = None  # the claim holding the lock, for re-entry checks

    def _reentry(self) -> SessionBusyError:
        return SessionBusyError(
            f"a turn on thread {self.name!r} is already running in this thread or task "
            "(a send() inside the loop over stream()?); finish or close that turn first"
        )

    def _busy(self, mode: Concurrency, timeout: float) -> SessionBusyError:
        if mode == "fail":
            return SessionBusyError(
                f"thread {self.name!r} already has a turn in progress; wait for it to finish "
                "(or create the session with concurrency='wait')"
            )
        return SessionBusyError(
            f"thread {self.name!r} stayed busy for more than {timeout} s; another turn is "
            "still running"
        )

    def acquire(
        self, claim: Claim, mode: Concurrency = "wait", timeout: float = DEFAULT_LOCK_TIMEOUT
    ) -> None:
        """Take the lock for ``claim``, waiting up to ``timeout`` s in ``wait`` mode.

        Call it inside the ``try`` whose ``finally`` calls :meth:`release` (see :meth:`hold`).
        """
        holder = self._claim
        if holder is not None and holder.thread == claim.thread:
            raise self._reentry()  # waiting here would wait for ourselves
        if mode == "fail":
            claim.held = self._lock.acquire(blocking=False)
        else:
            claim.held = self._lock.acquire(timeout=timeout)
        if not claim.held:
            raise self._busy(mode, timeout)
        self._claim = claim

    async def aacquire(
        self,
        claim: Claim,
        mode: Concurrency = "wait",
        timeout: float = DEFAULT_LOCK_TIMEOUT,  # noqa: ASYNC109 - same signature as the sync twin
    ) -> None:
        """Async twin of :meth:`acquire` (polls without blocking the event loop; cancellation
        lands only on the sleep, while nothing is held)."""
        if self._claim is not None and (self._claim.thread, self._claim.task) == (
            claim.thread,
            claim.task,
        ):
            raise self._reentry()
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            claim.held = self._lock.acquire(blocking=False)
            if claim.held:
                break
            if mode == "fail" or time.monotonic() >= deadline:
                raise self._busy(mode, timeout)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
        self._claim = claim

    def release(self, claim: Claim) -> None:
        """Give the lock back if ``claim`` holds it (idempotent)."""
        if claim.held:
            if self._claim is claim:
                self._claim = None
            # one statement, so no interrupt lands between releasing and recording it
            claim.held = bool(self._lock.release())  # type: ignore[func-returns-value]

    @contextmanager
    def hold(self, mode: Concurrency, timeout: float) -> Iterator[Claim]:
        """Hold the lock for the body; released on every way out, interrupts included."""
        claim = Claim()
        try:
            try:
                self.acquire(claim, mode, timeout)
                yield claim
            finally:
                self.release(claim)
        finally:
            self.release(claim)  # the interrupt landed on the release above: release now

    @asynccontextmanager
    async def ahold(
        self,
        mode: Concurrency,
        timeout: float,  # noqa: ASYNC109 - same signature as the sync twin
    ) -> AsyncIterator[Claim]:
        """Async twin of :meth:`hold`."""
        claim = Claim()
        try:
            try:
                await self.aacquire(claim, mode, timeout)
                yield claim
            finally:
                self.release(claim)
        finally:
            self.release(claim)

    @property
    def locked(self) -> bool:
        """True while a turn holds the lock."""
        return self._lock.locked()


def turn_lock(store_key: object, thread_id: str) -> TurnLock:
    """The process-wide lock of ``thread_id`` in the store identified by ``store_key``."""
    key = (store_key, thread_id)
    with _registry_lock:
        lock = _locks.get(key)
        if lock is None:
            lock = TurnLock(thread_id)
            _locks[key] = lock
        return lock


__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "Claim",
    "Concurrency",
    "SessionBusyError",
    "TurnLock",
    "check_timeout",
    "turn_lock",
]
