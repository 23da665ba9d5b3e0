"""``ContextEngine``: contexts for threads of a :class:`~tela_memory.stores.base.MessageStore`.

The engine keeps one :class:`~tela_memory.context.builder.ContextBuilder` per user, thread
and branch: one engine serves many users, and every build names the acting user, whose
namespace the thread is read from. The first build reads the branch; later builds read only
the newest messages (``read(last=k)``, doubling ``k`` until the previously seen head is
found), so a new turn costs O(window). The running summary is persisted in the thread's
metadata under
:data:`SUMMARY_KEY` (``{"<branch>": {"text", "upto", "covers", "at", "version"}}``) so a span
is never summarised twice, even across processes; deleting or erasing the thread removes it,
and a summary whose last message no longer exists (retention) is discarded and rebuilt.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from tela_memory.context.budget import TaskKind
from tela_memory.context.builder import ContextBuilder
from tela_memory.context.errors import BudgetError
from tela_memory.context.policy import ContextPolicy
from tela_memory.context.report import Context
from tela_memory.context.state import SummaryState
from tela_memory.errors import NotFoundError
from tela_memory.messages import Message
from tela_memory.stores.base import MessageStore, ThreadInfo
from tela_memory.stores.scoped import UserStore

SUMMARY_KEY = "tela.summary"
"""Reserved thread-metadata key holding the persisted summaries, per branch."""


@dataclass
class _Thread:
    builder: ContextBuilder
    branch: str
    messages: list[Message] = field(default_factory=list)
    persisted_upto: str | None = None


def _stored_summary(info: ThreadInfo | None, branch: str) -> SummaryState | None:
    if info is None:
        return None
    entry = info.metadata.get(SUMMARY_KEY)
    if not isinstance(entry, dict):
        return None
    return SummaryState.from_json(entry.get(branch))


def _with_summary(info: ThreadInfo, branch: str, state: SummaryState) -> dict[str, JsonValue]:
    meta = dict(info.metadata)
    entry = meta.get(SUMMARY_KEY)
    entries: dict[str, JsonValue] = dict(entry) if isinstance(entry, dict) else {}
    entries[branch] = state.to_json()
    meta[SUMMARY_KEY] = entries
    return meta


def _after(messages: Sequence[Message], last_id: str) -> list[Message] | None:
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].id == last_id:
            return list(messages[i + 1 :])
    return None


class ContextEngine:
    """Builds contexts for stored threads with one policy.

    Args:
        store: the message store the threads live in.
        policy: the context policy.
        persist: store summaries in thread metadata (on by default).
        max_threads: how many threads keep in-process state (least recently built are
            forgotten and re-read from the store on their next build).

    Not for concurrent builds of the *same* thread from several threads of execution without
    the engine's own locking: ``build`` and ``abuild`` serialise per thread.
    """

    def __init__(
        self,
        store: MessageStore,
        policy: ContextPolicy,
        *,
        persist: bool = True,
        max_threads: int = 1_024,
    ) -> None:
        if max_threads <= 0:
            raise BudgetError(f"max_threads must be > 0, got {max_threads}")
        self.store = store
        self.policy = policy
        self.persist = persist
        self.max_threads = max_threads
        self._threads: OrderedDict[tuple[str, str, str | None], _Thread] = OrderedDict()
        self._locks: dict[tuple[str, str, str | None], threading.Lock] = {}
        self._alocks: dict[tuple[str, str, str | None], asyncio.Lock] = {}
        self._guard = threading.Lock()

    def forget(self, thread_id: str | None = None, *, user_id: str | None = None) -> int:
        """Drop in-process state (all, one user's, or one thread's); the next build re-reads
        the store.

        Call it after editing or deleting messages of a thread outside this engine. Returns
        how many (user, thread, branch) states were dropped.
        """

        def match(k: tuple[str, str, str | None]) -> bool:
            return (user_id is None or k[0] == user_id) and (thread_id is None or k[1] == thread_id)

        with self._guard:
            keys = [k for k in self._threads if match(k)]
            for key in keys:
                del self._threads[key]
            # the lock maps name threads too (an erased user's ids must not stay); a lock in
            # use stays with its build
            for locks in (self._locks, self._alocks):
                for key in [k for k in locks if match(k)]:
                    if not locks[key].locked():
                        del locks[key]
        return len(keys)

    def close(self) -> None:
        """Forget all state (the store is not closed: it is the caller's)."""
        self.forget()

    def __enter__(self) -> ContextEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _remember(self, key: tuple[str, str, str | None], state: _Thread) -> None:
        with self._guard:
            self._threads[key] = state
            self._threads.move_to_end(key)
            while len(self._threads) > self.max_threads:
                self._threads.popitem(last=False)

    def _lock(self, key: tuple[str, str, str | None]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _alock(self, key: tuple[str, str, str | None]) -> asyncio.Lock:
        with self._guard:
            return self._alocks.setdefault(key, asyncio.Lock())

    def _new_thread(self, thread_id: str, branch: str | None, info: ThreadInfo | None) -> _Thread:
        name = branch or (info.default_branch if info else "main")
        builder = self.policy.builder(thread_id=thread_id)
        stored = _stored_summary(info, name) if self.persist else None
        builder.load_summary(stored)
        return _Thread(builder, name, persisted_upto=stored.upto if stored else None)

    def _needs_persist(self, state: _Thread) -> SummaryState | None:
        summary = state.builder.summary
        if not self.persist or self.policy.summary is None or summary is None:
            return None
        if summary.upto == state.persisted_upto:
            return None
        return summary

    # -- sync -------------------------------------------------------------------------------

    def _user(self, user_id: str) -> UserStore:
        return self.store.for_user(user_id)

    def _info(self, us: UserStore, thread_id: str) -> ThreadInfo | None:
        try:
            return us.get_thread(thread_id)
        except NotFoundError:
            return None

    def _refresh(self, us: UserStore, thread_id: str, branch: str | None) -> _Thread:
        key = (us.user_id, thread_id, branch)
        state = self._threads.get(key)
        if state is not None:
            self._remember(key, state)
        if state is not None and state.messages:
            k = 8
            while True:
                tail = us.read(thread_id, branch=branch, last=k)
                new = _after(tail, state.messages[-1].id)
                if new is not None:
                    state.messages.extend(new)
                    return state
                if len(tail) < k:
                    break
                k *= 4
        state = self._new_thread(thread_id, branch, self._info(us, thread_id))
        state.messages = us.read(thread_id, branch=branch)
        self._remember(key, state)
        return state

    def build(
        self,
        thread_id: str,
        *,
        user_id: str,
        branch: str | None = None,
        query: str | None = None,
        task: TaskKind | str | None = None,
    ) -> Context:
        """The context for ``user_id``'s stored thread (its default branch unless ``branch``
        is given); another user's thread of the same id is never read."""
        us = self._user(user_id)
        with self._lock((us.user_id, thread_id, branch)):
            state = self._refresh(us, thread_id, branch)
            ctx = state.builder.build(state.messages, query=query, task=task)
            summary = self._needs_persist(state)
            if summary is not None:
                info = us.get_thread(thread_id)
                meta = _with_summary(info, state.branch, summary)
                us.update_thread(thread_id, metadata=meta)
                state.persisted_upto = summary.upto
            return ctx

    # -- async ------------------------------------------------------------------------------

    async def _ainfo(self, us: UserStore, thread_id: str) -> ThreadInfo | None:
        try:
            return await us.aget_thread(thread_id)
        except NotFoundError:
            return None

    async def _arefresh(self, us: UserStore, thread_id: str, branch: str | None) -> _Thread:
        key = (us.user_id, thread_id, branch)
        state = self._threads.get(key)
        if state is not None:
            self._remember(key, state)
        if state is not None and state.messages:
            k = 8
            while True:
                tail = await us.aread(thread_id, branch=branch, last=k)
                new = _after(tail, state.messages[-1].id)
                if new is not None:
                    state.messages.extend(new)
                    return state
                if len(tail) < k:
                    break
                k *= 4
        state = self._new_thread(thread_id, branch, await self._ainfo(us, thread_id))
        state.messages = await us.aread(thread_id, branch=branch)
        self._remember(key, state)
        return state

    async def abuild(
        self,
        thread_id: str,
        *,
        user_id: str,
        branch: str | None = None,
        query: str | None = None,
        task: TaskKind | str | None = None,
    ) -> Context:
        """Async twin of :meth:`build`."""
        us = self._user(user_id)
        async with self._alock((us.user_id, thread_id, branch)):
            state = await self._arefresh(us, thread_id, branch)
            ctx = await state.builder.abuild(state.messages, query=query, task=task)
            summary = self._needs_persist(state)
            if summary is not None:
                info = await us.aget_thread(thread_id)
                meta = _with_summary(info, state.branch, summary)
                await us.aupdate_thread(thread_id, metadata=meta)
                state.persisted_upto = summary.upto
            return ctx

    def stored_summary(
        self, thread_id: str, *, user_id: str, branch: str | None = None
    ) -> SummaryState | None:
        """The summary persisted for one of ``user_id``'s threads' branch, if any."""
        info = self._info(self._user(user_id), thread_id)
        if info is None:
            return None
        return _stored_summary(info, branch or info.default_branch)


def summary_of(metadata: dict[str, Any], branch: str) -> SummaryState | None:
    """Read a persisted summary out of thread metadata (for tools and tests)."""
    entry = metadata.get(SUMMARY_KEY)
    return SummaryState.from_json(entry.get(branch)) if isinstance(entry, dict) else None


__all__ = ["SUMMARY_KEY", "ContextEngine", "summary_of"]
