"""Any LlamaIndex ``LLM`` as a Tela Memory chat model.

Messages go out through :func:`tela_memory_llamaindex.convert.from_core_messages` after the
role rules of the provider family; replies come back as
:class:`~tela_memory.models.ChatChunk` deltas. Tools are offered through LlamaIndex's own
``chat_with_tools`` / ``stream_chat_with_tools`` (a ``FunctionCallingLLM`` is needed for them),
each :class:`~tela_memory.models.ToolSpec` wrapped as a ``BaseTool`` that keeps its JSON Schema.

LlamaIndex streams a growing message; this adapter turns it into deltas: text from
``response.delta``, reasoning from ``additional_kwargs["thinking_delta"]`` or the growth of the
``ThinkingBlock``, and the tool calls of the last response (they are complete only at the end).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms import LLM
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools.types import BaseTool, ToolMetadata, ToolOutput

from tela_memory import Message, UnsupportedOperation
from tela_memory.models import (
    ChatChunk,
    ChatModel,
    ChatResult,
    ChunkAssembler,
    ModelError,
    ProviderFamily,
    ToolCallDelta,
    ToolSpec,
    Usage,
    adapt_roles,
    family_for,
)
from tela_memory_llamaindex.convert import from_core_messages


@dataclass
class _SpecMetadata(ToolMetadata):
    parameters: dict[str, Any] | None = None

    def get_parameters_dict(self) -> dict[str, Any]:
        return dict(self.parameters or {"type": "object", "properties": {}})


class SpecTool(BaseTool):
    """A :class:`ToolSpec` as a LlamaIndex tool (schema only: the session runs no tools)."""

    def __init__(self, spec: ToolSpec) -> None:
        self.spec = spec
        self._metadata = _SpecMetadata(
            description=spec.description or spec.name,
            name=spec.name,
            fn_schema=None,
            parameters=spec.parameters,
        )

    @property
    def metadata(self) -> ToolMetadata:
        return self._metadata

    def __call__(self, input: Any) -> ToolOutput:
        raise UnsupportedOperation(
            f"tool {self.spec.name!r} is a schema only; run it yourself and add its result "
            "with Session.add_tool_result"
        )


class LlamaIndexChatModel(ChatModel):
    """Wraps a LlamaIndex LLM (``OpenAI``, ``Anthropic``, ``Ollama`` ... or any ``LLM``).

    Args:
        llm: the LlamaIndex LLM.
        family: role rules; guessed from the LLM's class name when ``None``.
    """

    def __init__(self, llm: LLM, *, family: ProviderFamily | str | None = None) -> None:
        self.llm = llm
        self.family = ProviderFamily(family) if family else family_for(type(llm).__name__)

    @property
    def model_name(self) -> str | None:
        """The model name from the LLM's metadata, if it has one."""
        try:
            name = self.llm.metadata.model_name
        except Exception:  # pragma: no cover - metadata of third-party LLMs may fail
            return None
        return name if isinstance(name, str) and name != "unknown" else None

    def _inputs(self, messages: Sequence[Message]) -> list[ChatMessage]:
        return from_core_messages(adapt_roles(messages, self.family))

    def _tools(self, tools: Sequence[ToolSpec] | None) -> list[BaseTool] | None:
        if not tools:
            return None
        if not isinstance(self.llm, FunctionCallingLLM):
            raise UnsupportedOperation(
                f"{type(self.llm).__name__} is not a FunctionCallingLLM and cannot call tools"
            )
        return [SpecTool(t) for t in tools]

    def _wrap(self, exc: Exception) -> ModelError:
        return ModelError(
            f"{type(self.llm).__name__} failed: {type(exc).__name__}: {exc}",
            provider_error=exc,
            status=getattr(exc, "status_code", None),
        )

    # -- whole replies ----------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """One reply through ``llm.chat`` (``chat_with_tools`` when tools are given)."""
        inputs, bound = self._inputs(messages), self._tools(tools)
        try:
            if bound is not None:
                assert isinstance(self.llm, FunctionCallingLLM)
                response = self.llm.chat_with_tools(
                    bound, chat_history=inputs, allow_parallel_tool_calls=True, **options
                )
            else:
                response = self.llm.chat(inputs, **options)
        except Exception as exc:
            raise self._wrap(exc) from exc
        return _result(response)

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """Async twin of :meth:`generate`."""
        inputs, bound = self._inputs(messages), self._tools(tools)
        try:
            if bound is not None:
                assert isinstance(self.llm, FunctionCallingLLM)
                response = await self.llm.achat_with_tools(
                    bound, chat_history=inputs, allow_parallel_tool_calls=True, **options
                )
            else:
                response = await self.llm.achat(inputs, **options)
        except Exception as exc:
            raise self._wrap(exc) from exc
        return _result(response)

    # -- streams ----------------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> Iterator[ChatChunk]:
        """Stream through ``llm.stream_chat`` (``stream_chat_with_tools`` with tools)."""
        inputs, bound = self._inputs(messages), self._tools(tools)
        deltas = _Deltas()
        try:
            if bound is not None:
                assert isinstance(self.llm, FunctionCallingLLM)
                responses = self.llm.stream_chat_with_tools(
                    bound, chat_history=inputs, allow_parallel_tool_calls=True, **options
                )
            else:
                responses = self.llm.stream_chat(inputs, **options)
            for response in responses:
                yield deltas.step(response)
        except (ModelError, UnsupportedOperation):
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc
        yield deltas.end()

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Async twin of :meth:`stream`."""
        inputs, bound = self._inputs(messages), self._tools(tools)
        deltas = _Deltas()
        try:
            if bound is not None:
                assert isinstance(self.llm, FunctionCallingLLM)
                responses = await self.llm.astream_chat_with_tools(
                    bound, chat_history=inputs, allow_parallel_tool_calls=True, **options
                )
            else:
                responses = await self.llm.astream_chat(inputs, **options)
            async for response in responses:
                yield deltas.step(response)
        except (ModelError, UnsupportedOperation):
            raise
        except Exception as exc:
            raise self._wrap(exc) from exc
        yield deltas.end()


def _text_of(message: ChatMessage) -> str:
    return "".join(b.text for b in message.blocks if isinstance(b, TextBlock))


def _thinking_of(message: ChatMessage) -> str:
    return "".join(b.content or "" for b in message.blocks if isinstance(b, ThinkingBlock))


def _grown(now: str, before: str) -> str:
    """What ``now`` adds to ``before`` when it extends it, else ``now`` itself (a delta)."""
    return now[len(before) :] if now.startswith(before) else now


def _tool_calls(message: ChatMessage) -> tuple[ToolCallDelta, ...]:
    calls: list[ToolCallDelta] = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            args = block.tool_kwargs
            raw = args if isinstance(args, str) else json.dumps(args)
            calls.append(ToolCallDelta(len(calls), block.tool_call_id, block.tool_name, raw))
    if calls:
        return tuple(calls)
    for item in message.additional_kwargs.get("tool_calls") or []:  # OpenAI-style objects
        data = item if isinstance(item, dict) else getattr(item, "model_dump", dict)()
        fn = data.get("function") or {}
        calls.append(
            ToolCallDelta(len(calls), data.get("id"), fn.get("name"), fn.get("arguments") or "")
        )
    return tuple(calls)


def _usage_of(response: ChatResponse) -> Usage | None:
    raw = response.raw
    data: Any = raw.get("usage") if isinstance(raw, dict) else getattr(raw, "usage", None)
    if data is not None and not isinstance(data, dict):
        data = getattr(data, "model_dump", lambda: None)()
    if not isinstance(data, dict):
        data = response.additional_kwargs
    if "prompt_tokens" in data or "input_tokens" in data:
        return Usage(
            input_tokens=int(data.get("prompt_tokens", data.get("input_tokens")) or 0),
            output_tokens=int(data.get("completion_tokens", data.get("output_tokens")) or 0),
            total_tokens=data.get("total_tokens"),
        )
    return None


def _finish_of(response: ChatResponse) -> str | None:
    raw = response.raw
    choices = raw.get("choices") if isinstance(raw, dict) else getattr(raw, "choices", None)
    if choices:
        first = choices[0]
        reason = first.get("finish_reason") if isinstance(first, dict) else None
        reason = reason or getattr(first, "finish_reason", None)
        if reason:
            return str(reason)
    stop = raw.get("stop_reason") if isinstance(raw, dict) else getattr(raw, "stop_reason", None)
    return str(stop) if stop else None


class _Deltas:
    """Turns LlamaIndex's growing responses into chunks; tool calls come at the end."""

    def __init__(self) -> None:
        self.text = ""
        self.thinking = ""
        self.last: ChatResponse | None = None
        self.calls: tuple[ToolCallDelta, ...] = ()

    def step(self, response: ChatResponse) -> ChatChunk:
        if not isinstance(response, ChatResponse):
            raise ModelError(f"the LLM streamed {type(response).__name__}, not a ChatResponse")
        text_now, thinking_now = _text_of(response.message), _thinking_of(response.message)
        text = response.delta if response.delta is not None else _grown(text_now, self.text)
        thinking_delta = response.additional_kwargs.get("thinking_delta")
        thinking = (
            thinking_delta
            if isinstance(thinking_delta, str)
            else _grown(thinking_now, self.thinking)
        )
        self.text, self.thinking = text_now, thinking_now
        self.last = response
        self.calls = _tool_calls(response.message) or self.calls
        return ChatChunk(text=text, reasoning=thinking)

    def end(self) -> ChatChunk:
        if self.last is None:
            return ChatChunk(finish_reason="stop")
        return ChatChunk(
            tool_calls=self.calls,
            usage=_usage_of(self.last),
            finish_reason=_finish_of(self.last) or ("tool_calls" if self.calls else "stop"),
        )


def _result(response: ChatResponse) -> ChatResult:
    assembler = ChunkAssembler()
    message = response.message
    calls = _tool_calls(message)
    assembler.add(
        ChatChunk(
            text=_text_of(message),
            reasoning=_thinking_of(message),
            tool_calls=calls,
            usage=_usage_of(response),
            finish_reason=_finish_of(response) or ("tool_calls" if calls else "stop"),
        )
    )
    return assembler.result()


__all__ = ["LlamaIndexChatModel", "SpecTool"]
