"""The message model: roles, typed content blocks and ``Message``.

Every store, index, codec and integration speaks this model. Messages are immutable
(pydantic ``frozen``); use :meth:`Message.model_copy` with ``update=`` to derive a new one.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeAlias, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import CoreSchema, SchemaValidator

from tela_memory.errors import InvalidMessageError, SchemaError
from tela_memory.ids import new_id


class Role(StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    DEVELOPER = "developer"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class _Block(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextBlock(_Block):
    """Plain text."""

    type: Literal["text"] = "text"
    text: str


class _Media(_Block):
    """Media held inline (base64 ``data``), by ``url``, or by an opaque ``ref`` (file id, path)."""

    data: str | None = None
    url: str | None = None
    ref: str | None = None
    mime_type: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Media:
        sources = [s for s in (self.data, self.url, self.ref) if s is not None]
        if len(sources) != 1:
            raise ValueError(
                f"a {self.__class__.__name__} needs exactly one of data (base64), url or ref; "
                f"got {len(sources)}"
            )
        return self


class ImageBlock(_Media):
    """An image; ``width`` / ``height`` / ``detail`` feed token costs, ``alt_text`` feeds search."""

    type: Literal["image"] = "image"
    detail: Literal["auto", "low", "high"] | None = None
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    alt_text: str | None = None


class AudioBlock(_Media):
    """Audio; ``transcript`` feeds search and text-only formats."""

    type: Literal["audio"] = "audio"
    transcript: str | None = None
    duration_s: float | None = Field(default=None, ge=0)


class DocumentBlock(_Block):
    """A document (PDF, text file ...), inline, by url / ref, or as extracted ``text``."""

    type: Literal["document"] = "document"
    data: str | None = None
    url: str | None = None
    ref: str | None = None
    text: str | None = None
    mime_type: str | None = None
    title: str | None = None
    pages: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_source(self) -> DocumentBlock:
        if all(s is None for s in (self.data, self.url, self.ref, self.text)):
            raise ValueError("a DocumentBlock needs one of data, url, ref or text")
        return self


class ToolCallBlock(_Block):
    """A request from the assistant to call a tool; ``arguments`` is the parsed JSON object."""

    type: Literal["tool_call"] = "tool_call"
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: dict[str, JsonValue] = Field(default_factory=dict)


class ToolResultBlock(_Block):
    """The result of a tool call; ``content`` is text or a list of text / image blocks."""

    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str = Field(min_length=1)
    content: str | list[TextBlock | ImageBlock] = ""
    is_error: bool = False

    @property
    def text(self) -> str:
        """The textual part of the result."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))


class ThinkingBlock(_Block):
    """Model reasoning; ``signature`` (provider-specific, opaque) is kept byte for byte."""

    type: Literal["thinking"] = "thinking"
    text: str = ""
    signature: str | None = None
    redacted: bool = False


class OpaqueBlock(_Block):
    """A block of a kind Tela Memory does not model, kept as it came so it can be given back."""

    type: Literal["opaque"] = "opaque"
    source: str = Field(description="where it came from, e.g. 'langchain' or 'llamaindex'")
    data: dict[str, JsonValue]


ContentBlock: TypeAlias = Annotated[
    TextBlock
    | ImageBlock
    | AudioBlock
    | DocumentBlock
    | ToolCallBlock
    | ToolResultBlock
    | ThinkingBlock
    | OpaqueBlock,
    Field(discriminator="type"),
]

BLOCKS_ADAPTER: TypeAdapter[list[ContentBlock]] = TypeAdapter(list[ContentBlock])
"""Validates / serialises a list of content blocks (used by stores for their JSON columns)."""

_CALLS_ONLY_IN = {Role.ASSISTANT}


