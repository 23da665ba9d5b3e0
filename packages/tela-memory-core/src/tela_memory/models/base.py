"""The chat model protocol: what a :class:`~tela_memory.session.Session` talks to.

A chat model takes a list of :class:`~tela_memory.messages.Message` and either returns one
assistant reply (:meth:`ChatModel.generate`) or streams it as :class:`ChatChunk` deltas
(:meth:`ChatModel.stream`), sync or async. Adapters implement the two streaming methods; the
generate methods assemble the stream unless an adapter has a better native path.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from pydantic import JsonValue

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.models.roles import ProviderFamily


class ModelError(TelaMemoryError):
    """The chat model failed; ``provider_error`` is what the provider raised or returned.

    Attributes:
        provider_error: the original exception (also the ``__cause__``), if any.
        status: the HTTP status, when the model answered over HTTP.
        body: the provider's error body, when there was one.
        partial: the reply as far as it got (as stored, when a session stored it).
    """

    def __init__(
        self,
        message: str,
        *,
        provider_error: BaseException | None = None,
        status: int | None = None,
        body: str | None = None,
        partial: Message | None = None,
    ) -> None:
        super().__init__(message)
        self.provider_error = provider_error
        self.status = status
        self.body = body
        self.partial = partial


class InvalidToolCallError(ModelError):
    """The model produced a tool call that cannot be used (arguments not a JSON object, no name).

    Attributes:
        invalid_tool_calls: one dict per bad call: index, id, name, raw arguments, error.
    """

    def __init__(
        self,
        message: str,
        *,
        invalid_tool_calls: list[dict[str, JsonValue]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.invalid_tool_calls = invalid_tool_calls or []


class EmptyReplyError(ModelError):
    """The model ended its reply without any text, reasoning or tool call."""


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: ``parameters`` is a JSON Schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object"})

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry for this tool."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one reply."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None

    def to_json(self) -> dict[str, JsonValue]:
        """A JSON dict (``None`` fields left out) for message metadata."""
        out: dict[str, JsonValue] = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": (
                self.total_tokens
                if self.total_tokens is not None
                else self.input_tokens + self.output_tokens
            ),
        }
        if self.reasoning_tokens is not None:
            out["reasoning_tokens"] = self.reasoning_tokens
        if self.cached_tokens is not None:
            out["cached_tokens"] = self.cached_tokens
        return out

    def __add__(self, other: Usage) -> Usage:
        def _sum(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=_sum(self.total_tokens, other.total_tokens),
            reasoning_tokens=_sum(self.reasoning_tokens, other.reasoning_tokens),
            cached_tokens=_sum(self.cached_tokens, other.cached_tokens),
        )


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call; pieces with the same ``index`` belong to one call.

    ``id`` and ``name`` usually come with the first piece, ``arguments`` is a fragment of the
    JSON text of the arguments.
    """

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed delta of a reply: text, reasoning, tool-call pieces, and at the end usage."""

    text: str = ""
    reasoning: str = ""
    reasoning_signature: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when the chunk carries no content delta (it may still carry usage)."""
        return not (self.text or self.reasoning or self.tool_calls or self.reasoning_signature)


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A whole reply: the assistant message (no thread ids yet), usage and finish reason."""

    message: Message
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str | None = None


class ChatModel(ABC):
    """Base class of chat models (the protocol :class:`~tela_memory.session.Session` uses).

    Subclasses implement :meth:`stream` and :meth:`astream`; :meth:`generate` and
    :meth:`agenerate` assemble the stream (override them where a native call is better).
    Errors from the provider are raised as :class:`ModelError` with the original attached.
    """

    #: Which provider family's role rules apply (see :mod:`tela_memory.models.roles`).
    family: ProviderFamily = ProviderFamily.OPENAI_COMPATIBLE

    @property
    def model_name(self) -> str | None:
        """The model's name as the provider knows it, if known."""
        return None

    @abstractmethod
    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> Iterator[ChatChunk]:
        """Stream a reply to ``messages`` as chunks."""

    @abstractmethod
    def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Async twin of :meth:`stream` (an async generator)."""

    def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """The whole reply to ``messages``."""
        from tela_memory.models.assemble import ChunkAssembler

        assembler = ChunkAssembler()
        for chunk in self.stream(messages, tools=tools, **options):
            assembler.add(chunk)
        return assembler.result()

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """Async twin of :meth:`generate`."""
        from tela_memory.models.assemble import ChunkAssembler

        assembler = ChunkAssembler()
        async for chunk in self.astream(messages, tools=tools, **options):
            assembler.add(chunk)
        return assembler.result()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients this model opened."""

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = [
    "ChatChunk",
    "ChatModel",
    "ChatResult",
    "EmptyReplyError",
    "InvalidToolCallError",
    "ModelError",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
]
