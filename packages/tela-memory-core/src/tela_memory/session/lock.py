"""Per-thread turn locks: two turns on the same thread in one process serialise or fail clearly.

Locks are shared by every :class:`~tela_memory.session.Session` of the process that points at
the same store and thread, so two session objects on one thread do not interleave turns either.
The same lock works from threads and from asyncio tasks (the async side polls, so a cancelled
waiter never leaves a lock held).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from typing import Literal

from tela_memory.errors import ConflictError


class SessionBusyError(ConflictError):
    """Another turn on this thread is still running (``concurrency="fail"`` or timeout)."""


Concurrency = Literal["wait", "fail"]

_registry_lock = threading.Lock()
_locks: weakref.WeakValueDictionary[tuple[object, str], TurnLock] = weakref.WeakValueDictionary()


class TurnLock:
    """A non-reentrant lock guarding the turns of one thread (conversation)."""

    __slots__ = ("__weakref__", "_lock", "_owner", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._owner: tuple[int, int | None] | None = None  # (thread, task) holding the lock

    def _reentry(self) -> SessionBusyError:
        return SessionBusyError(
            f"a turn on thread {self.name!r} is already running in this thread or task "
            "(a send() inside the loop over stream()?); finish or close that turn first"
        )

    @staticmethod
    def _me() -> tuple[int, int | None]:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        return threading.get_ident(), (id(task) if task is not None else None)

    def _busy(self, mode: Concurrency, timeout: float | None) -> SessionBusyError:
        if mode == "fail":
            return SessionBusyError(
                f"thread {self.name!r} already has a turn in progress; wait for it to finish "
                "(or create the session with concurrency='wait')"
            )
        return SessionBusyError(
            f"thread {self.name!r} stayed busy for more than {timeout} s; another turn is "
            "still running"
        )

    def acquire(self, mode: Concurrency = "wait", timeout: float | None = None) -> None:
        """Take the lock, waiting (up to ``timeout`` s) in ``wait`` mode."""
        owner = self._owner
        if owner is not None and owner[0] == threading.get_ident():
            raise self._reentry()  # waiting here would wait for ourselves
        if mode == "fail":
            ok = self._lock.acquire(blocking=False)
        else:
            ok = self._lock.acquire(timeout=-1 if timeout is None else timeout)
        if not ok:
            raise self._busy(mode, timeout)
        self._owner = self._me()

    async def aacquire(
        self,
        mode: Concurrency = "wait",
        timeout: float | None = None,  # noqa: ASYNC109 - same signature as the sync twin
    ) -> None:
        """Async twin of :meth:`acquire` (polls without blocking the event loop)."""
        me = self._me()
        if self._owner == me:
            raise self._reentry()
        if self._lock.acquire(blocking=False):
            self._owner = me
            return
        if mode == "fail":
            raise self._busy(mode, timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while not self._lock.acquire(blocking=False):
            if deadline is not None and time.monotonic() >= deadline:
                raise self._busy(mode, timeout)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
        self._owner = me

    def release(self) -> None:
        """Give the lock back."""
        self._owner = None
        self._lock.release()

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


__all__ = ["Concurrency", "SessionBusyError", "TurnLock", "turn_lock"]
