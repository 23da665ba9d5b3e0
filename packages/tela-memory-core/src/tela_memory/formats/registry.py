"""Finding a codec by name, detecting a document's format, reading and writing files."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from tela_memory.formats._codec import Codec, as_format_error
from tela_memory.formats._io import (
    DEFAULT_MAX_BYTES,
    check_size,
    decode_utf8,
    iter_lines,
    parse_json,
)
from tela_memory.formats._model import Conversation, FormatError, LossReport
from tela_memory.formats.anthropic import AnthropicCodec
from tela_memory.formats.chatml import ChatMLCodec
from tela_memory.formats.exports import ChatGPTExportCodec, ClaudeExportCodec
from tela_memory.formats.gemini import GeminiCodec
from tela_memory.formats.markdown import MarkdownCodec
from tela_memory.formats.native import ConversationLinesCodec, MessageLinesCodec, NativeCodec
from tela_memory.formats.openai_chat import OpenAIChatCodec
from tela_memory.formats.openai_responses import OpenAIResponsesCodec
from tela_memory.formats.plaintext import PlainTextCodec
from tela_memory.formats.sharegpt import ShareGPTCodec

CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        NativeCodec(),
        OpenAIChatCodec(),
        OpenAIResponsesCodec(),
        AnthropicCodec(),
        GeminiCodec(),
        ChatMLCodec(),
        ShareGPTCodec(),
        MessageLinesCodec(),
        ConversationLinesCodec(),
        MarkdownCodec(),
        PlainTextCodec(),
        ChatGPTExportCodec(),
        ClaudeExportCodec(),
    )
}
ALIASES = {
    "json": "tela",
    "native": "tela",
    "tela-memory": "tela",
    "openai-chat": "openai",
    "chat-completions": "openai",
    "responses": "openai-responses",
    "claude": "anthropic",
    "md": "markdown",
    "txt": "text",
    "plain": "text",
    "jsonl-messages": "jsonl",
    "chatgpt-export": "chatgpt",
}
_RESPONSES_TYPES = {"function_call", "function_call_output", "reasoning", "message"}
_RESPONSES_PARTS = {"input_text", "output_text", "input_image", "input_file"}
_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking"}


FORMAT_GROUP = "tela_memory.formats"
"""Entry point group for codecs from other distributions (a :class:`Codec` subclass each)."""


@cache
def _plugins() -> dict[str, Codec]:
    found: dict[str, Codec] = {}
    for ep in entry_points(group=FORMAT_GROUP):
        try:
            codec = ep.load()()
        except Exception as exc:  # a broken plugin must not break the built-in formats
            warnings.warn(f"format plugin {ep.name!r} failed to load: {exc}", stacklevel=2)
            continue
        if isinstance(codec, Codec):
            found[codec.name] = codec
    return found


def get_codec(name: str) -> Codec:
    """The codec for a format name (or alias), built-in or from the ``tela_memory.formats``
    entry point group; ``FormatError`` lists the known ones."""
    key = ALIASES.get(name.lower(), name.lower())
    codec = CODECS.get(key) or _plugins().get(key)
    if codec is None:
        known = sorted({*CODECS, *_plugins()})
        raise FormatError(f"unknown format {name!r}; known: {', '.join(known)}")
    return codec


@dataclass
class ReadResult:
    """What reading a document gave: conversations, losses, and what was skipped."""

    format: str
    conversations: list[Conversation]
    report: LossReport = field(default_factory=LossReport)
    skipped: list[FormatError] = field(default_factory=list)


# -- detection --------------------------------------------------------------------------------


def _messages_flavour(msgs: Any) -> str:
    if not isinstance(msgs, list):
        return "openai"
    for m in msgs:
        if not isinstance(m, dict):
            continue
        if m.get("type") in _RESPONSES_TYPES - {"message"}:
            return "openai-responses"
        if m.get("role") == "tool" or "tool_calls" in m:
            return "openai"
        content = m.get("content")
        if isinstance(content, list):
            for b in content:
                kind = b.get("type") if isinstance(b, dict) else None
                if kind in _ANTHROPIC_BLOCKS or (kind in ("image", "document") and "source" in b):
                    return "anthropic"
                if kind in _RESPONSES_PARTS:
                    return "openai-responses"
                if kind in ("image_url", "input_audio", "file"):
                    return "openai"
    return "openai"


def detect_json(data: Any) -> str:
    """The format of a parsed JSON document."""
    first = data[0] if isinstance(data, list) and data else data
    if isinstance(data, dict) and data.get("format") == "tela-memory":
        return "tela"
    if not isinstance(first, dict):
        raise FormatError("cannot detect the format of this JSON; pass --format", "$")
    if "mapping" in first:
        return "chatgpt"
    if "chat_messages" in first:
        return "claude-export"
    if "conversations" in first or ("from" in first and "value" in first):
        return "sharegpt"
    if "contents" in first or ("parts" in first and "role" in first):
        return "gemini"
    if "input" in first:
        return "openai-responses"
    if "messages" in first:
        if isinstance(data, dict) and "system" in data:
            return "anthropic"
        return _messages_flavour(first["messages"])
    if "role" in first or "type" in first:
        return _messages_flavour(data if isinstance(data, list) else [data])
    raise FormatError(f"cannot detect the format (keys {sorted(first)[:8]}); pass --format", "$")


def detect_format(text: str) -> str:
    """Guess a document's format from its text."""
    head = text.lstrip()[:65536]
    if head.startswith("<|im_start|>"):
        return "chatml"
    if head[:1] in "[{":
        lines = [line for line in text.split("\n", 3)[:3] if line.strip()]
        if len(lines) >= 2 and lines[1].lstrip().startswith("{"):
            try:
                first = parse_json(lines[0])
            except FormatError:
                first = None
            if isinstance(first, dict):
                return _jsonl_flavour(first)
        return detect_json(parse_json(text))
    if re.search(r"^### (User|Assistant|System|Tool)", head, re.MULTILINE):
        return "markdown"
    if re.search(r"^(User|Human|Assistant|System): ", head, re.MULTILINE):
        return "text"
    raise FormatError("cannot detect the format; pass --format (see `tela-memory formats`)")


