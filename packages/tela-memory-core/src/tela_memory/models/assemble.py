"""Assemble streamed :class:`ChatChunk` deltas into one assistant message.

Text and reasoning are concatenated; tool-call pieces are grouped by ``index`` and their JSON
argument fragments joined, then parsed when the reply ends. :meth:`ChunkAssembler.snapshot`
gives the reply so far (used to persist a stream as it grows); :meth:`ChunkAssembler.result`
gives the finished reply and raises :class:`InvalidToolCallError` / :class:`EmptyReplyError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import JsonValue

from tela_memory.ids import new_id
from tela_memory.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    value_problem,
)
from tela_memory.models.base import (
    ChatChunk,
    ChatResult,
    EmptyReplyError,
    InvalidToolCallError,
    Usage,
)


@dataclass(slots=True)
class _PendingCall:
    id: str | None = None
    name: str | None = None
    parts: list[str] = field(default_factory=list)

    @property
    def raw(self) -> str:
        return "".join(self.parts)


class ChunkAssembler:
    """Collects the chunks of one reply.

    Args:
        message_id: id of the message being built (a new id when ``None``); every snapshot and
            the result carry it, so a stored partial reply can be updated in place.
    """

    def __init__(self, message_id: str | None = None) -> None:
        self.message_id = message_id or new_id()
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._signature: str | None = None
        self._calls: dict[int, _PendingCall] = {}
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.chunks = 0

    def add(self, chunk: ChatChunk) -> None:
        """Take one chunk into the reply."""
        self.chunks += 1
        if chunk.text:
            self._text.append(chunk.text)
        if chunk.reasoning:
            self._reasoning.append(chunk.reasoning)
        if chunk.reasoning_signature:
            self._signature = chunk.reasoning_signature
        for delta in chunk.tool_calls:
            call = self._calls.get(delta.index)
            if call is None:
                call = self._calls[delta.index] = _PendingCall()
            if delta.id:
                call.id = delta.id
            if delta.name and not call.name:
                call.name = delta.name
            if delta.arguments:
                call.parts.append(delta.arguments)
        if chunk.usage is not None:
            self.usage = (
                chunk.usage if self.usage is None else _merge_usage(self.usage, chunk.usage)
            )
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.model:
            self.model = chunk.model

    @property
    def has_content(self) -> bool:
        """True once any text, reasoning or tool call has arrived."""
        return bool(self._text or self._reasoning or self._calls or self._signature)

    @property
    def text(self) -> str:
        """The text so far."""
        return "".join(self._text)

    def _blocks(self, *, strict: bool) -> tuple[list[Any], list[dict[str, JsonValue]]]:
        blocks: list[Any] = []
        invalid: list[dict[str, JsonValue]] = []
        if self._reasoning or self._signature:
            blocks.append(ThinkingBlock(text="".join(self._reasoning), signature=self._signature))
        text = self.text
        if text:
            blocks.append(TextBlock(text=text))
        for index in sorted(self._calls):
            call = self._calls[index]
            raw = call.raw
            problem: str | None = None
            args: Any = {}
            if raw.strip():
                try:
                    args = json.loads(raw)
                except ValueError as exc:
                    problem = f"arguments are not valid JSON ({exc})"
                else:
                    if not isinstance(args, dict):
                        problem = f"arguments must be a JSON object, got {type(args).__name__}"
                    else:
                        problem = value_problem(args, "arguments")
            if not call.name:
                problem = problem or "the tool call has no name"
            if problem is None:
                blocks.append(
                    ToolCallBlock(
                        id=call.id or f"call_{new_id()}", name=str(call.name), arguments=args
                    )
                )
            else:
                invalid.append(
                    {
                        "index": index,
                        "id": call.id,
                        "name": call.name,
                        "arguments": raw,
                        "error": problem if strict else "incomplete",
                    }
                )
        return blocks, invalid

    def snapshot(self, metadata: dict[str, JsonValue] | None = None) -> Message:
        """The reply so far as an assistant message; unfinished tool calls go to metadata."""
        blocks, pending = self._blocks(strict=False)
        meta: dict[str, JsonValue] = dict(metadata or {})
        if pending:
            meta["partial_tool_calls"] = list(pending)
        return Message(id=self.message_id, role=Role.ASSISTANT, content=blocks, metadata=meta)

    def finish_metadata(self) -> dict[str, JsonValue]:
        """Usage, finish reason and model name as message metadata."""
        meta: dict[str, JsonValue] = {}
        if self.usage is not None:
            meta["usage"] = self.usage.to_json()
        if self.finish_reason:
            meta["finish_reason"] = self.finish_reason
        if self.model:
            meta["model"] = self.model
        return meta

    def result(self, metadata: dict[str, JsonValue] | None = None) -> ChatResult:
        """The finished reply.

        Raises:
            InvalidToolCallError: a tool call's arguments are not a JSON object (the
                ``invalid_tool_calls`` attribute of the error lists them and ``partial``
                holds the reply with the valid parts).
            EmptyReplyError: nothing arrived.
        """
        blocks, invalid = self._blocks(strict=True)
        meta: dict[str, JsonValue] = {**self.finish_metadata(), **(metadata or {})}
        if invalid:
            meta["invalid_tool_calls"] = list(invalid)
            partial = Message(
                id=self.message_id, role=Role.ASSISTANT, content=blocks, metadata=meta
            )
            names = ", ".join(f"{c['name']!r}: {c['error']}" for c in invalid)
            raise InvalidToolCallError(
                f"the model produced invalid tool calls: {names}",
                partial=partial,
                invalid_tool_calls=invalid,
            )
        if not blocks:
            raise EmptyReplyError(
                f"the model returned an empty reply (finish_reason={self.finish_reason!r})",
                partial=Message(id=self.message_id, role=Role.ASSISTANT, content=[], metadata=meta),
            )
        message = Message(id=self.message_id, role=Role.ASSISTANT, content=blocks, metadata=meta)
        return ChatResult(
            message=message, usage=self.usage, finish_reason=self.finish_reason, model=self.model
        )


def _merge_usage(old: Usage, new: Usage) -> Usage:
    """Providers either repeat cumulative usage or send it once; keep the larger numbers."""
    return Usage(
        input_tokens=max(old.input_tokens, new.input_tokens),
        output_tokens=max(old.output_tokens, new.output_tokens),
        total_tokens=new.total_tokens if new.total_tokens is not None else old.total_tokens,
        reasoning_tokens=(
            new.reasoning_tokens if new.reasoning_tokens is not None else old.reasoning_tokens
        ),
        cached_tokens=new.cached_tokens if new.cached_tokens is not None else old.cached_tokens,
    )


__all__ = ["ChunkAssembler"]