def _now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """One message of a conversation.

    ``thread_id``, ``parent_id`` and ``user_id`` are filled by the store on append when left
    empty. ``content`` accepts a plain string as a shortcut for one text block.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)

    id: str = Field(default_factory=new_id, min_length=1)
    role: Role
    content: list[ContentBlock] = Field(default_factory=list)
    name: str | None = None
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=_now)
    thread_id: str | None = None
    user_id: str | None = None
    parent_id: str | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise InvalidMessageError(_explain(exc)) from exc

    # Only wraps errors: tell pydantic this is the base ``__init__`` so that ``model_validate``
    # and ``model_validate_json`` do not call it after validating (which validates twice).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def parse(cls, data: Any) -> Message:
        """Validate a dict (or JSON string) into a message, raising ``InvalidMessageError``."""
        try:
            if isinstance(data, str | bytes):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidMessageError(_explain(exc)) from exc

    # -- validation -------------------------------------------------------------------------

    @field_validator("content", mode="before")
    @classmethod
    def _text_shortcut(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [{"type": "text", "text": value}]
        return value

    @model_validator(mode="after")
    def _normalise_and_check(self) -> Message:
        # One after-validator instead of one per field: each Python validator costs pydantic a
        # call out of Rust, and this runs for every message read from a store.
        fields = self.__dict__
        created = fields["created_at"]
        if created.tzinfo is not UTC:  # naive means UTC; aware times are converted to UTC
            fields["created_at"] = (
                created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)
            )
        problem = _message_problem(fields)
        if problem is not None:
            raise ValueError(problem)
        kinds = {b.type for b in self.content} if self.content else set()
        if "tool_call" in kinds and self.role not in _CALLS_ONLY_IN:
            raise ValueError(f"tool calls belong in assistant messages, not {self.role.value!r}")
        if self.role is Role.TOOL and "tool_result" not in kinds:
            raise ValueError(
                "a tool message must carry a tool_result block naming its tool_call_id"
            )
        if "tool_result" in kinds and self.role is not Role.TOOL:
            raise ValueError(f"tool results belong in tool messages, not {self.role.value!r}")
        return self

    # -- convenience ------------------------------------------------------------------------

    @classmethod
    def system(cls, text: str, **fields: Any) -> Message:
        """A system message with one text block."""
        return cls(role=Role.SYSTEM, content=text, **fields)

    @classmethod
    def user(cls, content: str | Sequence[ContentBlock], **fields: Any) -> Message:
        """A user message from text or blocks."""
        return cls(role=Role.USER, content=content, **fields)

    @classmethod
    def assistant(
        cls,
        content: str | Sequence[ContentBlock] = (),
        *,
        tool_calls: Iterable[ToolCallBlock] = (),
        **fields: Any,
    ) -> Message:
        """An assistant message, optionally with tool calls after its content."""
        blocks: list[Any] = [TextBlock(text=content)] if isinstance(content, str) else [*content]
        blocks.extend(tool_calls)
        return cls(role=Role.ASSISTANT, content=blocks, **fields)

    @classmethod
    def tool(
        cls, tool_call_id: str, content: str | list[Any], *, is_error: bool = False, **fields: Any
    ) -> Message:
        """A tool message answering the call ``tool_call_id``."""
        block = ToolResultBlock(tool_call_id=tool_call_id, content=content, is_error=is_error)
        return cls(role=Role.TOOL, content=[block], **fields)

    @property
    def text(self) -> str:
        """All text of the message (text blocks and tool results), joined by newlines."""
        parts: list[str] = []
        for block in self.content:
            if isinstance(block, TextBlock | ToolResultBlock):
                parts.append(block.text)
        return "\n".join(parts)

    @property
    def tool_calls(self) -> list[ToolCallBlock]:
        """The tool calls this message makes."""
        return [b for b in self.content if isinstance(b, ToolCallBlock)]

    @property
    def tool_results(self) -> list[ToolResultBlock]:
        """The tool results this message carries."""
        return [b for b in self.content if isinstance(b, ToolResultBlock)]


# -- what every store can hold ----------------------------------------------------------------

INT_MIN = -(2**63)
"""The smallest integer a message (or a filter) may hold: stores keep 64-bit integers."""
INT_MAX = 2**63 - 1
"""The largest integer a message (or a filter) may hold."""
MAX_DEPTH = 64
"""How deeply JSON values (metadata, tool arguments ...) may nest."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as UTF-8 (a lone surrogate such as ``"\\ud800"``, which
    valid JSON can spell), or ``None`` when it can."""
    if value.isascii():
        return None
    found = _SURROGATE.search(value)
    if found is None:
        return None
    return (
        f"lone surrogate U+{ord(found.group()):04X} at character {found.start()} "
        "(not valid Unicode, cannot be stored as UTF-8)"
    )


def value_problem(value: Any, where: str = "value") -> str | None:
    """Why a value (str, number, JSON object or array, or a content block) cannot be stored by
    every store, naming the path of the problem, or ``None`` when it can: lone surrogates in a
    string or key, integers outside 64 bits, NaN or infinite floats, nesting deeper than
    :data:`MAX_DEPTH`."""
    if _clean(value):
        return None
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, path, depth = pop()
        if item is None or item is True or item is False:
            continue
        kind = type(item)
        if kind is str:
            why = text_problem(item)
            if why is not None:
                return f"{path}: {why}"
        elif kind is int:
            if not INT_MIN <= item <= INT_MAX:
                return f"{path}: integer {_short(item)} is out of range (stores keep 64 bits)"
        elif kind is float:
            if not math.isfinite(item):
                return f"{path}: {item!r} is not a finite number"
        elif depth >= MAX_DEPTH:
            return f"{path}: nested more than {MAX_DEPTH} levels deep"
        elif isinstance(item, dict):
            for key, val in item.items():
                if isinstance(key, str) and text_problem(key) is not None:
                    return f"{path}: key {_short(key)}: {text_problem(key)}"
                push((val, f"{path}.{key}", depth + 1))
        elif isinstance(item, list | tuple):
            for i, val in enumerate(item):
                push((val, f"{path}.{i}", depth + 1))
        elif isinstance(item, BaseModel):
            for key, val in item.__dict__.items():
                push((val, f"{path}.{key}", depth + 1))
        elif isinstance(item, str):  # a str subclass (StrEnum ...)
            why = text_problem(str(item))
            if why is not None:
                return f"{path}: {why}"
        elif isinstance(item, int) and not INT_MIN <= item <= INT_MAX:
            return f"{path}: integer {_short(item)} is out of range (stores keep 64 bits)"
        elif isinstance(item, float) and not math.isfinite(item):
            return f"{path}: {item!r} is not a finite number"
    return None


def _clean(value: Any) -> bool:
    """The fast pass of :func:`value_problem`: True when nothing is wrong (no paths built)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str or kind is Role:
            if not item.isascii() and _SURROGATE.search(item) is not None:
                return False
        elif item is None or kind is bool:
            continue
        elif kind is int:
            if not INT_MIN <= item <= INT_MAX:
                return False
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif depth >= MAX_DEPTH:
            return False
        elif kind is dict:
            for key, val in item.items():
                if type(key) is not str or not key.isascii():
                    return False  # rare: the slow pass decides
                push((val, depth + 1))
        elif kind is list or kind is tuple:
            for val in item:
                push((val, depth + 1))
        elif isinstance(item, BaseModel):
            for val in item.__dict__.values():
                push((val, depth + 1))
        elif kind is datetime:
            continue
        else:
            return False  # subclasses (a role ...) and other types: the slow pass decides
    return True