def _jsonl_flavour(first: dict[str, Any]) -> str:
    return "jsonl" if "role" in first else "jsonl-conversations"


def _sniff_lines(path: Path) -> str | None:
    """``jsonl`` / ``jsonl-conversations`` when a file is JSON lines, else ``None``."""
    found: list[bytes] = []
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                found.append(raw)
            if len(found) == 2:
                break
    if len(found) < 2 or not found[1].lstrip().startswith(b"{"):
        return None
    try:
        first = parse_json(decode_utf8(found[0]))
    except FormatError:
        return None
    return _jsonl_flavour(first) if isinstance(first, dict) else None


# -- reading ----------------------------------------------------------------------------------


def _decode_units(
    codec: Codec,
    units: Iterable[tuple[str, Any]],
    *,
    continue_on_error: bool,
) -> ReadResult:
    result = ReadResult(codec.name, [])
    conv_ids: set[tuple[str | None, str]] = set()  # threads are per owner: (user, id)
    msg_ids: set[str] = set()
    for where, raw in units:
        try:
            if isinstance(raw, FormatError):  # a line that is not JSON (JSONL formats)
                raise raw
            conv = codec.safe_decode_unit(raw, where, result.report)
            if conv.id is not None and (conv.user_id, conv.id) in conv_ids:
                raise FormatError(f"duplicate conversation id {conv.id!r}", where)
            dup = next((m.id for m in conv.messages if m.id in msg_ids), None)
            if dup is not None:
                raise FormatError(
                    f"duplicate message id {dup!r} (used by an earlier conversation)", where
                )
        except FormatError as exc:
            if not continue_on_error:
                raise
            result.skipped.append(exc)
            continue
        if conv.id is not None:
            conv_ids.add((conv.user_id, conv.id))
        msg_ids.update(m.id for m in conv.messages)
        result.conversations.append(conv)
    return result


