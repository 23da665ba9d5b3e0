"""Tela Memory's own lossless JSON: threads with every message, branch heads and metadata.

Also the two JSONL layouts: one message per line (our message JSON, lossless for messages)
and one conversation per line (the OpenAI fine-tuning layout; ShareGPT lines are read too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from tela_memory.formats._codec import Codec, dumps
from tela_memory.formats._io import expect, parse_json
from tela_memory.formats._model import DEFAULT_BRANCH, Conversation, FormatError, LossReport
from tela_memory.messages import Message

FORMAT_TAG = "tela-memory"
VERSION = 1


def _message(raw: Any, where: str) -> Message:
    expect(raw, dict, where, "a message")
    try:
        return Message.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        raise FormatError(err["msg"], f"{where}{loc}") from exc


def conversation_to_json(conv: Conversation) -> dict[str, Any]:
    """A conversation as our JSON object."""
    return {
        "id": conv.id,
        "user_id": conv.user_id,
        "title": conv.title,
        "tags": list(conv.tags),
        "metadata": conv.metadata,
        "created_at": conv.created_at.isoformat() if conv.created_at else None,
        "default_branch": conv.default_branch,
        "branches": dict(conv.branches),
        "messages": [m.model_dump(mode="json") for m in conv.messages],
    }


def conversation_from_json(raw: Any, where: str) -> Conversation:
    """Inverse of :func:`conversation_to_json`; validates the tree."""
    expect(raw, dict, where, "a conversation")
    msgs = expect(raw.get("messages", []), list, f"{where}.messages", "messages")
    created = raw.get("created_at")
    try:
        created_at = datetime.fromisoformat(created) if created else None
    except (TypeError, ValueError) as exc:
        raise FormatError(f"bad created_at {created!r}", f"{where}.created_at") from exc
    return Conversation(
        messages=[_message(m, f"{where}.messages[{i}]") for i, m in enumerate(msgs)],
        id=raw.get("id"),
        branches=dict(expect(raw.get("branches") or {}, dict, f"{where}.branches", "branches")),
        default_branch=raw.get("default_branch") or DEFAULT_BRANCH,
        user_id=raw.get("user_id"),
        title=raw.get("title"),
        tags=tuple(raw.get("tags") or ()),
        metadata=dict(raw.get("metadata") or {}),
        created_at=created_at,
    ).validate(where)


class NativeCodec(Codec):
    """``{"format": "tela-memory", "version": 1, "conversations": [...]}``, lossless."""

    name = "tela"
    description = "Tela Memory lossless JSON (all branches, ids, timestamps, metadata)"
    lossless = True

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        expect(data, dict, "$", "a tela-memory document")
        if data.get("format") != FORMAT_TAG:
            raise FormatError(f'not a tela-memory document (no "format": "{FORMAT_TAG}")', "$")
        if data.get("version") != VERSION:
            raise FormatError(f"unsupported version {data.get('version')!r}", "$.version")
        convs = expect(data.get("conversations"), list, "$.conversations", "conversations")
        for i, c in enumerate(convs):
            yield f"$.conversations[{i}]", c

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        return conversation_from_json(raw, where)

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        return dumps(
            {
                "format": FORMAT_TAG,
                "version": VERSION,
                "conversations": [conversation_to_json(c) for c in conversations],
            }
        )


class _LineCodec(Codec):
    line_based = True
    suffix = ".jsonl"

    def units(self, text: str) -> Iterator[tuple[str, Any]]:
        lines = ((n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip())
        yield from self.units_from_lines(lines)

    def units_from_lines(self, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, Any]]:
        """Raw units from ``(line number, text)`` pairs."""
        for n, line in lines:
            try:
                yield f"line {n}", parse_json(line, "input", n - 1)
            except FormatError as exc:  # handed on, so that the next lines can still be read
                yield f"line {n}", exc


def _thread_key(obj: Any) -> tuple[Any, Any]:
    """What keeps consecutive lines in one conversation: thread and owner (threads live in
    their user's namespace, so two users' ``t1`` are two conversations)."""
    if not isinstance(obj, dict):
        return (None, None)
    return (obj.get("thread_id"), obj.get("user_id"))


def _legacy_heads(obj: Any, current: object) -> bool:
    """A branches line without ``user_id`` (as written before owners were kept) closes the
    conversation of its thread."""
    return (
        isinstance(obj, dict)
        and "branches" in obj
        and "role" not in obj
        and "user_id" not in obj
        and isinstance(current, tuple)
        and current[0] == obj.get("thread_id")
    )


class MessageLinesCodec(_LineCodec):
    """One message per line (our message JSON); consecutive lines of a thread form a
    conversation. A thread with branches ends with a line ``{"thread_id", "default_branch",
    "branches"}`` naming the heads; without it, ``main`` ends at the thread's last line."""

    name = "jsonl"
    description = "JSONL, one message per line (Tela Memory message JSON)"
    lossless = True

    def units_from_lines(self, lines: Iterable[tuple[int, str]]) -> Iterator[tuple[str, Any]]:
        group: list[tuple[str, Any]] = []
        current: object = object()
        for where, obj in super().units_from_lines(lines):
            if isinstance(obj, FormatError):
                if group:
                    yield group[0][0], group
                    group, current = [], object()
                yield where, obj
                continue
            if not (group and _legacy_heads(obj, current)):
                key = _thread_key(obj)
                if group and key != current:
                    yield group[0][0], group
                    group = []
                current = key
            group.append((where, obj))
        if group:
            yield group[0][0], group

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        heads: dict[str, Any] | None = None
        msgs: list[Message] = []
        for w, obj in raw:
            if isinstance(obj, dict) and "branches" in obj and "role" not in obj:
                heads = obj
                continue
            msgs.append(_message(obj, w))
        if not msgs:
            raise FormatError("a branches line without messages", where)
        first = msgs[0]
        if heads is not None:
            branches = expect(heads.get("branches"), dict, where, "branches")
            return Conversation(
                msgs,
                id=first.thread_id,
                branches=dict(branches),
                default_branch=str(heads.get("default_branch") or DEFAULT_BRANCH),
                user_id=first.user_id,
            )
        if all(m.parent_id is None for m in msgs):
            return Conversation.linear(msgs, id=first.thread_id, user_id=first.user_id)
        return Conversation(
            msgs,
            id=first.thread_id,
            branches={DEFAULT_BRANCH: msgs[-1].id},
            user_id=first.user_id,
        )

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        lines = []
        for conv in conversations:
            if conv.title or conv.tags or conv.metadata:
                report.add(
                    "thread_metadata",
                    f"conversation {conv.id!r}",
                    "thread title, tags and metadata are not kept (use 'tela')",
                )
            for m in conv.messages:
                owner = conv.user_id if conv.user_id is not None else m.user_id
                same = m.thread_id == conv.id and m.user_id == owner
                m2 = m if same else m.model_copy(update={"thread_id": conv.id, "user_id": owner})
                lines.append(m2.model_dump_json())
            simple = (
                conv.default_branch == DEFAULT_BRANCH
                and list(conv.branches) == [DEFAULT_BRANCH]
                and bool(conv.messages)
                and conv.branches[DEFAULT_BRANCH] == conv.messages[-1].id
            )
            if conv.messages and not simple:
                lines.append(
                    json.dumps(
                        {
                            "thread_id": conv.id,
                            **({"user_id": conv.user_id} if conv.user_id is not None else {}),
                            "default_branch": conv.default_branch,
                            "branches": conv.branches,
                        },
                        ensure_ascii=False,
                    )
                )
        return "\n".join(lines) + ("\n" if lines else "")


