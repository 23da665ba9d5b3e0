"""A FastAPI app that streams a session's reply as Server-Sent Events while it is persisted.

``POST /threads/{thread_id}/messages`` with ``{"content": "..."}`` answers ``text/event-stream``:
``chunk`` events as the reply grows, then ``done`` (or ``error``, whatever failed: the model,
the store or the thread's lock). The reply is written to the store as it grows; if the client
disconnects, the stored reply keeps what had arrived and is marked
``metadata["incomplete"] = True`` (``status="stopped"``).
``GET /threads/{thread_id}/messages`` returns the stored history.

Run it as a script: it starts the app on a free loopback port, drives it once with an HTTP
client, prints the events and the stored reply, and exits. Offline it uses a small stand-in
model; with ``OPENAI_BASE_URL`` (and ``OPENAI_API_KEY``, ``OPENAI_MODEL``) set it talks to that
OpenAI-compatible server instead. The store is a SQLite file in a temporary folder unless
``TELA_MEMORY_URL`` names another.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Header
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from tela_memory import DEFAULT_USER, Message, MessageStore, TelaMemoryError, open_store
from tela_memory.models import ChatChunk, ChatModel, ToolSpec, Usage
from tela_memory.session import Session


class Typewriter(ChatModel):
    """Offline stand-in model: answers with a fixed sentence about the question, word by word."""

    def __init__(self, delay: float = 0.01, words: int = 0) -> None:
        self.delay = delay
        self.words = words  # > 0: answer with that many numbered words instead

    @property
    def model_name(self) -> str:
        return "typewriter"

    def _words(self, messages: Sequence[Message]) -> list[str]:
        if self.words:
            return [f"w{i} " for i in range(self.words)]
        question = messages[-1].text if messages else ""
        answer = f"You asked: {question!r}. This reply was persisted while it streamed."
        return [w + " " for w in answer.split(" ")]

    def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None = None, **_: Any
    ) -> Iterator[ChatChunk]:
        words = self._words(messages)
        for word in words:
            time.sleep(self.delay)
            yield ChatChunk(text=word)
        yield ChatChunk(finish_reason="stop", usage=Usage(len(messages), len(words)))

    async def astream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None = None, **_: Any
    ) -> AsyncIterator[ChatChunk]:
        words = self._words(messages)
        for word in words:
            await asyncio.sleep(self.delay)
            yield ChatChunk(text=word)
        yield ChatChunk(finish_reason="stop", usage=Usage(len(messages), len(words)))


class Ask(BaseModel):
    """The request body: the user's message."""

    content: str


def sse(event: str, data: dict[str, Any]) -> str:
    """One Server-Sent Event."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def create_app(store: MessageStore, model: ChatModel) -> FastAPI:
    """The app; every request opens a session on the shared ``store``."""
    app = FastAPI(title="Tela Memory SSE example")

    @app.post("/threads/{thread_id}/messages")
    async def post_message(
        thread_id: str, ask: Ask, x_user: str = Header(DEFAULT_USER)
    ) -> StreamingResponse:
        # the acting user: in a real app, take it from your authentication, never from input
        # the client controls; threads live in that user's namespace
        session = Session(store, model, user_id=x_user, thread_id=thread_id)

        async def events() -> AsyncIterator[str]:
            try:
                async with aclosing(session.astream(ask.content)) as chunks:
                    async for chunk in chunks:
                        if chunk.text:
                            yield sse("chunk", {"text": chunk.text})
                reply = (await session.ahistory(last=1))[0]
                yield sse("done", {"message_id": reply.id, "usage": reply.metadata.get("usage")})
            except TelaMemoryError as exc:  # the model failed (ModelError), the store, a lock
                yield sse("error", {"error": str(exc), "kind": type(exc).__name__})

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/threads/{thread_id}/messages")
    async def history(thread_id: str, x_user: str = Header(DEFAULT_USER)) -> list[dict[str, Any]]:
        messages = await store.aread(thread_id, user_id=x_user)
        return [m.model_dump(mode="json") for m in messages]

    return app


class BackgroundServer:
    """Runs an app with uvicorn on a free loopback port in a thread."""

    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def make_model() -> ChatModel:
    """An OpenAI-compatible server when ``OPENAI_BASE_URL`` is set, else the stand-in."""
    base_url = os.environ.get("OPENAI_BASE_URL")
    if base_url:
        from tela_memory.models import OpenAICompatible

        return OpenAICompatible(
            os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            base_url=base_url,
            api_key=os.environ.get("OPENAI_API_KEY"),
        )
    return Typewriter()


def main() -> None:
    url = os.environ.get("TELA_MEMORY_URL") or (
        f"sqlite:///{Path(tempfile.mkdtemp(prefix='tela-sse-')) / 'chat.db'}"
    )
    print(f"store: {url}")
    store = open_store(url)
    thread_id = f"sse-demo-{os.getpid()}"
    with BackgroundServer(create_app(store, make_model())) as base:
        print(f"POST {base}/threads/{thread_id}/messages")
        with httpx.stream(
            "POST",
            f"{base}/threads/{thread_id}/messages",
            json={"content": "What does Tela Memory do with a streamed reply?"},
            timeout=30,
        ) as response:
            event, chunks = "", []
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "chunk":
                    chunks.append(json.loads(line[6:])["text"])
                elif line.startswith("data: "):
                    print(f"{len(chunks)} chunk events: {''.join(chunks)!r}")
                    print(f"event {event}: {line[6:]}")
        stored = httpx.get(f"{base}/threads/{thread_id}/messages", timeout=10).json()
    reply = stored[-1]
    print(f"stored: {len(stored)} messages; the reply is {reply['role']!r}:")
    print(f"  text: {reply['content'][0]['text']!r}")
    print(f"  metadata: {reply['metadata']}")
    store.close()


if __name__ == "__main__":
    main()
