"""Lossless conversion between LangChain messages and the core ``Message``.

LangChain -> core -> LangChain gives back an equal message (same class, content, tool calls,
ids, ``additional_kwargs``, ``response_metadata``, ``usage_metadata``, artifact ...), also after
a trip through any store. The rules:

* Content blocks the core models exactly become typed core blocks, so the context engine and
  recall see text, media, thinking and tool calls: ``text`` (and bare strings), ``reasoning``,
  Anthropic ``thinking`` / ``redacted_thinking``, ``image`` / ``audio`` / ``file`` /
  ``text-plain`` in the v1 standard and the v0 ``source_type`` forms, OpenAI ``image_url``.
  Extra keys of such a block (``id``, ``annotations``, ``extras`` ...) are kept beside it.
* Every other block (``tool_use``, ``server_tool_call``, ``non_standard``, citations, a block
  of a provider Tela Memory does not know ...) is stored as ``OpaqueBlock(source="langchain")``
  holding the block as it came, and given back unchanged: nothing is dropped.
* ``AIMessage.tool_calls`` become ``ToolCallBlock`` s (a call without an id is kept opaque);
  tool-call blocks inside ``content`` stay in the content as opaque blocks, so a call is never
  counted twice. ``ToolMessage`` becomes a tool message with one ``ToolResultBlock``
  (``status="error"`` <-> ``is_error``).
* What LangChain has and the core has no field for is kept in ``metadata["langchain"]``.
* Message chunks (``AIMessageChunk`` ...) are stored as the message they make:
  :func:`messages_to_core` merges consecutive chunks of one message first.

A core message that did not come from LangChain converts on a best-effort basis (v1 standard
blocks; a tool message with several results gives several ``ToolMessage`` s).

Every conversion is checked: a block whose typed form would not give back exactly what came
in is kept opaque instead. Content that is not JSON (a Python object in a block or in
``additional_kwargs``) raises ``InvalidMessageError``: it could not be stored anyway.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any, cast

from langchain_core.documents import Document
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    message_chunk_to_message,
)
from pydantic import ValidationError

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import (
    AudioBlock,
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

SOURCE = "langchain"
"""``OpaqueBlock.source`` and ``metadata`` key for what only LangChain understands."""

_TOOL_CALL_KEY = "__langchain_tool_call__"
_DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.DOTALL)
_CHAT_ROLES = {
    "user": Role.USER,
    "human": Role.USER,
    "assistant": Role.ASSISTANT,
    "ai": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "developer": Role.DEVELOPER,
}
_DEVELOPER_KWARG = "__openai_role__"

Hint = dict[str, Any] | None


class _NoMatch(Exception):
    """A block is not of the form a converter handles."""


# -- JSON guard ------------------------------------------------------------------------------


def _json(value: Any, what: str) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(
            f"{what} is not JSON-serialisable ({exc}); only JSON data can be stored"
        ) from exc
    return value


# -- content blocks: LangChain -> core -------------------------------------------------------


def _text_in(item: dict[str, Any]) -> tuple[ContentBlock, Hint]:
    if item.get("type") != "text" or not isinstance(item.get("text"), str):
        raise _NoMatch
    extra = {k: v for k, v in item.items() if k not in ("type", "text")}
    return TextBlock(text=item["text"]), ({"x": extra} if extra else None)


def _reasoning_in(item: dict[str, Any]) -> tuple[ContentBlock, Hint]:
    kind = item.get("type")
    rest = {k: v for k, v in item.items() if k != "type"}
    if kind == "reasoning":
        text = rest.pop("reasoning", "")
        extras = rest.get("extras")
        signature = None
        if isinstance(extras, dict) and isinstance(extras.get("signature"), str):
            signature = extras["signature"]
            rest["extras"] = {k: v for k, v in extras.items() if k != "signature"}
        block = ThinkingBlock(text=text, signature=signature)
        return block, ({"x": rest} if rest else None)
    if kind == "thinking":
        text = rest.pop("thinking")
        signature = rest.pop("signature", None)
        return ThinkingBlock(text=text, signature=signature), {"t": "thinking", "x": rest}
    if kind == "redacted_thinking":
        data = rest.pop("data")
        block = ThinkingBlock(signature=data, redacted=True)
        return block, {"t": "redacted_thinking", "x": rest}
    raise _NoMatch


_V0_KEYS = {"url": ("url", "url"), "base64": ("data", "data"), "id": ("id", "ref")}
_V1_KEYS = (("url", "url"), ("base64", "data"), ("file_id", "ref"))
_MEDIA_TYPES: dict[str, type[ImageBlock] | type[AudioBlock] | type[DocumentBlock]] = {
    "image": ImageBlock,
    "audio": AudioBlock,
    "file": DocumentBlock,
    "text-plain": DocumentBlock,
}


def _media_in(item: dict[str, Any]) -> tuple[ContentBlock, Hint]:
    kind = item.get("type")
    cls = _MEDIA_TYPES.get(str(kind))
    if cls is None:
        raise _NoMatch
    rest = {k: v for k, v in item.items() if k != "type"}
    fields: dict[str, Any] = {}
    if "source_type" in rest:
        keys = _V0_KEYS.get(rest["source_type"])
        if keys is None or keys[0] not in rest:
            raise _NoMatch
        fields[keys[1]] = rest.pop(keys[0])
    else:
        for lc_key, core_key in _V1_KEYS:
            if lc_key in rest:
                fields[core_key] = rest.pop(lc_key)
    if "mime_type" in rest:
        fields["mime_type"] = rest.pop("mime_type")
    if kind == "text-plain":
        for key in ("text", "title"):
            if key in rest:
                fields[key] = rest.pop(key)
    hint: dict[str, Any] = {}
    if kind in ("file", "text-plain") and kind != _default_doc_type(fields):
        hint["t"] = kind
    if rest:
        hint["x"] = rest
    return cls(**fields), (hint or None)


def _image_url_in(item: dict[str, Any]) -> tuple[ContentBlock, Hint]:
    if item.get("type") != "image_url":
        raise _NoMatch
    rest = {k: v for k, v in item.items() if k not in ("type", "image_url")}
    raw = item.get("image_url")
    hint: dict[str, Any] = {"t": "image_url"}
    if isinstance(raw, str):
        url, detail, inner = raw, None, {}
        hint["s"] = True
    elif isinstance(raw, dict) and isinstance(raw.get("url"), str):
        url, detail = raw["url"], raw.get("detail")
        inner = {k: v for k, v in raw.items() if k not in ("url", "detail")}
    else:
        raise _NoMatch
    fields: dict[str, Any] = {"detail": detail}
    match = _DATA_URL.match(url)
    if match:
        fields["mime_type"], fields["data"] = match.group(1), match.group(2)
    else:
        fields["url"] = url
    if inner:
        hint["i"] = inner
    if rest:
        hint["x"] = rest
    return ImageBlock(**fields), hint


_CONVERTERS = (_text_in, _reasoning_in, _media_in, _image_url_in)


def block_to_core(item: str | dict[str, Any]) -> tuple[ContentBlock, Hint]:
    """One LangChain content item as a core block and the hint that restores it exactly."""
    if isinstance(item, str):
        return TextBlock(text=item), {"t": "str"}
    if not isinstance(item, dict):
        raise InvalidMessageError(
            f"a LangChain content item must be a str or a dict, not {type(item).__name__}"
        )
    _json(item, f"content block of type {item.get('type')!r}")
    for convert in _CONVERTERS:
        try:
            block, hint = convert(item)
        except (_NoMatch, KeyError, TypeError, ValidationError):
            continue
        if block_to_langchain(block, hint) == item:
            return block, hint
    return OpaqueBlock(source=SOURCE, data=item), None


# -- content blocks: core -> LangChain -------------------------------------------------------


def _default_doc_type(fields: dict[str, Any]) -> str:
    sources = [k for k in ("data", "url", "ref") if fields.get(k) is not None]
    return "text-plain" if fields.get("text") is not None and not sources else "file"


def _media_out(block: ImageBlock | AudioBlock | DocumentBlock, hint: dict[str, Any]) -> Any:
    if isinstance(block, DocumentBlock):
        kind = hint.get("t") or _default_doc_type(block.model_dump())
    else:
        kind = block.type
    out: dict[str, Any] = {"type": kind}
    extra = dict(hint.get("x") or {})
    if "source_type" in extra:
        lc_key, core_key = _V0_KEYS[extra["source_type"]]
        out[lc_key] = getattr(block, core_key)
    else:
        for lc_key, core_key in _V1_KEYS:
            value = getattr(block, core_key)
            if value is not None:
                out[lc_key] = value
    if block.mime_type is not None:
        out["mime_type"] = block.mime_type
    if isinstance(block, DocumentBlock):
        if kind == "text-plain":
            for key in ("text", "title"):
                if getattr(block, key) is not None:
                    out[key] = getattr(block, key)
        elif block.text is not None or block.title is not None:  # best effort for core files
            out.setdefault("extras", {}).update(
                {k: v for k, v in (("text", block.text), ("title", block.title)) if v}
            )
    out.update(extra)
    return out


def _image_url_out(block: ImageBlock, hint: dict[str, Any]) -> Any:
    url = block.url if block.url is not None else f"data:{block.mime_type};base64,{block.data}"
    if hint.get("s"):
        inner: Any = url
    else:
        inner = {"url": url, **({"detail": block.detail} if block.detail else {})}
        inner.update(hint.get("i") or {})
    return {"type": "image_url", "image_url": inner, **(hint.get("x") or {})}


def _thinking_out(block: ThinkingBlock, hint: dict[str, Any]) -> Any:
    kind = hint.get("t") or ("redacted_thinking" if block.redacted else "reasoning")
    extra = dict(hint.get("x") or {})
    if kind == "thinking":
        sig = {"signature": block.signature} if block.signature is not None else {}
        return {"type": "thinking", "thinking": block.text, **sig, **extra}
    if kind == "redacted_thinking":
        return {"type": "redacted_thinking", "data": block.signature or "", **extra}
    out: dict[str, Any] = {"type": "reasoning", "reasoning": block.text, **extra}
    if block.signature is not None:
        out["extras"] = {**(out.get("extras") or {}), "signature": block.signature}
    return out


def block_to_langchain(block: ContentBlock, hint: Hint = None) -> str | dict[str, Any]:
    """A core block as a LangChain content item (``hint`` from :func:`block_to_core`)."""
    h = hint or {}
    if isinstance(block, TextBlock):
        if h.get("t") == "str":
            return block.text
        return {"type": "text", "text": block.text, **(h.get("x") or {})}
    if isinstance(block, ThinkingBlock):
        return cast("dict[str, Any]", _thinking_out(block, h))
    if isinstance(block, ImageBlock) and h.get("t") == "image_url":
        return cast("dict[str, Any]", _image_url_out(block, h))
    if isinstance(block, ImageBlock | AudioBlock | DocumentBlock):
        return cast("dict[str, Any]", _media_out(block, h))
    if isinstance(block, OpaqueBlock):
        if block.source == SOURCE:
            return dict(block.data)
        return {"type": "non_standard", "value": {"source": block.source, **block.data}}
    if isinstance(block, ToolCallBlock):
        return {"type": "tool_call", "id": block.id, "name": block.name, "args": block.arguments}
    return {"type": "text", "text": block.text}  # a tool result outside a tool message


# -- messages: LangChain -> core -------------------------------------------------------------


def _tool_call_in(call: dict[str, Any]) -> ContentBlock:
    _json(dict(call), f"tool call {call.get('name')!r}")
    try:
        block = ToolCallBlock(id=call["id"], name=call["name"], arguments=call["args"])
    except (KeyError, TypeError, ValidationError):
        return OpaqueBlock(source=SOURCE, data={_TOOL_CALL_KEY: dict(call)})
    if _tool_call_out(block) == dict(call):
        return block
    return OpaqueBlock(source=SOURCE, data={_TOOL_CALL_KEY: dict(call)})


def _tool_call_out(block: ToolCallBlock) -> dict[str, Any]:
    return {"name": block.name, "args": dict(block.arguments), "id": block.id, "type": "tool_call"}


def _content_in(content: str | list[Any]) -> tuple[list[ContentBlock], list[Hint], bool]:
    if isinstance(content, str):
        return ([TextBlock(text=content)] if content else []), [], False
    blocks: list[ContentBlock] = []
    hints: list[Hint] = []
    for item in content:
        block, hint = block_to_core(item)
        blocks.append(block)
        hints.append(hint)
    return blocks, hints, True


def _role_of(message: BaseMessage) -> Role:
    if isinstance(message, HumanMessage):
        return Role.USER
    if isinstance(message, AIMessage):
        return Role.ASSISTANT
    if isinstance(message, SystemMessage):
        dev = message.additional_kwargs.get(_DEVELOPER_KWARG) == "developer"
        return Role.DEVELOPER if dev else Role.SYSTEM
    if isinstance(message, ToolMessage | FunctionMessage):
        return Role.TOOL
    if isinstance(message, ChatMessage):
        return _CHAT_ROLES.get(message.role.lower(), Role.USER)
    raise InvalidMessageError(
        f"cannot store a LangChain {type(message).__name__} (type {message.type!r}): "
        "only human, ai, system, tool, function and chat messages hold conversation content"
    )


def _artifact_in(artifact: Any) -> Any:
    """A tool artifact as JSON: JSON data as it is, ``Document`` s field by field."""
    docs = artifact if isinstance(artifact, list) else [artifact]
    if docs and all(isinstance(d, Document) for d in docs):
        fields = [
            {"page_content": d.page_content, "metadata": d.metadata, "id": d.id} for d in docs
        ]
        out = {"documents": fields, "list": isinstance(artifact, list)}
        return _json(out, "the tool message's Document artifact")
    return {"json": _json(artifact, "the tool message's artifact (only JSON or Documents)")}


def _artifact_out(stored: dict[str, Any]) -> Any:
    if "json" in stored:
        return stored["json"]
    docs = [Document(**fields) for fields in stored["documents"]]
    return docs if stored.get("list") else docs[0]


def to_core(message: BaseMessage, **fields: Any) -> Message:
    """A LangChain message as a core ``Message``.

    Args:
        message: any human, AI, system, tool, function or chat message (chunks are merged
            into the message they make).
        **fields: core fields to set (``id``, ``thread_id``, ``user_id``, ``created_at`` ...).

    Raises:
        InvalidMessageError: a ``RemoveMessage`` or another non-content message, or data that
            is not JSON.
    """
    if isinstance(message, BaseMessageChunk):
        message = message_chunk_to_message(message)
    role = _role_of(message)
    meta: dict[str, Any] = {"type": message.type, "id": message.id}
    blocks: list[ContentBlock]
    if isinstance(message, ToolMessage | FunctionMessage):
        blocks, hints, is_list = _tool_content_in(message, meta)
    else:
        blocks, hints, is_list = _content_in(message.content)
    if is_list:
        meta["list"] = True
    if any(h is not None for h in hints):
        meta["blocks"] = hints
    if isinstance(message, AIMessage):
        blocks.extend(_tool_call_in(cast("dict[str, Any]", c)) for c in message.tool_calls)
        if message.invalid_tool_calls:
            meta["invalid_tool_calls"] = [dict(c) for c in message.invalid_tool_calls]
        if message.usage_metadata is not None:
            meta["usage_metadata"] = dict(message.usage_metadata)
    if isinstance(message, ChatMessage):
        meta["role"] = message.role
    for key in ("additional_kwargs", "response_metadata"):
        value = getattr(message, key)
        if value:
            meta[key] = dict(value)
    _json(meta, f"the {message.type} message's fields")
    fields.setdefault("name", message.name)
    metadata = {**fields.pop("metadata", {}), SOURCE: meta}
    return Message(role=role, content=blocks, metadata=metadata, **fields)


def _tool_content_in(
    message: ToolMessage | FunctionMessage, meta: dict[str, Any]
) -> tuple[list[ContentBlock], list[Hint], bool]:
    if isinstance(message, ToolMessage):
        call_id, is_error = message.tool_call_id, message.status == "error"
        if message.artifact is not None:
            meta["artifact"] = _artifact_in(message.artifact)
    else:
        call_id, is_error = f"function:{message.name}", False
    if not call_id:
        raise InvalidMessageError("a ToolMessage needs a tool_call_id")
    content = message.content
    if isinstance(content, str):
        return (
            [ToolResultBlock(tool_call_id=call_id, content=content, is_error=is_error)],
            [],
            False,
        )
    inner, hints, _ = _content_in(content)
    if all(isinstance(b, TextBlock | ImageBlock) for b in inner):
        result = ToolResultBlock(tool_call_id=call_id, content=inner, is_error=is_error)
        return [result], hints, True
    # Blocks a tool result cannot hold: keep the list verbatim, the text for search and tokens.
    meta["tool_content"] = _json(list(content), "tool message content")
    text = "\n".join(b.text for b in inner if isinstance(b, TextBlock))
    return [ToolResultBlock(tool_call_id=call_id, content=text, is_error=is_error)], [], True


def messages_to_core(messages: Iterable[BaseMessage], **fields: Any) -> list[Message]:
    """Convert several messages; consecutive chunks of one message are merged first."""
    merged: list[BaseMessage] = []
    for message in messages:
        prev = merged[-1] if merged else None
        if (
            isinstance(message, BaseMessageChunk)
            and isinstance(prev, BaseMessageChunk)
            and type(prev) is type(message)
            and (prev.id is None or message.id is None or prev.id == message.id)
        ):
            merged[-1] = prev + message
        else:
            merged.append(message)
    return [to_core(m, **fields) for m in merged]


# -- messages: core -> LangChain -------------------------------------------------------------


def _langchain_meta(message: Message) -> dict[str, Any] | None:
    meta = message.metadata.get(SOURCE)
    return cast("dict[str, Any]", meta) if isinstance(meta, dict) else None


def langchain_id(message: Message) -> str | None:
    """The id the LangChain side knows a stored message by (its own, else the core id)."""
    meta = _langchain_meta(message)
    if meta is not None and "id" in meta:
        return cast("str | None", meta["id"])
    return message.id


def _content_out(
    blocks: list[ContentBlock], hints: Any, is_list: bool | None
) -> str | list[str | dict[str, Any]]:
    if not isinstance(hints, list) or len(hints) != len(blocks):
        hints = [None] * len(blocks)
    items = [block_to_langchain(b, h) for b, h in zip(blocks, hints, strict=True)]
    if is_list:
        return items
    if not items:
        return ""
    if len(items) == 1 and isinstance(blocks[0], TextBlock):
        return blocks[0].text
    return items


def _tool_messages(
    message: Message, meta: dict[str, Any] | None, common: dict[str, Any]
) -> list[BaseMessage]:
    lc = meta or {}
    results = message.tool_results
    others = [b for b in message.content if not isinstance(b, ToolResultBlock)]
    out: list[BaseMessage] = []
    for i, result in enumerate(results):
        content: Any
        if "tool_content" in lc:
            content = lc["tool_content"]
        elif isinstance(result.content, str):
            content = [result.content] if lc.get("list") else result.content
        else:
            content = _content_out(list(result.content), lc.get("blocks"), True)
        if i == 0 and others:
            as_list = content if isinstance(content, list) else ([content] if content else [])
            content = as_list + [block_to_langchain(b) for b in others]
        extra = dict(common) if i == 0 else {**common, "id": None}
        if lc.get("type") == "function":
            out.append(FunctionMessage(content=content, **{**extra, "name": message.name or ""}))
            continue
        artifact = lc.get("artifact")
        if isinstance(artifact, dict):
            extra["artifact"] = _artifact_out(artifact)
        status = "error" if result.is_error else "success"
        out.append(
            ToolMessage(content=content, tool_call_id=result.tool_call_id, status=status, **extra)
        )
    return out


def _to_langchain(message: Message) -> list[BaseMessage]:
    meta = _langchain_meta(message)
    lc = meta or {}
    common: dict[str, Any] = {
        "id": langchain_id(message),
        "name": message.name,
        "additional_kwargs": dict(lc.get("additional_kwargs") or {}),
        "response_metadata": dict(lc.get("response_metadata") or {}),
    }
    if message.role is Role.TOOL:
        return _tool_messages(message, meta, common)
    calls: list[dict[str, Any]] = []
    blocks: list[ContentBlock] = []
    for block in message.content:
        if isinstance(block, ToolCallBlock):
            calls.append(_tool_call_out(block))
        elif (
            isinstance(block, OpaqueBlock)
            and block.source == SOURCE
            and _TOOL_CALL_KEY in block.data
        ):
            calls.append(cast("dict[str, Any]", block.data[_TOOL_CALL_KEY]))
        else:
            blocks.append(block)
    content = _content_out(blocks, lc.get("blocks"), lc.get("list"))
    kind = lc.get("type")
    if message.role is Role.ASSISTANT and kind in (None, "ai"):
        usage = lc.get("usage_metadata")
        return [
            AIMessage(
                content=content,
                tool_calls=calls,
                invalid_tool_calls=lc.get("invalid_tool_calls") or [],
                usage_metadata=usage,
                **common,
            )
        ]
    if kind == "chat":
        return [ChatMessage(content=content, role=lc.get("role") or message.role.value, **common)]
    if message.role is Role.USER and kind in (None, "human"):
        return [HumanMessage(content=content, **common)]
    if message.role in (Role.SYSTEM, Role.DEVELOPER) and kind in (None, "system"):
        if message.role is Role.DEVELOPER:
            common["additional_kwargs"].setdefault(_DEVELOPER_KWARG, "developer")
        return [SystemMessage(content=content, **common)]
    # The role was changed in the core after the message came from LangChain: follow the role.
    role = "assistant" if message.role is Role.ASSISTANT else message.role.value
    return [ChatMessage(content=content, role=role, **common)]


def to_langchain(message: Message) -> BaseMessage:
    """A core message as the LangChain message it came from (or the closest one).

    Raises:
        InvalidMessageError: a tool message with several results (use
            :func:`messages_to_langchain`, which gives one ``ToolMessage`` per result).
    """
    out = _to_langchain(message)
    if len(out) != 1:
        raise InvalidMessageError(
            f"message {message.id!r} gives {len(out)} LangChain messages; use messages_to_langchain"
        )
    return out[0]


def messages_to_langchain(messages: Sequence[Message]) -> list[BaseMessage]:
    """Convert several core messages (a tool message with n results gives n ``ToolMessage`` s)."""
    out: list[BaseMessage] = []
    for message in messages:
        out.extend(_to_langchain(message))
    return out


__all__ = [
    "SOURCE",
    "block_to_core",
    "block_to_langchain",
    "langchain_id",
    "messages_to_core",
    "messages_to_langchain",
    "to_core",
    "to_langchain",
]
