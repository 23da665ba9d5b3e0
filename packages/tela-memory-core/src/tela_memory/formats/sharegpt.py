"""ShareGPT: ``[{"id", "conversations": [{"from": "human", "value": "..."}]}]``.

Tool turns follow the LLaMA-Factory variant: ``function_call`` (value: JSON ``{"name",
"arguments"}`` or a list of them) and ``observation`` (the tool's output); images by path or
URL too (``<image>`` tokens in the text, paths in the conversation's ``images`` list).
``system`` may be a turn or a top-level string. Not held: inline media, audio, documents,
thinking, tool call ids, names, timestamps.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec, dumps, unkept, unkept_name
from tela_memory.formats._io import expect
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.formats.openai_chat import parse_arguments
from tela_memory.messages import ImageBlock, Message, Role, TextBlock, ToolCallBlock

IMAGE_TOKEN = "<image>"
"""Where an image of the conversation's ``images`` list goes (LLaMA-Factory multimodal)."""

FROM_ROLE: dict[str, Role] = {
    "human": Role.USER,
    "user": Role.USER,
    "gpt": Role.ASSISTANT,
    "assistant": Role.ASSISTANT,
    "chatgpt": Role.ASSISTANT,
    "bard": Role.ASSISTANT,
    "bing": Role.ASSISTANT,
    "model": Role.ASSISTANT,
    "system": Role.SYSTEM,
    "function_call": Role.ASSISTANT,
    "observation": Role.TOOL,
    "tool": Role.TOOL,
    "function": Role.TOOL,
}
ROLE_FROM = {Role.USER: "human", Role.ASSISTANT: "gpt", Role.SYSTEM: "system"}


class ShareGPTCodec(Codec):
    """ShareGPT conversations (FastChat / LLaMA-Factory layout)."""

    name = "sharegpt"
    description = "ShareGPT (from / value turns; LLaMA-Factory tool turns)"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(data, dict) and "conversations" in data:
            yield "$", data
            return
        expect(data, list, "$", "a ShareGPT document")
        if data and all(isinstance(x, dict) and "from" in x for x in data):
            yield "$", {"conversations": data}
            return
        for i, item in enumerate(data):
            yield f"$[{i}]", item

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        expect(raw, dict, where, "a ShareGPT conversation")
        turns = expect(raw.get("conversations"), list, f"{where}.conversations", "conversations")
        msgs: list[Message] = []
        if isinstance(raw.get("system"), str) and raw["system"]:
            msgs.append(Message(role=Role.SYSTEM, content=raw["system"]))
        pending: list[str] = []
        n_calls = 0
        images = list(expect(raw.get("images") or [], list, f"{where}.images", "images"))
        n_images = len(images)
        for i, turn in enumerate(turns):
            tw = f"{where}.conversations[{i}]"
            expect(turn, dict, tw, "a turn")
            who = turn.get("from")
            role = FROM_ROLE.get(str(who).lower()) if isinstance(who, str) else None
            if role is None:
                raise FormatError(
                    f"unknown speaker {who!r} (expected one of {sorted(FROM_ROLE)})", f"{tw}.from"
                )
            value = turn.get("value")
            if who == "function_call":
                calls_raw = _json_value(value, f"{tw}.value")
                calls = calls_raw if isinstance(calls_raw, list) else [calls_raw]
                blocks = []
                for j, c in enumerate(calls):
                    expect(c, dict, f"{tw}.value[{j}]", "a function call")
                    n_calls += 1
                    call_id = str(c.get("id") or f"call_{n_calls}")
                    pending.append(call_id)
                    blocks.append(
                        ToolCallBlock(
                            id=call_id,
                            name=expect(c.get("name"), str, f"{tw}.value.name", "function name"),
                            arguments=parse_arguments(c.get("arguments"), f"{tw}.value.arguments"),
                        )
                    )
                msgs.append(Message(role=Role.ASSISTANT, content=blocks))
                continue
            text = expect(value, str, f"{tw}.value", "value")
            if role is Role.TOOL:
                if not pending:
                    raise FormatError("observation without a preceding function_call", tw)
                msgs.append(Message.tool(pending.pop(0), text))
                continue
            if IMAGE_TOKEN not in text:
                msgs.append(Message(role=role, content=[TextBlock(text=text)]))
                continue
            blocks_: list[Any] = []
            for k, segment in enumerate(text.split(IMAGE_TOKEN)):
                if k:
                    if not images:
                        raise FormatError(
                            f"more {IMAGE_TOKEN} tokens than the {n_images} entries of 'images'",
                            f"{tw}.value",
                        )
                    path = str(images.pop(0))
                    src = "url" if path.startswith(("http://", "https://", "data:")) else "ref"
                    blocks_.append(ImageBlock(**{src: path}))
                if segment:
                    blocks_.append(TextBlock(text=segment))
            msgs.append(Message(role=role, content=blocks_))
        if images:
            raise FormatError(
                f"{len(images)} of the {n_images} 'images' have no {IMAGE_TOKEN} token",
                f"{where}.images",
            )
        if raw.get("tools"):
            report.add("tools", where, "the tools declaration is not stored")
        cid = raw.get("id")
        return Conversation.linear(msgs, id=None if cid is None else str(cid))

    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        report.note(
            "ShareGPT does not keep message ids, tool call ids, timestamps, names or metadata"
        )
        out = []
        for i, conv in enumerate(conversations):
            label = conversation_label(conv, i)
            turns: list[dict[str, str]] = []
            images: list[str] = []
            for m in conv.lossy_path(report, label):
                turns.extend(_turns(m, f"{label} message {m.id}", report, images))
            item: dict[str, Any] = {}
            if conv.id is not None:
                item["id"] = conv.id
            item["conversations"] = turns
            if images:
                item["images"] = images
            out.append(item)
        return dumps(out)


