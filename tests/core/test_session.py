"""Session: turns, persistence of streamed replies, branches, resume, bad input."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import aclosing
from pathlib import Path

import pytest
from session_doubles import ScriptedModel, text_reply, tool_reply

from tela_memory import Message, NotFoundError, Role, TelaMemoryError, ThinkingBlock
from tela_memory.models import (
    ChatChunk,
    EmptyReplyError,
    InvalidToolCallError,
    ModelError,
    ToolSpec,
    Usage,
)
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path):
    with SQLiteStore(tmp_path / "chat.db") as s:
        yield s


def test_send_persists_both_turns_with_usage(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("Hello, Ada!", usage=Usage(12, 4)))
    session = Session(store, model, user_id="ada", system="Be brief.")
    reply = session.send("Hi")
    assert reply.text == "Hello, Ada!"
    assert reply.metadata["usage"] == {"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}
    assert reply.metadata["incomplete"] is False
    assert reply.metadata["status"] == "complete"
    assert reply.metadata["model"] == "scripted"
    stored = store.read(session.thread_id, user_id=session.user_id)
    assert [m.role for m in stored] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert stored[-1] == reply
    assert store.get_thread(session.thread_id, user_id=session.user_id).user_id == "ada"
    # the model saw the system prompt and the user turn
    assert [m.text for m in model.seen[0]] == ["Be brief.", "Hi"]


def test_resume_after_restart_sends_the_whole_history(tmp_path: Path) -> None:
    path = tmp_path / "resume.db"
    with SQLiteStore(path) as first_store:
        first = Session(
            first_store, ScriptedModel(text_reply("one")), system="sys", user_id="local"
        )
        first.send("a")
        thread = first.thread_id
    model = ScriptedModel(text_reply("two"))
    with SQLiteStore(path) as second_store:
        again = Session(second_store, model, thread_id=thread, system="sys", user_id="local")
        again.send("b")
        assert [m.text for m in model.seen[0]] == ["sys", "a", "one", "b"]
        assert [m.text for m in again.history()] == ["sys", "a", "one", "b", "two"]


def test_stream_creates_message_at_first_chunk_and_updates_in_batches(
    store: SQLiteStore,
) -> None:
    text = "abcdefghijklmnopqrstuvwxyz"
    model = ScriptedModel(text_reply(text, size=2))
    session = Session(store, model, flush=FlushPolicy(interval=3600, max_chunks=4), user_id="local")
    seen_stored: list[str | None] = []
    chunks = session.stream("go")
    for i, chunk in enumerate(chunks):
        last = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
        seen_stored.append(last.text if last.role is Role.ASSISTANT else None)
        if last.role is Role.ASSISTANT and i < 13:
            assert last.metadata["incomplete"] is True
            assert last.metadata["status"] == "streaming"
        assert chunk.text == text[2 * i : 2 * i + 2] or chunk.finish_reason
    # written at chunk 1, then every 4 chunks: 1, 5, 9, 13
    assert seen_stored[0] == "ab"
    assert seen_stored[1:4] == ["ab", "ab", "ab"]
    assert seen_stored[4] == text[:10]
    final = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert final.text == text
    assert final.metadata["incomplete"] is False
    assert final.metadata["usage"]["input_tokens"] == 5
    assert final.metadata["chunks"] == 14
    assert (
        len(store.read(session.thread_id, user_id=session.user_id)) == 2
    )  # one message, updated in place


def test_time_based_flush(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("x" * 10, size=1), delay=0.03)
    session = Session(
        store, model, flush=FlushPolicy(interval=0.05, max_chunks=10_000), user_id="local"
    )
    lengths = []
    for _ in session.stream("go"):
        lengths.append(len(store.read(session.thread_id, last=1, user_id=session.user_id)[0].text))
    # at least one update between the first write and the end, driven by time alone
    assert any(1 < n < 10 for n in lengths)


def test_consumer_stopping_early_leaves_a_marked_partial_reply(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("0123456789", size=1))
    session = Session(
        store, model, flush=FlushPolicy(interval=3600, max_chunks=1000), user_id="local"
    )
    stream = session.stream("count")
    got = [next(stream).text for _ in range(4)]
    stream.close()
    reply = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert reply.text == "".join(got) == "0123"
    assert reply.metadata["incomplete"] is True
    assert reply.metadata["status"] == "stopped"
    assert model.closed_streams == 1
    # the session stays usable and the lock was released
    model.replies.append(text_reply("next"))
    assert session.send("again").text == "next"


def test_model_error_mid_stream_is_wrapped_and_partial_kept(store: SQLiteStore) -> None:
    boom = RuntimeError("provider exploded")
    model = ScriptedModel([ChatChunk(text="Par"), ChatChunk(text="tial"), boom])
    session = Session(store, model, user_id="local")
    received: list[str] = []

    def consume() -> None:
        received.extend(chunk.text for chunk in session.stream("hi"))

    with pytest.raises(ModelError) as info:
        consume()
    assert received == ["Par", "tial"]
    assert info.value.provider_error is boom
    assert info.value.__cause__ is boom
    stored = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert stored.text == "Partial"
    assert stored.metadata["status"] == "error"
    assert stored.metadata["incomplete"] is True
    assert "provider exploded" in str(stored.metadata["error"])
    assert info.value.partial == stored
    model.replies.append(text_reply("fine"))
    assert session.send("retry").text == "fine"


def test_model_error_before_any_chunk_stores_no_reply(store: SQLiteStore) -> None:
    model = ScriptedModel([ModelError("HTTP 500", status=500)])
    session = Session(store, model, user_id="local")
    with pytest.raises(ModelError, match="HTTP 500"):
        list(session.stream("hi"))
    assert [m.role for m in session.history()] == [Role.USER]


def test_empty_reply_is_stored_marked_and_raises(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel([ChatChunk(finish_reason="stop")]), user_id="local")
    with pytest.raises(EmptyReplyError) as info:
        list(session.stream("hi"))
    stored = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert stored.role is Role.ASSISTANT
    assert stored.content == []
    assert stored.metadata["status"] == "empty"
    assert stored.metadata["incomplete"] is True
    assert info.value.partial == stored


def test_empty_reply_through_send(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel([ChatChunk(finish_reason="stop")]), user_id="local")
    with pytest.raises(EmptyReplyError):
        session.send("hi")
    assert (
        store.read(session.thread_id, last=1, user_id=session.user_id)[0].metadata["status"]
        == "empty"
    )


@pytest.mark.parametrize("streaming", [True, False])
def test_invalid_tool_call_json_is_stored_and_raises(store: SQLiteStore, streaming: bool) -> None:
    steps = [ChatChunk(text="Checking. "), *tool_reply("c1", "weather", '{"city": "Par')]
    session = Session(store, ScriptedModel(steps), user_id="local")
    call = (
        (lambda: list(session.stream("weather?")))
        if streaming
        else (lambda: session.send("weather?"))
    )
    with pytest.raises(InvalidToolCallError) as info:
        call()
    stored = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert stored.text == "Checking. "
    assert stored.tool_calls == []
    assert stored.metadata["incomplete"] is True
    bad = stored.metadata["invalid_tool_calls"]
    assert bad[0]["arguments"] == '{"city": "Par'
    assert bad[0]["name"] == "weather"
    assert info.value.invalid_tool_calls[0]["id"] == "c1"


def test_tool_call_round_trip(store: SQLiteStore) -> None:
    tool = ToolSpec("weather", "Weather for a city", {"type": "object"})
    model = ScriptedModel(
        tool_reply("c1", "weather", '{"city": "Paris", "days": [1, 2]}', pieces=5),
        text_reply("Sunny in Paris."),
    )
    session = Session(store, model, tools=[tool], user_id="local")
    chunks = list(session.stream("Weather in Paris?"))
    assert len(chunks) == 8
    call_msg = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert call_msg.tool_calls[0].arguments == {"city": "Paris", "days": [1, 2]}
    assert call_msg.metadata["finish_reason"] == "tool_calls"
    session.add_tool_result("c1", "sunny, 21C")
    final = session.send()  # continue after the tool result, no new user turn
    assert final.text == "Sunny in Paris."
    assert model.tools_seen == [[tool], [tool]]
    assert [m.role for m in model.seen[1]] == [Role.USER, Role.ASSISTANT, Role.TOOL]


def test_reasoning_chunks_become_a_thinking_block(store: SQLiteStore) -> None:
    steps = [
        ChatChunk(reasoning="Two plus "),
        ChatChunk(reasoning="two is four.", reasoning_signature="sig-abc"),
        ChatChunk(text="4"),
        ChatChunk(finish_reason="stop"),
    ]
    session = Session(store, ScriptedModel(steps), user_id="local")
    list(session.stream("2+2?"))
    reply = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert reply.content[0] == ThinkingBlock(text="Two plus two is four.", signature="sig-abc")
    assert reply.text == "4"


def test_fork_switch_and_history(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("A1"), text_reply("A2"), text_reply("B2"))
    session = Session(store, model, user_id="local")
    first = session.send("q1")
    session.send("q2")
    branch = session.fork(at=first, name="alt")
    assert session.branch == "alt" == branch.name
    session.send("q2-alt")
    assert [m.text for m in session.history()] == ["q1", "A1", "q2-alt", "B2"]
    # the model saw only the forked history
    assert [m.text for m in model.seen[2]] == ["q1", "A1", "q2-alt"]
    session.switch("main")
    assert [m.text for m in session.history()] == ["q1", "A1", "q2", "A2"]
    assert [m.text for m in session.history(last=1)] == ["A2"]
    assert {b.name for b in session.branches()} == {"main", "alt"}
    with pytest.raises(NotFoundError, match="no branch 'nope'"):
        session.switch("nope")


def test_fork_on_an_empty_thread_fails_clearly(store: SQLiteStore) -> None:
    with pytest.raises(NotFoundError, match="no message to fork at"):
        Session(store, ScriptedModel(), user_id="local").fork()


def test_context_uses_the_policy_and_reports(store: SQLiteStore) -> None:
    def last_two(messages):
        return list(messages)[-2:], {"kept": 2}

    model = ScriptedModel(text_reply("r1"), text_reply("r2"))
    session = Session(store, model, policy=last_two, user_id="local")
    session.send("u1")
    session.send("u2")
    assert [m.text for m in model.seen[1]] == ["r1", "u2"]
    ctx = session.context()
    assert [m.text for m in ctx.messages] == ["u2", "r2"]
    assert ctx.report == {"kept": 2}
    assert ctx.history_size == 4
    assert len(ctx.dropped) == 2


def test_context_without_policy_is_the_whole_branch(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel(text_reply("r")), user_id="local")
    session.send("u")
    ctx = session.context()
    assert [m.text for m in ctx.messages] == ["u", "r"]
    assert ctx.report == {"policy": "whole_branch", "messages": 2}


def test_a_bad_policy_fails_clearly(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel(), policy=42, user_id="local")  # type: ignore[arg-type]
    with pytest.raises(TelaMemoryError, match="select"):
        session.context()


def test_content_forms(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("a"), text_reply("b"), text_reply("c"))
    session = Session(store, model, user_id="local")
    session.send(Message.user("as message", name="ada"))
    session.send([{"type": "text", "text": "as blocks"}])  # type: ignore[list-item]
    session.send([Message.user("m1"), Message.user("m2")])
    texts = [m.text for m in session.history()]
    assert texts == ["as message", "a", "as blocks", "b", "m1", "m2", "c"]


def test_sessions_by_url_share_one_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = Session(url, ScriptedModel(text_reply("x")), user_id="local")
    b = Session(url, ScriptedModel(), user_id="local")
    assert a.store is b.store
    a.send("hi")
    a.close()
    assert b.store.read(a.thread_id, user_id=a.user_id)[-1].text == "x"  # still open for b
    b.close()
    c = Session(url, ScriptedModel(), user_id="local")
    assert c.store is not a.store  # the last close released it
    assert c.store.read(a.thread_id, user_id=a.user_id)[-1].text == "x"
    c.close()


def test_store_unavailable_mid_stream_keeps_streaming(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, timeout=0.01)
    model = ScriptedModel(text_reply("abcdefghij", size=1))
    session = Session(store, model, flush=FlushPolicy(interval=3600, max_chunks=2), user_id="local")
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    got = []
    for i, chunk in enumerate(session.stream("go")):
        got.append(chunk.text)
        if i == 1:
            blocker.execute("BEGIN EXCLUSIVE")  # the store goes away for a while
        if i == 6:
            blocker.execute("COMMIT")
    blocker.close()
    assert "".join(got) == "abcdefghij"
    assert "could not persist the growing reply" in caplog.text  # the store really failed
    reply = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert reply.text == "abcdefghij"
    assert reply.metadata["incomplete"] is False
    store.close()


def test_store_gone_at_the_end_raises_and_keeps_the_partial(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    store = SQLiteStore(path, timeout=0.01)
    model = ScriptedModel(text_reply("abcdef", size=1))
    session = Session(store, model, flush=FlushPolicy(interval=3600, max_chunks=2), user_id="local")
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    with pytest.raises(TelaMemoryError):  # noqa: PT012
        for i, _chunk in enumerate(session.stream("go")):
            if i == 2:
                blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("COMMIT")
    blocker.close()
    reply = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert reply.text == "abc"  # what was written before the store went away
    assert reply.metadata["incomplete"] is True
    # the session is usable again once the store is back
    model.replies.append(text_reply("ok"))
    assert session.send("again").text == "ok"
    store.close()


def test_two_threads_on_one_session_serialise(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("first", size=1), text_reply("second", size=1), delay=0.01)
    session = Session(store, model, user_id="local")
    errors: list[BaseException] = []

    def turn(text: str) -> None:
        try:
            session.send(text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=turn, args=(t,)) for t in ("u1", "u2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    roles = [m.role for m in session.history()]
    assert roles == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]
    # the second call saw the first turn complete
    assert len(model.seen[1]) == 3


def _in_other_thread(fn) -> None:
    """Run ``fn`` in another thread and re-raise what it raised here."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=10)
    if raised:
        raise raised[0]


