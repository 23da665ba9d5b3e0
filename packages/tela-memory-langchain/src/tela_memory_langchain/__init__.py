"""Tela Memory for LangChain and LangGraph.

* :class:`TelaChatMessageHistory`: chat history on any Tela store (``RunnableWithMessageHistory``).
* :class:`TelaRetriever`: past conversation turns as ``Document`` s from a recall index.
* :class:`TelaStore`: LangGraph long-term memory (``BaseStore``), needs ``langgraph``.
* :class:`TelaContextMiddleware`: the context engine for ``create_agent``, needs ``langchain``.

Each acts for one user (``user_id=``, or the run's ``context=`` for the middleware): session
ids, thread ids and LangGraph namespaces live in that user's namespace. Without a user they
raise ``ScopeError``; cross-user views exist only as ``all_users=True``.
* :class:`LangChainEmbedder`: any LangChain ``Embeddings`` as a Tela embedder.
* :mod:`tela_memory_langchain.convert`: lossless message conversion.

The LangGraph and agent pieces are imported on first access, so the package works with
``langchain-core`` alone.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from tela_memory_langchain.convert import (
    messages_to_core,
    messages_to_langchain,
    to_core,
    to_langchain,
)
from tela_memory_langchain.embeddings import LangChainEmbedder
from tela_memory_langchain.history import TelaChatMessageHistory
from tela_memory_langchain.retriever import TelaRetriever

if TYPE_CHECKING:
    from tela_memory_langchain.chat_model import LangChainChatModel
    from tela_memory_langchain.graph_store import TelaStore, UserNamespaces
    from tela_memory_langchain.middleware import TelaContextMiddleware

_LAZY = {
    "TelaStore": "tela_memory_langchain.graph_store",
    "UserNamespaces": "tela_memory_langchain.graph_store",
    "TelaContextMiddleware": "tela_memory_langchain.middleware",
    "LangChainChatModel": "tela_memory_langchain.chat_model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tela_memory_langchain' has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "LangChainChatModel",
    "LangChainEmbedder",
    "TelaChatMessageHistory",
    "TelaContextMiddleware",
    "TelaRetriever",
    "TelaStore",
    "UserNamespaces",
    "messages_to_core",
    "messages_to_langchain",
    "to_core",
    "to_langchain",
]