def check_value(value: Any, where: str = "value") -> None:
    """Raise :class:`~tela_memory.errors.InvalidMessageError` if :func:`value_problem` finds
    one."""
    problem = value_problem(value, where)
    if problem is not None:
        raise InvalidMessageError(problem)


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, int) else str(value)
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def _message_problem(fields: dict[str, Any]) -> str | None:
    for name in ("id", "name", "thread_id", "user_id", "parent_id"):
        text = fields[name]
        if text is not None and not text.isascii():
            why = text_problem(text)
            if why is not None:
                return f"{name}: {why}"
    content = fields["content"]
    for i, block in enumerate(content):
        if type(block) is TextBlock:  # the common case, kept cheap
            if not block.text.isascii():
                why = text_problem(block.text)
                if why is not None:
                    return f"content.{i}.text: {why}"
            continue
        problem = value_problem(block, f"content.{i}")
        if problem is not None:
            return problem
    if fields["metadata"]:
        return value_problem(fields["metadata"], "metadata")
    return None


def _stored_message_validator() -> SchemaValidator | None:
    """``Message``'s own core schema without its two Python-level validators (the rules
    validator and the ``content`` string shortcut) and with ``id`` and ``created_at`` required
    (a store always writes them); None if pydantic lays the schema out differently, in which
    case :func:`load_stored` validates fully."""
    schema: dict[str, Any] = copy.deepcopy(dict(Message.__pydantic_core_schema__))
    root = schema["schema"] if schema["type"] == "definitions" else schema
    if root["type"] != "function-after" or root["schema"]["type"] != "model":
        return None
    model = root["schema"]
    content = model["schema"]["fields"]["content"]["schema"]
    if content.get("type") != "default" or content["schema"]["type"] != "function-before":
        return None
    content["schema"] = content["schema"]["schema"]
    for name in ("id", "created_at"):  # a store always writes them: no fresh id for junk
        field = model["schema"]["fields"][name]
        if field["schema"].get("type") != "default":
            return None
        field["schema"] = field["schema"]["schema"]
    if schema["type"] == "definitions":
        schema["schema"] = model
    else:
        schema = model
    return SchemaValidator(cast(CoreSchema, schema))


