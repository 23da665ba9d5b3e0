"""Markdown transcripts, for people: ``### User`` headings, tool calls as fenced JSON,
thinking in ``<details>``, images as ``![alt](url)``. Reading parses the same layout back.

Conversations start with ``# title`` (an HTML comment keeps the conversation id).
Not held: ids, timestamps, metadata, audio / documents without text, signatures (reported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec, unkept
from tela_memory.formats._io import data_url, parse_embedded_json, split_data_url
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.messages import (
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)

_HEADING = re.compile(
    r"^### (System|Developer|User|Assistant|Tool)(?: \(([^)\n]*)\))?[ \t]*$", re.MULTILINE
)
_NAME = re.compile(r"^[^()\n]+$")
_CONV = re.compile(r"^# (.*)$(?:\n<!-- conversation: (.*) -->)?", re.MULTILINE)
_SPECIAL = re.compile(
    r"^```tool_call (?P<head>\{[^\n]*\})\n(?P<args>.*?)\n```$"
    r"|^<details><summary>Thinking</summary>\n\n(?P<think>.*?)\n\n</details>$"
    r"|^!\[(?P<alt>[^\]\n]*)\]\((?P<src>[^)\s]+)\)$",
    re.MULTILINE | re.DOTALL,
)


def _ambiguous(text: str) -> bool:
    """Text that would not read back as itself (markup, or newlines at its ends)."""
    return bool(
        text != text.strip("\n")
        or _HEADING.search(text)
        or _CONV.search(text)
        or _SPECIAL.search(text)
    )


def _line(text: str, pos: int) -> str:
    return f"line {text.count(chr(10), 0, pos) + 1}"


class MarkdownCodec(Codec):
    """A readable transcript that can be read back."""

    name = "markdown"
    description = "Markdown transcript (### Role headings)"
    suffix = ".md"

    def units(self, text: str) -> Iterator[tuple[str, Any]]:
        starts = list(_CONV.finditer(text))
        if not starts:
            yield "line 1", (text, 0, text, None, None)
            return
        if text[: starts[0].start()].strip():
            yield "line 1", (text, 0, text[: starts[0].start()], None, None)
        for k, m in enumerate(starts):
            end = starts[k + 1].start() if k + 1 < len(starts) else len(text)
            body = text[m.end() : end]
            yield _line(text, m.start()), (text, m.end(), body, m.group(1).strip(), m.group(2))

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        full, offset, body, title, cid = raw
        heads = list(_HEADING.finditer(body))
        if not heads:
            raise FormatError("no '### User' / '### Assistant' headings found", where)
        if body[: heads[0].start()].strip():
            raise FormatError("text before the first '### Role' heading", _line(full, offset))
        msgs = []
        for k, h in enumerate(heads):
            end = heads[k + 1].start() if k + 1 < len(heads) else len(body)
            w = _line(full, offset + h.start())
            msgs.append(self._message(h.group(1), h.group(2), body[h.end() : end].strip("\n"), w))
        conv = Conversation.linear(msgs, id=cid, title=title if title != cid else None)
        return conv

    def _message(self, role_name: str, extra: str | None, body: str, where: str) -> Message:
        role = Role(role_name.lower())
        if role is Role.TOOL:
            if not extra:
                raise FormatError(
                    "a '### Tool' heading needs the call id: '### Tool (call_1)'", where
                )
            return Message.tool(extra, body)
        blocks: list[ContentBlock] = []
        last = 0
        for m in _SPECIAL.finditer(body):
            text = body[last : m.start()].strip("\n")
            if text:
                blocks.append(TextBlock(text=text))
            last = m.end()
            if m.group("head") is not None:
                head = parse_embedded_json(m.group("head"), where)
                args = parse_embedded_json(m.group("args"), where)
                if not isinstance(head, dict) or not isinstance(args, dict):
                    raise FormatError("a tool_call fence needs JSON objects", where)
                blocks.append(
                    ToolCallBlock(
                        id=str(head.get("id")), name=str(head.get("name")), arguments=args
                    )
                )
            elif m.group("think") is not None:
                blocks.append(ThinkingBlock(text=m.group("think")))
            else:
                src, alt = m.group("src"), m.group("alt") or None
                parsed = split_data_url(src)
                if parsed is not None:
                    blocks.append(ImageBlock(data=parsed[1], mime_type=parsed[0], alt_text=alt))
                else:
                    blocks.append(ImageBlock(url=src, alt_text=alt))
        text = body[last:].strip("\n")
        if text or not blocks:
            blocks.append(TextBlock(text=text))
        return Message(role=role, content=blocks, name=extra or None)

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("Markdown does not keep message ids, timestamps or metadata")
        out = []
        for i, conv in enumerate(conversations):
            label = conversation_label(conv, i)
            lines = []
            if conv.title or conv.id or len(conversations) > 1:
                lines.append(f"# {conv.title or conv.id or f'Conversation {i + 1}'}")
                if conv.id:
                    lines.append(f"<!-- conversation: {conv.id} -->")
                lines.append("")
            for m in conv.lossy_path(report, label):
                lines.extend(self._encode(m, f"{label} message {m.id}", report))
            out.append("\n".join(lines))
        return "\n".join(out)

    def _encode(self, m: Message, where: str, report: LossReport) -> list[str]:
        if m.name and (m.role is Role.TOOL or not _NAME.match(m.name)):
            report.add("name", where, "this message name cannot be written in a heading")
        if m.role is Role.TOOL:
            out = []
            for r in m.tool_results:
                if _ambiguous(r.text) or ")" in r.tool_call_id or r.is_error:
                    report.add("ambiguous_text", where, "tool result will not read back as it is")
                out += [f"### Tool ({r.tool_call_id})", "", r.text, ""]
                if not isinstance(r.content, str):
                    report.add("tool_result.content", where, "blocks written as their text")
            return out
        title = m.role.value.title() + (f" ({m.name})" if m.name else "")
        parts: list[str] = []
        for b in m.content:
            if isinstance(b, TextBlock):
                if _ambiguous(b.text):
                    report.add("ambiguous_text", where, "text looks like transcript markup")
                elif not b.text and len(m.content) > 1:
                    report.add("empty_text", where, "an empty text block beside others")
                parts.append(b.text)
            elif isinstance(b, ThinkingBlock):
                if b.signature or b.redacted:
                    report.add("thinking_signature", where, "thinking signature dropped")
                if "</details>" in b.text or _ambiguous(b.text):
                    report.add("ambiguous_text", where, "thinking text looks like markup")
                parts.append(f"<details><summary>Thinking</summary>\n\n{b.text}\n\n</details>")
            elif isinstance(b, ToolCallBlock):
                head = json.dumps({"id": b.id, "name": b.name}, ensure_ascii=False)
                args = json.dumps(b.arguments, ensure_ascii=False, indent=2)
                parts.append(f"```tool_call {head}\n{args}\n```")
            elif isinstance(b, ImageBlock):
                source = {"url"} if b.url is not None else {"data", "mime_type"}
                unkept(b, source | {"alt_text", "ref"}, where, report)
                if b.ref is not None:
                    report.add("image", where, f"image reference {b.ref!r} written as a link")
                src = b.url or b.ref or data_url(b.mime_type, b.data or "")
                parts.append(f"![{b.alt_text or ''}]({src})")
            elif isinstance(b, DocumentBlock) and b.text is not None:
                report.add("document", where, "document written as its text")
                parts.append(b.text)
            else:
                report.add(b.type, where, f"{b.type} block has no Markdown form")
        return [f"### {title}", "", "\n\n".join(parts), ""]


__all__ = ["MarkdownCodec"]