def test_fail_mode_refuses_a_second_turn(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("slow reply", size=1), text_reply("x"))
    session = Session(store, model, concurrency="fail", user_id="local")
    other = Session(store, model, thread_id=session.thread_id, concurrency="fail", user_id="local")
    from tela_memory.session import SessionBusyError

    stream = session.stream("one")
    next(stream)
    with pytest.raises(SessionBusyError, match="already has a turn in progress"):
        _in_other_thread(lambda: other.send("two"))
    stream.close()
    assert other.send("two").text == "x"


def test_wait_mode_times_out_clearly(store: SQLiteStore) -> None:
    from tela_memory.session import SessionBusyError

    session = Session(
        store, ScriptedModel(text_reply("abc", size=1)), lock_timeout=0.05, user_id="local"
    )
    stream = session.stream("one")
    next(stream)
    with pytest.raises(SessionBusyError, match=r"busy for more than 0\.05"):
        _in_other_thread(lambda: session.send("two"))
    stream.close()


async def test_async_stream_and_send_match_sync(store: SQLiteStore) -> None:
    model = ScriptedModel(
        text_reply("async hello", size=4), *[tool_reply("c9", "calc", '{"x": 1}')]
    )
    session = Session(store, model, user_id="local")
    chunks = [c async for c in session.astream("hi")]
    assert "".join(c.text for c in chunks) == "async hello"
    reply = (await session.ahistory(last=1))[0]
    assert reply.metadata["incomplete"] is False
    msg = await session.asend("call a tool")
    assert msg.tool_calls[0].arguments == {"x": 1}
    await session.aadd_tool_result("c9", "2")
    assert [m.role for m in await session.ahistory()][-1] is Role.TOOL
    ctx = await session.acontext()
    assert len(ctx.messages) == 5


