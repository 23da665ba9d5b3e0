"""Sessions after a failure: a failed model call marks its turn and a retry of the same send
reuses it (the model sees the user's message once); streams abandoned without ``aclosing``
are finalised (``status="stopped"``, every chunk that arrived) when the session closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path

import pytest
from session_doubles import ScriptedModel, Step, text_reply

from tela_memory import Message, Role
from tela_memory.models import ChatChunk, ModelError
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "chat.db") as s:
        yield s


def _failing() -> list[Step]:
    return [RuntimeError("provider down")]


async def _turn(session: Session, how: str, content: str) -> str:
    if how == "send":
        return session.send(content).text
    if how == "asend":
        return (await session.asend(content)).text
    if how == "stream":
        return "".join(c.text for c in session.stream(content))
    return "".join([c.text async for c in session.astream(content)])


@pytest.mark.parametrize("how", ["send", "asend", "stream", "astream"])
async def test_a_retry_reuses_the_failed_turn(store: SQLiteStore, how: str) -> None:
    model = ScriptedModel(_failing(), _failing(), text_reply("Paris"))
    session = Session(store, model, user_id="ada", system="Be brief.")
    for attempt in (1, 2):
        with pytest.raises(ModelError, match="provider down"):
            await _turn(session, how, "Capital of France?")
        user = session.history()[-1]
        assert user.role is Role.USER
        assert user.text == "Capital of France?"
        assert user.metadata["failed"] == {
            "error": "ModelError: the chat model failed: RuntimeError: provider down",
            "attempts": attempt,
        }
    assert await _turn(session, how, "Capital of France?") == "Paris"
    # every call saw the user's message once
    assert [[m.text for m in call] for call in model.seen] == [
        ["Be brief.", "Capital of France?"]
    ] * 3
    history = session.history()
    assert [m.text for m in history] == ["Be brief.", "Capital of France?", "Paris"]
    assert "failed" not in history[1].metadata  # answered now: the mark is gone


def test_another_message_after_a_failure_is_a_new_turn(store: SQLiteStore) -> None:
    model = ScriptedModel(_failing(), text_reply("ok"))
    session = Session(store, model, user_id="ada")
    with pytest.raises(ModelError):
        session.send("first")
    assert session.send("second").text == "ok"
    assert [m.text for m in model.seen[1]] == ["first", "second"]
    mark = session.history()[0].metadata["failed"]
    assert isinstance(mark, dict)
    assert mark["attempts"] == 1  # still unanswered


def test_a_partial_reply_is_an_answer_not_a_failed_turn(store: SQLiteStore) -> None:
    steps: list[Step] = [*text_reply("half an answer", size=4)[:2], RuntimeError("cut")]
    model = ScriptedModel(steps, text_reply("whole"))
    session = Session(store, model, user_id="ada")
    with pytest.raises(ModelError):
        list(session.stream("q"))
    user, partial = session.history()
    assert "failed" not in user.metadata
    assert partial.metadata["status"] == "error"


async def test_an_abandoned_astream_is_finalised_by_aclose(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("abcdefghij", size=1))
    # nothing is flushed after the first chunk until the end: close must flush the rest
    session = Session(store, model, user_id="ada", flush=FlushPolicy(interval=3600))
    stream = session.astream("q")
    assert isinstance(stream, AsyncGenerator)
    seen = []
    async for chunk in stream:  # no aclosing: breaking out leaves the generator suspended
        seen.append(chunk.text)
        if len(seen) == 4:
            break
    await session.aclose()
    (reply,) = [m for m in store.read(session.thread_id, user_id="ada") if m.role is Role.ASSISTANT]
    assert reply.metadata["status"] == "stopped"
    assert reply.metadata["incomplete"] is True
    assert reply.text == "abcd"  # the last chunks are there
    other = Session(
        store,
        ScriptedModel(text_reply("next")),
        user_id="ada",
        thread_id=session.thread_id,
        concurrency="fail",
    )
    assert (await other.asend("again")).text == "next"  # the abandoned turn let go of the lock
    await stream.aclose()  # collecting it later writes nothing more
    reply = store.get(reply.id, user_id="ada")
    assert (reply.metadata["status"], reply.text) == ("stopped", "abcd")


def test_an_abandoned_stream_is_finalised_by_close(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("abcdefghij", size=1))
    session = Session(store, model, user_id="ada", flush=FlushPolicy(interval=3600))
    stream = session.stream("q")
    seen = [next(stream).text for _ in range(5)]
    session.close()
    reply = store.read(session.thread_id, user_id="ada", last=1)[0]
    assert (reply.metadata["status"], reply.text) == ("stopped", "".join(seen))
    assert list(stream) == []  # a stream of a closed session ends; nothing more is written
    assert store.get(reply.id, user_id="ada").metadata["status"] == "stopped"


def test_close_from_sync_code_finalises_an_async_stream(store: SQLiteStore) -> None:
    model = ScriptedModel(text_reply("abcdefghij", size=1))
    session = Session(store, model, user_id="ada", flush=FlushPolicy(interval=3600))

    async def start() -> AsyncGenerator[ChatChunk, None]:
        stream = session.astream("q")
        assert isinstance(stream, AsyncGenerator)
        for _ in range(3):
            await anext(stream)
        return stream

    loop = asyncio.new_event_loop()
    try:
        stream = loop.run_until_complete(start())
        session.close()
        reply = store.read(session.thread_id, user_id="ada", last=1)[0]
        assert (reply.metadata["status"], reply.text) == ("stopped", "abc")
        probe = Session(
            store, model, user_id="ada", thread_id=session.thread_id, concurrency="fail"
        )
        probe.add(Message.user("after"))  # the lock is free (SessionBusyError otherwise)
        loop.run_until_complete(stream.aclose())
    finally:
        loop.close()
