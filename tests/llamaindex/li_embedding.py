"""A real LlamaIndex embedding model that runs offline (hashed bag of words)."""

from __future__ import annotations

from llama_index.core.base.embeddings.base import BaseEmbedding

from tela_memory.testing.embedders import HashEmbedder


class HashEmbedding(BaseEmbedding):
    """A real LlamaIndex ``BaseEmbedding`` computing offline hashed bag-of-words vectors."""

    dim: int = 64

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vec(self, text: str) -> list[float]:
        return [float(x) for x in HashEmbedder(self.dim).embed([text])[0]]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vec(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vec(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vec(query)
