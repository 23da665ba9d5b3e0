"""``TelaChatStore``: the LlamaIndex ``BaseChatStore`` contract on real stores."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.storage.chat_store import SimpleChatStore
from llama_index.core.storage.chat_store.base import BaseChatStore

from tela_memory.errors import InvalidMessageError, ScopeError
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex.chat_store import TelaChatStore

U = "u"


def _msgs(*texts: str) -> list[ChatMessage]:
    return [
        ChatMessage(role="user" if i % 2 == 0 else "assistant", content=t)
        for i, t in enumerate(texts)
    ]


def _texts(chat: TelaChatStore, key: str) -> list[str | None]:
    return [m.content for m in chat.get_messages(key)]


def test_unknown_key_reads_empty(store: MessageStore) -> None:
    chat = TelaChatStore(store, user_id=U)
    assert chat.get_messages("nobody") == []
    assert chat.delete_messages("nobody") is None
    assert chat.delete_message("nobody", 0) is None
    assert chat.delete_last_message("nobody") is None
    assert chat.get_keys() == []


def test_add_get_and_keys(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id="alice")
    for m in _msgs("a", "b", "c"):
        chat.add_message(key, m)
    chat.add_message("other", ChatMessage(role="user", content="x"))
    assert _texts(chat, key) == ["a", "b", "c"]
    assert sorted(chat.get_keys()) == sorted([key, "other"])
    # another user's chat store does not see them; a prefix namespaces thread ids
    assert TelaChatStore(store, user_id="bob").get_keys() == []
    prefixed = TelaChatStore(store, user_id="alice", key_prefix="li:")
    prefixed.add_message(key, ChatMessage(role="user", content="p"))
    assert store.read(f"li:{key}", user_id="alice")[0].text == "p"
    assert prefixed.get_keys() == [key]


def test_delete_by_index_keeps_order_and_shares_prefix(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    chat.set_messages(key, _msgs("m0", "m1", "m2", "m3", "m4"))
    before = store.read(chat.thread_id(key), user_id=U)
    removed = chat.delete_message(key, 2)
    assert removed is not None
    assert removed.content == "m2"
    assert _texts(chat, key) == ["m0", "m1", "m3", "m4"]
    after = store.read(chat.thread_id(key), user_id=U)
    assert [m.id for m in after[:2]] == [m.id for m in before[:2]]  # not copied
    assert [b.name for b in store.branches(chat.thread_id(key), user_id=U)] == ["main"]
    assert chat.delete_message(key, 10) is None
    assert chat.delete_message(key, -1).content == "m4"  # type: ignore[union-attr]
    assert chat.delete_message(key, 0).content == "m0"  # type: ignore[union-attr]
    assert _texts(chat, key) == ["m1", "m3"]


def test_delete_last_message_moves_head_only(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    chat.set_messages(key, _msgs("a", "b", "c"))
    ids = [m.id for m in store.read(key, user_id=U)]
    assert chat.delete_last_message(key).content == "c"  # type: ignore[union-attr]
    assert [m.id for m in store.read(key, user_id=U)] == ids[:2]
    chat.delete_last_message(key)
    chat.delete_last_message(key)
    assert chat.get_messages(key) == []
    assert chat.get_keys() == []


def test_insert_at_index(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    chat.set_messages(key, _msgs("a", "c"))
    chat.add_message(key, ChatMessage(role="assistant", content="b"), idx=1)
    chat.add_message(key, ChatMessage(role="system", content="s"), idx=0)
    assert _texts(chat, key) == ["s", "a", "b", "c"]


def test_set_messages_keeps_unchanged_prefix(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    chat.set_messages(key, _msgs("a", "b", "c"))
    ids = [m.id for m in store.read(key, user_id=U)]
    chat.set_messages(key, chat.get_messages(key))
    assert [m.id for m in store.read(key, user_id=U)] == ids
    chat.set_messages(key, [*_msgs("a", "b"), ChatMessage(role="user", content="z")])
    after = store.read(key, user_id=U)
    assert [m.id for m in after[:2]] == ids[:2]
    assert _texts(chat, key) == ["a", "b", "z"]
    chat.set_messages(key, [])
    assert chat.get_messages(key) == []


def test_refused_rewrite_loses_nothing(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    chat.set_messages(key, _msgs("a", "b"))
    orphan = ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "nope"})
    with pytest.raises(InvalidMessageError, match="orphan"):
        chat.set_messages(key, [orphan])
    assert _texts(chat, key) == ["a", "b"]
    with pytest.raises(InvalidMessageError, match="orphan"):
        chat.set_messages(key, [*_msgs("a"), orphan])
    assert _texts(chat, key) == ["a", "b"]


def test_tool_pairs_round_trip(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    history = [
        ChatMessage(role="user", content="weather?"),
        ChatMessage(
            role="assistant",
            blocks=[ToolCallBlock(tool_call_id="c1", tool_name="weather", tool_kwargs={"c": "P"})],
        ),
        ChatMessage(role="tool", content="sunny", additional_kwargs={"tool_call_id": "c1"}),
        ChatMessage(role="assistant", content="It is sunny."),
    ]
    chat.set_messages(key, history)
    assert chat.get_messages(key) == history
    assert chat.delete_message(key, 0) is not None
    assert chat.get_messages(key) == history[1:]


def test_a_chat_store_is_built_for_a_user(store: MessageStore, tmp_path: Path) -> None:
    """No user is no chat store (never "every user's keys"); nothing is opened then."""
    with pytest.raises(ScopeError, match="user_id="):
        TelaChatStore(store)
    url = f"sqlite:///{tmp_path / 'never.db'}"
    with pytest.raises(ScopeError, match="user_id="):
        TelaChatStore(url)
    assert not (tmp_path / "never.db").exists()
    with pytest.raises(ScopeError, match="needs the user it acts for"):
        TelaChatStore(store, user_id=None)
    with pytest.raises(InvalidMessageError, match="user_id"):
        TelaChatStore(store, user_id="ada\x00")
    bound = TelaChatStore(store.for_user("ana"))  # a UserStore names the user
    bound.add_message("k", ChatMessage(content="hi"))
    assert bound.user_id == "ana"
    assert [m.text for m in store.read("k", user_id="ana")] == ["hi"]
    with pytest.raises(ScopeError, match="different user_id"):
        TelaChatStore(store.for_user("ana"), user_id="bob")


def test_bad_key_is_a_clear_error(store: MessageStore) -> None:
    with pytest.raises(InvalidMessageError, match="key"):
        TelaChatStore(store, user_id=U).add_message("", ChatMessage(content="x"))


def test_persists_across_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    with TelaChatStore(url, user_id=U) as chat:
        chat.set_messages("s", _msgs("hello", "hi"))
    with TelaChatStore(url, user_id=U) as chat:
        assert _texts(chat, "s") == ["hello", "hi"]
        assert chat.get_keys() == ["s"]


async def test_async_twins_match_sync(store: MessageStore, key: str) -> None:
    chat = TelaChatStore(store, user_id=U)
    await chat.aset_messages(key, _msgs("a", "b", "c", "d"))
    await chat.async_add_message(key, ChatMessage(role="user", content="e"))
    await chat.async_add_message(key, ChatMessage(role="user", content="x"), idx=0)
    assert [m.content for m in await chat.aget_messages(key)] == ["x", "a", "b", "c", "d", "e"]
    assert (await chat.adelete_message(key, 1)).content == "a"  # type: ignore[union-attr]
    assert (await chat.adelete_last_message(key)).content == "e"  # type: ignore[union-attr]
    assert await chat.aget_keys() == [key]
    assert [m.content for m in (await chat.adelete_messages(key)) or []] == ["x", "b", "c", "d"]
    assert await chat.aget_messages(key) == []


def test_works_as_chat_memory_buffer_store(store: MessageStore, key: str) -> None:
    """A real LlamaIndex memory on top of the chat store."""
    chat = TelaChatStore(store, user_id=U)
    memory = ChatMemoryBuffer.from_defaults(chat_store=chat, chat_store_key=key, token_limit=50)
    for m in _msgs(*(f"message number {i}" for i in range(20))):
        memory.put(m)
    assert len(chat.get_messages(key)) == 20
    window = memory.get()
    assert 0 < len(window) < 20
    assert window[-1].content == "message number 19"


_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("ab"), st.text(max_size=5)),
        st.tuples(st.just("insert"), st.sampled_from("ab"), st.integers(0, 6)),
        st.tuples(st.just("delete"), st.sampled_from("ab"), st.integers(-3, 6)),
        st.tuples(st.just("pop"), st.sampled_from("ab"), st.none()),
        st.tuples(st.just("clear"), st.sampled_from("ab"), st.none()),
        st.tuples(st.just("set"), st.sampled_from("ab"), st.integers(0, 3)),
    ),
    max_size=14,
)


@pytest.mark.parametrize("make", [InMemoryStore, lambda: SQLiteStore(":memory:")])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=_ops)
def test_behaves_like_simple_chat_store(
    make: Callable[[], MessageStore], ops: list[tuple[str, str, object]]
) -> None:
    """Same results as LlamaIndex's own SimpleChatStore for any sequence of operations."""
    oracle = SimpleChatStore()
    with make() as backend:
        chat = TelaChatStore(backend, user_id=U)
        for n, (op, key, arg) in enumerate(ops):
            msg = ChatMessage(role="user", content=f"{n}:{arg}")
            if op == "add":
                chat.add_message(key, msg)
                oracle.add_message(key, msg)
            elif op == "insert":
                assert isinstance(arg, int)
                chat.add_message(key, msg, idx=arg)
                oracle.add_message(key, msg, idx=arg)
            elif op == "delete":
                assert isinstance(arg, int)
                size = len(oracle.get_messages(key))
                expected = oracle.delete_message(key, arg) if -size <= arg < size else None
                assert chat.delete_message(key, arg) == expected
            elif op == "pop":
                expected = oracle.delete_last_message(key) if oracle.get_messages(key) else None
                assert chat.delete_last_message(key) == expected
            elif op == "clear":
                expected = oracle.delete_messages(key) or None
                assert chat.delete_messages(key) == expected
            else:
                assert isinstance(arg, int)
                new = [ChatMessage(role="user", content=f"{n}.{i}") for i in range(arg)]
                keep = oracle.get_messages(key)[:1]
                chat.set_messages(key, keep + new)
                oracle.set_messages(key, keep + new)
            for k in "ab":
                assert chat.get_messages(k) == oracle.get_messages(k)
        assert sorted(chat.get_keys()) == sorted(k for k in "ab" if oracle.get_messages(k))


