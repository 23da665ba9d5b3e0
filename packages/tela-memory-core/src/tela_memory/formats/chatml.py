"""ChatML text: ``<|im_start|>role\\ncontent<|im_end|>``.

Tool calls and results use the Hermes / Qwen convention (``<tool_call>`` JSON and
``<tool_response>`` JSON inside the turn), thinking uses ``<think>``. Conversations are
separated by ``<|endoftext|>``. Not held: media, ids, timestamps, metadata (reported).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec
from tela_memory.formats._io import parse_embedded_json
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.messages import (
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

START, END, EOT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
_TURN = re.compile(r"<\|im_start\|>([a-z]+)(?: name=([^\n]+))?\n(.*?)<\|im_end\|>", re.DOTALL)
_THINK = re.compile(r"\A<think>\n(.*?)\n</think>(?:\n|\Z)", re.DOTALL)
_CALL = re.compile(r"(?:\n|\A)<tool_call>\n(.*?)\n</tool_call>", re.DOTALL)
_RESP = re.compile(r"<tool_response>\n(.*?)\n</tool_response>", re.DOTALL)


def _ambiguous(text: str) -> bool:
    """Text that would not read back as itself."""
    markup = (START, END, EOT, "<think>", "</think>", "<tool_call>", "<tool_response>")
    return any(tok in text for tok in markup)


def _line_of(text: str, pos: int) -> str:
    return f"line {text.count(chr(10), 0, pos) + 1}"


class ChatMLCodec(Codec):
    """ChatML transcripts (as fed to many open models' chat templates)."""

    name = "chatml"
    description = "ChatML text (<|im_start|> ... <|im_end|>), Hermes-style tool tags"
    suffix = ".txt"

    def units(self, text: str) -> Iterator[tuple[str, Any]]:
        pos = 0
        for chunk in text.split(EOT):
            if chunk.strip():
                yield _line_of(text, pos + len(chunk) - len(chunk.lstrip())), (text, pos, chunk)
            pos += len(chunk) + len(EOT)

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        full, offset, chunk = raw
        msgs: list[Message] = []
        last = 0
        for m in _TURN.finditer(chunk):
            gap = chunk[last : m.start()]
            if gap.strip():
                raise FormatError(
                    "text outside <|im_start|> ... <|im_end|>",
                    _line_of(full, offset + last + len(gap) - len(gap.lstrip())),
                )
            last = m.end()
            w = _line_of(full, offset + m.start())
            msgs.append(self._turn(m.group(1), m.group(2), m.group(3), w))
        tail = chunk[last:]
        if tail.strip():
            what = "unterminated turn (no <|im_end|>)" if START in tail else "text outside turns"
            raise FormatError(what, _line_of(full, offset + last + len(tail) - len(tail.lstrip())))
        return Conversation.linear(msgs)

    def _turn(self, role: str, name: str | None, body: str, where: str) -> Message:
        try:
            r = Role(role)
        except ValueError as exc:
            raise FormatError(f"unknown role {role!r}", where) from exc
        if r is Role.TOOL:
            results = []
            for m in _RESP.finditer(body):
                data = parse_embedded_json(m.group(1), where)
                if not isinstance(data, dict) or "tool_call_id" not in data:
                    raise FormatError(
                        "<tool_response> needs a JSON object with tool_call_id", where
                    )
                results.append(
                    ToolResultBlock(
                        tool_call_id=str(data["tool_call_id"]),
                        content=str(data.get("content", "")),
                        is_error=bool(data.get("is_error", False)),
                    )
                )
            if not results:
                raise FormatError("a tool turn needs <tool_response> JSON", where)
            return Message(role=r, content=results, name=name)
        blocks: list[Any] = []
        if (t := _THINK.match(body)) is not None:
            blocks.append(ThinkingBlock(text=t.group(1)))
            body = body[t.end() :]
        calls: list[ToolCallBlock] = []
        for m in _CALL.finditer(body):
            data = parse_embedded_json(m.group(1), where)
            if not isinstance(data, dict) or "name" not in data:
                raise FormatError("<tool_call> needs a JSON object with a name", where)
            calls.append(
                ToolCallBlock(
                    id=str(data.get("id") or f"call_{len(calls) + 1}"),
                    name=data["name"],
                    arguments=data.get("arguments") or {},
                )
            )
        text = _CALL.sub("", body)
        if text or (not calls and not blocks):
            blocks.append(TextBlock(text=text))
        return Message(role=r, content=[*blocks, *calls], name=name)

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note("ChatML does not keep message ids, timestamps or metadata")
        chunks = []
        for i, conv in enumerate(conversations):
            label = conversation_label(conv, i)
            turns = [
                self._encode(m, f"{label} message {m.id}", report)
                for m in conv.lossy_path(report, label)
            ]
            chunks.append("".join(turns))
        return f"{EOT}\n".join(chunks)

    def _encode(self, m: Message, where: str, report: LossReport) -> str:
        head = START + m.role.value + (f" name={m.name}" if m.name else "") + "\n"
        parts: list[str] = []
        texts = [b for b in m.content if isinstance(b, TextBlock)]
        if len(texts) > 1:
            report.add("text", where, "several text blocks joined into one")
        for b in m.content:
            if isinstance(b, ThinkingBlock):
                if b.signature or b.redacted:
                    report.add("thinking_signature", where, "thinking signature dropped")
                if _ambiguous(b.text):
                    report.add("ambiguous_text", where, "thinking text holds markup")
                parts.insert(0, f"<think>\n{b.text}\n</think>")
            elif isinstance(b, TextBlock):
                if _ambiguous(b.text):
                    report.add("ambiguous_text", where, "text holds ChatML or tool markup")
                elif not b.text and len(m.content) > 1:
                    report.add("empty_text", where, "an empty text block beside others")
                parts.append(b.text)
            elif isinstance(b, ToolCallBlock):
                body = json.dumps(
                    {"id": b.id, "name": b.name, "arguments": b.arguments}, ensure_ascii=False
                )
                parts.append(f"<tool_call>\n{body}\n</tool_call>")
            elif isinstance(b, ToolResultBlock):
                if not isinstance(b.content, str):
                    report.add("tool_result.content", where, "blocks written as their text")
                body = json.dumps(
                    {
                        "tool_call_id": b.tool_call_id,
                        "content": b.text,
                        **({"is_error": True} if b.is_error else {}),
                    },
                    ensure_ascii=False,
                )
                parts.append(f"<tool_response>\n{body}\n</tool_response>")
            else:
                report.add(b.type, where, f"{b.type} block has no ChatML form")
        return head + "\n".join(parts) + END + "\n"


__all__ = ["ChatMLCodec"]
