"""``TelaChatMessageHistory``: a LangChain chat message history on any Tela Memory store."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage

from tela_memory.context.engine import ContextEngine
from tela_memory.context.policy import ContextPolicy
from tela_memory.context.report import Context
from tela_memory.errors import InvalidMessageError, ScopeError
from tela_memory.messages import Message
from tela_memory.stores import MessageStore, UserStore, open_store
from tela_memory.stores._common import check_id
from tela_memory_langchain.convert import messages_to_core, messages_to_langchain

if TYPE_CHECKING:
    from tela_memory.recall import Index

BRANCH_SEPARATOR = "#"
"""``session_id="thread#branch"`` addresses a branch of a thread."""


def split_session_id(session_id: str, branch: str | None = None) -> tuple[str, str | None]:
    """``"thread#branch"`` -> ``("thread", "branch")``; an explicit ``branch`` wins."""
    if not isinstance(session_id, str) or not session_id:
        raise InvalidMessageError(f"session_id must be a non-empty string, got {session_id!r}")
    thread, sep, named = session_id.partition(BRANCH_SEPARATOR)
    if not thread:
        raise InvalidMessageError(f"session_id {session_id!r} names no thread before '#'")
    if branch is not None:
        return thread, branch
    return thread, (named or None) if sep else None


class TelaChatMessageHistory(BaseChatMessageHistory):
    """Chat history of one user's conversation (a thread, or one branch of it) in a Tela store.

    The history acts for one user: ``session_id`` is a thread id in that user's namespace, so
    every user's ``session_id="1"`` is their own thread, and nothing this object reads, clears
    or appends can reach another user's threads (it goes through ``store.for_user(user_id)``).

    Everything LangChain puts in a message is kept (tool calls and results, media, reasoning,
    ids, metadata); ``messages`` gives back equal messages. Appends are atomic and a tool
    result whose call is not on the branch is rejected (``InvalidMessageError``), so a broken
    tool pair is never stored.

    Args:
        session_id: the thread id, or ``"thread#branch"`` for a branch (see ``branch``).
        store: a :class:`~tela_memory.stores.MessageStore` (not closed by this object), a
            user's view of one (``store.for_user("ada")``: then ``user_id`` may be left out)
            or a store URL (``sqlite:///chat.db``, ``redis://...``; opened lazily, closed by
            :meth:`close`). ``None`` opens the embedded default file.
        user_id: the acting user (required): the thread lives in this user's namespace.
            Missing, it raises ``ScopeError``; an id the stores refuse (empty, control
            characters, over 200 characters) raises ``InvalidMessageError``.
        branch: the branch to read and append to (the thread's default when ``None``).
        policy: an optional :class:`~tela_memory.context.policy.ContextPolicy`: ``messages``
            returns its view (pinned prefix, summary, recent window within the budget, tool
            pairs whole) while the store keeps everything; :attr:`last_context` has the report.
            (``policy=`` as everywhere else; the earlier name ``context=`` still works, with a
            ``DeprecationWarning``.)
        index: an optional recall index; appended messages are indexed as they are stored.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: MessageStore | UserStore | str | None = None,
        user_id: str | None = None,
        branch: str | None = None,
        policy: ContextPolicy | None = None,
        index: Index | None = None,
        context: ContextPolicy | None = None,
    ) -> None:
        if context is not None:
            warnings.warn(
                "TelaChatMessageHistory(context=...) is deprecated: pass policy=...",
                DeprecationWarning,
                stacklevel=2,
            )
            policy = policy if policy is not None else context
        self.thread_id, self.branch = split_session_id(session_id, branch)
        self.session_id = session_id
        self.user_id = _acting_user(store, user_id)
        self.policy = policy
        self.index = index
        self.last_context: Context | None = None
        self._engine: ContextEngine | None = None
        if isinstance(store, UserStore):
            store = store.store
        self._owns_store = not isinstance(store, MessageStore)
        self._store_arg = store
        self._store: MessageStore | None = store if isinstance(store, MessageStore) else None
        self._user_store: UserStore | None = None

    @property
    def store(self) -> MessageStore:
        """The backend message store (opened on first use when given as a URL)."""
        if self._store is None:
            url = self._store_arg if isinstance(self._store_arg, str) else None
            self._store = open_store(url)
        return self._store

    @property
    def user_store(self) -> UserStore:
        """The acting user's view of the store: every read and write goes through it."""
        if self._user_store is None or self._user_store.store is not self.store:
            self._user_store = self.store.for_user(self.user_id)
        return self._user_store

    # -- reading ----------------------------------------------------------------------------

    def stored(self) -> list[Message]:
        """Every stored message of the branch, as core messages (no context policy)."""
        return self.user_store.read(self.thread_id, branch=self.branch)

    async def astored(self) -> list[Message]:
        """Async twin of :meth:`stored`."""
        return await self.user_store.aread(self.thread_id, branch=self.branch)

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The conversation as LangChain messages (the context policy's view, if one is set)."""
        if self.policy is not None:
            engine = self._context_engine()
            self.last_context = engine.build(
                self.thread_id, user_id=self.user_id, branch=self.branch
            )
            return messages_to_langchain(self.last_context.messages)
        return messages_to_langchain(self.stored())

    async def aget_messages(self) -> list[BaseMessage]:
        """Async twin of :attr:`messages`."""
        if self.policy is not None:
            engine = self._context_engine()
            self.last_context = await engine.abuild(
                self.thread_id, user_id=self.user_id, branch=self.branch
            )
            return messages_to_langchain(self.last_context.messages)
        return messages_to_langchain(await self.astored())

    def _context_engine(self) -> ContextEngine:
        """One engine per history: incremental reads, the summary kept in the thread (the
        engine reads and writes only this user's thread: ``user_id=`` on every call)."""
        assert self.policy is not None
        if self._engine is None:
            self._engine = ContextEngine(self.store, self.policy)
        return self._engine

    # -- writing ----------------------------------------------------------------------------

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages (chunks of one message are merged first), all or nothing."""
        items = messages_to_core(messages)
        if not items:
            return
        stored = self.user_store.append(self.thread_id, items, branch=self.branch)
        if self.index is not None:
            self.index.upsert(stored)

    async def aadd_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Async twin of :meth:`add_messages`."""
        items = messages_to_core(messages)
        if not items:
            return
        stored = await self.user_store.aappend(self.thread_id, items, branch=self.branch)
        if self.index is not None:
            await self.index.aupsert(stored)

    def clear(self) -> None:
        """Delete the conversation: the branch when a non-default one is addressed, else the
        whole thread with all its branches."""
        target = self._branch_to_delete()
        if self._engine is not None:
            self._engine.forget(self.thread_id, user_id=self.user_id)
        if target is None:
            self.user_store.delete_thread(self.thread_id)
        else:
            self.user_store.delete_branch(self.thread_id, target)

    async def aclear(self) -> None:
        """Async twin of :meth:`clear`."""
        target = None
        if self.branch is not None:
            branches = await self.user_store.abranches(self.thread_id)
            target = self._non_default(branches)
        if self._engine is not None:
            self._engine.forget(self.thread_id, user_id=self.user_id)
        if target is None:
            await self.user_store.adelete_thread(self.thread_id)
        else:
            await self.user_store.adelete_branch(self.thread_id, target)

    def _branch_to_delete(self) -> str | None:
        if self.branch is None:
            return None
        return self._non_default(self.user_store.branches(self.thread_id))

    def _non_default(self, branches: Sequence[Any]) -> str | None:
        for info in branches:
            if info.name == self.branch:
                return None if info.is_default else self.branch
        return None

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store if this history opened it from a URL."""
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None
            self._user_store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(thread_id={self.thread_id!r}, branch={self.branch!r}, "
            f"user_id={self.user_id!r})"
        )


def _acting_user(store: object, user_id: str | None) -> str:
    """The user a history acts for: ``user_id``, or the user of a ``UserStore``."""
    bound = store.user_id if isinstance(store, UserStore) else None
    if user_id is not None and bound is not None and user_id != bound:
        raise ScopeError(
            "user_id= and the store.for_user(...) view given as store= name different users; "
            "pass one of them"
        )
    acting = user_id if user_id is not None else bound
    if acting is None:
        raise ScopeError(
            "TelaChatMessageHistory acts for one user: pass user_id=... (the session id is a "
            "thread in that user's namespace), or a store.for_user(...) view as store="
        )
    return check_id("user_id", acting)


__all__ = ["BRANCH_SEPARATOR", "TelaChatMessageHistory", "split_session_id"]