async def test_async_consumer_stopping_early_marks_stopped(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel(text_reply("0123456789", size=1)), user_id="local")
    async with aclosing(session.astream("count")) as stream:
        async for chunk in stream:
            if chunk.text == "3":
                break
    reply = (await session.ahistory(last=1))[0]
    assert reply.text == "0123"
    assert reply.metadata["status"] == "stopped"


async def test_async_model_error_is_wrapped(store: SQLiteStore) -> None:
    session = Session(
        store, ScriptedModel([ChatChunk(text="so far"), ValueError("bad gateway")]), user_id="local"
    )
    with pytest.raises(ModelError, match="bad gateway") as info:
        async for _ in session.astream("hi"):
            pass
    assert isinstance(info.value.provider_error, ValueError)
    assert (await session.ahistory(last=1))[0].metadata["status"] == "error"


async def test_async_turns_serialise(store: SQLiteStore) -> None:
    import asyncio

    model = ScriptedModel(text_reply("one", size=1), text_reply("two", size=1), delay=0.01)
    session = Session(store, model, user_id="local")
    await asyncio.gather(session.asend("a"), session.asend("b"))
    roles = [m.role for m in await session.ahistory()]
    assert roles == [Role.USER, Role.ASSISTANT, Role.USER, Role.ASSISTANT]


