"""Plain-text transcripts: ``User: ...`` paragraphs. Tool calls are written as
``[tool call ID: NAME {json}]`` and results as ``Tool (ID): ...`` so they can be read back.
Conversations are separated by ``=== conversation ID ===`` lines.
Not held: media, thinking, names, ids, timestamps, metadata (reported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec
from tela_memory.formats._io import parse_embedded_json
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.messages import ContentBlock, Message, Role, TextBlock, ToolCallBlock

_SPEAKER = re.compile(
    r"^(System|Developer|User|Human|Assistant|AI|Tool)(?: \(([^)\n]+)\))?: ?", re.MULTILINE
)
_SEP = re.compile(r"^=== conversation (.*) ===$", re.MULTILINE)
_CALL = re.compile(r"^\[tool call ([^:\n]+): (\S+) (\{.*\})\]$", re.MULTILINE)
_ROLE = {"human": Role.USER, "ai": Role.ASSISTANT}


def _ambiguous(text: str) -> bool:
    """Text that would not read back as itself (labels, or newlines at its ends)."""
    return bool(
        text != text.strip("\n") or _SPEAKER.search(text) or _SEP.search(text) or _CALL.search(text)
    )


class PlainTextCodec(Codec):
    """Plain text, one ``Speaker:`` paragraph per message."""

    name = "text"
    description = "plain text transcript (User: / Assistant: paragraphs)"
    suffix = ".txt"

    def units(self, text: str) -> Iterator[tuple[str, Any]]:
        seps = list(_SEP.finditer(text))
        if not seps:
            yield "line 1", (text, 0, text, None)
            return
        for k, m in enumerate(seps):
            end = seps[k + 1].start() if k + 1 < len(seps) else len(text)
            cid = m.group(1)
            yield (
                f"line {text.count(chr(10), 0, m.start()) + 1}",
                (text, m.end(), text[m.end() : end], None if cid == "-" else cid),
            )

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        full, offset, body, cid = raw
        heads = list(_SPEAKER.finditer(body))
        if not heads:
            raise FormatError("no 'User:' / 'Assistant:' lines found", where)
        if body[: heads[0].start()].strip():
            raise FormatError(
                "text before the first 'Speaker:' line",
                f"line {full.count(chr(10), 0, offset) + 2}",
            )
        msgs = []
        for k, h in enumerate(heads):
            end = heads[k + 1].start() if k + 1 < len(heads) else len(body)
            text = body[h.end() : end].rstrip("\n")
            w = f"line {full.count(chr(10), 0, offset + h.start()) + 1}"
            speaker = h.group(1).lower()
            role = _ROLE.get(speaker) or Role(speaker)
            if role is Role.TOOL:
                if not h.group(2):
                    raise FormatError("a Tool line needs its call id: 'Tool (call_1): ...'", w)
                msgs.append(Message.tool(h.group(2), text))
                continue
            blocks: list[ContentBlock] = []
            for c in _CALL.finditer(text):
                args = parse_embedded_json(c.group(3), w)
                blocks.append(ToolCallBlock(id=c.group(1), name=c.group(2), arguments=args))
            rest = _CALL.sub("", text).strip("\n")
            if rest or not blocks:
                blocks.insert(0, TextBlock(text=rest))
            msgs.append(Message(role=role, content=blocks))
        return Conversation.linear(msgs, id=cid)

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("plain text does not keep message ids, timestamps or metadata")
        out = []
        for i, conv in enumerate(conversations):
            label = conversation_label(conv, i)
            paras = []
            for m in conv.lossy_path(report, label):
                paras.extend(self._encode(m, f"{label} message {m.id}", report))
            body = "\n\n".join(paras) + "\n"
            if len(conversations) > 1 or conv.id:
                body = f"=== conversation {conv.id or '-'} ===\n" + body
            out.append(body)
        return "\n".join(out)

    def _encode(self, m: Message, where: str, report: LossReport) -> list[str]:
        if m.role is Role.TOOL:
            if m.name:
                report.add("name", where, "message names are not kept")
            for r in m.tool_results:
                if not isinstance(r.content, str):
                    report.add("tool_result.content", where, "blocks written as their text")
                if _ambiguous(r.text) or ")" in r.tool_call_id or r.is_error:
                    report.add("ambiguous_text", where, "tool result will not read back as it is")
            return [f"Tool ({r.tool_call_id}): {r.text}" for r in m.tool_results]
        parts = []
        for b in m.content:
            if isinstance(b, TextBlock):
                if _ambiguous(b.text):
                    report.add("ambiguous_text", where, "a line looks like a speaker label")
                elif not b.text and len(m.content) > 1:
                    report.add("empty_text", where, "an empty text block beside others")
                parts.append(b.text)
            elif isinstance(b, ToolCallBlock):
                parts.append(
                    f"[tool call {b.id}: {b.name} {json.dumps(b.arguments, ensure_ascii=False)}]"
                )
            else:
                report.add(b.type, where, f"{b.type} block has no plain-text form")
        if m.name:
            report.add("name", where, "message names are not kept")
        return [f"{m.role.value.title()}: " + "\n".join(parts)]


__all__ = ["PlainTextCodec"]
