"""Memory blocks see the thread the memory stores under (``key_prefix``), and flushes without
a session id never mix users."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory

from tela_memory.context import ContextPolicy, Summary
from tela_memory.errors import ScopeError, TelaMemoryError
from tela_memory.recall import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.blocks import TelaEpisodicBlock, TelaRecallBlock
from tela_memory_llamaindex.chat_store import TelaChatStore
from tela_memory_llamaindex.memory import TelaMemory, default_counter

PREFIX = "app:"
ASK = "where does my sister live?"


def _filler(n: int) -> list[ChatMessage]:
    return [
        ChatMessage(role="user" if i % 2 == 0 else "assistant", content=f"ok {i} " + "pad " * 20)
        for i in range(n)
    ]


def _memory(
    chat: TelaChatStore, session: str, index: SQLiteIndex, scope: str, first: str
) -> TelaMemory:
    """A memory whose first message has left its (small) view, so only recall can show it."""
    memory = TelaMemory.from_defaults(
        chat,
        session_id=session,
        token_limit=400,
        blocks_token_ratio=0.5,
        index=index,
        memory_blocks=[TelaRecallBlock(index=index, user_id="u", session_scope=scope, k=2)],
    )
    memory.put(ChatMessage(role="user", content=first))
    memory.put_messages(_filler(30))
    return memory


async def _memory_text(memory: TelaMemory, question: str = ASK) -> str:
    view = await memory.aget(input=question)
    assert all(first not in (m.content or "") for m in view[1:] for first in ("Lena", "Mia"))
    return next((m.content or "" for m in view if "<memory>" in (m.content or "")), "")


@pytest.mark.parametrize("prefix", [PREFIX, ""])
async def test_recall_scope_uses_the_prefixed_thread(
    sqlite_store: SQLiteStore, index: SQLiteIndex, prefix: str
) -> None:
    chat = TelaChatStore(sqlite_store, user_id="u", key_prefix=prefix)
    porto = _memory(chat, "a", index, "session", "My sister Lena lives in Porto.")
    rome = _memory(chat, "b", index, "others", "My sister Mia lives in Rome.")
    assert porto.thread_id == f"{prefix}a"
    assert index.count({"thread_ids": [porto.thread_id]}) == 31
    # "session": only this memory's own thread
    own = await _memory_text(porto)
    assert "Lena lives in Porto" in own
    assert "Mia" not in own
    # "others": every thread of the user but this memory's own
    others = await _memory_text(rome)
    assert "Lena lives in Porto" in others
    assert "Mia" not in others


def _policy(budget: int) -> ContextPolicy:
    return ContextPolicy(budget=budget, counter=default_counter(), summary=Summary())


async def test_episodic_block_excludes_and_orders_by_the_prefixed_thread(
    sqlite_store: SQLiteStore,
) -> None:
    chat = TelaChatStore(sqlite_store, user_id="u", key_prefix=PREFIX)
    trip = TelaMemory.from_defaults(chat, session_id="trip", token_limit=250, policy=_policy(250))
    for i in range(30):
        trip.put(ChatMessage(role="user", content=f"For the Kyoto trip, item {i}: " + "plan " * 10))
    trip.get()  # the engine persists its summary of the dropped turns on thread "app:trip"
    episodes = TelaEpisodicBlock(store=sqlite_store, user_id="u")
    # stored summaries are keyed by thread id, the same id the engine summaries carry
    await episodes.set_summary(f"{PREFIX}today", "User asked: today things")
    await episodes.set_summary(trip.thread_id, "User asked: trip things")
    today = TelaMemory.from_defaults(chat, session_id="today", memory_blocks=[episodes])
    same = TelaMemory.from_defaults(chat, session_id="trip", memory_blocks=[episodes])
    await today.aput(ChatMessage(role="user", content="hello"))

    from_today = (await today.aget())[0].content or ""
    assert "[app:trip] " in from_today  # another thread's engine summary
    assert "Kyoto" in from_today
    lines = from_today.split("<episodes>\n")[1].split("\n</episodes>")[0].split("\n")
    assert lines[-1] == "User asked: today things"  # the current thread's summary comes last

    from_trip = (await same.aget())[0].content or ""
    assert "Kyoto" not in from_trip  # never its own thread's engine summary
    lines = from_trip.split("<episodes>\n")[1].split("\n</episodes>")[0].split("\n")
    assert lines == ["User asked: today things", "User asked: trip things"]


async def test_episodic_summaries_from_llamaindex_memory_are_keyed_by_thread(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    """In LlamaIndex's ``Memory`` the session id is the thread the recall block writes to."""
    episodes = TelaEpisodicBlock(store=sqlite_store, user_id="u")
    recall = TelaRecallBlock(index=index, user_id="u", store=sqlite_store)
    memory = Memory.from_defaults(
        session_id="live",
        token_limit=300,
        chat_history_token_ratio=0.5,
        token_flush_size=60,
        memory_blocks=[recall, episodes],
    )
    for i in range(40):
        await memory.aput(ChatMessage(role="user", content=f"note {i}: the key is in drawer {i}"))
    assert sqlite_store.read("live", user_id="u")  # flushed turns stored under the session id
    summary = await episodes.summary("live")
    assert summary is not None
    assert "drawer 0" in summary.text


