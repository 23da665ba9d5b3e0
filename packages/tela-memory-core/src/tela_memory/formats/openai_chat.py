"""OpenAI Chat Completions ``messages`` (content parts, ``tool_calls``, ``tool`` messages).

Reading also accepts ``reasoning_content`` (DeepSeek-style reasoning) as a thinking block.
Not held: thinking, document references, ids, timestamps, metadata (all reported).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec, container, conversations_units, dumps, unkept
from tela_memory.formats._io import data_url, expect, split_data_url
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.messages import (
    AudioBlock,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

_ROLES = {"system", "developer", "user", "assistant", "tool"}


def parse_arguments(raw: Any, where: str) -> dict[str, Any]:
    """Tool-call arguments given as a JSON string (or object) -> dict."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    expect(raw, str, where, "tool call arguments")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FormatError(f"tool call arguments are not valid JSON: {exc.msg}", where) from exc
    if not isinstance(value, dict):
        raise FormatError("tool call arguments must be a JSON object", where)
    return value


def _part_to_block(part: Any, where: str) -> ContentBlock:
    if isinstance(part, str):
        return TextBlock(text=part)
    expect(part, dict, where, "a content part")
    kind = part.get("type")
    if kind in ("text", "refusal"):
        return TextBlock(text=expect(part.get(kind), str, f"{where}.{kind}", "text"))
    if kind == "image_url":
        spec = part.get("image_url")
        spec = {"url": spec} if isinstance(spec, str) else expect(spec, dict, where, "image_url")
        url = expect(spec.get("url"), str, f"{where}.image_url.url", "image url")
        parsed = split_data_url(url)
        src: dict[str, Any] = (
            {"url": url} if parsed is None else {"data": parsed[1], "mime_type": parsed[0]}
        )
        return ImageBlock(detail=spec.get("detail"), **src)
    if kind == "input_audio":
        spec = expect(part.get("input_audio"), dict, where, "input_audio")
        fmt = spec.get("format")
        return AudioBlock(data=spec.get("data"), mime_type=f"audio/{fmt}" if fmt else None)
    if kind == "file":
        spec = expect(part.get("file"), dict, where, "file")
        title = spec.get("filename")
        if spec.get("file_id"):
            return DocumentBlock(ref=spec["file_id"], title=title)
        parsed = split_data_url(str(spec.get("file_data", "")))
        if parsed is None:
            raise FormatError("file part needs file_id or a base64 file_data URL", where)
        return DocumentBlock(data=parsed[1], mime_type=parsed[0], title=title)
    raise FormatError(f"unknown content part type {kind!r}", where)


def message_from_openai(item: Any, where: str) -> Message:
    """One Chat Completions message dict -> ``Message``."""
    expect(item, dict, where, "a message")
    role = item.get("role")
    if role not in _ROLES:
        raise FormatError(f"unknown role {role!r} (expected one of {sorted(_ROLES)})", where)
    content = item.get("content")
    blocks: list[Any] = []
    if role == "tool":
        call_id = expect(item.get("tool_call_id"), str, f"{where}.tool_call_id", "tool_call_id")
        if isinstance(content, list):
            parts = [_part_to_block(p, f"{where}.content[{i}]") for i, p in enumerate(content)]
            result: Any = [p for p in parts if isinstance(p, TextBlock | ImageBlock)]
        else:
            result = content or ""
        return Message(
            role=Role.TOOL,
            content=[ToolResultBlock(tool_call_id=call_id, content=result)],
            name=item.get("name"),
        )
    if isinstance(item.get("reasoning_content"), str):
        blocks.append(ThinkingBlock(text=item["reasoning_content"]))
    if isinstance(content, str):
        blocks.append(TextBlock(text=content))
    elif isinstance(content, list):
        blocks.extend(_part_to_block(p, f"{where}.content[{i}]") for i, p in enumerate(content))
    elif content is not None:
        raise FormatError("content must be a string, a list of parts or null", f"{where}.content")
    for i, call in enumerate(item.get("tool_calls") or []):
        cw = f"{where}.tool_calls[{i}]"
        expect(call, dict, cw, "a tool call")
        fn = expect(call.get("function"), dict, f"{cw}.function", "function")
        blocks.append(
            ToolCallBlock(
                id=expect(call.get("id"), str, f"{cw}.id", "tool call id"),
                name=expect(fn.get("name"), str, f"{cw}.function.name", "function name"),
                arguments=parse_arguments(fn.get("arguments"), f"{cw}.function.arguments"),
            )
        )
    return Message(role=Role(role), content=blocks, name=item.get("name"))


