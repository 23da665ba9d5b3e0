"""Interrupted turns: a ``KeyboardInterrupt`` on any line of the turn lock, the turn and the
streaming writer, or an asyncio cancellation at any await, leaves no turn lock held, no reply
claiming to be ``streaming`` and a session (and a second one) that can take the next turn.

The interrupt is injected with ``sys.settrace`` at the n-th line executed inside the session
package (lock, session, writer), for every n until the turn completes untouched; cancellation
is real (``Task.cancel``) after every k chunks and at every scheduling step of the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from session_doubles import ScriptedModel, Step, text_reply

from interrupts import Interrupt
from tela_memory import Role
from tela_memory.models import ChatChunk
from tela_memory.session import FlushPolicy, Session, SessionBusyError
from tela_memory.session import lock as lock_module
from tela_memory.session import session as session_module
from tela_memory.session import writer as writer_module
from tela_memory.stores.sqlite import SQLiteStore

_WATCHED = {lock_module.__file__, session_module.__file__, writer_module.__file__}
_TEXT = "abcdefghijkl"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "chat.db") as s:
        yield s


def _probe(store: SQLiteStore, thread_id: str, n: int) -> None:
    """Another session, failing at once if the turn lock is still held, takes a turn."""
    probe = Session(
        store,
        ScriptedModel(text_reply(f"probe {n}")),
        user_id="ada",
        thread_id=thread_id,
        concurrency="fail",
    )
    try:
        assert probe.send(f"probe question {n}").text == f"probe {n}"
    except SessionBusyError as exc:  # pragma: no cover - the failure this file guards against
        raise AssertionError(f"interrupt at line {n} leaked the turn lock") from exc


def _check_replies(store: SQLiteStore, thread_id: str) -> None:
    """No half-written state: every reply is complete, or marked incomplete and stopped."""
    for m in store.read(thread_id, user_id="ada"):
        if m.role is not Role.ASSISTANT:
            continue
        status = m.metadata.get("status")
        assert status in {"complete", "stopped"}, (m.text, m.metadata)
        assert m.metadata["incomplete"] is (status != "complete")
        if not m.text.startswith("probe"):
            assert _TEXT.startswith(m.text)
            if status == "complete":
                assert m.text == _TEXT


def _walk(store: SQLiteStore, turn: Any) -> tuple[int, set[str]]:
    """Run ``turn(session, n)`` with an interrupt at line n, for every n (a new thread each
    time); returns how many runs were interrupted, and the statuses of the replies left."""
    at, interrupted, statuses = 1, 0, set()
    while True:
        session = Session(
            store,
            ScriptedModel(text_reply(_TEXT, size=2)),
            user_id="ada",
            flush=FlushPolicy(interval=3600, max_chunks=2),
        )
        trace = Interrupt(at, _WATCHED)
        sys.settrace(trace)
        try:
            turn(session, at)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        _check_replies(store, session.thread_id)
        statuses |= {
            str(m.metadata["status"])
            for m in store.read(session.thread_id, user_id="ada")
            if m.role is Role.ASSISTANT and not m.text.startswith("probe")
        }
        _probe(store, session.thread_id, at)
        if not trace.fired:
            break
        interrupted += 1
        at += 1
    return interrupted, statuses


def test_interrupt_at_any_line_of_send(store: SQLiteStore) -> None:
    interrupted, _ = _walk(store, lambda s, n: s.send(f"question {n}"))
    assert interrupted > 30  # the injection really walked lock, turn and writes


def test_interrupt_at_any_line_of_a_stream(store: SQLiteStore) -> None:
    def turn(session: Session, n: int) -> None:
        for _ in session.stream(f"question {n}"):
            pass

    interrupted, statuses = _walk(store, turn)
    assert interrupted > 100  # every flush, the final write and the lock on every way out
    # each interrupted stream that had started a reply left it stopped, never streaming
    assert statuses == {"complete", "stopped"}


# -- asyncio cancellation -------------------------------------------------------------------


class _CancelAfter:
    """Steps of a reply that cancel the consumer's task (from inside the model) after ``k``
    chunks; ``task`` is set once the task exists."""

    def __init__(self, k: int, steps: list[Step]) -> None:
        self.task: asyncio.Task[Any] | None = None
        self.steps: list[Step] = []
        chunks = 0
        for step in steps:
            self.steps.append(step)
            if isinstance(step, ChatChunk):
                chunks += 1
                if chunks == k:
                    self.steps.append(self._cancel)

    def _cancel(self) -> None:
        assert self.task is not None
        self.task.cancel()


async def _consume(session: Session, question: str, seen: list[str]) -> None:
    async for chunk in session.astream(question):
        seen.append(chunk.text)


async def _check_cancelled(store: SQLiteStore, session: Session, seen: list[str]) -> None:
    stored = await store.aread(session.thread_id, user_id="ada", last=1)
    if not stored or stored[0].role is Role.USER:
        assert not seen  # cancelled before the first chunk: no reply, nothing lost
    else:
        _check_reply(stored[0], seen)
    probe = Session(
        store,
        ScriptedModel(text_reply("ok")),
        user_id="ada",
        thread_id=session.thread_id,
        concurrency="fail",
    )
    assert (await probe.asend("probe")).text == "ok"  # the turn lock is free


def _check_reply(reply: Any, seen: list[str]) -> None:
    status = reply.metadata["status"]
    # the consumer may have been cancelled after the last chunk: complete is right then
    assert status in {"stopped", "complete"}, reply.metadata
    assert reply.metadata["incomplete"] is (status == "stopped")
    assert reply.text.startswith("".join(seen))  # every chunk the consumer saw is kept
    assert _TEXT.startswith(reply.text)


async def test_cancelled_astream_ends_stopped_after_every_k_chunks(store: SQLiteStore) -> None:
    steps = text_reply(_TEXT, size=1)
    for k in range(1, len(_TEXT) + 1):
        script = _CancelAfter(k, steps)
        model = ScriptedModel(script.steps)
        session = Session(store, model, user_id="ada", flush=FlushPolicy(max_chunks=3))
        seen: list[str] = []
        task = asyncio.create_task(_consume(session, f"q{k}", seen))
        script.task = task
        with pytest.raises(asyncio.CancelledError):
            await task
        reply = (await store.aread(session.thread_id, user_id="ada", last=1))[0]
        assert reply.metadata["status"] == "stopped", (k, reply.metadata)
        assert reply.text == _TEXT[:k]
        await _check_cancelled(store, session, seen)


async def test_cancelled_astream_ends_stopped_wherever_the_cancel_lands(
    store: SQLiteStore,
) -> None:
    """Cancelled by another task once the model has produced j chunks, for every j: the cancel
    lands where the consumer is suspended then (in a flush, a store write in a worker thread,
    in the model, in the final write); the reply is never left ``streaming``."""
    stopped = 0
    for j in range(len(_TEXT) + 2):
        model = ScriptedModel(text_reply(_TEXT, size=1))
        # every chunk is flushed: the consumer is mostly suspended inside a store write
        session = Session(store, model, user_id="ada", flush=FlushPolicy(max_chunks=1))
        seen: list[str] = []
        task = asyncio.create_task(_consume(session, "q", seen))
        # stepping the scheduler (no timing): the cancel follows the j-th chunk at once
        while model.produced < j and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        last = await store.aread(session.thread_id, user_id="ada", last=1)
        stopped += bool(last) and last[0].metadata.get("status") == "stopped"
        await _check_cancelled(store, session, seen)
    assert stopped >= len(_TEXT) - 1  # the cancel really landed mid-stream, nearly every time


# -- lock timeout ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 0, -1, float("inf"), float("nan"), "10", True])
def test_lock_timeout_is_bounded(store: SQLiteStore, bad: object) -> None:
    from tela_memory import TelaMemoryError

    with pytest.raises(TelaMemoryError, match="lock_timeout must be a finite number") as info:
        Session(store, ScriptedModel(), user_id="ada", lock_timeout=bad)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_a_waiting_turn_has_a_bounded_default_wait(store: SQLiteStore) -> None:
    session = Session(store, ScriptedModel(), user_id="ada")
    assert 0 < session.lock_timeout < float("inf")


async def test_a_cancelled_waiter_leaves_the_lock_to_the_holder(store: SQLiteStore) -> None:
    holder = Session(store, ScriptedModel(text_reply(_TEXT)), user_id="ada")
    stream = holder.stream("first")
    next(stream)  # the holder's turn is open (a suspended stream holds it)
    waiter = Session(
        store, ScriptedModel(text_reply("second")), user_id="ada", thread_id=holder.thread_id
    )
    for steps in range(0, 12, 2):
        task = asyncio.create_task(waiter.asend(f"w{steps}"))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "".join(c.text for c in stream)  # the holder finishes its turn
    assert (await waiter.asend("now")).text == "second"
    texts = [m.text for m in holder.history()]
    assert texts[-2:] == ["now", "second"]
    assert not any(t.startswith("w") for t in texts)  # no cancelled waiter wrote anything