def read_text(text: str, format: str = "auto", *, continue_on_error: bool = False) -> ReadResult:
    """Read conversations from a document's text.

    Args:
        text: the document.
        format: a codec name, or ``"auto"`` to detect it.
        continue_on_error: skip bad conversations (listed in ``ReadResult.skipped``) instead of
            raising on the first one.
    """
    name = _detect(text) if format == "auto" else format
    codec = get_codec(name)
    try:
        return _decode_units(codec, codec.safe_units(text), continue_on_error=continue_on_error)
    except FormatError as exc:
        raise _with_hint(exc, codec, format, lambda: detect_format(text)) from exc


def _guarded(units: Iterable[tuple[str, Any]]) -> Iterator[tuple[str, Any]]:
    try:
        yield from units
    except FormatError:
        raise
    except Exception as exc:  # malformed input, never a raw error
        raise as_format_error(exc, "$") from exc


def _detect(text: str) -> str:
    try:
        return detect_format(text)
    except FormatError:
        raise
    except Exception as exc:  # malformed input, never a raw error
        raise as_format_error(exc, "$") from exc


def read_file(
    path: str | Path,
    format: str = "auto",
    *,
    continue_on_error: bool = False,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> ReadResult:
    """Read conversations from a file; JSONL is streamed, other formats are size-limited."""
    p = Path(path)
    if p.is_dir():
        raise FormatError(f"{p} is a directory, not a file")
    name = format
    if format == "auto":
        check_size(p, None)
        name = _sniff_lines(p) or ""
    codec = get_codec(name) if name else None
    if codec is not None and codec.line_based:
        assert isinstance(codec, MessageLinesCodec | ConversationLinesCodec)
        units = _guarded(codec.units_from_lines(iter_lines(p)))
        try:
            return _decode_units(codec, units, continue_on_error=continue_on_error)
        except FormatError as exc:
            raise _with_hint(exc, codec, format, lambda: _sniff_lines(p) or "?") from exc
    check_size(p, max_bytes)
    text = decode_utf8(p.read_bytes(), p.name)
    return read_text(text, format, continue_on_error=continue_on_error)


def _with_hint(exc: FormatError, codec: Codec, asked: str, detect: Any) -> FormatError:
    if asked == "auto":
        return exc
    try:
        guess = detect()
    except Exception:  # only a hint
        return exc
    if guess in (codec.name, "?"):
        return exc
    return FormatError(
        f"{exc.reason} (this looks like {guess!r}, not {codec.name!r}: try --format {guess} "
        "or --format auto)",
        exc.where,
    )


async def aread_file(
    path: str | Path,
    format: str = "auto",
    *,
    continue_on_error: bool = False,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> ReadResult:
    """Async twin of :func:`read_file` (runs in a worker thread)."""
    return await asyncio.to_thread(
        read_file, path, format, continue_on_error=continue_on_error, max_bytes=max_bytes
    )


# -- writing ----------------------------------------------------------------------------------


def write_text(conversations: Sequence[Conversation], format: str) -> tuple[str, LossReport]:
    """Write conversations in a format; returns the text and what the format could not hold."""
    report = LossReport()
    text = get_codec(format).encode(conversations, report)
    return text, report


def write_file(path: str | Path, conversations: Sequence[Conversation], format: str) -> LossReport:
    """Write conversations to a file atomically (temp file + rename)."""
    text, report = write_text(conversations, format)
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return report


async def awrite_file(
    path: str | Path, conversations: Sequence[Conversation], format: str
) -> LossReport:
    """Async twin of :func:`write_file` (runs in a worker thread)."""
    return await asyncio.to_thread(write_file, path, conversations, format)


__all__ = [
    "ALIASES",
    "CODECS",
    "FORMAT_GROUP",
    "ReadResult",
    "aread_file",
    "awrite_file",
    "detect_format",
    "detect_json",
    "get_codec",
    "read_file",
    "read_text",
    "write_file",
    "write_text",
]
