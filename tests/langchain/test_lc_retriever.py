"""``TelaRetriever`` and ``LangChainEmbedder`` over the embedded SQLite recall index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_tests.integration_tests import RetrieversIntegrationTests
from pydantic import ValidationError

from tela_memory.errors import ScopeError
from tela_memory.messages import Message
from tela_memory.recall import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_langchain.embeddings import LangChainEmbedder
from tela_memory_langchain.history import TelaChatMessageHistory
from tela_memory_langchain.retriever import TelaRetriever


def _fill(store: SQLiteStore, index: SQLiteIndex) -> None:
    chats = {
        ("alice", "a1"): ["I love pizza with basil", "Pizza is great", "My cat is called Tom"],
        ("alice", "a2"): ["Pizza on Friday?", "Sure, pizza night", "Bring the cat"],
        ("bob", "b1"): ["Bob likes pizza too", "Bob has a dog named Rex"],
    }
    for (user, thread), texts in chats.items():
        history = TelaChatMessageHistory(thread, store=store, user_id=user, index=index)
        history.add_messages(
            [HumanMessage(t) if i % 2 == 0 else AIMessage(t) for i, t in enumerate(texts)]
        )


class TestTelaRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard retriever suite, on a real SQLite store and index."""

    params: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _index(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
        path = tmp_path_factory.mktemp("retriever") / "tela.db"
        with SQLiteStore(path) as store:
            embedder = LangChainEmbedder(DeterministicFakeEmbedding(size=32))
            with SQLiteIndex.for_store(store, embedder=embedder) as index:
                _fill(store, index)
                cls.params = {"index": index, "k": 2, "user_id": "alice"}
                yield

    @property
    def retriever_constructor(self) -> type[TelaRetriever]:
        return TelaRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return "pizza"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SQLiteIndex]:
    with SQLiteStore(tmp_path / "tela.db") as store, SQLiteIndex.for_store(store) as idx:
        _fill(store, idx)
        yield idx


def test_user_scope_is_enforced(index: SQLiteIndex) -> None:
    docs = TelaRetriever(index=index, user_id="alice", k=10).invoke("pizza")
    assert docs
    assert {d.metadata["user_id"] for d in docs} == {"alice"}
    assert TelaRetriever(index=index, user_id="bob", k=10).invoke("cat") == []
    with pytest.raises(ScopeError, match="scoped to user 'alice'"):
        TelaRetriever(index=index, user_id="alice").invoke("pizza", filter={"user_id": "bob"})


def test_documents_carry_the_message(index: SQLiteIndex) -> None:
    (doc,) = TelaRetriever(index=index, k=1, user_id="alice", thread_ids=["a1"]).invoke("basil")
    assert isinstance(doc, Document)
    assert doc.page_content == "I love pizza with basil"
    assert doc.id == doc.metadata["message_id"]
    assert doc.metadata["thread_id"] == "a1"
    assert doc.metadata["role"] == "user"
    assert doc.metadata["score"] > 0


async def test_call_filters_narrow_and_async_matches_sync(index: SQLiteIndex) -> None:
    retriever = TelaRetriever(index=index, user_id="alice", k=10)
    only_ai = retriever.invoke("pizza", filter={"roles": ["assistant"]})
    assert only_ai
    assert {d.metadata["role"] for d in only_ai} == {"assistant"}
    assert await retriever.ainvoke("pizza", k=2) == retriever.invoke("pizza", k=2)


def test_retrieved_turns_feed_a_prompt(index: SQLiteIndex) -> None:
    retriever = TelaRetriever(index=index, user_id="alice", k=2, mode="lexical")
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Earlier:\n{memory}"), ("human", "{question}")]
    )
    chain = (
        {
            "memory": retriever | (lambda docs: "\n".join(d.page_content for d in docs)),
            "question": RunnablePassthrough(),
        }
        | prompt
        | GenericFakeChatModel(messages=iter([AIMessage("Tom.")]))
    )
    assert chain.invoke("what is my cat called?").content == "Tom."
    shown = prompt.invoke(
        {"memory": "\n".join(d.page_content for d in retriever.invoke("cat")), "question": "q"}
    )
    assert "My cat is called Tom" in shown.to_messages()[0].content


