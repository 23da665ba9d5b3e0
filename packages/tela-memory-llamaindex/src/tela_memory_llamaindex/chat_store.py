"""``TelaChatStore``: a LlamaIndex ``BaseChatStore`` on any Tela Memory ``MessageStore``."""

from __future__ import annotations

import asyncio
from typing import Any, Self

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.chat_store.base import BaseChatStore

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message
from tela_memory.stores.base import MessageStore
from tela_memory.stores.registry import open_store
from tela_memory.stores.scoped import UserStore
from tela_memory_llamaindex._scope import bind_user, check_scope
from tela_memory_llamaindex._threads import fresh_copy, replace_tail
from tela_memory_llamaindex.convert import from_core, to_core

LEGACY_USER = "llamaindex"
"""The owner version 0.1 gave a chat store's threads when no ``user_id`` was passed: pass
``user_id=LEGACY_USER`` to reach such threads (a store migration keeps them with this owner)."""
INTERNAL_TAG = "tela:internal"
"""Tag of threads that hold records rather than a chat (memory blocks'); never listed as keys."""


class TelaChatStore(BaseChatStore):
    """LlamaIndex chat store whose keys are one user's Tela Memory threads.

    A chat store acts for one user: each key names the thread ``key_prefix + key`` in that
    user's namespace, so two users' ``"conv-1"`` are two threads, and no key reaches another
    user's thread (it reads as unknown). Reading an unknown key gives an empty list.
    ``get_keys`` lists the user's threads through the store's index (no scan of keys).
    Deleting or inserting at an index keeps the order of the rest and never copies the
    history before that index (the thread is forked there).

    Args:
        store: a ``MessageStore``, a user's view of one (``store.for_user("ana")``), a store
            URL (``sqlite:///chat.db``, ``memory://`` ...) or ``None`` for the embedded
            default SQLite file. Nothing is opened until first use. :meth:`close` closes only
            a store this chat store opened (from a URL or the default), never one passed in.
        user_id: the user this chat store acts for (required unless ``store`` is a
            ``UserStore``; version 0.1's default owner was :data:`LEGACY_USER`).
        key_prefix: prepended to each key to form the thread id.

    Raises:
        ScopeError: no ``user_id`` (a chat store never acts for every user).
        InvalidMessageError: ``user_id`` is not a valid id (empty, control characters ...).
    """

    user_id: str = Field(description="the user whose threads the keys name")
    key_prefix: str = Field(default="", description="prepended to keys to form thread ids")
    _store: MessageStore = PrivateAttr()
    _user: UserStore = PrivateAttr()
    _owns_store: bool = PrivateAttr(default=False)
    _edits: dict[str, int] = PrivateAttr(default_factory=dict)

    def __init__(
        self,
        store: MessageStore | UserStore | str | None = None,
        *,
        user_id: str | None = None,
        key_prefix: str = "",
        **data: Any,
    ) -> None:
        owns = False
        if not isinstance(store, MessageStore | UserStore):
            check_scope("TelaChatStore", user_id, False, cross_user=False)  # before any open
            store, owns = open_store(store), True
        backend, user = bind_user("TelaChatStore", store, user_id)
        super().__init__(user_id=user.user_id, key_prefix=key_prefix, **data)
        self._store = backend
        self._user = user
        self._owns_store = owns

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialisation."""
        return "TelaChatStore"

    @property
    def store(self) -> MessageStore:
        """The underlying message store (shared by every user)."""
        return self._store

    @property
    def user_store(self) -> UserStore:
        """The acting user's view of the store: every operation of this chat store goes
        through it."""
        return self._user

    def thread_id(self, key: str) -> str:
        """The thread id a key maps to."""
        if not isinstance(key, str) or not key:
            raise InvalidMessageError(f"chat store key must be a non-empty string, got {key!r}")
        return self.key_prefix + key

    def edit_count(self, key: str) -> int:
        """How many times this object rewrote or deleted the thread of ``key`` (not appends):
        lets a cache built on the thread know it must be rebuilt."""
        return self._edits.get(self.thread_id(key), 0)

    def _edited(self, thread: str) -> None:
        self._edits[thread] = self._edits.get(thread, 0) + 1

    # -- core-level access ------------------------------------------------------------------

    def get_core_messages(self, key: str) -> list[Message]:
        """The thread behind ``key`` as core messages (empty for an unknown key)."""
        return self._user.read(self.thread_id(key))

    def set_core_messages(self, key: str, messages: list[Message]) -> None:
        """Make the thread read ``messages``; an unchanged prefix is kept as stored."""
        thread = self.thread_id(key)
        current = self._user.read(thread)
        keep = 0
        for old, new in zip(current, messages, strict=False):
            if not _same(old, new):
                break
            keep += 1
        tail = [fresh_copy(m) if m.thread_id else m for m in messages[keep:]]
        if keep == len(current) == len(messages):
            return
        self._edited(thread)
        replace_tail(self._user, thread, current, keep, tail)

    # -- BaseChatStore ----------------------------------------------------------------------

    def set_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Replace the messages of a key; messages equal to the stored prefix stay untouched."""
        thread = self.thread_id(key)
        current = self._user.read(thread)
        keep = 0
        for old, new in zip(current, messages, strict=False):
            if from_core(old) != new:
                break
            keep += 1
        if keep == len(current) == len(messages):
            return
        tail = [to_core(m) for m in messages[keep:]]
        self._edited(thread)
        replace_tail(self._user, thread, current, keep, tail)

    def get_messages(self, key: str) -> list[ChatMessage]:
        """The messages of a key, oldest first; ``[]`` for an unknown key."""
        return [from_core(m) for m in self.get_core_messages(key)]

    def add_message(self, key: str, message: ChatMessage, idx: int | None = None) -> None:
        """Append a message, or insert it at ``idx`` keeping the order of the others."""
        thread = self.thread_id(key)
        core = to_core(message)
        if idx is None:
            self._user.append(thread, core)
            return
        current = self._user.read(thread)
        pos = max(0, min(len(current), idx if idx >= 0 else len(current) + idx))
        tail = [core, *(fresh_copy(m) for m in current[pos:])]
        self._edited(thread)
        replace_tail(self._user, thread, current, pos, tail)

    def delete_messages(self, key: str) -> list[ChatMessage] | None:
        """Delete a key's thread; return its messages, or ``None`` for an unknown key."""
        thread = self.thread_id(key)
        current = self._user.read(thread)
        if not current:
            return None
        self._edited(thread)
        self._user.delete_thread(thread)
        return [from_core(m) for m in current]

    def delete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Delete the message at ``idx``; the others keep their order. ``None`` if absent."""
        thread = self.thread_id(key)
        current = self._user.read(thread)
        if not -len(current) <= idx < len(current):
            return None
        pos = idx % len(current)
        if len(current) == 1:
            self._edited(thread)
            self._user.delete_thread(thread)
        else:
            tail = [fresh_copy(m) for m in current[pos + 1 :]]
            self._edited(thread)
            replace_tail(self._user, thread, current, pos, tail)
        return from_core(current[pos])

    def delete_last_message(self, key: str) -> ChatMessage | None:
        """Delete the newest message (O(1): the branch head moves back); ``None`` if empty."""
        thread = self.thread_id(key)
        current = self._user.read(thread, last=2)
        if not current:
            return None
        if len(current) == 1 and current[0].parent_id is None:
            self._edited(thread)
            self._user.delete_thread(thread)
        else:
            self._edited(thread)
            replace_tail(self._user, thread, current, len(current) - 1, [])
        return from_core(current[-1])

    def get_keys(self) -> list[str]:
        """Keys of this user's threads (with ``key_prefix``), most recently updated first."""
        keys: list[str] = []
        cursor: str | None = None
        while True:
            page = self._user.list_threads(limit=200, cursor=cursor)
            keys.extend(
                t.id[len(self.key_prefix) :]
                for t in page.threads
                if t.id.startswith(self.key_prefix) and INTERNAL_TAG not in t.tags
            )
            cursor = page.next_cursor
            if cursor is None:
                return keys

    # -- async twins ------------------------------------------------------------------------

    async def aset_messages(self, key: str, messages: list[ChatMessage]) -> None:
        """Async twin of :meth:`set_messages`."""
        await asyncio.to_thread(self.set_messages, key, messages)

    async def aget_messages(self, key: str) -> list[ChatMessage]:
        """Async twin of :meth:`get_messages`."""
        return [from_core(m) for m in await self._user.aread(self.thread_id(key))]

    async def async_add_message(
        self, key: str, message: ChatMessage, idx: int | None = None
    ) -> None:
        """Async twin of :meth:`add_message`."""
        if idx is None:
            await self._user.aappend(self.thread_id(key), to_core(message))
        else:
            await asyncio.to_thread(self.add_message, key, message, idx)

    async def adelete_messages(self, key: str) -> list[ChatMessage] | None:
        """Async twin of :meth:`delete_messages`."""
        return await asyncio.to_thread(self.delete_messages, key)

    async def adelete_message(self, key: str, idx: int) -> ChatMessage | None:
        """Async twin of :meth:`delete_message`."""
        return await asyncio.to_thread(self.delete_message, key, idx)

    async def adelete_last_message(self, key: str) -> ChatMessage | None:
        """Async twin of :meth:`delete_last_message`."""
        return await asyncio.to_thread(self.delete_last_message, key)

    async def aget_keys(self) -> list[str]:
        """Async twin of :meth:`get_keys`."""
        return await asyncio.to_thread(self.get_keys)

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the store if this chat store opened it (from a URL or the default); a store
        that was passed in belongs to the caller and stays open."""
        if self._owns_store:
            self._store.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        if self._owns_store:
            await self._store.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _same(a: Message, b: Message) -> bool:
    return a.id == b.id or (
        a.role == b.role
        and a.content == b.content
        and a.name == b.name
        and a.metadata == b.metadata
    )


__all__ = ["INTERNAL_TAG", "LEGACY_USER", "TelaChatStore"]
