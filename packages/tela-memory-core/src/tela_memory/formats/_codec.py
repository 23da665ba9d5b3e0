"""The codec contract: split a document into conversations, decode each, encode many."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from pydantic import ValidationError

from tela_memory.errors import InvalidMessageError
from tela_memory.formats._io import parse_json
from tela_memory.formats._model import Conversation, FormatError, LossReport


class Codec(ABC):
    """A conversation format, both directions.

    ``units`` splits a whole document into raw conversations (each with the JSON path or
    line where it starts); ``decode_unit`` turns one into a :class:`Conversation`, so that a
    bad conversation can be skipped on its own when the caller asks for that.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    lossless: ClassVar[bool] = False
    line_based: ClassVar[bool] = False
    """True for JSONL formats: one unit per line, files are streamed without a size limit."""
    suffix: ClassVar[str] = ".json"

    def units(self, text: str) -> Iterator[tuple[str, Any]]:
        """Raw conversations of a document as ``(where, raw)``; syntax errors raise."""
        yield from self.json_units(parse_json(text))

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        """Split parsed JSON into conversations (override for JSON formats)."""
        raise NotImplementedError

    @abstractmethod
    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        """Decode one raw conversation; ``FormatError`` names the path of a problem."""

    @abstractmethod
    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        """Write conversations as a document; record in ``report`` what the format drops."""

    # -- conveniences -----------------------------------------------------------------------

    def decode(self, text: str, report: LossReport | None = None) -> list[Conversation]:
        """Decode a whole document, strictly (the first problem raises)."""
        report = report if report is not None else LossReport()
        return [self.decode_unit(raw, where, report) for where, raw in self.units(text)]

    def safe_decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        """``decode_unit`` that raises only ``FormatError`` (naming ``where``): invalid
        messages, and any error a malformed value provokes in a decoder (a wrong JSON type
        where another was expected, a number out of range, nesting too deep ...)."""
        try:
            return self.decode_unit(raw, where, report).validate(where)
        except FormatError:
            raise
        except Exception as exc:  # the one boundary between input and errors
            raise as_format_error(exc, where) from exc

    def safe_units(self, text: str) -> Iterator[tuple[str, Any]]:
        """``units`` that raises only ``FormatError``."""
        try:
            yield from self.units(text)
        except FormatError:
            raise
        except Exception as exc:
            raise as_format_error(exc, "$") from exc


def as_format_error(exc: Exception, where: str) -> FormatError:
    """The ``FormatError`` a decoder's error stands for: an invalid message keeps its text;
    anything else (``TypeError`` on a value of the wrong JSON type, ``RecursionError``,
    a raw pydantic error ...) is named as malformed input, with the error's type."""
    if isinstance(exc, InvalidMessageError):
        return FormatError(str(exc), where)
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors(include_url=False)[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{loc}: {msg}" if loc else msg)
        return FormatError("invalid value: " + "; ".join(parts), where)
    if isinstance(exc, RecursionError):
        return FormatError("nested too deeply", where)
    detail = str(exc)
    detail = f": {detail[:200]}" if detail else ""
    return FormatError(f"malformed input ({type(exc).__name__}{detail})", where)


def unkept(block: Any, kept: set[str], where: str, report: LossReport) -> None:
    """Report every field of ``block`` that is set but not in ``kept`` (``image.alt_text`` ...)."""
    for name, value in block:
        if name == "type" or name in kept or value is None or value is False:
            continue
        report.add(f"{block.type}.{name}", where, f"{block.type} {name} not kept")


def unkept_name(message: Any, where: str, report: LossReport) -> None:
    """Report a message name the format cannot hold."""
    if message.name:
        report.add("name", where, "message names are not kept")


def dumps(data: Any) -> str:
    """Pretty JSON as codecs write it (UTF-8, two-space indent, trailing newline)."""
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def conversations_units(
    data: Any, key: str, *, bare_list_ok: bool = True
) -> Iterator[tuple[str, Any]]:
    """Split provider-shaped JSON: ``{key: [...]}``, a list of such objects, or a bare list."""
    if isinstance(data, dict):
        if key not in data:
            raise FormatError(f"expected an object with {key!r} (or a list)", "$")
        yield "$", data
    elif isinstance(data, list):
        if data and all(isinstance(x, dict) and key in x for x in data):
            for i, item in enumerate(data):
                yield f"$[{i}]", item
        elif bare_list_ok:
            yield "$", {key: data}
        else:
            raise FormatError(f"expected a list of objects with {key!r}", "$")
    else:
        raise FormatError(f"expected a JSON object or array, got {type(data).__name__}", "$")


def container(conv: Conversation, body: dict[str, Any], many: bool) -> dict[str, Any]:
    """Wrap a provider body with the conversation id / title when writing several."""
    if not many:
        return body
    head: dict[str, Any] = {}
    if conv.id is not None:
        head["id"] = conv.id
    if conv.title is not None:
        head["title"] = conv.title
    return {**head, **body}


__all__ = [
    "Codec",
    "as_format_error",
    "container",
    "conversations_units",
    "dumps",
    "unkept",
    "unkept_name",
]