class _Counting(DeterministicFakeEmbedding):
    calls: int = 0

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


async def test_embedder_adapter() -> None:
    fake = _Counting(size=16)
    embedder = LangChainEmbedder(fake)
    assert fake.calls == 0  # nothing happens in the constructor
    assert embedder.model_id == "langchain:_Counting:size-16"
    assert embedder.dimension == 16
    vectors = embedder.embed(["a", "b", "a"])
    assert vectors.shape == (3, 16)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(vectors[0], vectors[2])
    np.testing.assert_allclose(await embedder.aembed(["a", "b", "a"]), vectors, rtol=1e-6)
    np.testing.assert_allclose(embedder.embed_query("a"), await embedder.aembed_query("a"))
    assert embedder.embed([]).shape == (0, 16)
    assert (await embedder.aembed([])).shape == (0, 16)


def test_embedder_drives_dense_search(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "d.db") as store:
        embedder = LangChainEmbedder(DeterministicFakeEmbedding(size=24), model_id="fake-24")
        with SQLiteIndex.for_store(store, embedder=embedder) as idx:
            notes = [Message.user(f"note number {i}") for i in range(5)]
            idx.upsert(store.append("t", notes, user_id="u"))
            docs = TelaRetriever(index=idx, user_id="u", mode="dense", k=1).invoke("note number 3")
            assert docs[0].page_content == "note number 3"  # identical text: cosine 1


def test_a_user_or_the_all_users_opt_in_is_required(index: SQLiteIndex) -> None:
    with pytest.raises(ScopeError, match="user_id=") as caught:
        TelaRetriever(index=index)
    assert not isinstance(caught.value, ValidationError)  # not hidden in pydantic's wrapping
    with pytest.raises(ScopeError, match="not both"):
        TelaRetriever(index=index, user_id="alice", all_users=True)
    everyone = TelaRetriever(index=index, all_users=True, k=10).invoke("pizza")
    assert {d.metadata["user_id"] for d in everyone} == {"alice", "bob"}
    only_bob = TelaRetriever(index=index, all_users=True, k=10, filter={"user_id": "bob"})
    assert {d.metadata["user_id"] for d in only_bob.invoke("pizza")} == {"bob"}
    with pytest.raises(ScopeError):  # an all-users retriever narrowed to Bob stays Bob's
        only_bob.invoke("pizza", filter={"user_id": "alice"})


@pytest.mark.parametrize(
    "widen", [{"user_id": "bob"}, {"user_id": None}, {"user_id": "alice' OR '1'='1"}]
)
def test_filters_never_widen_the_user(index: SQLiteIndex, widen: dict[str, Any]) -> None:
    with pytest.raises(ScopeError):
        TelaRetriever(index=index, user_id="alice", filter=widen)
    retriever = TelaRetriever(index=index, user_id="alice", k=10)
    with pytest.raises(ScopeError):
        retriever.invoke("pizza", filter=widen)
    assert retriever.invoke("pizza", filter={"user_id": "alice"})  # repeating it is fine
    retriever.user_id = None  # a mutated retriever is checked again at search time
    with pytest.raises(ScopeError):
        retriever.invoke("pizza")


def test_the_documented_example_finds_a_turn_appended_just_before(tmp_path: Path) -> None:
    """docs/langchain.md: a history that knows nothing of the index, a retriever on
    ``SQLiteIndex.for_store``; the index follows the store, so no ``sync()`` is needed."""
    embeddings = DeterministicFakeEmbedding(size=16)
    with SQLiteStore(tmp_path / "chat.db") as messages:
        index = SQLiteIndex.for_store(messages, embedder=LangChainEmbedder(embeddings))
        history = TelaChatMessageHistory("trip", store=messages, user_id="ada")
        history.add_messages([HumanMessage("a trip to Lisbon in May"), AIMessage("Lovely")])
        retriever = TelaRetriever(index=index, user_id="ada", k=4)
        docs = retriever.invoke("trip to Lisbon", k=2, filter={"roles": ["user"]})
        assert [d.page_content for d in docs] == ["a trip to Lisbon in May"]
        other = TelaRetriever(index=index, user_id="bob", k=4)
        assert other.invoke("trip to Lisbon") == []
        index.close()