def _block_to_part(b: ContentBlock, where: str, report: LossReport) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return {"type": "text", "text": b.text}
    if isinstance(b, ImageBlock):
        if b.ref is not None:
            report.add("image", where, f"image by reference {b.ref!r} has no Chat Completions form")
            return None
        unkept(
            b,
            {"url", "detail"} | ({"data", "mime_type"} if b.url is None else set()),
            where,
            report,
        )
        if b.url is None and b.mime_type is None:
            report.add("image.mime_type", where, "no MIME type for the data URL")
        url = b.url if b.url is not None else data_url(b.mime_type, b.data or "")
        spec: dict[str, Any] = {"url": url}
        if b.detail:
            spec["detail"] = b.detail
        return {"type": "image_url", "image_url": spec}
    if isinstance(b, AudioBlock):
        if b.data is None:
            report.add("audio", where, "only inline audio can be sent")
            return None
        unkept(b, {"data", "mime_type"}, where, report)
        fmt = (b.mime_type or "audio/wav").split("/")[-1]
        return {"type": "input_audio", "input_audio": {"data": b.data, "format": fmt}}
    if isinstance(b, DocumentBlock):
        file: dict[str, Any] = {}
        if b.ref is not None or b.data is not None:
            kept = {"title", "ref"} if b.ref is not None else {"title", "data", "mime_type"}
            unkept(b, kept, where, report)
            if b.ref is None and b.mime_type is None:
                report.add("document.mime_type", where, "no MIME type for the data URL")
        if b.ref is not None:
            file["file_id"] = b.ref
        elif b.data is not None:
            file["file_data"] = data_url(b.mime_type, b.data)
        elif b.text is not None:
            report.add("document", where, "document text sent as a text part")
            return {"type": "text", "text": b.text}
        else:
            report.add("document", where, "document by URL has no Chat Completions form")
            return None
        if b.title:
            file["filename"] = b.title
        return {"type": "file", "file": file}
    report.add(b.type, where, f"{b.type} block has no Chat Completions form")
    return None


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return str(parts[0]["text"])
    return parts


def message_to_openai(m: Message, where: str, report: LossReport) -> list[dict[str, Any]]:
    """``Message`` -> Chat Completions message dicts (a tool message may become several)."""
    if m.role is Role.TOOL:
        out = []
        for r in m.tool_results:
            if isinstance(r.content, str):
                body: Any = r.content
            else:
                body = [p for b in r.content if (p := _block_to_part(b, where, report))]
            if r.is_error:
                report.add("tool_error_flag", where, "is_error is not kept")
            item: dict[str, Any] = {"role": "tool", "tool_call_id": r.tool_call_id, "content": body}
            if m.name:
                item["name"] = m.name
            out.append(item)
        return out
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for b in m.content:
        if isinstance(b, ToolCallBlock):
            calls.append(
                {
                    "id": b.id,
                    "type": "function",
                    "function": {"name": b.name, "arguments": json.dumps(b.arguments)},
                }
            )
        elif (part := _block_to_part(b, where, report)) is not None:
            parts.append(part)
    msg: dict[str, Any] = {"role": m.role.value}
    if parts:
        msg["content"] = _content(parts)
    else:
        msg["content"] = None if calls else ""
    if m.name:
        msg["name"] = m.name
    if calls:
        msg["tool_calls"] = calls
    return [msg]


def to_openai_chat(
    messages: Sequence[Message], report: LossReport | None = None
) -> list[dict[str, Any]]:
    """Messages -> a Chat Completions ``messages`` list."""
    report = report if report is not None else LossReport()
    out: list[dict[str, Any]] = []
    for m in messages:
        out.extend(message_to_openai(m, f"message {m.id}", report))
    return out


def from_openai_chat(items: Sequence[Any], where: str = "$") -> list[Message]:
    """A Chat Completions ``messages`` list -> messages."""
    expect(items, list, where, "messages")
    return [message_from_openai(x, f"{where}[{i}]") for i, x in enumerate(items)]


class OpenAIChatCodec(Codec):
    """OpenAI Chat Completions messages; a list, ``{"messages": [...]}`` or a list of those."""

    name = "openai"
    description = "OpenAI Chat Completions messages"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        yield from conversations_units(data, "messages")

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        msgs = from_openai_chat(raw["messages"], f"{where}.messages")
        return Conversation.linear(
            msgs, id=_opt_str(raw.get("id")), title=_opt_str(raw.get("title"))
        )

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("OpenAI Chat Completions does not keep message ids, timestamps or metadata")
        many = len(conversations) != 1
        bodies = []
        for i, conv in enumerate(conversations):
            path = conv.lossy_path(report, conversation_label(conv, i))
            bodies.append(container(conv, {"messages": to_openai_chat(path, report)}, many))
        return dumps(bodies if many else bodies[0]["messages"])


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


__all__ = ["OpenAIChatCodec", "from_openai_chat", "parse_arguments", "to_openai_chat"]