async def test_recall_flush_without_session_is_per_user(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    for user in ("ana", "bob"):
        block = TelaRecallBlock(index=index, user_id=user, store=sqlite_store)
        await block.aput([ChatMessage(role="user", content=f"{user} likes green tea")])
        await block.aput([ChatMessage(role="user", content=f"{user} owns a red bike")])
    for user, other in (("ana", "bob"), ("bob", "ana")):
        threads = sqlite_store.list_threads(user).threads
        assert len(threads) == 1
        assert threads[0].user_id == user
        texts = [m.text for m in sqlite_store.read(threads[0].id, user_id=user)]
        assert texts == [f"{user} likes green tea", f"{user} owns a red bike"]
        hits = await TelaRecallBlock(index=index, user_id=user).aget(
            [ChatMessage(role="user", content="who likes tea")]
        )
        assert user in hits
        assert other not in hits


async def test_recall_flush_groups_by_session(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    block = TelaRecallBlock(index=index, user_id="u", store=sqlite_store)
    batch = [
        ChatMessage(role="user", content="one", additional_kwargs={"session_id": "s1"}),
        ChatMessage(role="user", content="two", additional_kwargs={"session_id": "s2"}),
        ChatMessage(
            role="user",
            content="three",  # its own "thread_id" kwarg never picks a thread
            additional_kwargs={"session_id": "s1", "thread_id": "elsewhere"},
        ),
    ]
    await block.aput(batch)
    assert [m.text for m in sqlite_store.read("s1", user_id="u")] == ["one", "three"]
    assert [m.text for m in sqlite_store.read("s2", user_id="u")] == ["two"]
    assert index.count({"thread_ids": ["s1", "s2"]}) == 3


async def test_recall_flush_without_user_is_refused(
    sqlite_store: SQLiteStore, index: SQLiteIndex
) -> None:
    """A block without a user cannot be built; an operator's all_users block cannot store
    flushed messages (they would have no owner), with or without a session id."""
    with pytest.raises(ScopeError, match="user_id"):
        TelaRecallBlock(index=index, store=sqlite_store)
    block = TelaRecallBlock(index=index, store=sqlite_store, all_users=True)
    with pytest.raises(TelaMemoryError, match="user_id"):
        await block.aput([ChatMessage(role="user", content="whose is this?")])
    with pytest.raises(TelaMemoryError, match="user_id"):
        await block.aput([ChatMessage(role="user", content="mine")], session_id="s")
    assert sqlite_store.read("llamaindex-memory", user_id="local") == []  # nothing shared
    assert sqlite_store.read("s", user_id="local") == []
    assert index.count({}) == 0
    own = TelaRecallBlock(index=index, store=sqlite_store, user_id="u")
    await own.aput([ChatMessage(role="user", content="mine")], session_id="s")
    assert [m.text for m in sqlite_store.read("s", user_id="u")] == ["mine"]
