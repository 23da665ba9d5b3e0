"""Gemini ``contents``: ``{"system_instruction", "contents": [{"role", "parts"}]}`` with text,
thought parts (``thought_signature`` kept), ``inline_data``, ``file_data``,
``function_call`` and ``function_response`` parts (snake_case or camelCase on input).

A function call without an ``id`` gets one (``call_<n>``); responses are matched to calls
by id, else by name. Not held: names, ids, timestamps, metadata, redacted thinking.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import (
    Codec,
    container,
    conversations_units,
    dumps,
    unkept,
    unkept_name,
)
from tela_memory.formats._io import expect
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
)


def _get(d: dict[str, Any], snake: str) -> Any:
    head, *rest = snake.split("_")
    camel = head + "".join(w.title() for w in rest)
    return d.get(snake, d.get(camel))


def _media(mime: str | None, **src: Any) -> ContentBlock:
    kind = (mime or "").split("/")[0]
    if kind == "image":
        return ImageBlock(mime_type=mime, **src)
    if kind == "audio":
        return AudioBlock(mime_type=mime, **src)
    return DocumentBlock(mime_type=mime, **src)


def from_gemini(
    contents: Sequence[Any], system: Any = None, where: str = "$.contents"
) -> list[Message]:
    """Gemini ``contents`` (and ``system_instruction``) -> messages."""
    out: list[Message] = []
    if isinstance(system, dict):
        texts = [p.get("text", "") for p in system.get("parts", []) if isinstance(p, dict)]
        out.append(Message(role=Role.SYSTEM, content="\n".join(texts)))
    elif isinstance(system, str):
        out.append(Message(role=Role.SYSTEM, content=system))
    expect(contents, list, where, "contents")
    pending: list[tuple[str, str]] = []  # (call id, name) awaiting a response
    n_calls = 0
    for i, item in enumerate(contents):
        w = f"{where}[{i}]"
        expect(item, dict, w, "a content")
        role = item.get("role", "user")
        if role not in ("user", "model", "function", "tool"):
            raise FormatError(f"role must be 'user' or 'model', got {role!r}", f"{w}.role")
        blocks: list[ContentBlock] = []
        for j, part in enumerate(expect(item.get("parts"), list, f"{w}.parts", "parts")):
            pw = f"{w}.parts[{j}]"
            expect(part, dict, pw, "a part")
            if (fc := _get(part, "function_call")) is not None:
                n_calls += 1
                call_id = str(fc.get("id") or f"call_{n_calls}")
                name = expect(fc.get("name"), str, f"{pw}.function_call.name", "name")
                pending.append((call_id, name))
                blocks.append(ToolCallBlock(id=call_id, name=name, arguments=fc.get("args") or {}))
            elif (fr := _get(part, "function_response")) is not None:
                name = fr.get("name")
                call_id = fr.get("id")
                match = next(
                    (p for p in pending if p[0] == call_id or (call_id is None and p[1] == name)),
                    None,
                )
                if match is None:
                    raise FormatError(f"function_response {name!r} answers no earlier call", pw)
                pending.remove(match)
                resp = fr.get("response", {})
                text = (
                    resp["result"]
                    if isinstance(resp, dict)
                    and set(resp) == {"result"}
                    and isinstance(resp["result"], str)
                    else json.dumps(resp)
                )
                out.append(Message.tool(match[0], text, name=None))
            elif (data := _get(part, "inline_data")) is not None:
                blocks.append(_media(_get(data, "mime_type"), data=data.get("data")))
            elif (fd := _get(part, "file_data")) is not None:
                blocks.append(_media(_get(fd, "mime_type"), url=_get(fd, "file_uri")))
            elif "text" in part:
                text = expect(part["text"], str, f"{pw}.text", "text")
                if part.get("thought"):
                    blocks.append(
                        ThinkingBlock(text=text, signature=_get(part, "thought_signature"))
                    )
                else:
                    blocks.append(TextBlock(text=text))
            else:
                raise FormatError(f"unknown part with keys {sorted(part)}", pw)
        if blocks:
            out.append(
                Message(role=Role.ASSISTANT if role == "model" else Role.USER, content=blocks)
            )
    return out


def _part_out(b: ContentBlock, where: str, report: LossReport) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return {"text": b.text}
    if isinstance(b, ThinkingBlock):
        if b.redacted:
            report.add("thinking", where, "redacted thinking has no Gemini form")
            return None
        part: dict[str, Any] = {"text": b.text, "thought": True}
        if b.signature is not None:
            part["thought_signature"] = b.signature
        return part
    if isinstance(b, ToolCallBlock):
        return {"function_call": {"id": b.id, "name": b.name, "args": b.arguments}}
    if isinstance(b, ImageBlock | AudioBlock | DocumentBlock):
        if b.data is not None or b.url is not None:
            unkept(b, {"data" if b.data is not None else "url", "mime_type"}, where, report)
            if b.mime_type is None:
                report.add(
                    f"{b.type}.mime_type",
                    where,
                    f"{b.type} without a MIME type is sent as "
                    "application/octet-stream (read back as a document of that type)",
                )
        if b.data is not None:
            return {
                "inline_data": {
                    "mime_type": b.mime_type or "application/octet-stream",
                    "data": b.data,
                }
            }
        if b.url is not None:
            return {
                "file_data": {
                    "mime_type": b.mime_type or "application/octet-stream",
                    "file_uri": b.url,
                }
            }
        if isinstance(b, DocumentBlock) and b.text is not None:
            report.add("document", where, "document text sent as a text part")
            return {"text": b.text}
        report.add(b.type, where, f"{b.type} by reference has no Gemini form")
        return None
    report.add(b.type, where, f"{b.type} block has no Gemini form")
    return None


def to_gemini(
    messages: Sequence[Message], report: LossReport | None = None
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Messages -> ``(system_instruction, contents)``."""
    report = report if report is not None else LossReport()
    system_texts: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for m in messages:
        where = f"message {m.id}"
        unkept_name(m, where, report)
        if m.role in (Role.SYSTEM, Role.DEVELOPER) and not contents:
            if system_texts:
                report.add("system", where, "system messages are joined into one instruction")
            if any(not isinstance(b, TextBlock) for b in m.content) or m.role is Role.DEVELOPER:
                report.add("system", where, "only the text of a system message is kept")
            system_texts.append(m.text)
            continue
        if m.role is Role.TOOL:
            for r in m.tool_results:
                if r.is_error:
                    report.add("tool_result.is_error", where, "is_error is not kept")
                if not isinstance(r.content, str):
                    report.add("tool_result.content", where, "blocks written as their text")
                resp = {"result": r.text}
                part = {
                    "function_response": {
                        "id": r.tool_call_id,
                        "name": names.get(r.tool_call_id, "tool"),
                        "response": resp,
                    }
                }
                contents.append({"role": "user", "parts": [part]})
            continue
        for c in m.tool_calls:
            names[c.id] = c.name
        if m.role in (Role.SYSTEM, Role.DEVELOPER):
            report.add("role", where, "a system message after the first turn is sent as user")
        parts = [p for b in m.content if (p := _part_out(b, where, report))]
        contents.append({"role": "model" if m.role is Role.ASSISTANT else "user", "parts": parts})
    system = {"parts": [{"text": "\n".join(system_texts)}]} if system_texts else None
    return system, contents


class GeminiCodec(Codec):
    """``{"system_instruction", "contents"}``, a bare contents list, or a list of those."""

    name = "gemini"
    description = "Google Gemini contents (parts, function calls, thoughts)"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        yield from conversations_units(data, "contents")

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        system = _get(raw, "system_instruction")
        msgs = from_gemini(raw["contents"], system, f"{where}.contents")
        cid = raw.get("id")
        return Conversation.linear(msgs, id=None if cid is None else str(cid))

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("Gemini contents do not keep message ids, timestamps or metadata")
        many = len(conversations) != 1
        bodies = []
        for i, conv in enumerate(conversations):
            system, contents = to_gemini(
                conv.lossy_path(report, conversation_label(conv, i)), report
            )
            body: dict[str, Any] = {}
            if system:
                body["system_instruction"] = system
            body["contents"] = contents
            bodies.append(container(conv, body, many))
        return dumps(bodies if many else bodies[0])


__all__ = ["GeminiCodec", "from_gemini", "to_gemini"]
