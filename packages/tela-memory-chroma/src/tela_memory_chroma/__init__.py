"""Tela Memory recall index on Chroma (embedded, persistent, HTTP or an injected client)."""

from tela_memory_chroma.client import SCHEMES
from tela_memory_chroma.index import ChromaIndex

__all__ = ["SCHEMES", "ChromaIndex"]