_STORED = _stored_message_validator()
_validate_stored: Any = Message.model_validate_json if _STORED is None else _STORED.validate_json
# the tzinfo pydantic-core gives a "Z" time (one shared object): lets the hot loops below skip
# a utcoffset() call per message
_PARSED_UTC = _validate_stored(
    '{"id": "-", "role": "user", "created_at": "2000-01-01T00:00:00Z"}'
).created_at.tzinfo


_BOUND = ("thread_id", "user_id", "parent_id")
_NO_OFFSET = timedelta(0)


def _unreadable(exc: Exception, where: str = "") -> SchemaError:
    why = _explain(exc) if isinstance(exc, ValidationError) else f"{type(exc).__name__}: {exc}"
    why = why.removeprefix("invalid message: ")
    return SchemaError(f"a stored message{where} is unreadable: {why[:300]}")


def load_stored(
    data: bytes | str,
    *,
    thread_id: str | None = None,
    user_id: str | None = None,
    parent_id: str | None = None,
) -> Message:
    """A message from JSON that a store wrote itself with ``Message.model_dump_json``.

    Every field's shape and type is still checked (natively, in pydantic-core) and
    ``created_at`` comes back in UTC; the rules that were checked when the message was first
    validated (tool blocks per role, JSON-safe metadata) are not run again, which makes this
    about twice as fast as ``Message.model_validate_json``. ``thread_id`` / ``user_id`` /
    ``parent_id``, when given, are set on the result: stores that keep them outside the
    message's JSON pass them here. Raises :class:`~tela_memory.errors.SchemaError` on malformed
    data; use :meth:`Message.parse` for input that did not come from a store.
    """
    try:
        message: Message = _validate_stored(data)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise _unreadable(exc) from exc
    # the message is new and not shared yet: set the fields in place rather than copy it
    fields = message.__dict__
    created = fields["created_at"]
    tz = created.tzinfo
    if tz is not UTC and tz is not _PARSED_UTC and created.utcoffset() != _NO_OFFSET:
        fields["created_at"] = _as_utc(created)
    if thread_id is not None:
        fields["thread_id"] = thread_id
    if user_id is not None:
        fields["user_id"] = user_id
    if parent_id is not None:
        fields["parent_id"] = parent_id
    message.__pydantic_fields_set__.update(_BOUND)
    return message


def load_stored_branch(
    raws: Iterable[bytes | str],
    *,
    thread_id: str,
    user_id: str | None,
    parent_id: str | None,
) -> list[Message]:
    """Consecutive messages of one branch, oldest first, from JSON a store wrote itself.

    :func:`load_stored` for a whole read: each message gets ``thread_id`` and ``user_id``,
    the first gets ``parent_id`` and every other one the id of the message before it. Raises
    :class:`~tela_memory.errors.SchemaError` at the first malformed entry.
    """
    validate = _validate_stored
    messages: list[Message] = []
    append = messages.append
    try:
        for raw in raws:  # the loop of a 2,000-message read: kept to plain local operations
            message = validate(raw)
            fields = message.__dict__
            created = fields["created_at"]
            tz = created.tzinfo
            if tz is not UTC and tz is not _PARSED_UTC and created.utcoffset() != _NO_OFFSET:
                fields["created_at"] = _as_utc(created)
            fields["thread_id"] = thread_id
            fields["user_id"] = user_id
            fields["parent_id"] = parent_id
            message.__pydantic_fields_set__.update(_BOUND)
            append(message)
            parent_id = fields["id"]
    except (TypeError, ValueError) as exc:
        raise _unreadable(exc, f" (entry {len(messages)} of the read)") from exc
    return messages


def _as_utc(created: datetime) -> datetime:
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "invalid message: " + "; ".join(parts)


__all__ = [
    "BLOCKS_ADAPTER",
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "AudioBlock",
    "ContentBlock",
    "DocumentBlock",
    "ImageBlock",
    "Message",
    "OpaqueBlock",
    "Role",
    "TextBlock",
    "ThinkingBlock",
    "ToolCallBlock",
    "ToolResultBlock",
    "check_value",
    "load_stored",
    "load_stored_branch",
    "text_problem",
    "value_problem",
]