async def test_async_fork_and_switch(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel(text_reply("A"), text_reply("B")), user_id="local")
    first = await session.asend("q")
    await session.afork(at=first.parent_id, name="edit")
    await session.asend("q-edited")
    assert [m.text for m in await session.ahistory()] == ["q", "q-edited", "B"]
    await session.aswitch("main")
    assert [m.text for m in await session.ahistory()] == ["q", "A"]
    assert len(await session.abranches()) == 2
    with pytest.raises(NotFoundError):
        await session.aswitch("missing")


def test_a_failed_first_write_is_retried_by_the_batch_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "first.db"
    store = SQLiteStore(path, timeout=0.01)
    store.append("t", Message.user("earlier"), user_id="local")
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    steps = [
        lambda: blocker.execute("BEGIN EXCLUSIVE"),  # the store goes away before chunk 1
        *text_reply("abc", size=1)[:-1],
        lambda: blocker.execute("COMMIT"),
        *text_reply("defgh", size=1),
    ]
    session = Session(
        store,
        ScriptedModel(steps),
        thread_id="t",
        flush=FlushPolicy(interval=3600, max_chunks=3),
        user_id="local",
    )
    assert "".join(c.text for c in session.stream("go")) == "abcdefgh"
    blocker.close()
    # one failed attempt at chunk 1, then the batch policy, not one attempt per chunk
    assert caplog.text.count("could not persist the growing reply") == 1
    reply = store.read("t", last=1, user_id="local")[0]
    assert reply.text == "abcdefgh"
    assert reply.metadata["incomplete"] is False
    store.close()


