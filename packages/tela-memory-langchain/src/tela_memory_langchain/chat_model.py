"""Any LangChain ``BaseChatModel`` as a Tela Memory chat model.

This gives a :class:`~tela_memory.session.Session` every LangChain provider, including
``init_chat_model("provider:model")``::

    from langchain.chat_models import init_chat_model
    session = Session(
        "sqlite:///chat.db", LangChainChatModel(init_chat_model("openai:gpt-4o")), user_id="ada"
    )

Messages go out through :func:`tela_memory_langchain.convert.messages_to_langchain` after the
role rules of the provider family (:mod:`tela_memory.models.roles`); replies come back as
:class:`~tela_memory.models.ChatChunk` deltas: text, reasoning (v1 ``reasoning`` blocks,
Anthropic ``thinking``, ``reasoning_content`` kwargs), tool-call chunks, usage and finish reason.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage

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
from tela_memory_langchain.convert import messages_to_langchain


class LangChainChatModel(ChatModel):
    """Wraps a LangChain chat model.

    Args:
        model: any ``BaseChatModel`` (``ChatOpenAI``, ``ChatAnthropic``, ``init_chat_model``...).
        family: role rules; guessed from the model's class name when ``None``.

    Options given to a turn (``temperature=...``) are passed as invoke kwargs; tools are bound
    with ``model.bind_tools``.
    """

    def __init__(self, model: BaseChatModel, *, family: ProviderFamily | str | None = None) -> None:
        self.model = model
        self.family = ProviderFamily(family) if family else family_for(type(model).__name__)

    @property
    def model_name(self) -> str | None:
        """The provider's model name when the LangChain model exposes it."""
        for attr in ("model_name", "model", "model_id"):
            value = getattr(self.model, attr, None)
            if isinstance(value, str) and value:
                return value
        return None

    def _runnable(self, tools: Sequence[ToolSpec] | None) -> Any:
        if not tools:
            return self.model
        try:
            return self.model.bind_tools([t.to_openai() for t in tools])
        except NotImplementedError as exc:
            raise UnsupportedOperation(
                f"{type(self.model).__name__} cannot bind tools; use a chat model whose "
                "LangChain integration implements bind_tools, or send without tools"
            ) from exc

    def _inputs(self, messages: Sequence[Message]) -> list[BaseMessage]:
        return messages_to_langchain(adapt_roles(messages, self.family))

    def generate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """One reply through ``model.invoke`` (no streaming request)."""
        runnable = self._runnable(tools)
        inputs = self._inputs(messages)
        try:
            reply = runnable.invoke(inputs, **options)
        except Exception as exc:
            raise _wrap(exc, self.model) from exc
        return _result(reply)

    async def agenerate(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> ChatResult:
        """Async twin of :meth:`generate` (``model.ainvoke``)."""
        runnable = self._runnable(tools)
        inputs = self._inputs(messages)
        try:
            reply = await runnable.ainvoke(inputs, **options)
        except Exception as exc:
            raise _wrap(exc, self.model) from exc
        return _result(reply)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> Iterator[ChatChunk]:
        """Stream through ``model.stream``."""
        runnable = self._runnable(tools)
        inputs = self._inputs(messages)
        usage = _UsageSum()
        try:
            for piece in runnable.stream(inputs, **options):
                yield chunk_from_langchain(piece, usage)
        except (ModelError, UnsupportedOperation):
            raise
        except Exception as exc:
            raise _wrap(exc, self.model) from exc

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] | None = None,
        **options: Any,
    ) -> AsyncIterator[ChatChunk]:
        """Stream through ``model.astream``."""
        runnable = self._runnable(tools)
        inputs = self._inputs(messages)
        usage = _UsageSum()
        try:
            async for piece in runnable.astream(inputs, **options):
                yield chunk_from_langchain(piece, usage)
        except (ModelError, UnsupportedOperation):
            raise
        except Exception as exc:
            raise _wrap(exc, self.model) from exc


