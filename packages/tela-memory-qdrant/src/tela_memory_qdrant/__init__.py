"""Tela Memory on Qdrant: the recall index on a Qdrant server, local mode, an injected client
or Qdrant Edge (the engine embedded, extra ``edge``)."""

from tela_memory_qdrant.edge import QdrantEdgeIndex
from tela_memory_qdrant.index import QdrantIndex

__all__ = ["QdrantEdgeIndex", "QdrantIndex"]
