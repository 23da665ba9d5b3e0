"""``TelaRetriever``: a LlamaIndex retriever over the Tela recall index."""

from __future__ import annotations

from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from tela_memory.recall.index import FilterLike, Index
from tela_memory.recall.types import Hit, SearchFilter, SearchMode


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
    """Retrieve past messages as ``NodeWithScore`` objects (sync and async).

    Args:
        index: a Tela recall ``Index`` (for example ``SQLiteIndex.for_store(store)``).
        filter: what may be returned (a ``SearchFilter`` or a mapping of its fields); applied
            by the index on every query. Set ``user_id`` when serving several users.
        k: how many messages per query.
        mode: ``"hybrid"`` (default), ``"lexical"`` or ``"dense"``.
    """

    def __init__(
        self,
        index: Index,
        *,
        filter: FilterLike = None,
        k: int = 5,
        mode: SearchMode = "hybrid",
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(callback_manager=callback_manager, verbose=verbose)
        self.index = index
        self.filter = SearchFilter.coerce(filter)
        self.k = k
        self.mode: SearchMode = mode

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.index.search(
            query_bundle.query_str,
            filter=self.filter,
            k=self.k,
            mode=self.mode,
            query_vector=_vector(query_bundle),
        )
        return [hit_to_node(h) for h in hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.index.asearch(
            query_bundle.query_str,
            filter=self.filter,
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
