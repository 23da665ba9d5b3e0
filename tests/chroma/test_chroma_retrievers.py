"""The LangChain and LlamaIndex retrievers of Tela Memory on a ``ChromaIndex``: LangChain's
standard retriever suite, a chain, a LlamaIndex query engine, each scoped to one user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import chromadb
import pytest
from chroma_helpers import unique_name
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore

from tela_memory.messages import Message
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_chroma import ChromaIndex
from tela_memory_chroma.client import settings
from tela_memory_chroma.migrate import import_collection
from tela_memory_langchain.embeddings import LangChainEmbedder
from tela_memory_langchain.retriever import TelaRetriever as LangChainRetriever
from tela_memory_llamaindex.retriever import TelaRetriever as LlamaIndexRetriever

CHATS = {
    ("alice", "a1"): ["I love pizza with basil", "Pizza is great", "My cat is called Tom"],
    ("alice", "a2"): ["Pizza on Friday?", "Sure, pizza night", "Bring the cat"],
    ("bob", "b1"): ["Bob likes pizza too", "Bob has a dog named Rex"],
}


def _fill(store: SQLiteStore, index: ChromaIndex) -> None:
    for (user, thread), texts in CHATS.items():
        store.append(
            thread,
            [Message.user(t) if i % 2 == 0 else Message.assistant(t) for i, t in enumerate(texts)],
            user_id=user,
        )
    StoreIndexer(store, index).sync()


class TestLangChainRetrieverOnChroma(RetrieversIntegrationTests):
    """LangChain's standard retriever suite, on a real store and a Chroma index."""

    params: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _index(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        folder = tmp_path_factory.mktemp("chroma-retriever")
        embedder = LangChainEmbedder(DeterministicFakeEmbedding(size=32))
        with (
            SQLiteStore(folder / "tela.db") as store,
            ChromaIndex(folder / "chroma", embedder=embedder) as index,
        ):
            _fill(store, index)
            cls.params = {"index": index, "k": 2, "user_id": "alice"}
            yield

    @property
    def retriever_constructor(self) -> type[LangChainRetriever]:
        return LangChainRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "pizza"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ChromaIndex]:
    with (
        SQLiteStore(tmp_path / "tela.db") as store,
        ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(32)) as idx,
    ):
        _fill(store, idx)
        yield idx
        idx.drop()


async def test_langchain_retriever_scoped_and_in_a_chain(index: ChromaIndex) -> None:
    retriever = LangChainRetriever(index=index, user_id="alice", k=10)
    docs = retriever.invoke("pizza")
    assert docs
    assert {d.metadata["user_id"] for d in docs} == {"alice"}
    bobs = LangChainRetriever(index=index, user_id="bob", k=10).invoke("cat")
    assert {d.metadata["user_id"] for d in bobs} == {"bob"}  # dense finds his, never hers
    assert LangChainRetriever(index=index, user_id="bob", mode="lexical").invoke("cat") == []
    assert await retriever.ainvoke("pizza", k=2) == retriever.invoke("pizza", k=2)
    lexical = LangChainRetriever(index=index, user_id="alice", k=1, mode="lexical")
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Earlier:\n{memory}"), ("human", "{question}")]
    )
    chain = (
        {
            "memory": lexical | (lambda ds: "\n".join(d.page_content for d in ds)),
            "question": RunnablePassthrough(),
        }
        | prompt
        | GenericFakeChatModel(messages=iter([AIMessage("Tom.")]))
    )
    assert chain.invoke("what is my cat called?").content == "Tom."
    assert lexical.invoke("cat called")[0].page_content == "My cat is called Tom"


async def test_llamaindex_retriever_and_query_engine(index: ChromaIndex) -> None:
    retriever = LlamaIndexRetriever(index, user_id="alice", k=3)
    nodes = retriever.retrieve("pizza night")
    assert nodes
    assert all(isinstance(n, NodeWithScore) for n in nodes)
    assert {n.node.metadata["user_id"] for n in nodes} == {"alice"}
    assert [n.node.node_id for n in await retriever.aretrieve("pizza night")] == [
        n.node.node_id for n in nodes
    ]
    engine = RetrieverQueryEngine.from_args(
        LlamaIndexRetriever(index, user_id="bob"), llm=MockLLM(max_tokens=5)
    )
    response = engine.query("dog?")
    assert response.source_nodes
    assert {n.node.metadata["user_id"] for n in response.source_nodes} == {"bob"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_langchain_built_collection_is_imported_and_indexed(tmp_path: Path) -> None:
    """A collection made by LangChain's ``Chroma`` vector store (one collection, users in the
    metadata) is read into a store, and ``StoreIndexer`` fills a ``ChromaIndex`` beside it on
    the same client: then the engine keeps the users apart."""
    from langchain_community.vectorstores import Chroma  # deprecated: warns on import

    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=settings())
    vectors = Chroma(
        client=client,
        collection_name="langchain",
        embedding_function=DeterministicFakeEmbedding(size=16),
    )
    vectors.add_texts(
        ["I moved to Porto", "Porto is rainy", "Bob's bike is red"],
        metadatas=[
            {"user_id": "alice", "thread_id": "move", "role": "user"},
            {"user_id": "alice", "thread_id": "move", "role": "assistant", "n": 2},
            {"user_id": "bob", "thread_id": "bike"},
        ],
    )
    with SQLiteStore(tmp_path / "tela.db") as store:
        assert import_collection(client.get_collection("langchain"), store) == 3
        with ChromaIndex(client=client, name="tela", embedder=HashEmbedder(16)) as index:
            StoreIndexer(store, index).sync()
            hits = index.search("Porto", filter={"user_id": "alice"})
            assert {h.text for h in hits} == {"I moved to Porto", "Porto is rainy"}
            assert {h.message.role.value for h in hits} == {"user", "assistant"}
            assert index.search("bike", filter={"user_id": "alice"}, mode="lexical") == []
    assert client.get_collection("langchain").count() == 3  # only read