class ConversationLinesCodec(_LineCodec):
    """One conversation per line: ``{"messages": [OpenAI chat messages]}`` (fine-tuning
    layout); ShareGPT (``conversations``) and Tela Memory conversation lines are read too."""

    name = "jsonl-conversations"
    description = "JSONL, one conversation per line (OpenAI fine-tuning layout)"

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        from tela_memory.formats.openai_chat import OpenAIChatCodec
        from tela_memory.formats.sharegpt import ShareGPTCodec

        expect(raw, dict, where, "a conversation object")
        if "branches" in raw and "messages" in raw:
            return conversation_from_json(raw, where)
        if "conversations" in raw:
            return ShareGPTCodec().decode_unit(raw, where, report)
        if "messages" in raw:
            return OpenAIChatCodec().decode_unit(raw, where, report)
        raise FormatError("expected an object with 'messages' or 'conversations'", where)

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        from tela_memory.formats.openai_chat import to_openai_chat

        report.note("OpenAI chat lines do not keep message ids, timestamps or metadata")
        lines = []
        for i, conv in enumerate(conversations):
            path = conv.lossy_path(report, f"conversation {conv.id or i!r}")
            body: dict[str, Any] = {}
            if conv.id is not None:
                body["id"] = conv.id
            body["messages"] = to_openai_chat(path, report)
            lines.append(json.dumps(body, ensure_ascii=False))
        return "\n".join(lines) + ("\n" if lines else "")


__all__ = [
    "FORMAT_TAG",
    "ConversationLinesCodec",
    "MessageLinesCodec",
    "NativeCodec",
    "conversation_from_json",
    "conversation_to_json",
]
