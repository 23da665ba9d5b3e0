"""``UserStore``: one user's view of a :class:`~tela_memory.stores.base.MessageStore`.

``store.for_user("bob")`` binds the acting user once; every operation then runs in Bob's
namespace, where thread ids are his own. This is the handle sessions, context engines,
exports and every framework adapter go through, so that no read path can forget the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import JsonValue

from tela_memory.messages import Message
from tela_memory.stores import _common as common

if TYPE_CHECKING:
    from tela_memory.stores.base import BranchInfo, MessageStore, ThreadInfo, ThreadPage


class UserStore:
    """The operations of a :class:`MessageStore` for one user (``user_id`` bound).

    Args:
        store: the backend store (shared; this view does not own it).
        user_id: the acting user; checked here (printable, at most 200 characters, valid
            UTF-8), so a hostile id fails at once with ``InvalidMessageError``.
    """

    __slots__ = ("store", "user_id")

    def __init__(self, store: MessageStore, user_id: str) -> None:
        self.store = store
        self.user_id = common.check_id("user_id", user_id)

    def __repr__(self) -> str:
        return f"{self.store!r}.for_user({self.user_id!r})"

    # -- writing ----------------------------------------------------------------------------

    def append(
        self, thread_id: str, messages: Message | Sequence[Message], *, branch: str | None = None
    ) -> list[Message]:
        """See :meth:`MessageStore.append`."""
        return self.store.append(thread_id, messages, user_id=self.user_id, branch=branch)

    def update_message(self, message: Message) -> Message:
        """See :meth:`MessageStore.update_message`."""
        return self.store.update_message(message, user_id=self.user_id)

    # -- reading ----------------------------------------------------------------------------

    def read(
        self,
        thread_id: str,
        *,
        branch: str | None = None,
        last: int | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[Message]:
        """See :meth:`MessageStore.read`."""
        return self.store.read(
            thread_id, user_id=self.user_id, branch=branch, last=last, since=since, before=before
        )

    def get(self, message_id: str) -> Message:
        """See :meth:`MessageStore.get`."""
        return self.store.get(message_id, user_id=self.user_id)

    # -- branches ---------------------------------------------------------------------------

    def fork(self, thread_id: str, at_message_id: str, *, name: str | None = None) -> BranchInfo:
        """See :meth:`MessageStore.fork`."""
        return self.store.fork(thread_id, at_message_id, user_id=self.user_id, name=name)

    def branches(self, thread_id: str) -> list[BranchInfo]:
        """See :meth:`MessageStore.branches`."""
        return self.store.branches(thread_id, user_id=self.user_id)

    def set_default_branch(self, thread_id: str, name: str) -> None:
        """See :meth:`MessageStore.set_default_branch`."""
        self.store.set_default_branch(thread_id, name, user_id=self.user_id)

    def delete_branch(self, thread_id: str, name: str) -> int:
        """See :meth:`MessageStore.delete_branch`."""
        return self.store.delete_branch(thread_id, name, user_id=self.user_id)

    # -- threads ----------------------------------------------------------------------------

    def get_thread(self, thread_id: str) -> ThreadInfo:
        """See :meth:`MessageStore.get_thread`."""
        return self.store.get_thread(thread_id, user_id=self.user_id)

    def update_thread(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """See :meth:`MessageStore.update_thread`."""
        return self.store.update_thread(
            thread_id, user_id=self.user_id, title=title, tags=tags, metadata=metadata
        )

    def list_threads(self, *, limit: int = 50, cursor: str | None = None) -> ThreadPage:
        """See :meth:`MessageStore.list_threads`."""
        return self.store.list_threads(self.user_id, limit=limit, cursor=cursor)

    def delete_thread(self, thread_id: str) -> int:
        """See :meth:`MessageStore.delete_thread`."""
        return self.store.delete_thread(thread_id, user_id=self.user_id)

    # -- async twins --------------------------------------------------------------------------

    async def aappend(
        self, thread_id: str, messages: Message | Sequence[Message], *, branch: str | None = None
    ) -> list[Message]:
        """Async twin of :meth:`append`."""
        return await self.store.aappend(thread_id, messages, user_id=self.user_id, branch=branch)

    async def aupdate_message(self, message: Message) -> Message:
        """Async twin of :meth:`update_message`."""
        return await self.store.aupdate_message(message, user_id=self.user_id)

    async def aread(
        self,
        thread_id: str,
        *,
        branch: str | None = None,
        last: int | None = None,
        since: datetime | None = None,
        before: str | None = None,
    ) -> list[Message]:
        """Async twin of :meth:`read`."""
        return await self.store.aread(
            thread_id, user_id=self.user_id, branch=branch, last=last, since=since, before=before
        )

    async def aget(self, message_id: str) -> Message:
        """Async twin of :meth:`get`."""
        return await self.store.aget(message_id, user_id=self.user_id)

    async def afork(
        self, thread_id: str, at_message_id: str, *, name: str | None = None
    ) -> BranchInfo:
        """Async twin of :meth:`fork`."""
        return await self.store.afork(thread_id, at_message_id, user_id=self.user_id, name=name)

    async def abranches(self, thread_id: str) -> list[BranchInfo]:
        """Async twin of :meth:`branches`."""
        return await self.store.abranches(thread_id, user_id=self.user_id)

    async def aset_default_branch(self, thread_id: str, name: str) -> None:
        """Async twin of :meth:`set_default_branch`."""
        await self.store.aset_default_branch(thread_id, name, user_id=self.user_id)

    async def adelete_branch(self, thread_id: str, name: str) -> int:
        """Async twin of :meth:`delete_branch`."""
        return await self.store.adelete_branch(thread_id, name, user_id=self.user_id)

    async def aget_thread(self, thread_id: str) -> ThreadInfo:
        """Async twin of :meth:`get_thread`."""
        return await self.store.aget_thread(thread_id, user_id=self.user_id)

    async def aupdate_thread(
        self,
        thread_id: str,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: dict[str, JsonValue] | None = None,
    ) -> ThreadInfo:
        """Async twin of :meth:`update_thread`."""
        return await self.store.aupdate_thread(
            thread_id, user_id=self.user_id, title=title, tags=tags, metadata=metadata
        )

    async def alist_threads(self, *, limit: int = 50, cursor: str | None = None) -> ThreadPage:
        """Async twin of :meth:`list_threads`."""
        return await self.store.alist_threads(self.user_id, limit=limit, cursor=cursor)

    async def adelete_thread(self, thread_id: str) -> int:
        """Async twin of :meth:`delete_thread`."""
        return await self.store.adelete_thread(thread_id, user_id=self.user_id)


__all__ = ["UserStore"]
