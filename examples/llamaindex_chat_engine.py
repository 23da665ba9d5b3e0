"""A LlamaIndex chat engine whose memory survives a restart (TelaMemory on SQLite).

Runs offline with LlamaIndex's MockLLM; with OPENAI_API_KEY set and llama-index-llms-openai
installed it talks to a real model instead. The store is a SQLite file in a temporary folder
(set TELA_MEMORY_URL to use another store, e.g. ``sqlite:///chat.db``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import LLM, MockLLM

from tela_memory_llamaindex import TelaMemory


def make_llm() -> LLM:
    """A real model when a key is set, else the offline mock."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from llama_index.llms.openai import OpenAI  # type: ignore[import-not-found]

            return OpenAI(model="gpt-4o-mini")
        except ImportError:
            pass
    return MockLLM(max_tokens=12)


def main() -> None:
    url = os.environ.get("TELA_MEMORY_URL") or (
        f"sqlite:///{Path(tempfile.mkdtemp(prefix='tela-li-')) / 'chat.db'}"
    )
    print(f"store: {url}")

    # first process: a short conversation
    memory = TelaMemory.from_defaults(url, session_id="support-42", user_id="ana", token_limit=300)
    engine = SimpleChatEngine.from_defaults(
        llm=make_llm(), memory=memory, system_prompt="You are a concise support agent."
    )
    for question in ["My order #1234 arrived broken.", "Can I get a replacement?"]:
        print(f"user: {question}\nbot:  {engine.chat(question)}")
    for i in range(30):  # a long conversation: everything is stored, the view stays in budget
        engine.chat(f"Follow-up number {i} about my order.")
    memory.store.close()

    # "restart": a new memory object on the same file and session id
    memory = TelaMemory.from_defaults(url, session_id="support-42", user_id="ana", token_limit=300)
    engine = SimpleChatEngine.from_defaults(llm=make_llm(), memory=memory)
    print(f"after restart: {len(memory.get_all())} messages remembered")
    print(f"user: Any news?\nbot:  {engine.chat('Any news?')}")
    view = memory.get()
    print(
        f"stored: {len(memory.get_all())} messages; next request sends {len(view)} of them "
        f"(token_limit={memory.token_limit})"
    )
    print("first remembered message:", memory.get_all()[0].content)
    memory.store.close()


if __name__ == "__main__":
    main()