def test_sqlite_file_thread_visible_to_core(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "x.db") as backend:
        chat = TelaChatStore(backend, user_id="u1")
        chat.set_messages("conv", _msgs("q", "a"))
        info = backend.get_thread("conv", user_id="u1")
        assert info.user_id == "u1"
        assert [m.text for m in backend.read("conv", user_id="u1")] == ["q", "a"]


def test_async_runs_in_event_loop(store: MessageStore, key: str) -> None:
    async def main() -> list[ChatMessage]:
        chat = TelaChatStore(store, user_id=U)
        await chat.async_add_message(key, ChatMessage(content="hi"))
        return await chat.aget_messages(key)

    assert [m.content for m in asyncio.run(main())] == ["hi"]


def test_every_abstract_method_has_its_own_async_twin() -> None:
    """No BaseChatStore method is left to the base class's generic thread fallback unseen."""
    twins = {
        "set_messages": "aset_messages",
        "get_messages": "aget_messages",
        "add_message": "async_add_message",
        "delete_messages": "adelete_messages",
        "delete_message": "adelete_message",
        "delete_last_message": "adelete_last_message",
        "get_keys": "aget_keys",
    }
    assert set(twins) == set(BaseChatStore.__abstractmethods__)
    for sync, twin in twins.items():
        assert getattr(TelaChatStore, twin) is not getattr(BaseChatStore, twin)
        assert inspect.iscoroutinefunction(getattr(TelaChatStore, twin))
        sync_params = list(inspect.signature(getattr(TelaChatStore, sync)).parameters)
        assert list(inspect.signature(getattr(TelaChatStore, twin)).parameters) == sync_params


def test_close_leaves_a_store_it_was_given_open(tmp_path: Path) -> None:
    """A wrapper never closes what it was given (the caller may share the store)."""
    from llama_index.core.llms import ChatMessage as LIMessage

    from tela_memory.stores.sqlite import SQLiteStore

    shared = SQLiteStore(tmp_path / "shared.db")
    with TelaChatStore(shared, user_id="ana") as chats:
        chats.add_message("k", LIMessage(role="user", content="hello"))
    assert shared.for_user("ana").read("k")[0].text == "hello"  # still open
    shared.close()
