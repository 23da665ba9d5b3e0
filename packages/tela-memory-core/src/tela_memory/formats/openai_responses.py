"""OpenAI Responses API input items: ``message`` (input_text / output_text / input_image /
input_file), ``function_call``, ``function_call_output`` and ``reasoning`` (summary text and
``encrypted_content``, kept as a thinking block's signature). Other item types are kept as
opaque blocks. Consecutive assistant-side items (reasoning, message, function calls) form one
assistant message. Not held: audio, names, ids, timestamps, metadata (reported).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec, container, dumps, unkept, unkept_name
from tela_memory.formats._io import data_url, expect, split_data_url
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.formats.openai_chat import parse_arguments
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
)

SOURCE = "openai-responses"
_ROLES = {"system", "developer", "user", "assistant"}


def _part(raw: Any, where: str) -> ContentBlock:
    if isinstance(raw, str):
        return TextBlock(text=raw)
    expect(raw, dict, where, "a content part")
    kind = raw.get("type")
    if kind in ("input_text", "output_text", "text"):
        return TextBlock(text=expect(raw.get("text"), str, f"{where}.text", "text"))
    if kind == "refusal":
        return TextBlock(text=str(raw.get("refusal", "")))
    if kind == "input_image":
        if raw.get("file_id"):
            return ImageBlock(ref=raw["file_id"], detail=raw.get("detail"))
        url = expect(raw.get("image_url"), str, f"{where}.image_url", "image_url")
        parsed = split_data_url(url)
        src: dict[str, Any] = (
            {"url": url} if parsed is None else {"data": parsed[1], "mime_type": parsed[0]}
        )
        return ImageBlock(detail=raw.get("detail"), **src)
    if kind == "input_file":
        if raw.get("file_id"):
            return DocumentBlock(ref=raw["file_id"], title=raw.get("filename"))
        if raw.get("file_url"):
            return DocumentBlock(url=raw["file_url"], title=raw.get("filename"))
        parsed = split_data_url(str(raw.get("file_data", "")))
        if parsed is None:
            raise FormatError("input_file needs file_id, file_url or a data URL", where)
        return DocumentBlock(data=parsed[1], mime_type=parsed[0], title=raw.get("filename"))
    raise FormatError(f"unknown content part type {kind!r}", where)


def from_responses(items: Sequence[Any], where: str = "$") -> list[Message]:
    """Responses input items -> messages."""
    expect(items, list, where, "input items")
    out: list[Message] = []
    open_assistant = False  # may the next assistant-side item join the last message?

    def add_to_assistant(blocks: list[ContentBlock], *, text: bool) -> None:
        nonlocal open_assistant
        last = out[-1] if out and open_assistant and out[-1].role is Role.ASSISTANT else None
        if (
            last is not None
            and text
            and (last.tool_calls or any(isinstance(b, TextBlock) for b in last.content))
        ):
            last = None
        if last is not None:
            out[-1] = last.model_copy(update={"content": [*last.content, *blocks]})
        else:
            out.append(Message(role=Role.ASSISTANT, content=blocks))
        open_assistant = True

    for i, item in enumerate(items):
        w = f"{where}[{i}]"
        expect(item, dict, w, "an input item")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise FormatError(f"unknown role {role!r}", f"{w}.role")
            content = item.get("content")
            parts = [content] if isinstance(content, str) else expect(content, list, w, "content")
            blocks = [_part(p, f"{w}.content[{j}]") for j, p in enumerate(parts)]
            if role == "assistant":
                add_to_assistant(blocks, text=True)
            else:
                out.append(Message(role=Role(role), content=blocks))
                open_assistant = False
        elif kind == "function_call":
            add_to_assistant(
                [
                    ToolCallBlock(
                        id=expect(item.get("call_id"), str, f"{w}.call_id", "call_id"),
                        name=expect(item.get("name"), str, f"{w}.name", "name"),
                        arguments=parse_arguments(item.get("arguments"), f"{w}.arguments"),
                    )
                ],
                text=False,
            )
        elif kind == "function_call_output":
            output = item.get("output", "")
            if isinstance(output, list):
                blocks = [_part(p, f"{w}.output[{j}]") for j, p in enumerate(output)]
                output = [b for b in blocks if isinstance(b, TextBlock | ImageBlock)]
            out.append(
                Message.tool(expect(item.get("call_id"), str, f"{w}.call_id", "call_id"), output)
            )
            open_assistant = False
        elif kind == "reasoning":
            summary = item.get("summary") or []
            text = "\n".join(str(s.get("text", "")) for s in summary if isinstance(s, dict))
            add_to_assistant(
                [ThinkingBlock(text=text, signature=item.get("encrypted_content"))], text=False
            )
        elif isinstance(kind, str):
            add_to_assistant([OpaqueBlock(source=SOURCE, data=item)], text=False)
        else:
            raise FormatError("item type must be a string", f"{w}.type")
    return out


def _part_out(b: ContentBlock, role: Role, where: str, report: LossReport) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return {"type": "output_text" if role is Role.ASSISTANT else "input_text", "text": b.text}
    if isinstance(b, ImageBlock):
        img: dict[str, Any] = {"type": "input_image"}
        source = (
            {"ref"}
            if b.ref is not None
            else {"url"}
            if b.url is not None
            else {"data", "mime_type"}
        )
        unkept(b, {"detail"} | source, where, report)
        if source == {"data", "mime_type"} and b.mime_type is None:
            report.add("image.mime_type", where, "no MIME type for the data URL")
        if b.ref is not None:
            img["file_id"] = b.ref
        else:
            img["image_url"] = b.url if b.url is not None else data_url(b.mime_type, b.data or "")
        if b.detail:
            img["detail"] = b.detail
        return img
    if isinstance(b, DocumentBlock):
        f: dict[str, Any] = {"type": "input_file"}
        if b.ref is not None:
            unkept(b, {"ref", "title"}, where, report)
        elif b.url is not None:
            unkept(b, {"url", "title"}, where, report)
        elif b.data is not None:
            unkept(b, {"data", "mime_type", "title"}, where, report)
            if b.mime_type is None:
                report.add("document.mime_type", where, "no MIME type for the data URL")
        if b.ref is not None:
            f["file_id"] = b.ref
        elif b.url is not None:
            f["file_url"] = b.url
        elif b.data is not None:
            f["file_data"] = data_url(b.mime_type, b.data)
        else:
            report.add("document", where, "document text sent as input_text")
            return {"type": "input_text", "text": b.text or ""}
        if b.title:
            f["filename"] = b.title
        return f
    report.add(b.type, where, f"{b.type} block has no Responses form")
    return None


def _message_items(m: Message, where: str, report: LossReport) -> list[dict[str, Any]]:
    """One non-tool message as input items, in the order of its blocks."""
    items: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []

    def flush() -> None:
        if parts:
            items.append({"type": "message", "role": m.role.value, "content": list(parts)})
            parts.clear()

    for b in m.content:
        if isinstance(b, ThinkingBlock):
            flush()
            if b.redacted:
                report.add("thinking.redacted", where, "the redacted flag is not kept")
            reasoning: dict[str, Any] = {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": b.text}] if b.text else [],
            }
            if b.signature is not None:
                reasoning["encrypted_content"] = b.signature
            items.append(reasoning)
        elif isinstance(b, ToolCallBlock):
            flush()
            items.append(
                {
                    "type": "function_call",
                    "call_id": b.id,
                    "name": b.name,
                    "arguments": json.dumps(b.arguments),
                }
            )
        elif isinstance(b, OpaqueBlock) and b.source == SOURCE:
            flush()
            items.append(dict(b.data))
        elif (p := _part_out(b, m.role, where, report)) is not None:
            parts.append(p)
    if parts or not m.content:
        items.append({"type": "message", "role": m.role.value, "content": parts})
    return items


def to_responses(
    messages: Sequence[Message], report: LossReport | None = None
) -> list[dict[str, Any]]:
    """Messages -> Responses input items."""
    report = report if report is not None else LossReport()
    items: list[dict[str, Any]] = []
    for m in messages:
        where = f"message {m.id}"
        unkept_name(m, where, report)
        if m.role is Role.TOOL:
            for r in m.tool_results:
                if r.is_error:
                    report.add("tool_result.is_error", where, "is_error is not kept")
                output: Any = r.content
                if not isinstance(output, str):
                    output = [x for b in output if (x := _part_out(b, Role.USER, where, report))]
                items.append(
                    {"type": "function_call_output", "call_id": r.tool_call_id, "output": output}
                )
            continue
        items.extend(_message_items(m, where, report))
    return items


class OpenAIResponsesCodec(Codec):
    """A list of input items, ``{"input": [...]}``, or a list of ``{"input": [...]}``."""

    name = "openai-responses"
    description = "OpenAI Responses input items (messages, function calls, reasoning)"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(data, dict):
            if isinstance(data.get("input"), str):
                data = {**data, "input": [{"role": "user", "content": data["input"]}]}
            yield "$", expect(data, dict, "$", "a request body")
        elif (
            isinstance(data, list)
            and data
            and all(isinstance(x, dict) and "input" in x for x in data)
        ):
            for i, x in enumerate(data):
                yield f"$[{i}]", x
        else:
            yield "$", {"input": expect(data, list, "$", "input items")}

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        if "input" not in raw:
            raise FormatError("expected an object with 'input'", where)
        msgs = from_responses(raw["input"], f"{where}.input")
        cid = raw.get("id")
        return Conversation.linear(msgs, id=None if cid is None else str(cid))

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("Responses input items do not keep message ids, timestamps or metadata")
        many = len(conversations) != 1
        bodies = []
        for i, conv in enumerate(conversations):
            path = conv.lossy_path(report, conversation_label(conv, i))
            bodies.append(container(conv, {"input": to_responses(path, report)}, many))
        return dumps(bodies if many else bodies[0]["input"])


__all__ = ["OpenAIResponsesCodec", "from_responses", "to_responses"]