def _result(reply: Any) -> ChatResult:
    assembler = ChunkAssembler()
    assembler.add(chunk_from_langchain(reply))
    return assembler.result()


def _wrap(exc: Exception, model: BaseChatModel) -> ModelError:
    return ModelError(
        f"{type(model).__name__} failed: {type(exc).__name__}: {exc}",
        provider_error=exc,
        status=getattr(exc, "status_code", None),
    )


class _UsageSum:
    """LangChain chunk usage is additive; sessions expect the running total."""

    def __init__(self) -> None:
        self.total: Usage | None = None

    def add(self, data: Any) -> Usage | None:
        if not data:
            return None
        out_details = data.get("output_token_details") or {}
        in_details = data.get("input_token_details") or {}
        usage = Usage(
            input_tokens=int(data.get("input_tokens") or 0),
            output_tokens=int(data.get("output_tokens") or 0),
            total_tokens=data.get("total_tokens"),
            reasoning_tokens=out_details.get("reasoning"),
            cached_tokens=in_details.get("cache_read"),
        )
        self.total = usage if self.total is None else self.total + usage
        return self.total


def _reasoning(message: AIMessage, content: list[Any]) -> tuple[str, str | None]:
    parts: list[str] = []
    signature: str | None = None
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "reasoning":
            parts.append(str(block.get("reasoning") or ""))
            extras = block.get("extras") or {}
            signature = block.get("signature") or extras.get("signature") or signature
        elif kind == "thinking":
            parts.append(str(block.get("thinking") or ""))
            signature = block.get("signature") or signature
    kwarg = message.additional_kwargs.get("reasoning_content")
    if isinstance(kwarg, str):
        parts.append(kwarg)
    return "".join(parts), signature


def _text(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        b if isinstance(b, str) else str(b.get("text") or "")
        for b in content
        if isinstance(b, str) or (isinstance(b, dict) and b.get("type") == "text")
    )


def _tool_deltas(message: AIMessage) -> tuple[ToolCallDelta, ...]:
    if isinstance(message, AIMessageChunk) and message.tool_call_chunks:
        return tuple(
            ToolCallDelta(
                index=c.get("index") if c.get("index") is not None else i,  # type: ignore[arg-type]
                id=c.get("id"),
                name=c.get("name"),
                arguments=c.get("args") or "",
            )
            for i, c in enumerate(message.tool_call_chunks)
        )
    deltas = [
        ToolCallDelta(i, id=c.get("id"), name=c["name"], arguments=json.dumps(c["args"]))
        for i, c in enumerate(message.tool_calls)
    ]
    # calls LangChain could not parse keep their raw text, so the session reports them
    offset = len(deltas)
    deltas += [
        ToolCallDelta(
            offset + i, id=c.get("id"), name=c.get("name"), arguments=str(c.get("args") or "")
        )
        for i, c in enumerate(message.invalid_tool_calls)
    ]
    return tuple(deltas)


def chunk_from_langchain(message: Any, usage: _UsageSum | None = None) -> ChatChunk:
    """One LangChain ``AIMessageChunk`` (or a whole ``AIMessage``) as a :class:`ChatChunk`."""
    if not isinstance(message, AIMessage):
        raise ModelError(f"the LangChain model yielded {type(message).__name__}, not an AIMessage")
    content = message.content if isinstance(message.content, list) else []
    reasoning, signature = _reasoning(message, content)
    meta = message.response_metadata or {}
    finish = meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
    model = meta.get("model_name") or meta.get("model")
    return ChatChunk(
        text=_text(message.content),
        reasoning=reasoning,
        reasoning_signature=signature,
        tool_calls=_tool_deltas(message),
        usage=(usage or _UsageSum()).add(message.usage_metadata),
        finish_reason=str(finish) if finish else None,
        model=str(model) if model else None,
    )


__all__ = ["LangChainChatModel", "chunk_from_langchain"]
