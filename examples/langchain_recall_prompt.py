"""Retrieval of past conversations into a prompt: ``TelaRetriever`` in an LCEL chain.

Three earlier conversations of one user (and one of another user) are stored and indexed in
the embedded default SQLite file. A new question goes through a chain that retrieves the
user's most relevant past turns (BM25 + vectors, scoped to that user) and puts them in the
system prompt. The other user's messages can never come back.

Offline by default with LangChain's fake chat model and Tela's small hashing embedder; with
OPENAI_API_KEY set and ``langchain-openai`` installed it uses real models.
"""

from __future__ import annotations

import os
import uuid

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough

from tela_memory import open_store
from tela_memory.recall import Embedder, SQLiteIndex
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_langchain import LangChainEmbedder, TelaChatMessageHistory, TelaRetriever

PAST = {
    "ada": [
        ["I'm planning a trip to Lisbon in May.", "Lisbon in May is lovely: about 22°C."],
        ["My sister Grace is allergic to cats.", "Noted, no cat cafés with Grace then."],
        ["I switched to decaf coffee last week.", "Good call for sleeping better."],
    ],
    "bob": [["I'm also going to Lisbon, with my dog.", "Dogs are welcome on many trams."]],
}


def models() -> tuple[BaseChatModel, Embedder]:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain.chat_models import init_chat_model
            from langchain_openai import OpenAIEmbeddings

            embedder = LangChainEmbedder(OpenAIEmbeddings(model="text-embedding-3-small"))
            return init_chat_model("openai:gpt-4o-mini"), embedder
        except ImportError:
            pass
    reply = AIMessage("You're going to Lisbon in May; remember Grace is allergic to cats.")
    return GenericFakeChatModel(messages=iter([reply])), HashEmbedder(64)


def main() -> None:
    run = uuid.uuid4().hex[:8]
    model, embedder = models()
    with (
        open_store(os.environ.get("TELA_MEMORY_URL")) as store,
        SQLiteIndex.for_store(store, embedder=embedder) as index,
    ):
        threads: list[tuple[str, str]] = []
        for user, conversations in PAST.items():
            for i, (question, answer) in enumerate(conversations):
                thread = f"lc-recall-{run}-{user}-{i}"
                threads.append((user, thread))
                history = TelaChatMessageHistory(thread, store=store, user_id=user, index=index)
                history.add_messages([HumanMessage(question), AIMessage(answer)])

        retriever = TelaRetriever(index=index, user_id="ada", k=3)

        def as_notes(docs: list[Document]) -> str:
            return "\n".join(f"- ({d.metadata['role']}) {d.page_content}" for d in docs)

        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "You help Ada. Notes from earlier conversations:\n{notes}"),
                ("human", "{question}"),
            ]
        )
        chain = {
            "notes": retriever | as_notes,
            "question": RunnablePassthrough(),
        } | prompt
        question = "Any advice for my trip to Lisbon with my sister?"
        messages = chain.invoke(question).to_messages()
        print("prompt sent to the model:")
        for m in messages:
            print(f"  {m.type}: {m.content}")
        print("\nassistant:", model.invoke(messages).content)
        assert "dog" not in messages[0].content  # Bob's conversation never shows up
        for user, thread in threads:
            store.delete_thread(thread, user_id=user)


if __name__ == "__main__":
    main()