def _turns(m: Message, where: str, report: LossReport, images: list[str]) -> list[dict[str, str]]:
    unkept_name(m, where, report)
    for r in m.tool_results:
        if r.is_error:
            report.add("tool_result.is_error", where, "is_error is not kept")
        if not isinstance(r.content, str):
            report.add("tool_result.content", where, "blocks written as their text")
    if m.role is Role.TOOL:
        if len(m.tool_results) > 1:
            report.add("structure", where, "several tool results become several observations")
        return [{"from": "observation", "value": r.text} for r in m.tool_results]
    role = m.role
    if role is Role.DEVELOPER:
        report.add("role", where, "developer message written as system")
        role = Role.SYSTEM
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    n_image = 0
    for b in m.content:
        if isinstance(b, TextBlock):
            if IMAGE_TOKEN in b.text:
                report.add("ambiguous_text", where, f"text holds the {IMAGE_TOKEN} token")
            texts.append(b.text)
        elif isinstance(b, ImageBlock) and (b.url or b.ref) is not None:
            unkept(b, {"url", "ref"}, where, report)
            images.append(str(b.url or b.ref))
            texts.append(IMAGE_TOKEN)
            n_image += 1
        elif isinstance(b, ToolCallBlock):
            calls.append({"name": b.name, "arguments": b.arguments})
        else:
            report.add(
                b.type,
                where,
                f"{b.type} block dropped (ShareGPT holds text, image paths and tools)",
            )
    kinds = [b.type for b in m.content if b.type in ("text", "image")]
    adjacent = any(a == b == "text" for a, b in itertools.pairwise(kinds))
    empty = n_image and any(isinstance(b, TextBlock) and not b.text for b in m.content)
    if adjacent or empty:
        report.add("text", where, "text blocks are joined into one value")
    turns = []
    if texts and calls:
        report.add("structure", where, "text and tool calls become two turns (gpt, function_call)")
    if texts or not calls:
        turns.append({"from": ROLE_FROM[role], "value": "".join(texts)})
    if calls:
        value = calls[0] if len(calls) == 1 else calls
        turns.append({"from": "function_call", "value": json.dumps(value, ensure_ascii=False)})
    return turns


def _json_value(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise FormatError(f"function_call value is not JSON: {exc.msg}", where) from exc


__all__ = ["ShareGPTCodec"]
