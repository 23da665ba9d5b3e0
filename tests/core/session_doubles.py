"""A scripted chat model for session tests: a real implementation of our ChatModel protocol
(a stand-in for a provider, like LangChain's fake chat models), not a mock of our code."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from tela_memory import Message
from tela_memory.models import ChatChunk, ChatModel, ToolCallDelta, ToolSpec, Usage

Step = ChatChunk | BaseException | Callable[[], object]  # a callable runs as a side effect


def text_reply(text: str, *, size: int = 3, usage: Usage | None = None) -> list[Step]:
    """``text`` cut into chunks of ``size`` characters, then a finish with usage."""
    steps: list[Step] = [ChatChunk(text=text[i : i + size]) for i in range(0, len(text), size)]
    steps.append(ChatChunk(finish_reason="stop", usage=usage or Usage(5, len(steps))))
    return steps


def tool_reply(call_id: str, name: str, args_json: str, *, pieces: int = 3) -> list[Step]:
    """A tool call whose JSON arguments arrive in ``pieces`` fragments."""
    size = max(1, len(args_json) // pieces)
    frags = [args_json[i : i + size] for i in range(0, len(args_json), size)]
    steps: list[Step] = [ChatChunk(tool_calls=(ToolCallDelta(0, id=call_id, name=name),))]
    steps += [ChatChunk(tool_calls=(ToolCallDelta(0, arguments=f),)) for f in frags]
    steps.append(ChatChunk(finish_reason="tool_calls", usage=Usage(3, 4)))
    return steps


class ScriptedModel(ChatModel):
    """Plays one scripted reply per call; an exception in a script is raised at that point.

    ``seen`` records the messages of every call; ``delay`` sleeps between chunks.
    """

    def __init__(self, *replies: list[Step], delay: float = 0.0, name: str = "scripted") -> None:
        self.replies = list(replies)
        self.seen: list[list[Message]] = []
        self.tools_seen: list[Sequence[ToolSpec] | None] = []
        self.delay = delay
        self.name = name
        self._lock = threading.Lock()
        self.closed_streams = 0
        self.produced = 0  # chunks handed out, over all calls

    @property
    def model_name(self) -> str:
        return self.name

    def _next(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None) -> list[Step]:
        with self._lock:
            self.seen.append(list(messages))
            self.tools_seen.append(tools)
            if not self.replies:
                raise AssertionError("the scripted model ran out of replies")
            return self.replies.pop(0)

    def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None = None, **_: Any
    ) -> Iterator[ChatChunk]:
        steps = self._next(messages, tools)
        try:
            for step in steps:
                if self.delay:
                    time.sleep(self.delay)
                if isinstance(step, BaseException):
                    raise step
                if callable(step):
                    step()
                    continue
                self.produced += 1
                yield step
        finally:
            self.closed_streams += 1

    async def astream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None = None, **_: Any
    ) -> AsyncIterator[ChatChunk]:
        steps = self._next(messages, tools)
        try:
            for step in steps:
                await asyncio.sleep(self.delay)
                if isinstance(step, BaseException):
                    raise step
                if callable(step):
                    step()
                    continue
                self.produced += 1
                yield step
        finally:
            self.closed_streams += 1
