"""``TelaRetriever``: a LlamaIndex retriever over the Tela recall index."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from tela_memory.errors import ScopeError
from tela_memory.recall.index import FilterLike, Index
from tela_memory.recall.types import Hit, SearchFilter, SearchMode
from tela_memory_llamaindex._scope import check_scope


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One recall hit as a ``NodeWithScore`` whose node id is the message id."""
    m = hit.message
    metadata: dict[str, Any] = {
        "message_id": m.id,
        "thread_id": m.thread_id,
        "user_id": m.user_id,
        "role": m.role.value,
        "name": m.name,
        "created_at": m.created_at.isoformat(),
        "parent_id": m.parent_id,
        "lexical_score": hit.lexical_score,
        "dense_score": hit.dense_score,
    }
    node = TextNode(
        id_=m.id,
        text=hit.text,
        metadata=metadata,
        excluded_embed_metadata_keys=list(metadata),
        excluded_llm_metadata_keys=[k for k in metadata if k not in ("role", "created_at")],
    )
    return NodeWithScore(node=node, score=hit.score)


class TelaRetriever(BaseRetriever):
    """Retrieve one user's past messages as ``NodeWithScore`` objects (sync and async).

    Args:
        index: a Tela recall ``Index`` (for example ``SQLiteIndex.for_store(store)``).
        user_id: the user whose messages are searched (required unless ``all_users=True``;
            a ``filter`` that names a user counts as this, and may not name another).
        all_users: an operator's search across every user's messages (never with a user).
        filter: what else may be returned (a ``SearchFilter`` or a mapping of its fields);
            applied by the index on every query, always narrowed to the user.
        k: how many messages per query.
        mode: ``"hybrid"`` (default), ``"lexical"`` or ``"dense"``.

    Raises:
        ScopeError: no user and no ``all_users=True``, both, or a ``filter`` whose user is
            not ``user_id``.
    """

    def __init__(
        self,
        index: Index,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        filter: FilterLike = None,
        k: int = 5,
        mode: SearchMode = "hybrid",
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        flt = SearchFilter.coerce(filter)
        if user_id is not None and flt.user_id is not None and flt.user_id != user_id:
            raise ScopeError("TelaRetriever got user_id= and a filter for another user")
        user_id = user_id if user_id is not None else flt.user_id
        check_scope("TelaRetriever", user_id, all_users, cross_user=True)
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.index = index
        self.user_id = user_id
        self.all_users = all_users
        self.filter = flt
        self.k = k
        self.mode: SearchMode = mode

    def search_filter(self) -> SearchFilter:
        """The filter of one query: :attr:`filter` narrowed to the user (built per query, so
        a filter reassigned later cannot widen the scope)."""
        check_scope("TelaRetriever", self.user_id, self.all_users, cross_user=True)
        if self.all_users:
            return self.filter
        return self.filter.narrowed(user_id=self.user_id)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(
            query_bundle.query_str,
            filter=self.search_filter(),
            k=self.k,
            mode=self.mode,
            query_vector=_vector(query_bundle),
        )
        return [hit_to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.index.asearch(
            query_bundle.query_str,
            filter=self.search_filter(),
            k=self.k,
            mode=self.mode,
            query_vector=_vector(query_bundle),
        )
        return [hit_to_node(h) for h in hits]


def _vector(query_bundle: QueryBundle) -> Any:
    if query_bundle.embedding is None:
        return None
    import numpy as np

    return np.asarray(query_bundle.embedding, dtype=np.float32)


__all__ = ["TelaRetriever", "hit_to_node"]
