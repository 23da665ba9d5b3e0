"""Memory blocks in LlamaIndex's own ``Memory`` and on their own."""

from __future__ import annotations

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.llms import MockLLM
from llama_index.core.memory import Memory
from llama_index.core.utils import get_tokenizer

from tela_memory.recall import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.blocks import TelaEpisodicBlock, TelaFactsBlock, TelaRecallBlock
from tela_memory_llamaindex.chat_store import TelaChatStore
from tela_memory_llamaindex.convert import to_core

TOKENS = get_tokenizer()


def _seed(store: SQLiteStore, index: SQLiteIndex) -> None:
    for thread, user, text in [
        ("t1", "u", "My sister Lena lives in Porto."),
        ("t1", "u", "I am allergic to peanuts."),
        ("t2", "u", "Book a table for Friday."),
        ("t3", "other", "My sister Mia lives in Rome."),
    ]:
        index.upsert(store.append(thread, to_core(ChatMessage(content=text)), user_id=user))


async def test_recall_block_filters_by_user_and_session(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    _seed(sqlite_store, index)
    block = TelaRecallBlock(index=index, user_id="u", k=2)
    ask = [ChatMessage(role="user", content="where does my sister live?")]
    text = await block.aget(ask, session_id="t9")
    assert "Lena lives in Porto" in text
    assert "Mia" not in text  # another user's message never comes back
    scoped = TelaRecallBlock(index=index, user_id="u", session_scope="session", k=3)
    assert "Porto" not in await scoped.aget(ask, session_id="t2")
    assert "Porto" in await scoped.aget(ask, session_id="t1")
    # filters do not pile up between calls on the same block
    assert scoped.search_filter("t1").thread_ids == ("t1",)
    assert scoped.search_filter("t2").thread_ids == ("t2",)
    others = TelaRecallBlock(index=index, user_id="u", session_scope="others", k=3)
    assert "Porto" not in await others.aget(ask, session_id="t1")


async def test_recall_block_truncates_least_relevant_first(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    _seed(sqlite_store, index)
    block = TelaRecallBlock(index=index, user_id="u", k=3)
    text = await block.aget([ChatMessage(role="user", content="sister Porto peanuts")])
    lines = text.split("\n")
    assert len(lines) == 3
    cut = await block.atruncate(text, len(TOKENS(lines[-1])))
    assert cut is not None
    assert cut.split("\n") == lines[:2]
    assert len(TOKENS(text)) - len(TOKENS(cut)) >= len(TOKENS(lines[-1]))
    assert await block.atruncate(text, 10_000) is None


async def test_facts_block_store_and_truncate(sqlite_store: SQLiteStore) -> None:
    facts = TelaFactsBlock(store=sqlite_store, user_id="u")
    for fact in ["likes tea", "lives in Lisbon", "likes tea", "has two cats"]:
        await facts.add_fact(fact)
    text = await facts.aget()
    assert text.split("\n") == ["- likes tea", "- lives in Lisbon", "- has two cats"]
    assert await facts.atruncate(text, 1) == "- lives in Lisbon\n- has two cats"  # oldest first
    # facts live in the store: erasing the user removes them, chat keys never list them
    assert TelaChatStore(sqlite_store, user_id="u").get_keys() == []
    sqlite_store.erase_user("u")
    assert await facts.aget() == ""


async def test_episodic_block_progressive_summary(sqlite_store: SQLiteStore) -> None:
    episodes = TelaEpisodicBlock(store=sqlite_store, user_id="u")
    await episodes.aput([ChatMessage(role="user", content="Plan a trip to Rome")], session_id="s1")
    await episodes.aput([ChatMessage(role="user", content="Find a hotel")], session_id="s1")
    await episodes.aput([ChatMessage(role="user", content="Fix my bike")], session_id="s2")
    text = await episodes.aget(session_id="s2")
    assert text.split("\n") == [
        "User asked: Plan a trip to Rome; Find a hotel",
        "User asked: Fix my bike",
    ]
    assert len(sqlite_store.read(episodes.thread_id, user_id="u")) == 2  # one per session
    with_llm = TelaEpisodicBlock(store=sqlite_store, user_id="v", llm=MockLLM(max_tokens=3))
    await with_llm.aput([ChatMessage(role="user", content="hello")], session_id="s")
    assert await with_llm.aget(session_id="s") == "text text text"


async def test_blocks_in_llamaindex_memory_respect_budget(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    """Real ``Memory``: flushed messages reach our store and index, blocks fit the limit."""
    facts = TelaFactsBlock(store=sqlite_store, user_id="u", priority=1)
    for i in range(40):
        await facts.add_fact(f"fact number {i} about the user and their many preferences")
    recall = TelaRecallBlock(index=index, user_id="u", store=sqlite_store, k=5, priority=2)
    memory = Memory.from_defaults(
        session_id="live",
        token_limit=400,
        chat_history_token_ratio=0.5,
        token_flush_size=100,
        memory_blocks=[recall, facts],
    )
    for i in range(30):
        await memory.aput(
            ChatMessage(role="user", content=f"note {i}: the blue key is in drawer {i}")
        )
    assert index.count({"thread_ids": ["live"]}) > 0  # flushed turns were stored and indexed
    view = await memory.aget(input="which drawer holds the blue key?")
    memory_text = view[0].content or ""
    assert "<recall>" in memory_text
    assert "drawer" in memory_text.split("<recall>")[1]
    # facts (priority 1) were truncated oldest first to fit the limit
    assert 0 < memory_text.count("fact number") < 40
    assert "fact number 39" in memory_text
    # the budget as Memory counts it: chat history plus the blocks' contents (not the template)
    history = sum(memory._estimate_token_count(m) for m in view[1:])
    inside = [
        memory_text.split(f"<{tag}>")[1].split(f"</{tag}>")[0].strip()
        for tag in ("recall", "facts")
    ]
    assert history + sum(len(TOKENS(part)) for part in inside) <= 400
