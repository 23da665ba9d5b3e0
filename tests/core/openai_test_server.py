"""A small OpenAI-compatible chat server on loopback, for the httpx client and session tests.

It speaks ``POST /v1/chat/completions`` (JSON and SSE streaming with chunked transfer). What it
answers depends on the requested ``model`` name:

- ``echo``: the text of the last user message, one word per chunk, then usage.
- ``words:N[:DELAY]``: ``N`` chunks ``"w0 "``, ``"w1 "`` ... with ``DELAY`` seconds between them.
- ``reasoning``: reasoning deltas (``reasoning_content``) then text.
- ``tools``: a tool call whose JSON arguments arrive in pieces; ``bad-tools``: invalid JSON.
- ``empty``: a finish without any content.
- ``http500``: HTTP 500 with an error body; ``error-event``: an SSE ``error`` object mid-stream.
- ``drop``: two chunks, then the connection is cut without ending the chunked body.
- ``truncated``: two chunks, then a clean end without ``[DONE]`` or a finish reason.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body["messages"]):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def script(body: dict[str, Any]) -> Iterator[dict[str, Any] | str]:
    """The events of a reply ('DROP' cuts the connection, 'END' ends without [DONE])."""
    model = body["model"]
    yield _chunk({"role": "assistant", "content": ""})
    if model == "echo":
        words = _last_user_text(body).split(" ")
        for i, word in enumerate(words):
            yield _chunk({"content": word if i == 0 else " " + word})
        yield _chunk({}, "stop")
    elif model.startswith("words:"):
        parts = model.split(":")
        count = int(parts[1])
        delay = float(parts[2]) if len(parts) > 2 else 0.0
        for i in range(count):
            if delay:
                time.sleep(delay)
            yield _chunk({"content": f"w{i} "})
        yield _chunk({}, "stop")
    elif model == "reasoning":
        yield _chunk({"reasoning_content": "Let me "})
        yield _chunk({"reasoning_content": "think."})
        yield _chunk({"content": "Answer: 42"})
        yield _chunk({}, "stop")
    elif model in {"tools", "bad-tools"}:
        args = ['{"city": ', '"Paris"}'] if model == "tools" else ['{"city": ', '"Par']
        first = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "weather", "arguments": ""},
        }
        yield _chunk({"tool_calls": [first]})
        for piece in args:
            yield _chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        yield _chunk({}, "tool_calls")
    elif model == "empty":
        yield _chunk({}, "stop")
    elif model == "error-event":
        yield _chunk({"content": "partial "})
        yield {"error": {"message": "overloaded", "type": "server_error"}}
        return
    elif model == "drop":
        yield _chunk({"content": "one "})
        yield _chunk({"content": "two "})
        yield "DROP"
        return
    elif model == "truncated":
        yield _chunk({"content": "one "})
        yield _chunk({"content": "two "})
        yield "END"
        return
    if body.get("stream_options", {}).get("include_usage"):
        yield {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "model": "test-model",
            "choices": [],
            "usage": USAGE,
        }


def completion(body: dict[str, Any]) -> dict[str, Any]:
    """The non-streamed answer: the stream folded into one message."""
    content, reasoning, calls, finish = "", "", {}, None
    for event in script({**body, "stream_options": {}}):
        if isinstance(event, str):
            continue
        for choice in event.get("choices", []):
            delta = choice["delta"]
            content += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(
                    call["index"],
                    {"id": None, "type": "function", "function": {"name": "", "arguments": ""}},
                )
                slot["id"] = call.get("id") or slot["id"]
                fn = call.get("function") or {}
                slot["function"]["name"] += fn.get("name") or ""
                slot["function"]["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": USAGE,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OpenAITestServer

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length))
        self.server.requests.append(
            {"path": self.path, "headers": dict(self.headers), "body": body}
        )
        if self.path != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if body["model"] == "http500":
            self._send_json(500, {"error": {"message": "the model is on fire", "type": "server"}})
            return
        if not body.get("stream"):
            self._send_json(200, completion(body))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in script(body):
                if event == "DROP":
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if event == "END":
                    break
                self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
            else:
                self._write_chunk(b"data: [DONE]\n\n")
            self._write_chunk(b"")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away: that is its right


class OpenAITestServer(ThreadingHTTPServer):
    """The server; ``base_url`` is what the client needs, ``requests`` what it received."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
