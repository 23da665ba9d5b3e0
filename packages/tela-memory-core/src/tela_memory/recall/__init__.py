"""Recall: search over conversation history (lexical, dense, hybrid) with strict filters."""

from tela_memory.recall.adapters import (
    MINILM,
    FastEmbedEmbedder,
    Model2VecEmbedder,
    SentenceTransformerEmbedder,
)
from tela_memory.recall.cache import (
    CacheChain,
    CachedEmbedder,
    EmbeddingCache,
    MemoryCache,
    SQLiteCache,
)
from tela_memory.recall.embedder import BaseEmbedder, Embedder, Vectors
from tela_memory.recall.errors import EmbeddingMismatchError, InvalidQueryError
from tela_memory.recall.index import Document, Index, ThreadTermCounts, rrf_fuse
from tela_memory.recall.indexer import StoreIndexer, SyncReport
from tela_memory.recall.ranking import RankingConfig, Reranker, ThreadHit
from tela_memory.recall.recaller import (
    RecallConfig,
    RecalledTurn,
    Recaller,
    RecallResult,
    abranch_filter,
    branch_filter,
)
from tela_memory.recall.registry import open_index
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.recall.text import extract_text
from tela_memory.recall.types import Hit, SearchFilter, SearchMode

__all__ = [
    "MINILM",
    "BaseEmbedder",
    "CacheChain",
    "CachedEmbedder",
    "Document",
    "Embedder",
    "EmbeddingCache",
    "EmbeddingMismatchError",
    "FastEmbedEmbedder",
    "Hit",
    "Index",
    "InvalidQueryError",
    "MemoryCache",
    "Model2VecEmbedder",
    "RankingConfig",
    "RecallConfig",
    "RecallResult",
    "RecalledTurn",
    "Recaller",
    "Reranker",
    "SQLiteCache",
    "SQLiteIndex",
    "SearchFilter",
    "SearchMode",
    "SentenceTransformerEmbedder",
    "StoreIndexer",
    "SyncReport",
    "ThreadHit",
    "ThreadTermCounts",
    "Vectors",
    "abranch_filter",
    "branch_filter",
    "extract_text",
    "open_index",
    "rrf_fuse",
]
