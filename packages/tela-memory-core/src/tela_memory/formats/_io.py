"""Reading input safely: size limits, UTF-8 with positions, JSON with line and column."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tela_memory.formats._model import FormatError

DEFAULT_MAX_BYTES = 100_000_000
"""Whole-document formats (JSON, Markdown ...) refuse files larger than this by default."""

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*);base64,(?P<data>.*)$", re.DOTALL
)


def check_size(path: Path, max_bytes: int | None) -> int:
    """The file's size, or ``FormatError`` when it exceeds ``max_bytes``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FormatError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if max_bytes is not None and size > max_bytes:
        raise FormatError(
            f"{path} is {size / 1e6:.1f} MB, more than the {max_bytes / 1e6:.0f} MB limit for "
            "whole-document formats; raise the limit (--max-size) or use a JSONL format, "
            "which is read line by line"
        )
    return size


def decode_utf8(raw: bytes, source: str = "input") -> str:
    """Decode UTF-8 (a BOM is skipped) or raise ``FormatError`` naming line and byte offset."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FormatError(
            f"invalid UTF-8 at byte {exc.start} (byte 0x{raw[exc.start]:02x}); "
            "the file must be UTF-8 encoded",
            f"{source} line {line} column {col}",
        ) from exc


def parse_json(text: str, source: str = "input", line_offset: int = 0) -> Any:
    """``json.loads`` that raises ``FormatError`` with the line and column of a syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        what = "truncated JSON" if exc.pos >= len(text.rstrip()) else "invalid JSON"
        raise FormatError(
            f"{what}: {exc.msg}",
            f"{source} line {exc.lineno + line_offset} column {exc.colno}",
        ) from exc
    except RecursionError as exc:
        raise FormatError("JSON nested too deeply", source) from exc


def parse_embedded_json(text: str, where: str) -> Any:
    """JSON embedded in a text format (a tool call in Markdown ...); errors name ``where``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON ({exc.msg})", where) from exc


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a file as ``(line number, text)``, decoded strictly as UTF-8."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FormatError(
                    f"invalid UTF-8 at column {exc.start + 1} (byte 0x{raw[exc.start]:02x}); "
                    "the file must be UTF-8 encoded",
                    f"{path.name} line {number}",
                ) from exc
            if line.strip():
                yield number, line


def split_data_url(url: str) -> tuple[str | None, str] | None:
    """``(mime type, base64 data)`` of a ``data:`` URL, or ``None`` for another URL."""
    m = _DATA_URL.match(url)
    if m is None:
        return None
    return m.group("mime"), m.group("data")


def data_url(mime: str | None, data: str) -> str:
    """Build a ``data:`` URL from base64 data."""
    return f"data:{mime or 'application/octet-stream'};base64,{data}"


def expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    """Return ``value`` if it has the expected JSON type, else raise ``FormatError``."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = {dict: "an object", list: "an array", str: "a string", int: "an integer"}
        want = names.get(kind, str(kind)) if isinstance(kind, type) else "a valid value"
        raise FormatError(f"{what} must be {want}, got {_json_type(value)}", where)
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


__all__ = [
    "DEFAULT_MAX_BYTES",
    "check_size",
    "data_url",
    "decode_utf8",
    "expect",
    "iter_lines",
    "parse_embedded_json",
    "parse_json",
    "split_data_url",
]
