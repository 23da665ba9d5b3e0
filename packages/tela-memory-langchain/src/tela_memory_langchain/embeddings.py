"""Any LangChain ``Embeddings`` as a core :class:`~tela_memory.recall.Embedder`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from langchain_core.embeddings import Embeddings

from tela_memory.recall.embedder import BaseEmbedder, Vectors, normalize


def _model_name(embeddings: Embeddings) -> str:
    for attr in ("model", "model_name", "model_id", "deployment"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return value
    size = getattr(embeddings, "size", None)
    return f"size-{size}" if isinstance(size, int) else "default"


class LangChainEmbedder(BaseEmbedder):
    """Wrap a LangChain ``Embeddings`` (OpenAI, HuggingFace, Ollama, a fake ...) for recall.

    Vectors come back as unit-length float32 rows. Documents go through ``embed_documents``
    and queries through ``embed_query``, so models with separate query / passage modes keep
    them; the async side calls the model's own ``aembed_*``.

    Args:
        embeddings: the LangChain embeddings object.
        model_id: a stable name for the model (indexes key their vectors on it); by default
            ``langchain:<class>:<model name>``.
        dimension: the vector length; when not given, measured by embedding one short text
            on first use (never in the constructor).
    """

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        model_id: str | None = None,
        dimension: int | None = None,
    ) -> None:
        self.embeddings = embeddings
        self._model_id = model_id or (
            f"langchain:{type(embeddings).__name__}:{_model_name(embeddings)}"
        )
        self._dimension = dimension

    @property
    def model_id(self) -> str:
        """Stable name of the model."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Vector length (measured once on first use if not given)."""
        if self._dimension is None:
            self._dimension = len(self.embeddings.embed_query("dimension"))
        return self._dimension

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        return self.embeddings.embed_documents(texts)

    def _embed_query(self, text: str) -> npt.ArrayLike:
        return [self.embeddings.embed_query(text)]

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents with the model's async API."""
        items = list(texts)
        if self._dimension is None:
            self._dimension = len(await self.embeddings.aembed_query("dimension"))
        if not items:
            return np.zeros((0, self._dimension), dtype=np.float32)
        rows: list[list[float]] = []
        for i in range(0, len(items), self.batch_size):
            rows.extend(await self.embeddings.aembed_documents(items[i : i + self.batch_size]))
        return normalize(rows, n=len(items), dimension=self._dimension, model_id=self.model_id)

    async def aembed_query(self, text: str) -> Vectors:
        """Embed one query with the model's async API."""
        raw = await self.embeddings.aembed_query(text)
        if self._dimension is None:
            self._dimension = len(raw)
        out: Vectors = normalize([raw], n=1, dimension=self._dimension, model_id=self.model_id)[0]
        return out


__all__ = ["LangChainEmbedder"]
