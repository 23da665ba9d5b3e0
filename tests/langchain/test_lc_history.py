"""``TelaChatMessageHistory`` on real stores and in a real ``RunnableWithMessageHistory``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables.history import RunnableWithMessageHistory

from tela_memory.errors import InvalidMessageError, ScopeError
from tela_memory.stores.base import MessageStore
from tela_memory_langchain.convert import messages_to_langchain
from tela_memory_langchain.history import TelaChatMessageHistory, split_session_id

TURN = [
    SystemMessage("You are terse."),
    HumanMessage("What is 2+2? Use the tool.", id="h1"),
    AIMessage(
        content=[{"type": "text", "text": "Calling add."}],
        tool_calls=[{"name": "add", "args": {"a": 2, "b": 2}, "id": "call_1"}],
        usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        response_metadata={"model_name": "fake"},
        id="ai1",
    ),
    ToolMessage("4", tool_call_id="call_1", artifact={"raw": 4}),
    AIMessage("It is 4.", id="ai2"),
]


def test_messages_come_back_equal(store: MessageStore, thread: str) -> None:
    history = TelaChatMessageHistory(thread, store=store, user_id="u1")
    assert history.messages == []
    history.add_messages(TURN)
    assert history.messages == TURN
    # The same history read through the core is the same conversation.
    core = store.read(thread, user_id="u1")
    assert [m.role.value for m in core] == ["system", "user", "assistant", "tool", "assistant"]
    assert messages_to_langchain(core) == history.messages
    assert core[2].tool_calls[0].id == "call_1"


async def test_async_twins(store: MessageStore, thread: str) -> None:
    history = TelaChatMessageHistory(thread, store=store, user_id="u1")
    await history.aadd_messages(TURN[:2])
    history.add_messages(TURN[2:])
    assert await history.aget_messages() == history.messages == TURN
    await history.aclear()
    assert await history.aget_messages() == []


def test_chunks_are_stored_as_one_message(store: MessageStore, thread: str) -> None:
    history = TelaChatMessageHistory(thread, store=store, user_id="u1")
    history.add_messages(
        [
            HumanMessage("hi"),
            AIMessageChunk(content="Hel", id="r"),
            AIMessageChunk(content="lo", id="r"),
        ]
    )
    assert [m.content for m in history.messages] == ["hi", "Hello"]


def test_orphan_tool_result_is_rejected_and_nothing_stored(
    store: MessageStore, thread: str
) -> None:
    history = TelaChatMessageHistory(thread, store=store, user_id="u1")
    history.add_messages([HumanMessage("hi")])
    with pytest.raises(InvalidMessageError, match="orphan tool result"):
        history.add_messages([AIMessage("x"), ToolMessage("4", tool_call_id="nobody")])
    assert [m.content for m in history.messages] == ["hi"]


def test_branch_aware_session_id(store: MessageStore, thread: str) -> None:
    main = TelaChatMessageHistory(thread, store=store, user_id="u1")
    main.add_messages([HumanMessage("a"), AIMessage("b")])
    first = store.read(thread, user_id="u1")[0]
    store.fork(thread, first.id, name="alt", user_id="u1")
    alt = TelaChatMessageHistory(f"{thread}#alt", store=store, user_id="u1")
    alt.add_messages([AIMessage("c")])
    main.add_messages([HumanMessage("d")])
    assert [m.content for m in alt.messages] == ["a", "c"]
    assert [m.content for m in main.messages] == ["a", "b", "d"]
    alt.clear()  # a non-default branch: only the branch goes
    assert [b.name for b in store.branches(thread, user_id="u1")] == ["main"]
    assert [m.content for m in main.messages] == ["a", "b", "d"]
    main.clear()  # the default branch: the whole thread goes
    assert store.read(thread, user_id="u1") == []


def test_split_session_id() -> None:
    assert split_session_id("t1") == ("t1", None)
    assert split_session_id("t1#b") == ("t1", "b")
    assert split_session_id("t1#b", "c") == ("t1", "c")
    with pytest.raises(InvalidMessageError):
        split_session_id("#b")
    with pytest.raises(InvalidMessageError):
        split_session_id("")


def test_user_id_owns_the_thread(store: MessageStore, thread: str) -> None:
    TelaChatMessageHistory(thread, store=store, user_id="alice").add_messages([HumanMessage("x")])
    assert store.get_thread(thread, user_id="alice").user_id == "alice"
    assert store.read(thread, user_id="alice")[0].user_id == "alice"
    # The same session id is Bob's own thread: his append neither fails nor reaches hers.
    bob = TelaChatMessageHistory(thread, store=store, user_id="bob")
    assert bob.messages == []
    bob.add_messages([HumanMessage("y")])
    assert [m.content for m in bob.messages] == ["y"]
    assert [m.text for m in store.read(thread, user_id="alice")] == ["x"]
    assert store.read(thread, user_id="bob")[0].user_id == "bob"


def test_a_user_is_required(store: MessageStore, thread: str) -> None:
    with pytest.raises(ScopeError, match="user_id="):
        TelaChatMessageHistory(thread, store=store)
    with pytest.raises(ScopeError, match="user_id="):
        TelaChatMessageHistory(thread, store="memory://")
    with pytest.raises(InvalidMessageError):
        TelaChatMessageHistory(thread, store=store, user_id="ada\x00")
    with pytest.raises(ScopeError, match="different users"):
        TelaChatMessageHistory(thread, store=store.for_user("ada"), user_id="bob")


def test_a_user_view_as_the_store(store: MessageStore, thread: str) -> None:
    history = TelaChatMessageHistory(thread, store=store.for_user("ada"))
    assert history.user_id == "ada"
    assert history.store is store
    history.add_messages([HumanMessage("mine")])
    assert [m.text for m in store.read(thread, user_id="ada")] == ["mine"]
    history.close()  # a store object given in (even as a view) is not closed
    assert [m.content for m in history.messages] == ["mine"]


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/chat.db", "memory://"])
def test_store_url_is_opened_lazily_and_closed(tmp_path: Path, url: str) -> None:
    url = url.format(tmp=tmp_path)
    history = TelaChatMessageHistory("t", store=url, user_id="u1")
    assert not (tmp_path / "chat.db").exists()  # no I/O in the constructor
    with history:
        history.add_messages([HumanMessage("persisted")])
        assert [m.content for m in history.messages] == ["persisted"]
    if url.startswith("sqlite"):
        assert (tmp_path / "chat.db").exists()
        with TelaChatMessageHistory("t", store=url, user_id="u1") as again:
            assert [m.content for m in again.messages] == ["persisted"]


class _Recorder(BaseCallbackHandler):
    """Records what each chat model call was sent."""

    def __init__(self) -> None:
        self.calls: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self.calls.extend(messages)


def _chain(store: MessageStore, replies: list[str]) -> tuple[RunnableWithMessageHistory, _Recorder]:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are helpful."), MessagesPlaceholder("history"), ("human", "{question}")]
    )
    model = GenericFakeChatModel(messages=iter(AIMessage(r) for r in replies))
    recorder = _Recorder()
    chain = RunnableWithMessageHistory(
        prompt | model.with_config(callbacks=[recorder]),
        lambda session_id: TelaChatMessageHistory(session_id, store=store, user_id="u1"),
        input_messages_key="question",
        history_messages_key="history",
    )
    return chain, recorder


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
def test_runnable_with_message_history(store: MessageStore, thread: str) -> None:
    chain, recorder = _chain(store, ["Hi Ada!", "Your name is Ada."])
    config = {"configurable": {"session_id": thread}}
    assert chain.invoke({"question": "I am Ada."}, config=config).content == "Hi Ada!"
    answer = chain.invoke({"question": "What is my name?"}, config=config)
    assert answer.content == "Your name is Ada."
    # The second call saw the first turn, read back from the store.
    assert [m.content for m in recorder.calls[1]] == [
        "You are helpful.",
        "I am Ada.",
        "Hi Ada!",
        "What is my name?",
    ]
    stored = store.read(thread, user_id="u1")
    assert [m.text for m in stored] == [
        "I am Ada.",
        "Hi Ada!",
        "What is my name?",
        "Your name is Ada.",
    ]
    assert {m.user_id for m in stored} == {"u1"}


@pytest.mark.filterwarnings("ignore:RunnableWithMessageHistory is deprecated")
async def test_runnable_with_message_history_async(store: MessageStore, thread: str) -> None:
    chain, recorder = _chain(store, ["one", "two"])
    config = {"configurable": {"session_id": f"{thread}"}}
    await chain.ainvoke({"question": "first"}, config=config)
    await chain.ainvoke({"question": "second"}, config=config)
    assert [m.content for m in recorder.calls[1]][1:] == ["first", "one", "second"]
    assert len(store.read(thread, user_id="u1")) == 4


async def test_context_policy_view(store: MessageStore, thread: str) -> None:
    from tela_memory.context.policy import ContextPolicy
    from tela_memory.tokens import ApproxCounter

    history = TelaChatMessageHistory(
        thread, store=store, user_id="u1", policy=ContextPolicy(300, counter=ApproxCounter())
    )
    turns: list[BaseMessage] = [SystemMessage("Rules: be kind.")]
    for i in range(30):
        turns += [HumanMessage(f"question {i} " + "x " * 30), AIMessage(f"answer {i} " + "y " * 30)]
    history.add_messages(turns)
    view = history.messages
    assert view[0] == turns[0]  # pinned
    assert view[-1] == turns[-1]  # the newest turn
    assert len(view) < len(turns)
    assert history.last_context is not None
    assert history.last_context.report.tokens_out <= 300
    assert len(history.stored()) == len(turns)  # the store keeps everything
    assert await history.aget_messages() == view


@pytest.mark.integration
def test_history_on_redis_url(redis_url: str, thread: str) -> None:
    """The same history, the same equality, on the Redis backend opened by URL."""
    with TelaChatMessageHistory(thread, store=redis_url, user_id="u1") as history:
        history.add_messages(TURN)
        assert history.messages == TURN
        history.clear()
        assert history.messages == []


def test_no_silent_cap_on_long_histories(store: MessageStore, thread: str) -> None:
    """langchain_redis stops at 10,000 messages without a word; every message comes back."""
    history = TelaChatMessageHistory(thread, store=store, user_id="u1")
    turns = [HumanMessage(f"m{i}") if i % 2 == 0 else AIMessage(f"m{i}") for i in range(10_050)]
    history.add_messages(turns)
    back = history.messages
    assert len(back) == 10_050
    assert back[-1].content == "m10049"


def test_the_old_context_argument_still_works_with_a_warning(
    store: MessageStore, thread: str
) -> None:
    from tela_memory.context.policy import ContextPolicy
    from tela_memory.tokens import ApproxCounter

    policy = ContextPolicy(300, counter=ApproxCounter())
    with pytest.warns(DeprecationWarning, match="pass policy="):
        history = TelaChatMessageHistory(thread, store=store, user_id="u1", context=policy)
    assert history.policy is policy
