"""Tela Memory for LlamaIndex: chat store, memory, memory blocks, retriever and embeddings.

* :class:`TelaChatStore`: a ``BaseChatStore`` on any Tela ``MessageStore`` (SQLite, Redis ...).
* :class:`TelaMemory`: ``memory=`` for chat engines and agents; full history in the store, a
  budgeted view to the model.
* :class:`TelaRecallBlock`, :class:`TelaEpisodicBlock`, :class:`TelaFactsBlock`: memory blocks
  for ``llama_index.core.memory.Memory`` (and ``TelaMemory``).
* :class:`TelaRetriever`: past messages as ``NodeWithScore`` objects.
* :class:`LlamaIndexEmbedder`: any ``BaseEmbedding`` as a recall embedder.
* :func:`to_core` / :func:`from_core`: lossless ``ChatMessage`` <-> ``Message`` conversion.
* ``LlamaIndexChatModel``: any LlamaIndex LLM as a core chat model (for ``Session``).

Every class acts for one user (``user_id=``, or a ``store.for_user(...)`` view as the store):
thread ids, chat store keys and the blocks' internal threads live in that user's namespace,
so no key, session id or block of one user can reach another's data. Built without a user,
a class raises ``tela_memory.errors.ScopeError``; only the recall readers
(:class:`TelaRetriever`, :class:`TelaRecallBlock`) offer the operator's ``all_users=True``.
"""

from typing import Any

from tela_memory.errors import MissingDependency

try:
    import llama_index.core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the dependency
    raise MissingDependency("llama-index-core", "llamaindex") from exc

from tela_memory_llamaindex.blocks import TelaEpisodicBlock, TelaFactsBlock, TelaRecallBlock
from tela_memory_llamaindex.chat_store import TelaChatStore
from tela_memory_llamaindex.convert import (
    from_core,
    from_core_messages,
    to_core,
    to_core_messages,
)
from tela_memory_llamaindex.embeddings import LlamaIndexEmbedder
from tela_memory_llamaindex.memory import TelaMemory
from tela_memory_llamaindex.retriever import TelaRetriever, hit_to_node


def __getattr__(name: str) -> Any:
    if name == "LlamaIndexChatModel":  # imported on first use (the session side of the core)
        from tela_memory_llamaindex.llm import LlamaIndexChatModel

        return LlamaIndexChatModel
    raise AttributeError(f"module 'tela_memory_llamaindex' has no attribute {name!r}")


__all__ = [
    "LlamaIndexChatModel",
    "LlamaIndexEmbedder",
    "TelaChatStore",
    "TelaEpisodicBlock",
    "TelaFactsBlock",
    "TelaMemory",
    "TelaRecallBlock",
    "TelaRetriever",
    "from_core",
    "from_core_messages",
    "hit_to_node",
    "to_core",
    "to_core_messages",
]
