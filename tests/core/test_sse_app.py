"""The FastAPI SSE example, driven over real HTTP (uvicorn on loopback, httpx client)."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from openai_test_server import OpenAITestServer

from tela_memory import Message, Role
from tela_memory.models import OpenAICompatible
from tela_memory.stores.sqlite import SQLiteStore

EXAMPLE = Path(__file__).parents[2] / "examples" / "fastapi_sse.py"


@pytest.fixture(scope="module")
def sse() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_sse_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "sse.db") as s:
        yield s


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict]]:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            assert event is not None
            yield event, json.loads(line[6:])


def _wait_for(store: SQLiteStore, thread: str, status: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        messages = store.read(thread, user_id="local")
        if messages and messages[-1].metadata.get("status") == status:
            return messages[-1]
        if time.monotonic() > deadline:
            last = messages[-1].metadata if messages else None
            raise AssertionError(f"no reply with status {status!r}; last: {last}")
        time.sleep(0.02)


def test_streams_events_and_persists(sse: ModuleType, store: SQLiteStore) -> None:
    app = sse.create_app(store, sse.Typewriter(delay=0.001))
    with sse.BackgroundServer(app) as base:
        with httpx.stream(
            "POST", f"{base}/threads/t1/messages", json={"content": "hello"}, timeout=10
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = list(_events(response.iter_lines()))
        history = httpx.get(f"{base}/threads/t1/messages", timeout=10).json()
    text = "".join(d["text"] for e, d in events if e == "chunk")
    kind, done = events[-1]
    assert kind == "done"
    reply = store.get(done["message_id"], user_id="local")
    assert reply.text == text
    assert reply.metadata["incomplete"] is False
    assert done["usage"] == reply.metadata["usage"]
    assert [m["role"] for m in history] == ["user", "assistant"]


def test_client_disconnect_leaves_a_marked_partial(sse: ModuleType, store: SQLiteStore) -> None:
    app = sse.create_app(store, sse.Typewriter(delay=0.01, words=2000))
    received = []
    with sse.BackgroundServer(app) as base:
        with httpx.stream(
            "POST", f"{base}/threads/t2/messages", json={"content": "go"}, timeout=10
        ) as response:
            for event, data in _events(response.iter_lines()):
                assert event == "chunk"
                received.append(data["text"])
                if len(received) == 20:
                    break  # leaving the block closes the connection
        reply = _wait_for(store, "t2", "stopped")
    assert reply.role is Role.ASSISTANT
    assert reply.metadata["incomplete"] is True
    assert reply.text.startswith("".join(received))
    assert len(reply.text.split()) < 2000  # the model was stopped, not run to the end


def test_model_error_becomes_an_error_event(sse: ModuleType, store: SQLiteStore) -> None:
    with OpenAITestServer() as upstream:
        model = OpenAICompatible("drop", base_url=upstream.base_url)
        with (
            sse.BackgroundServer(sse.create_app(store, model)) as base,
            httpx.stream(
                "POST", f"{base}/threads/t3/messages", json={"content": "x"}, timeout=10
            ) as response,
        ):
            events = list(_events(response.iter_lines()))
    assert [e for e, _ in events] == ["chunk", "chunk", "error"]
    reply = store.read("t3", user_id="local")[-1]
    assert reply.text == "one two "
    assert reply.metadata["status"] == "error"


def test_example_runs_as_a_script(tmp_path: Path) -> None:
    env = {"TELA_MEMORY_URL": f"sqlite:///{tmp_path / 'script.db'}", "PATH": ""}
    out = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "event done:" in out.stdout
    assert "'status': 'complete'" in out.stdout


def test_store_failure_becomes_an_error_event(sse: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, timeout=0.01)
    store.append("t4", Message.user("earlier"), user_id="local")
    blocker = sqlite3.connect(path, timeout=5, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # the store cannot take the new turn
    try:
        with (
            sse.BackgroundServer(sse.create_app(store, sse.Typewriter(delay=0.001))) as base,
            httpx.stream(
                "POST", f"{base}/threads/t4/messages", json={"content": "x"}, timeout=10
            ) as response,
        ):
            events = list(_events(response.iter_lines()))
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert [e for e, _ in events] == ["error"]
    assert "locked" in events[0][1]["error"]
    assert [m.text for m in store.read("t4", user_id="local")] == ["earlier"]
    store.close()
