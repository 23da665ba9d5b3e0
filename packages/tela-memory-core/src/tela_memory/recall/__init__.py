"""Recall: search over conversation history (lexical, dense, hybrid) with strict filters."""

from tela_memory.recall.embedder import BaseEmbedder, Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError, InvalidQueryError
from tela_memory.recall.index import Document, Index, rrf_fuse
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import Hit, SearchFilter, SearchMode

__all__ = [
    "BaseEmbedder",
    "Document",
    "Embedder",
    "EmbeddingMismatchError",
    "Hit",
    "Index",
    "InvalidQueryError",
    "SQLiteIndex",
    "SearchFilter",
    "SearchMode",
    "Vectors",
    "extract_text",
    "rrf_fuse",
]
