"""Any LlamaIndex ``BaseEmbedding`` as a Tela Memory ``Embedder`` (for the recall index)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from llama_index.core.base.embeddings.base import BaseEmbedding

from tela_memory.errors import InvalidMessageError
from tela_memory.recall.embedder import BaseEmbedder, Vectors, normalize


class LlamaIndexEmbedder(BaseEmbedder):
    """Wrap a LlamaIndex embedding model so the recall index can use it.

    Args:
        model: any ``BaseEmbedding`` (OpenAI, HuggingFace, ``MockEmbedding`` ...).
        dimension: the vector length; when ``None`` it is found by embedding one probe text
            on first use (never in the constructor).
        model_id: stable name for caches and indexes (default ``llamaindex:<class>:<model>``).
    """

    def __init__(
        self, model: BaseEmbedding, *, dimension: int | None = None, model_id: str | None = None
    ) -> None:
        if not isinstance(model, BaseEmbedding):
            raise InvalidMessageError(
                f"expected a llama_index BaseEmbedding, got {type(model).__name__}"
            )
        if dimension is not None and dimension < 1:
            raise InvalidMessageError(f"dimension must be >= 1, got {dimension}")
        self.model = model
        self.batch_size = model.embed_batch_size
        self._dimension = dimension
        self._model_id = model_id or f"llamaindex:{model.class_name()}:{model.model_name}"

    @property
    def model_id(self) -> str:
        """Stable name of the model."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Vector length (probed once on first use when not given)."""
        if self._dimension is None:
            self._dimension = len(self.model.get_text_embedding("dimension probe"))
        return self._dimension

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        return np.asarray(self.model.get_text_embedding_batch(texts), dtype=np.float32)

    def _embed_query(self, text: str) -> npt.ArrayLike:
        return np.asarray([self.model.get_query_embedding(text)], dtype=np.float32)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents with the model's async API."""
        items = list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        raw = await self.model.aget_text_embedding_batch(items)
        return normalize(raw, n=len(items), dimension=self.dimension, model_id=self.model_id)

    async def aembed_query(self, text: str) -> Vectors:
        """Embed a query with the model's async API."""
        raw = await self.model.aget_query_embedding(text)
        rows = normalize([raw], n=1, dimension=self.dimension, model_id=self.model_id)
        out: Vectors = rows[0]
        return out


__all__ = ["LlamaIndexEmbedder"]
