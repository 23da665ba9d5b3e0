"""Tela Memory on Qdrant: the recall index on a Qdrant server, local mode or injected client."""

from tela_memory_qdrant.index import QdrantIndex

__all__ = ["QdrantIndex"]
