"""``TelaRetriever`` and ``LlamaIndexEmbedder`` with real LlamaIndex objects."""

from __future__ import annotations

import numpy as np
import pytest
from li_embedding import HashEmbedding
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle

from tela_memory.errors import InvalidMessageError, TelaMemoryError
from tela_memory.recall import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.convert import to_core
from tela_memory_llamaindex.embeddings import LlamaIndexEmbedder
from tela_memory_llamaindex.retriever import TelaRetriever


def _fill(store: SQLiteStore, index: SQLiteIndex) -> None:
    rows = [
        ("a", "alice", "user", "The launch is planned for March 3rd."),
        ("a", "alice", "assistant", "Noted: launch on March 3rd."),
        ("b", "alice", "user", "Buy oat milk and bread."),
        ("c", "bob", "user", "The launch of my boat is in June."),
    ]
    for thread, user, role, text in rows:
        index.upsert(
            store.append(thread, to_core(ChatMessage(role=role, content=text)), user_id=user)
        )


def test_retrieve_nodes_with_message_metadata(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    _fill(sqlite_store, index)
    retriever = TelaRetriever(index, user_id="alice", k=2)
    nodes = retriever.retrieve("when is the launch?")
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert len(nodes) == 2
    assert {n.node.metadata["thread_id"] for n in nodes} == {"a"}
    top = nodes[0]
    assert top.node.node_id == top.node.metadata["message_id"]
    assert sqlite_store.get(top.node.node_id, user_id="alice").text == top.node.get_content()
    assert nodes[0].score is not None
    assert nodes[0].score >= nodes[1].score  # type: ignore[operator]
    assert all(n.node.metadata["user_id"] == "alice" for n in nodes)


async def test_async_and_modes(sqlite_store: SQLiteStore, index: SQLiteIndex) -> None:
    _fill(sqlite_store, index)
    for mode in ("lexical", "dense", "hybrid"):
        retriever = TelaRetriever(index, user_id="alice", k=3, mode=mode)  # type: ignore[arg-type]
        sync = [n.node.node_id for n in retriever.retrieve("oat milk")]
        nodes = await retriever.aretrieve("oat milk")
        assert [n.node.node_id for n in nodes] == sync
        assert "oat milk" in nodes[0].node.get_content()


def test_query_embedding_from_bundle_is_used(sqlite_store: SQLiteStore, index: SQLiteIndex) -> None:
    _fill(sqlite_store, index)
    retriever = TelaRetriever(index, user_id="alice", k=1, mode="dense")
    vec = HashEmbedding(model_name="hash-64").get_query_embedding("oat milk bread")
    nodes = retriever.retrieve(QueryBundle(query_str="unrelated words", embedding=vec))
    assert "oat milk" in nodes[0].node.get_content()


def test_in_a_query_engine(sqlite_store: SQLiteStore, index: SQLiteIndex) -> None:
    _fill(sqlite_store, index)
    engine = RetrieverQueryEngine.from_args(
        TelaRetriever(index, user_id="bob"), llm=MockLLM(max_tokens=5)
    )
    response = engine.query("launch?")
    assert [n.node.metadata["user_id"] for n in response.source_nodes] == ["bob"]


def test_bad_filter_is_a_clear_error(index: SQLiteIndex) -> None:
    with pytest.raises(TelaMemoryError, match="unknown filter"):
        TelaRetriever(index, filter={"usr": "x"})


def test_embedder_adapter() -> None:
    embedder = LlamaIndexEmbedder(MockEmbedding(embed_dim=8))
    assert embedder.dimension == 8
    vectors = embedder.embed(["a", "b", "c"])
    assert vectors.shape == (3, 8)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert embedder.embed_query("q").shape == (8,)
    assert embedder.model_id == "llamaindex:MockEmbedding:unknown"
    assert embedder.embed([]).shape == (0, 8)


async def test_embedder_async_matches_sync() -> None:
    embedder = LlamaIndexEmbedder(HashEmbedding(model_name="h"), dimension=64)
    sync = embedder.embed(["oat milk", "launch date"])
    assert np.allclose(await embedder.aembed(["oat milk", "launch date"]), sync)
    assert np.allclose(await embedder.aembed_query("oat"), embedder.embed_query("oat"))


def test_embedder_rejects_non_llamaindex_models() -> None:
    with pytest.raises(InvalidMessageError, match="BaseEmbedding"):
        LlamaIndexEmbedder(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError, match="dimension"):
        LlamaIndexEmbedder(MockEmbedding(embed_dim=8), dimension=0)
