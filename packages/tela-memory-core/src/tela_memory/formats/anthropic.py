"""Anthropic Messages: ``{"system", "messages"}`` with content blocks (text, image, document,
tool_use, tool_result, thinking, redacted_thinking). Other block types (server tools, web
search results ...) are kept as opaque blocks and written back as they came.

Tool results live in user messages there; here each becomes a ``tool`` message.
Not held: audio, names, ids, timestamps, metadata (reported).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec, container, conversations_units, dumps, unkept
from tela_memory.formats._io import expect
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.messages import (
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

SOURCE = "anthropic"


def _source(spec: Any, where: str) -> dict[str, Any]:
    expect(spec, dict, where, "source")
    kind = spec.get("type")
    if kind == "base64":
        return {"data": spec.get("data"), "mime_type": spec.get("media_type")}
    if kind == "url":
        return {"url": spec.get("url")}
    if kind == "file":
        return {"ref": spec.get("file_id")}
    if kind == "text":
        return {"text": spec.get("data"), "mime_type": spec.get("media_type")}
    raise FormatError(f"unknown source type {kind!r}", f"{where}.type")


def _block(raw: Any, where: str) -> ContentBlock:
    expect(raw, dict, where, "a content block")
    kind = raw.get("type")
    if kind == "text":
        return TextBlock(text=expect(raw.get("text"), str, f"{where}.text", "text"))
    if kind == "image":
        return ImageBlock(**_source(raw.get("source"), f"{where}.source"))
    if kind == "document":
        return DocumentBlock(
            title=raw.get("title"), **_source(raw.get("source"), f"{where}.source")
        )
    if kind == "tool_use":
        return ToolCallBlock(
            id=expect(raw.get("id"), str, f"{where}.id", "tool_use id"),
            name=expect(raw.get("name"), str, f"{where}.name", "tool name"),
            arguments=expect(raw.get("input", {}), dict, f"{where}.input", "tool input"),
        )
    if kind == "thinking":
        return ThinkingBlock(text=raw.get("thinking", ""), signature=raw.get("signature"))
    if kind == "redacted_thinking":
        return ThinkingBlock(redacted=True, signature=raw.get("data"))
    if isinstance(kind, str):
        return OpaqueBlock(source=SOURCE, data=raw)
    raise FormatError("content block without a type", where)


def _result(raw: dict[str, Any], where: str) -> Message:
    content = raw.get("content", "")
    if isinstance(content, list):
        blocks = [_block(b, f"{where}.content[{i}]") for i, b in enumerate(content)]
        body: Any = [b for b in blocks if isinstance(b, TextBlock | ImageBlock)]
        if len(body) != len(blocks):
            raise FormatError("tool_result content may hold only text and images", where)
    else:
        body = expect(content, str, f"{where}.content", "tool_result content")
    return Message(
        role=Role.TOOL,
        content=[
            ToolResultBlock(
                tool_call_id=expect(raw.get("tool_use_id"), str, f"{where}.tool_use_id", "id"),
                content=body,
                is_error=bool(raw.get("is_error", False)),
            )
        ],
    )


def from_anthropic(
    messages: Sequence[Any], system: Any = None, where: str = "$.messages"
) -> list[Message]:
    """Anthropic ``messages`` (and ``system``) -> messages."""
    out: list[Message] = []
    if isinstance(system, str):
        out.append(Message(role=Role.SYSTEM, content=system))
    elif isinstance(system, list) and system:
        out.append(Message(role=Role.SYSTEM, content=[_block(b, "$.system") for b in system]))
    expect(messages, list, where, "messages")
    for i, item in enumerate(messages):
        w = f"{where}[{i}]"
        expect(item, dict, w, "a message")
        role = item.get("role")
        if role not in ("user", "assistant"):
            raise FormatError(f"role must be 'user' or 'assistant', got {role!r}", f"{w}.role")
        content = item.get("content")
        if isinstance(content, str):
            out.append(Message(role=Role(role), content=content))
            continue
        expect(content, list, f"{w}.content", "content")
        rest: list[ContentBlock] = []
        for j, b in enumerate(content):
            if isinstance(b, dict) and b.get("type") == "tool_result":
                out.append(_result(b, f"{w}.content[{j}]"))
            else:
                rest.append(_block(b, f"{w}.content[{j}]"))
        if rest or not any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            out.append(Message(role=Role(role), content=rest))
    return out


def _source_fields(b: ImageBlock | DocumentBlock) -> set[str]:
    if b.data is not None:
        return {"data", "mime_type"}
    if b.url is not None:
        return {"url"}
    if b.ref is not None:
        return {"ref"}
    return {"text", "mime_type"}


def _source_out(b: ImageBlock | DocumentBlock) -> dict[str, Any]:
    if b.data is not None:
        return {"type": "base64", "media_type": b.mime_type, "data": b.data}
    if b.url is not None:
        return {"type": "url", "url": b.url}
    if b.ref is not None:
        return {"type": "file", "file_id": b.ref}
    text = b.text if isinstance(b, DocumentBlock) else None
    return {"type": "text", "media_type": b.mime_type or "text/plain", "data": text}


def _block_out(b: ContentBlock, where: str, report: LossReport) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return {"type": "text", "text": b.text}
    if isinstance(b, ImageBlock):
        unkept(b, _source_fields(b), where, report)
        return {"type": "image", "source": _source_out(b)}
    if isinstance(b, DocumentBlock):
        unkept(b, _source_fields(b) | {"title"}, where, report)
        doc: dict[str, Any] = {"type": "document", "source": _source_out(b)}
        if b.title:
            doc["title"] = b.title
        return doc
    if isinstance(b, ToolCallBlock):
        return {"type": "tool_use", "id": b.id, "name": b.name, "input": b.arguments}
    if isinstance(b, ThinkingBlock):
        if b.redacted and b.text:
            report.add("thinking.text", where, "redacted thinking keeps no text")
        if b.redacted and b.signature is None:
            report.add("thinking.signature", where, "redacted thinking without its data")
        if b.redacted:
            return {"type": "redacted_thinking", "data": b.signature or ""}
        out: dict[str, Any] = {"type": "thinking", "thinking": b.text}
        if b.signature is not None:
            out["signature"] = b.signature
        return out
    if isinstance(b, ToolResultBlock):
        content: Any = b.content
        if not isinstance(content, str):
            content = [x for c in content if (x := _block_out(c, where, report))]
        res: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": b.tool_call_id,
            "content": content,
        }
        if b.is_error:
            res["is_error"] = True
        return res
    if isinstance(b, OpaqueBlock) and b.source == SOURCE:
        return dict(b.data)
    report.add(b.type, where, f"{b.type} block has no Anthropic form")
    return None


def to_anthropic(
    messages: Sequence[Message], report: LossReport | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Messages -> ``(system blocks, messages)`` for the Anthropic Messages API."""
    report = report if report is not None else LossReport()
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        where = f"message {m.id}"
        blocks = [x for b in m.content if (x := _block_out(b, where, report))]
        if m.name:
            report.add("name", where, "message names are not kept")
        if m.role in (Role.SYSTEM, Role.DEVELOPER):
            if not out:
                system.extend(blocks)
                continue
            report.add("role", where, "a system message after the first turn is sent as user")
            out.append({"role": "user", "content": blocks})
            continue
        role = "assistant" if m.role is Role.ASSISTANT else "user"
        if (
            m.role is Role.TOOL
            and out
            and out[-1]["role"] == "user"
            and isinstance(out[-1]["content"], list)
            and all(x.get("type") == "tool_result" for x in out[-1]["content"])
        ):
            out[-1]["content"].extend(blocks)
            continue
        if len(blocks) == 1 and blocks[0]["type"] == "text" and m.role is not Role.TOOL:
            out.append({"role": role, "content": blocks[0]["text"]})
        else:
            out.append({"role": role, "content": blocks})
    return system, out


class AnthropicCodec(Codec):
    """``{"system": ..., "messages": [...]}``, a bare messages list, or a list of those."""

    name = "anthropic"
    description = "Anthropic Messages (content blocks, tool_use / tool_result, thinking)"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        yield from conversations_units(data, "messages")

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        msgs = from_anthropic(raw["messages"], raw.get("system"), f"{where}.messages")
        cid = raw.get("id")
        return Conversation.linear(
            msgs, id=None if cid is None else str(cid), title=raw.get("title")
        )

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("Anthropic Messages do not keep message ids, timestamps or metadata")
        many = len(conversations) != 1
        bodies = []
        for i, conv in enumerate(conversations):
            system, msgs = to_anthropic(
                conv.lossy_path(report, conversation_label(conv, i)), report
            )
            body: dict[str, Any] = {}
            if system:
                body["system"] = (
                    system[0]["text"]
                    if len(system) == 1 and system[0]["type"] == "text"
                    else system
                )
            body["messages"] = msgs
            bodies.append(container(conv, body, many))
        return dumps(bodies if many else bodies[0])


__all__ = ["AnthropicCodec", "from_anthropic", "to_anthropic"]
