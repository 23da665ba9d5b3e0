"""ShareGPT: ``[{"id", "conversations": [{"from": "human", "value": "..."}]}]``.

Tool turns follow the LLaMA-Factory variant: ``function_call`` (value: JSON ``{"name",
"arguments"}`` or a list of them) and ``observation`` (the tool's output). ``system`` may be a
turn or a top-level string. Not held: media, thinking, tool call ids, names, timestamps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from tela_memory.formats._codec import Codec, dumps, unkept_name
from tela_memory.formats._io import expect
from tela_memory.formats._model import Conversation, FormatError, LossReport, conversation_label
from tela_memory.formats.openai_chat import parse_arguments
from tela_memory.messages import Message, Role, TextBlock, ToolCallBlock

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
            msgs.append(Message(role=role, content=[TextBlock(text=text)]))
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
            for m in conv.lossy_path(report, label):
                turns.extend(_turns(m, f"{label} message {m.id}", report))
            item: dict[str, Any] = {}
            if conv.id is not None:
                item["id"] = conv.id
            item["conversations"] = turns
            out.append(item)
        return dumps(out)


def _turns(m: Message, where: str, report: LossReport) -> list[dict[str, str]]:
    unkept_name(m, where, report)
    for r in m.tool_results:
        if r.is_error:
            report.add("tool_result.is_error", where, "is_error is not kept")
        if not isinstance(r.content, str):
            report.add("tool_result.content", where, "blocks written as their text")
    if m.role is Role.TOOL:
        if len(m.tool_results) > 1:
            report.note("several tool results in one message become several observation turns")
        return [{"from": "observation", "value": r.text} for r in m.tool_results]
    role = m.role
    if role is Role.DEVELOPER:
        report.add("role", where, "developer message written as system")
        role = Role.SYSTEM
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for b in m.content:
        if isinstance(b, TextBlock):
            texts.append(b.text)
        elif isinstance(b, ToolCallBlock):
            calls.append({"name": b.name, "arguments": b.arguments})
        else:
            report.add(b.type, where, f"{b.type} block dropped (ShareGPT holds text and tools)")
    turns = []
    if texts and calls:
        report.add("structure", where, "text and tool calls become two turns (gpt, function_call)")
    if texts or not calls:
        turns.append({"from": ROLE_FROM[role], "value": "\n".join(texts)})
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
