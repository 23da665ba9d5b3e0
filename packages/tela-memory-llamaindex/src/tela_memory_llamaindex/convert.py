"""Lossless conversion between LlamaIndex ``ChatMessage`` and the core ``Message``.

LlamaIndex -> core -> LlamaIndex gives back an equal ``ChatMessage`` for every block type
(text, image, audio, video, document, thinking, tool call, citable, citation, cache point)
and keeps ``additional_kwargs``. Blocks the core models exactly become typed core blocks (so
the context engine sees tool calls, media and thinking); anything else (video, citations,
cache points, a tool call without an id, an image with two sources ...) is kept as an
``OpaqueBlock(source="llamaindex")`` holding the block's JSON, and comes back as it went in.

What LlamaIndex cannot hold is kept in the message metadata under the ``"llamaindex"`` key
(the original role when the core has no such role, the additional kwargs, raw OpenAI-style
``tool_calls``). A core message that did not come from LlamaIndex converts on a best-effort
basis: fields LlamaIndex has no place for (image size, audio transcript, foreign opaque
blocks, message metadata) are left out of the ``ChatMessage`` but stay in the store.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import (
    AudioBlock as LIAudioBlock,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    MessageRole,
)
from llama_index.core.base.llms.types import (
    ContentBlock as LIContentBlock,
)
from llama_index.core.base.llms.types import (
    DocumentBlock as LIDocumentBlock,
)
from llama_index.core.base.llms.types import (
    ImageBlock as LIImageBlock,
)
from llama_index.core.base.llms.types import (
    TextBlock as LITextBlock,
)
from llama_index.core.base.llms.types import (
    ThinkingBlock as LIThinkingBlock,
)
from llama_index.core.base.llms.types import (
    ToolCallBlock as LIToolCallBlock,
)
from pydantic import TypeAdapter, ValidationError

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import (
    AudioBlock,
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

SOURCE = "llamaindex"
"""``OpaqueBlock.source`` and metadata key used for what only LlamaIndex understands."""

_LI_BLOCKS: TypeAdapter[Any] = TypeAdapter(LIContentBlock)

_ROLE_TO_CORE = {
    MessageRole.SYSTEM: Role.SYSTEM,
    MessageRole.DEVELOPER: Role.DEVELOPER,
    MessageRole.USER: Role.USER,
    MessageRole.ASSISTANT: Role.ASSISTANT,
    MessageRole.TOOL: Role.TOOL,
    MessageRole.FUNCTION: Role.TOOL,
    MessageRole.CHATBOT: Role.ASSISTANT,
    MessageRole.MODEL: Role.ASSISTANT,
}
_DETAILS = {None, "auto", "low", "high"}
_NO_CALL_ID = "absent"
_UNKNOWN_CALL_ID = "unknown"


# -- LlamaIndex -> core ---------------------------------------------------------------------


def to_core(
    message: ChatMessage,
    *,
    thread_id: str | None = None,
    user_id: str | None = None,
    **fields: Any,
) -> Message:
    """Convert a LlamaIndex ``ChatMessage`` to a core ``Message``.

    Args:
        message: the LlamaIndex message.
        thread_id: thread to set on the result (the store fills it when ``None``).
        user_id: user to set on the result.
        **fields: other ``Message`` fields (``id``, ``created_at`` ...).

    Raises:
        InvalidMessageError: ``additional_kwargs`` hold something that cannot be stored.
    """
    if not isinstance(message, ChatMessage):
        raise InvalidMessageError(
            f"expected a llama_index ChatMessage, got {type(message).__name__}"
        )
    role = _ROLE_TO_CORE[MessageRole(message.role)]
    meta: dict[str, Any] = {}
    if role.value != MessageRole(message.role).value:
        meta["role"] = MessageRole(message.role).value
    kwargs = _json_kwargs(message)
    kwargs.pop("images", None)  # legacy: already turned into image blocks by ChatMessage
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        del kwargs["name"]
    else:
        name = None

    content: list[Any] = []
    if role is Role.TOOL:
        content.extend(_tool_result(message, kwargs, meta))
    else:
        raw_kwargs: dict[str, str] = {}
        for i, block in enumerate(message.blocks):
            content.append(_block_to_core(block, role))
            raw = block.tool_kwargs if isinstance(block, LIToolCallBlock) else None
            if isinstance(raw, str) and isinstance(content[-1], ToolCallBlock):
                raw_kwargs[str(i)] = raw
        if raw_kwargs:
            meta["raw_tool_kwargs"] = raw_kwargs
    if role is Role.ASSISTANT:
        content.extend(_kwarg_tool_calls(kwargs, meta))
    if kwargs:
        meta["additional_kwargs"] = kwargs
    return Message(
        role=role,
        content=content,
        name=name,
        metadata={SOURCE: meta} if meta else {},
        thread_id=thread_id,
        user_id=user_id,
        **fields,
    )


def to_core_messages(messages: Iterable[ChatMessage], **fields: Any) -> list[Message]:
    """Convert many ``ChatMessage`` objects (see :func:`to_core`)."""
    return [to_core(m, **fields) for m in messages]


def _json_kwargs(message: ChatMessage) -> dict[str, Any]:
    try:
        dumped = message.model_dump(mode="json", include={"additional_kwargs"})
        kwargs: dict[str, Any] = dumped["additional_kwargs"]
        json.dumps(kwargs, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidMessageError(
            f"ChatMessage.additional_kwargs cannot be stored as JSON: {exc}"
        ) from exc
    return copy.deepcopy(kwargs)


def _opaque(block: Any) -> OpaqueBlock:
    return OpaqueBlock(source=SOURCE, data=block.model_dump(mode="json"))


def _one(*values: Any) -> bool:
    return sum(v is not None for v in values) == 1


def _block_to_core(block: Any, role: Role) -> Any:
    """One LlamaIndex block as a core block; exact or opaque, never lossy."""
    if isinstance(block, LITextBlock):
        return TextBlock(text=block.text)
    dumped = block.model_dump(mode="json")
    if isinstance(block, LIImageBlock):
        if _one(block.image, block.path, block.url) and block.detail in _DETAILS:
            return ImageBlock(
                data=dumped["image"],
                url=dumped["url"],
                ref=dumped["path"],
                mime_type=block.image_mimetype,
                detail=block.detail,
            )
    elif isinstance(block, LIAudioBlock):
        if _one(block.audio, block.path, block.url) and "/" not in (block.format or ""):
            return AudioBlock(
                data=dumped["audio"],
                url=dumped["url"],
                ref=dumped["path"],
                mime_type=f"audio/{block.format}" if block.format is not None else None,
            )
    elif isinstance(block, LIDocumentBlock):
        if any(v is not None for v in (block.data, block.path, block.url)):
            return DocumentBlock(
                data=dumped["data"],
                url=dumped["url"],
                ref=dumped["path"],
                mime_type=block.document_mimetype,
                title=block.title,
            )
    elif isinstance(block, LIThinkingBlock):
        info = block.additional_information
        signature = info.get("signature")
        redacted = info.get("redacted")
        if (
            block.content is not None
            and block.num_tokens is None
            and set(info) <= {"signature", "redacted"}
            and (signature is None or isinstance(signature, str))
            and ("signature" not in info or signature is not None)
            and ("redacted" not in info or redacted is True)
        ):
            return ThinkingBlock(text=block.content, signature=signature, redacted=bool(redacted))
    elif (
        isinstance(block, LIToolCallBlock)
        and role is Role.ASSISTANT
        and block.tool_call_id
        and block.tool_name
    ):
        args = dumped["tool_kwargs"]
        if isinstance(args, str):  # raw (maybe partial) JSON: kept aside by the caller
            args = _parse_object(args)
        return ToolCallBlock(id=block.tool_call_id, name=block.tool_name, arguments=args)
    return _opaque(block)


def _tool_result(message: ChatMessage, kwargs: dict[str, Any], meta: dict[str, Any]) -> list[Any]:
    call_id = kwargs.get("tool_call_id")
    if isinstance(call_id, str) and call_id:
        kwargs.pop("tool_call_id")
    else:
        meta["tool_call_id"] = _NO_CALL_ID
        call_id = _UNKNOWN_CALL_ID
    converted = [_block_to_core(b, Role.TOOL) for b in message.blocks]
    if all(isinstance(b, TextBlock | ImageBlock) for b in converted):
        result: str | list[Any]
        if len(converted) == 1 and isinstance(converted[0], TextBlock):
            result = converted[0].text
        else:
            result = converted
        return [ToolResultBlock(tool_call_id=call_id, content=result)]
    meta["result_blocks"] = "after"
    return [ToolResultBlock(tool_call_id=call_id, content=[]), *converted]


def _parse_object(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _kwarg_call(item: Any) -> ToolCallBlock | None:
    """One entry of ``additional_kwargs["tool_calls"]``: OpenAI shape or a ``ToolSelection``."""
    if not isinstance(item, dict):
        return None
    fn = item.get("function")
    if isinstance(fn, dict):  # {"id", "type": "function", "function": {"name", "arguments"}}
        call_id, name, args = item.get("id"), fn.get("name"), fn.get("arguments")
    else:  # ToolSelection dumped: {"tool_id", "tool_name", "tool_kwargs"}
        call_id, name, args = item.get("tool_id"), item.get("tool_name"), item.get("tool_kwargs")
    if not (isinstance(call_id, str) and call_id and isinstance(name, str) and name):
        return None
    if isinstance(args, str):
        args = _parse_object(args)
    if not isinstance(args, dict):
        args = {}
    return ToolCallBlock(id=call_id, name=name, arguments=args)


def _kwarg_tool_calls(kwargs: dict[str, Any], meta: dict[str, Any]) -> list[ToolCallBlock]:
    """``additional_kwargs["tool_calls"]`` as typed core tool calls; the raw list is kept."""
    raw = kwargs.get("tool_calls")
    if not isinstance(raw, list) or not raw:
        return []
    calls = [_kwarg_call(item) for item in raw]
    if any(c is None for c in calls):
        return []
    meta["kwarg_tool_calls"] = kwargs.pop("tool_calls")
    return [c for c in calls if c is not None]


# -- core -> LlamaIndex ---------------------------------------------------------------------


def from_core(message: Message) -> ChatMessage:
    """Convert a core ``Message`` to a LlamaIndex ``ChatMessage``.

    A message made by :func:`to_core` comes back equal to the original.
    """
    raw_meta = message.metadata.get(SOURCE)
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    role = meta.get("role") or message.role.value
    kwargs: dict[str, Any] = copy.deepcopy(meta.get("additional_kwargs") or {})
    if message.name:
        kwargs["name"] = message.name
    content = list(message.content)
    kwarg_calls = meta.get("kwarg_tool_calls")
    if isinstance(kwarg_calls, list):
        kwargs["tool_calls"] = copy.deepcopy(kwarg_calls)
        content = _drop_last_calls(content, len(kwarg_calls))

    raw_tool_kwargs = meta.get("raw_tool_kwargs")
    raw_kwargs: dict[str, Any] = raw_tool_kwargs if isinstance(raw_tool_kwargs, dict) else {}
    blocks: list[Any] = []
    seen_result = False
    for i, block in enumerate(content):
        if isinstance(block, ToolResultBlock):
            if not seen_result and meta.get("tool_call_id") != _NO_CALL_ID:
                kwargs["tool_call_id"] = block.tool_call_id
            seen_result = True
            if isinstance(block.content, str):
                blocks.append(LITextBlock(text=block.content))
            else:
                blocks.extend(_block_from_core(b) for b in block.content)
            continue
        converted = _block_from_core(block)
        if isinstance(converted, LIToolCallBlock) and str(i) in raw_kwargs:
            converted = converted.model_copy(update={"tool_kwargs": raw_kwargs[str(i)]})
        if converted is not None:
            blocks.append(converted)
    return ChatMessage(role=MessageRole(role), blocks=blocks, additional_kwargs=kwargs)


def from_core_messages(messages: Iterable[Message]) -> list[ChatMessage]:
    """Convert many core messages (see :func:`from_core`)."""
    return [from_core(m) for m in messages]


def _drop_last_calls(content: Sequence[Any], count: int) -> list[Any]:
    kept = list(content)
    for i in range(len(kept) - 1, -1, -1):
        if count == 0:
            break
        if isinstance(kept[i], ToolCallBlock):
            del kept[i]
            count -= 1
    return kept


def _path_or_construct(cls: Any, ref: str | None, **values: Any) -> Any:
    """Build a media block; a ``ref`` becomes ``path`` even when the file is gone."""
    if ref is None:
        return cls(**values)
    try:
        return cls(path=ref, **values)
    except ValidationError:
        return cls.model_construct(**{**values, "path": Path(ref)})


def _block_from_core(block: Any) -> Any:
    if isinstance(block, TextBlock):
        return LITextBlock(text=block.text)
    if isinstance(block, ImageBlock):
        return _path_or_construct(
            LIImageBlock,
            block.ref,
            image=block.data.encode() if block.data is not None else None,
            url=block.url,
            image_mimetype=block.mime_type,
            detail=block.detail,
        )
    if isinstance(block, AudioBlock):
        mime = block.mime_type or ""
        return _path_or_construct(
            LIAudioBlock,
            block.ref,
            audio=block.data.encode() if block.data is not None else None,
            url=block.url,
            format=mime.split("/", 1)[1] if mime.startswith("audio/") else None,
        )
    if isinstance(block, DocumentBlock):
        if block.data is None and block.url is None and block.ref is None:
            return LITextBlock(text=block.text or "")
        return LIDocumentBlock(
            data=block.data.encode() if block.data is not None else None,
            path=block.ref,
            url=block.url,
            title=block.title,
            document_mimetype=block.mime_type,
        )
    if isinstance(block, ThinkingBlock):
        info: dict[str, Any] = {}
        if block.signature is not None:
            info["signature"] = block.signature
        if block.redacted:
            info["redacted"] = True
        return LIThinkingBlock(content=block.text, additional_information=info)
    if isinstance(block, ToolCallBlock):
        return LIToolCallBlock(
            tool_call_id=block.id, tool_name=block.name, tool_kwargs=dict(block.arguments)
        )
    if isinstance(block, OpaqueBlock) and block.source == SOURCE:
        try:
            return _LI_BLOCKS.validate_python(block.data)
        except ValidationError:
            return _construct_opaque(block.data)
    return None  # a block LlamaIndex has no place for (e.g. another framework's opaque block)


def _construct_opaque(data: dict[str, Any]) -> Any:
    """Rebuild a stored LlamaIndex block whose validation now fails (a file that moved)."""
    kinds: dict[str, Any] = {
        "image": LIImageBlock,
        "audio": LIAudioBlock,
        "document": LIDocumentBlock,
    }
    cls = kinds.get(str(data.get("block_type")))
    if cls is None:
        return LITextBlock(text=json.dumps(data))
    values = dict(data)
    if values.get("path") is not None:
        values["path"] = Path(values["path"])
    return cls.model_construct(**values)


__all__ = ["SOURCE", "from_core", "from_core_messages", "to_core", "to_core_messages"]
