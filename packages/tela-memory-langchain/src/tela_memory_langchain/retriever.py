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

from tela_memory.recall import Hit, Index, InvalidQueryError, SearchFilter, SearchMode
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

    The scope (``user_id``, ``thread_ids``, ``filter``) is applied by the index inside its own
    query, so a retriever scoped to one user never returns another user's messages.

    Attributes:
        index: a :class:`~tela_memory.recall.Index` (for example
            ``SQLiteIndex.for_store(store)``).
        k: how many documents to return (``invoke(query, k=...)`` overrides it per call).
        user_id: only this user's messages.
        thread_ids: only these threads.
        filter: any other :class:`~tela_memory.recall.SearchFilter` fields (roles, since,
            until, metadata ...).
        mode: ``hybrid`` (default), ``lexical`` or ``dense``.

    Per call, ``invoke(query, k=..., filter={...})`` narrows the scope further: the call's
    filter fields are combined with the retriever's, and cannot widen ``user_id``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Index
    k: int = Field(default=4, ge=1, le=1000)
    user_id: str | None = None
    thread_ids: list[str] | None = None
    filter: dict[str, Any] | None = None
    mode: SearchMode = "hybrid"

    def search_filter(self, extra: dict[str, Any] | None = None) -> SearchFilter:
        """The filter a search runs with (the retriever's scope plus ``extra``)."""
        flt = SearchFilter.coerce(self.filter)
        fields: dict[str, Any] = {}
        if self.user_id is not None:
            fields["user_id"] = self.user_id
        if self.thread_ids is not None:
            fields["thread_ids"] = tuple(self.thread_ids)
        if fields:
            flt = flt.narrowed(**fields)
        if extra:
            more = SearchFilter.coerce(extra)
            asked = {k: getattr(more, k) for k in extra}
            if self.user_id is not None and asked.get("user_id", self.user_id) != self.user_id:
                raise InvalidQueryError(
                    f"this retriever is scoped to user {self.user_id!r}; "
                    f"it cannot search user {asked['user_id']!r}"
                )
            flt = flt.narrowed(**asked)
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
