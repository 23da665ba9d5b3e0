"""``TelaRetriever``: past conversation turns as LangChain ``Document`` s, from a recall index."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from tela_memory.errors import ScopeError
from tela_memory.recall import Hit, Index, SearchFilter, SearchMode
from tela_memory.stores._common import check_id
from tela_memory_langchain.convert import SOURCE


def hit_to_document(hit: Hit) -> Document:
    """A search hit as a ``Document``: the message's searchable text, its ids and scores."""
    m = hit.message
    metadata: dict[str, Any] = {
        "message_id": m.id,
        "thread_id": m.thread_id,
        "user_id": m.user_id,
        "parent_id": m.parent_id,
        "role": m.role.value,
        "name": m.name,
        "created_at": m.created_at.isoformat(),
        "score": hit.score,
        "lexical_score": hit.lexical_score,
        "dense_score": hit.dense_score,
        "metadata": {k: v for k, v in m.metadata.items() if k != SOURCE},
    }
    return Document(page_content=hit.text, metadata=metadata, id=m.id)


class TelaRetriever(BaseRetriever):
    """Search past conversations (lexical, dense or hybrid) through a recall index.

    The retriever acts for one user: ``user_id`` is required (``ScopeError`` without it), and
    the scope (``user_id``, ``thread_ids``, ``filter``) is applied by the index inside its own
    query, so it never returns another user's messages. ``thread_ids`` are that user's
    threads. Searching every user is an operator's act and says so: ``all_users=True``.

    Attributes:
        index: a :class:`~tela_memory.recall.Index` (for example
            ``SQLiteIndex.for_store(store)``).
        k: how many documents to return (``invoke(query, k=...)`` overrides it per call).
        user_id: the acting user: only this user's messages (required unless ``all_users``).
        all_users: search every user's messages (the named cross-user opt-in; then
            ``user_id`` is left out and ``filter={"user_id": ...}`` may narrow to one user).
        thread_ids: only these threads (of ``user_id``).
        filter: any other :class:`~tela_memory.recall.SearchFilter` fields (roles, since,
            until, metadata ...).
        mode: ``hybrid`` (default), ``lexical`` or ``dense``.

    Per call, ``invoke(query, k=..., filter={...})`` narrows the scope further: the call's
    filter fields are combined with the retriever's. No filter (the retriever's or a call's)
    can widen or change ``user_id``: one naming another user, or ``None``, is a
    ``ScopeError``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = Field(default=4, ge=1, le=1000)
    user_id: str | None = None
    all_users: bool = False
    thread_ids: list[str] | None = None
    filter: dict[str, Any] | None = None
    mode: SearchMode = "hybrid"

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        self.search_filter()  # the scope is checked at once (outside pydantic's wrapping)

    def _check_scope(self) -> None:
        if self.all_users and self.user_id is not None:
            raise ScopeError(
                "TelaRetriever takes either user_id=... or all_users=True, not both "
                "(narrow an all-users search with filter={'user_id': ...})"
            )
        if not self.all_users:
            if self.user_id is None:
                raise ScopeError(
                    "TelaRetriever acts for one user: pass user_id=... (or all_users=True "
                    "for an operator's search across every user)"
                )
            check_id("user_id", self.user_id)

    @staticmethod
    def _user_kept(user: str | None, fields: dict[str, Any]) -> None:
        """A filter may repeat the scope's user, never name another (or none)."""
        if user is not None and fields.get("user_id", user) != user:
            raise ScopeError(
                f"this retriever is scoped to user {user!r}; a filter cannot switch it to "
                "another user or to every user (build a retriever for that user instead)"
            )

    def search_filter(self, extra: dict[str, Any] | None = None) -> SearchFilter:
        """The filter a search runs with (the retriever's scope plus ``extra``)."""
        self._check_scope()
        base = SearchFilter.coerce(self.filter)
        if self.filter:
            self._user_kept(self.user_id, {k: getattr(base, k) for k in self.filter})
        fields: dict[str, Any] = {}
        if self.user_id is not None:
            fields["user_id"] = self.user_id
        if self.thread_ids is not None:
            fields["thread_ids"] = tuple(self.thread_ids)
        flt = base.narrowed(**fields) if fields else base
        if extra:
            more = SearchFilter.coerce(extra)
            asked = {k: getattr(more, k) for k in extra}
            self._user_kept(flt.user_id, asked)
            flt = flt.narrowed(**asked)
        if not self.all_users and flt.user_id != self.user_id:  # the invariant, checked last
            raise ScopeError("this retriever is scoped to one user")
        return flt

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: dict[str, Any] | None = None,
    ) -> list[Document]:
        hits = self.index.search(
            query, filter=self.search_filter(filter), k=k or self.k, mode=self.mode
        )
        return [hit_to_document(h) for h in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filter: dict[str, Any] | None = None,
    ) -> list[Document]:
        hits = await self.index.asearch(
            query, filter=self.search_filter(filter), k=k or self.k, mode=self.mode
        )
        return [hit_to_document(h) for h in hits]


__all__ = ["TelaRetriever", "hit_to_document"]
