"""``UserRecords``: one user's view of a :class:`~tela_memory.records.base.RecordStore`.

``records.for_user("bob")`` binds the acting user once (checked at once, so a hostile id fails
with ``InvalidMessageError``); every operation then runs in Bob's records only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import JsonValue

from tela_memory.stores import _common as common

if TYPE_CHECKING:
    from tela_memory.records.base import Namespace, Record, RecordStore


_Records = list["Record"]


class UserRecords:
    """The operations of a :class:`RecordStore` for one user (``user_id`` bound).

    Keyword arguments are those of the store's methods, without ``user_id``.
    """

    __slots__ = ("records", "user_id")

    def __init__(self, records: RecordStore, user_id: str) -> None:
        self.records = records
        self.user_id = common.check_id("user_id", user_id)

    def __repr__(self) -> str:
        return f"{self.records!r}.for_user({self.user_id!r})"

    def put(self, namespace: Namespace, key: str, value: JsonValue, **kw: Any) -> Record:
        """See :meth:`RecordStore.put`."""
        return self.records.put(namespace, key, value, user_id=self.user_id, **kw)

    def supersede(self, namespace: Namespace, key: str, value: JsonValue, **kw: Any) -> Record:
        """See :meth:`RecordStore.supersede`."""
        return self.records.supersede(namespace, key, value, user_id=self.user_id, **kw)

    def invalidate(self, namespace: Namespace, key: str, **kw: Any) -> Record:
        """See :meth:`RecordStore.invalidate`."""
        return self.records.invalidate(namespace, key, user_id=self.user_id, **kw)

    def delete(self, namespace: Namespace, key: str, **kw: Any) -> bool:
        """See :meth:`RecordStore.delete`."""
        return self.records.delete(namespace, key, user_id=self.user_id, **kw)

    def delete_where(self, namespace_prefix: Namespace = (), **kw: Any) -> int:
        """See :meth:`RecordStore.delete_where`."""
        return self.records.delete_where(namespace_prefix, user_id=self.user_id, **kw)

    def get(self, namespace: Namespace, key: str) -> Record | None:
        """See :meth:`RecordStore.get`."""
        return self.records.get(namespace, key, user_id=self.user_id)

    def history(self, namespace: Namespace, key: str) -> _Records:
        """See :meth:`RecordStore.history`."""
        return self.records.history(namespace, key, user_id=self.user_id)

    def list(self, namespace_prefix: Namespace = (), **kw: Any) -> _Records:
        """See :meth:`RecordStore.list`."""
        return self.records.list(namespace_prefix, user_id=self.user_id, **kw)

    def search(self, namespace_prefix: Namespace = (), **kw: Any) -> _Records:
        """See :meth:`RecordStore.search`."""
        return self.records.search(namespace_prefix, user_id=self.user_id, **kw)

    async def aput(self, namespace: Namespace, key: str, value: JsonValue, **kw: Any) -> Record:
        """See :meth:`RecordStore.aput`."""
        return await self.records.aput(namespace, key, value, user_id=self.user_id, **kw)

    async def asupersede(
        self, namespace: Namespace, key: str, value: JsonValue, **kw: Any
    ) -> Record:
        """See :meth:`RecordStore.asupersede`."""
        return await self.records.asupersede(namespace, key, value, user_id=self.user_id, **kw)

    async def ainvalidate(self, namespace: Namespace, key: str, **kw: Any) -> Record:
        """See :meth:`RecordStore.ainvalidate`."""
        return await self.records.ainvalidate(namespace, key, user_id=self.user_id, **kw)

    async def adelete(self, namespace: Namespace, key: str, **kw: Any) -> bool:
        """See :meth:`RecordStore.adelete`."""
        return await self.records.adelete(namespace, key, user_id=self.user_id, **kw)

    async def adelete_where(self, namespace_prefix: Namespace = (), **kw: Any) -> int:
        """See :meth:`RecordStore.adelete_where`."""
        return await self.records.adelete_where(namespace_prefix, user_id=self.user_id, **kw)

    async def aget(self, namespace: Namespace, key: str) -> Record | None:
        """See :meth:`RecordStore.aget`."""
        return await self.records.aget(namespace, key, user_id=self.user_id)

    async def ahistory(self, namespace: Namespace, key: str) -> _Records:
        """See :meth:`RecordStore.ahistory`."""
        return await self.records.ahistory(namespace, key, user_id=self.user_id)

    async def alist(self, namespace_prefix: Namespace = (), **kw: Any) -> _Records:
        """See :meth:`RecordStore.alist`."""
        return await self.records.alist(namespace_prefix, user_id=self.user_id, **kw)

    async def asearch(self, namespace_prefix: Namespace = (), **kw: Any) -> _Records:
        """See :meth:`RecordStore.asearch`."""
        return await self.records.asearch(namespace_prefix, user_id=self.user_id, **kw)


__all__ = ["UserRecords"]
