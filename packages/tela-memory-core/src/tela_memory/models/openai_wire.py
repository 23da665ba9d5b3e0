"""The OpenAI chat-completions wire format: messages out, completions and stream chunks in.

Pure functions (no I/O), shared by the sync and async paths of
:class:`~tela_memory.models.openai.OpenAICompatible`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

from tela_memory.messages import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ToolCallBlock,
)
from tela_memory.models.base import ChatChunk, ModelError, ToolCallDelta, Usage
from tela_memory.models.roles import ProviderFamily, role_map


def _image_part(block: ImageBlock) -> dict[str, Any]:
    if block.url is not None:
        url = block.url
    elif block.data is not None:
        url = f"data:{block.mime_type or 'image/png'};base64,{block.data}"
    else:
        url = str(block.ref)
    part: dict[str, Any] = {"type": "image_url", "image_url": {"url": url}}
    if block.detail:
        part["image_url"]["detail"] = block.detail
    return part


def _content_parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, AudioBlock):
            if block.data is not None:
                fmt = (block.mime_type or "audio/wav").rsplit("/", 1)[-1]
                parts.append(
                    {"type": "input_audio", "input_audio": {"data": block.data, "format": fmt}}
                )
            elif block.transcript:
                parts.append({"type": "text", "text": block.transcript})
        elif isinstance(block, DocumentBlock):
            if block.text is not None:
                title = f"{block.title}\n\n" if block.title else ""
                parts.append({"type": "text", "text": title + block.text})
            elif block.data is not None:
                file: dict[str, Any] = {
                    "file_data": f"data:{block.mime_type or 'application/pdf'};base64,{block.data}"
                }
                if block.title:
                    file["filename"] = block.title
                parts.append({"type": "file", "file": file})
            elif block.ref is not None:
                parts.append({"type": "file", "file": {"file_id": block.ref}})
        # thinking, tool blocks and opaque blocks are not content parts in this format
    return parts


def _flatten(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if all(p["type"] == "text" for p in parts):
        return "\n".join(p["text"] for p in parts)
    return parts


def to_openai_messages(
    messages: Sequence[Message], family: ProviderFamily | str = ProviderFamily.OPENAI_COMPATIBLE
) -> list[dict[str, Any]]:
    """Convert messages to OpenAI chat ``messages``, with the role rules of ``family``."""
    roles = role_map(family)
    out: list[dict[str, Any]] = []
    for message in messages:
        wire = roles.wire_role(message.role) or "system"
        if message.role is Role.TOOL:
            for result in message.tool_results:
                out.append(
                    {"role": wire, "tool_call_id": result.tool_call_id, "content": result.text}
                )
                images = (
                    [b for b in result.content if isinstance(b, ImageBlock)]
                    if isinstance(result.content, list)
                    else []
                )
                if images and roles.tool_images == "follow_up_user":
                    out.append({"role": roles.user, "content": [_image_part(b) for b in images]})
            continue
        entry: dict[str, Any] = {"role": wire}
        parts = _content_parts(message)
        if message.role is Role.ASSISTANT:
            calls = message.tool_calls
            entry["content"] = _flatten(parts) if parts else (None if calls else "")
            if calls:
                entry["tool_calls"] = [_tool_call(c) for c in calls]
        else:
            entry["content"] = _flatten(parts)
        if message.name and message.role in (Role.USER, Role.ASSISTANT):
            entry["name"] = message.name
        out.append(entry)
    return out


def _tool_call(call: ToolCallBlock) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {
            "name": call.name,
            "arguments": json.dumps(call.arguments, ensure_ascii=False),
        },
    }


def parse_usage(data: Any) -> Usage | None:
    """Usage from an OpenAI ``usage`` object (``None`` when absent)."""
    if not isinstance(data, dict):
        return None
    details = data.get("completion_tokens_details") or {}
    prompt_details = data.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        total_tokens=data.get("total_tokens"),
        reasoning_tokens=details.get("reasoning_tokens") if isinstance(details, dict) else None,
        cached_tokens=prompt_details.get("cached_tokens")
        if isinstance(prompt_details, dict)
        else None,
    )


def _reasoning_of(delta: dict[str, Any]) -> str:
    # DeepSeek / vLLM say reasoning_content; Ollama / OpenRouter / LM Studio say reasoning
    value = delta.get("reasoning_content") or delta.get("reasoning") or ""
    return value if isinstance(value, str) else ""


def _error_of(data: dict[str, Any]) -> ModelError | None:
    error = data.get("error")
    if error is None:
        return None
    text = error.get("message") if isinstance(error, dict) else str(error)
    return ModelError(f"the model reported an error: {text}", body=json.dumps(error))


def _shape_checked(
    what: str,
) -> Callable[[Callable[[dict[str, Any]], ChatChunk]], Callable[[dict[str, Any]], ChatChunk]]:
    """A payload that is JSON but not of the documented shape (a string where an object
    belongs, ``"index": "a"`` ...) raises :class:`ModelError` with the body, not a TypeError."""

    def decorate(
        parse: Callable[[dict[str, Any]], ChatChunk],
    ) -> Callable[[dict[str, Any]], ChatChunk]:
        @functools.wraps(parse)
        def checked(data: dict[str, Any]) -> ChatChunk:
            try:
                return parse(data)
            except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
                body = json.dumps(data, default=str)
                raise ModelError(
                    f"the server sent a {what} of an unexpected shape ({exc}): {body[:200]}",
                    provider_error=exc,
                    body=body,
                ) from exc

        return checked

    return decorate


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"content is {type(value).__name__}, not a string")
    return value


@_shape_checked("stream chunk")
def parse_stream_event(data: dict[str, Any]) -> ChatChunk:
    """One ``chat.completion.chunk`` (a parsed SSE ``data:`` line) as a :class:`ChatChunk`."""
    error = _error_of(data)
    if error is not None:
        raise error
    choices = data.get("choices") or []
    usage = parse_usage(data.get("usage"))
    model = data.get("model")
    if not choices:
        return ChatChunk(usage=usage, model=model)
    choice = choices[0]
    delta = choice.get("delta") or {}
    calls = tuple(
        ToolCallDelta(
            index=int(c.get("index", i)),
            id=c.get("id"),
            name=(c.get("function") or {}).get("name"),
            arguments=(c.get("function") or {}).get("arguments") or "",
        )
        for i, c in enumerate(delta.get("tool_calls") or [])
    )
    return ChatChunk(
        text=_text(delta.get("content")),
        reasoning=_reasoning_of(delta),
        tool_calls=calls,
        usage=usage,
        finish_reason=choice.get("finish_reason"),
        model=model,
    )


@_shape_checked("completion")
def completion_as_chunk(data: dict[str, Any]) -> ChatChunk:
    """A whole (non-streamed) ``chat.completion`` as one chunk, to assemble like a stream."""
    error = _error_of(data)
    if error is not None:
        raise error
    choices = data.get("choices") or []
    if not choices:
        raise ModelError("the model returned no choices", body=json.dumps(data)[:2000])
    choice = choices[0]
    message = choice.get("message") or {}
    calls = tuple(
        ToolCallDelta(
            index=i,
            id=c.get("id"),
            name=(c.get("function") or {}).get("name"),
            arguments=(c.get("function") or {}).get("arguments") or "",
        )
        for i, c in enumerate(message.get("tool_calls") or [])
    )
    return ChatChunk(
        text=_text(message.get("content")),
        reasoning=_reasoning_of(message),
        tool_calls=calls,
        usage=parse_usage(data.get("usage")),
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
    )


class SSEDecoder:
    """Turns lines of a ``text/event-stream`` into the JSON payloads of its ``data:`` events."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self.done = False

    def feed(self, line: str) -> dict[str, Any] | None:
        """Feed one line (without its newline); return a payload when an event completes."""
        if line == "":
            return self._flush()
        if line.startswith(":"):
            return None  # comment / keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def _flush(self) -> dict[str, Any] | None:
        if not self._data:
            return None
        text = "\n".join(self._data)
        self._data = []
        if text.strip() == "[DONE]":
            self.done = True
            return None
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"the server sent an event that is not JSON: {text[:200]!r}") from exc
        if not isinstance(payload, dict):
            raise ModelError(f"the server sent an event that is not an object: {text[:200]!r}")
        return payload

    def close(self) -> dict[str, Any] | None:
        """End of stream: flush a last event without a trailing blank line."""
        return self._flush()


__all__ = [
    "SSEDecoder",
    "completion_as_chunk",
    "parse_stream_event",
    "parse_usage",
    "to_openai_messages",
]