def test_every_public_method_has_an_async_twin() -> None:
    methods = {
        name
        for name, value in vars(Session).items()
        if not name.startswith("_") and callable(value)
    }
    twins = {name for name in methods if f"a{name}" in methods}
    singles = methods - twins - {f"a{name}" for name in twins}
    assert singles == set()
    assert {"send", "stream", "add", "add_tool_result", "fork", "switch", "close"} <= twins


def test_no_io_before_the_first_turn(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "chat.db"
    session = Session(f"sqlite:///{path}", ScriptedModel(text_reply("hi")), user_id="local")
    assert not path.parent.exists()
    session.send("hello")
    assert path.exists()
    session.close()


def test_a_turn_inside_its_own_stream_fails_instead_of_deadlocking(store: SQLiteStore) -> None:
    from tela_memory.session import SessionBusyError

    session = Session(
        store, ScriptedModel(text_reply("abc", size=1), text_reply("ok")), user_id="local"
    )
    stream = session.stream("one")
    next(stream)
    with pytest.raises(SessionBusyError, match="already running in this thread"):
        session.send("nested")
    stream.close()
    assert session.send("after").text == "ok"


async def test_an_async_turn_inside_its_own_stream_fails(store: SQLiteStore) -> None:
    from tela_memory.session import SessionBusyError

    session = Session(store, ScriptedModel(text_reply("abc", size=1)), user_id="local")
    async with aclosing(session.astream("one")) as stream:
        async for _ in stream:
            with pytest.raises(SessionBusyError, match="already running"):
                await session.asend("nested")
            break


@pytest.mark.parametrize("use_async", [False, True])
async def test_model_error_survives_a_store_that_cannot_keep_the_partial(
    tmp_path: Path, use_async: bool
) -> None:
    path = tmp_path / "busy.db"
    store = SQLiteStore(path, timeout=0.01)
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    lock = lambda: blocker.execute("BEGIN EXCLUSIVE")  # noqa: E731 - the store goes away
    session = Session(
        store, ScriptedModel([lock, ChatChunk(finish_reason="stop")]), user_id="local"
    )
    turn = session.asend("hi") if use_async else None
    with pytest.raises(EmptyReplyError) as info:  # the provider's error, not the store's
        await turn if turn is not None else session.send("hi")
    assert any("could not be stored" in note for note in info.value.__notes__)
    blocker.execute("COMMIT")
    blocker.close()
    assert [m.role for m in session.history()] == [Role.USER]
    store.close()
