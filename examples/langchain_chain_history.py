"""A LangChain chain with persistent history: ``RunnableWithMessageHistory`` on Tela Memory.

Two turns go through ``prompt | model``; the history lives in the embedded default store (a
SQLite file under ~/.local/share/tela-memory; set TELA_MEMORY_URL for another). Then the
conversation is forked after the first answer and continued on a branch
(``session_id="thread#branch"``), and both branches are printed. The history acts for one
user: the session id is a thread in Ada's namespace, so another user's ``session_id`` of the
same name is another thread.

Offline by default with LangChain's fake chat model; with OPENAI_API_KEY set and
``langchain-openai`` installed it talks to a real model.
"""

from __future__ import annotations

import os
import uuid
import warnings

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from tela_memory import open_store
from tela_memory_langchain import TelaChatMessageHistory

# LangChain deprecated RunnableWithMessageHistory (removal in 2.0); it is still what many
# applications run, so this example shows it. See langchain_agent_memory.py for the new way.
warnings.filterwarnings("ignore", message="RunnableWithMessageHistory is deprecated")


def chat_model() -> BaseChatModel:
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from langchain.chat_models import init_chat_model

            return init_chat_model("openai:gpt-4o-mini")
        except ImportError:
            pass
    replies = ["Nice to meet you, Ada!", "You are Ada.", "Then you are Grace, not Ada."]
    return GenericFakeChatModel(messages=iter(AIMessage(r) for r in replies))


def main() -> None:
    thread = f"lc-chain-{uuid.uuid4().hex[:8]}"
    with open_store(os.environ.get("TELA_MEMORY_URL")) as store:
        prompt = ChatPromptTemplate.from_messages(
            [
                ("system", "You are a friendly assistant with a good memory."),
                MessagesPlaceholder("history"),
                ("human", "{question}"),
            ]
        )
        chain = RunnableWithMessageHistory(
            prompt | chat_model(),
            lambda session_id: TelaChatMessageHistory(session_id, store=store, user_id="ada"),
            input_messages_key="question",
            history_messages_key="history",
        )
        main_branch = {"configurable": {"session_id": thread}}
        for question in ("Hi, I'm Ada.", "What is my name?"):
            answer = chain.invoke({"question": question}, config=main_branch)
            print(f"user: {question}\nassistant: {answer.content}")

        # Fork after the first answer and ask something else there.
        ada = store.for_user("ada")  # Ada's view: her thread ids are her own
        first_answer = ada.read(thread)[1]
        ada.fork(thread, first_answer.id, name="what-if")
        other = {"configurable": {"session_id": f"{thread}#what-if"}}
        answer = chain.invoke({"question": "Actually, call me Grace."}, config=other)

        for branch in ("main", "what-if"):
            history = TelaChatMessageHistory(f"{thread}#{branch}", store=ada)
            print(f"\nbranch {branch!r}:")
            for message in history.messages:
                print(f"  {message.type:>5}: {message.content}")
        print(f"\nstored {ada.get_thread(thread).message_count} messages in thread {thread}")
        ada.delete_thread(thread)


if __name__ == "__main__":
    main()
