"""A LlamaIndex agent whose memory recalls what was said in an earlier thread.

Monday's conversation is stored and indexed; on Tuesday, in a new thread, a FunctionAgent with
a TelaMemory + TelaRecallBlock gets the relevant Monday turn in its context, and a facts block
adds what is known about the user; another user of the same store, even with the same
session id, sees none of it. Runs offline with LlamaIndex's mock function-calling LLM
and mock embeddings (a SQLite file in a temporary folder holds history and index).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms.mock import MockFunctionCallingLLMWithChatMemoryOfLastCall
from llama_index.core.tools import FunctionTool

from tela_memory.recall import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex import LlamaIndexEmbedder, TelaFactsBlock, TelaMemory, TelaRecallBlock


def gate_info(flight: str = "SK4710") -> str:
    """Look up the departure gate of a flight."""
    return f"{flight} departs from gate B12"


async def main() -> None:
    path = Path(tempfile.mkdtemp(prefix="tela-li-agent-")) / "memory.db"
    with (
        SQLiteStore(path) as store,
        SQLiteIndex.for_store(
            store, embedder=LlamaIndexEmbedder(MockEmbedding(embed_dim=16))
        ) as index,
    ):
        llm = MockFunctionCallingLLMWithChatMemoryOfLastCall()
        agent = FunctionAgent(
            tools=[FunctionTool.from_defaults(gate_info)],
            llm=llm,
            system_prompt="You are a travel assistant.",
        )

        # Monday: one thread, stored and indexed as it happens
        monday = TelaMemory.from_defaults(store, session_id="monday", user_id="ana", index=index)
        await agent.run(user_msg="My flight SK4710 to Oslo leaves on May 3rd.", memory=monday)
        print("monday thread:")
        for m in monday.get_all():
            calls = [
                f"{b.tool_name}({b.tool_kwargs})" for b in m.blocks if b.block_type == "tool_call"
            ]
            print(f"  {m.role.value}: {m.content or ' '.join(calls)}")

        facts = TelaFactsBlock(store=store, user_id="ana")
        await facts.add_fact("prefers an aisle seat")

        # Tuesday: a new thread; the recall block searches Ana's other threads
        tuesday = TelaMemory.from_defaults(
            store,
            session_id="tuesday",
            user_id="ana",
            index=index,
            token_limit=2_000,
            memory_blocks=[
                TelaRecallBlock(index=index, user_id="ana", session_scope="others", k=2),
                facts,
            ],
        )
        await agent.run(user_msg="When does my flight to Oslo leave?", memory=tuesday)
        sent = llm.last_chat_messages or []
        memory_note = next(m.content for m in sent if m.content and "<memory>" in m.content)
        print("\nmemory the model saw on tuesday:\n" + memory_note)
        assert "May 3rd" in memory_note, "the earlier thread should have been recalled"
        print(
            f"\ntuesday thread holds {len(tuesday.get_all())} messages; "
            f"{index.count({'user_id': 'ana'})} of Ana's messages are indexed"
        )

        # another user of the same store and index, even with Ana's session id "monday",
        # has his own thread and blocks: nothing of Ana's reaches his agent's model
        ben = TelaMemory.from_defaults(
            store,
            session_id="monday",
            user_id="ben",
            index=index,
            memory_blocks=[
                TelaRecallBlock(index=index, user_id="ben", k=2),
                TelaFactsBlock(store=store, user_id="ben"),
            ],
        )
        await agent.run(user_msg="When does my flight to Oslo leave?", memory=ben)
        seen = " ".join(m.content or "" for m in llm.last_chat_messages or [])
        assert "May 3rd" not in seen, "Ana's earlier thread reached Ben's model"
        assert "aisle" not in seen, "Ana's facts reached Ben's model"
        print(f"ben's agent saw none of Ana's data ({len(ben.get_all())} messages of his own)")


if __name__ == "__main__":
    asyncio.run(main())
