"""Import-only: a ChatGPT data export (``conversations.json``) and a Claude export.

ChatGPT keeps each conversation as a tree of nodes (``mapping``); every leaf becomes a
branch, the one holding ``current_node`` is ``main``. Claude exports are linear lists of
``chat_messages``. What has no place in the message model is reported, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from tela_memory.errors import UnsupportedOperation
from tela_memory.formats._codec import Codec
from tela_memory.formats._io import expect
from tela_memory.formats._model import DEFAULT_BRANCH, Conversation, FormatError, LossReport
from tela_memory.messages import (
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)


def _time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _list_units(data: Any, key: str) -> Iterator[tuple[str, Any]]:
    if isinstance(data, dict) and key in data:
        yield "$", data
        return
    expect(data, list, "$", "a list of conversations")
    for i, item in enumerate(data):
        yield f"$[{i}]", item


class _ImportOnly(Codec):
    def encode(self, conversations: Sequence[Conversation], report: LossReport) -> str:
        raise UnsupportedOperation(
            f"{self.name!r} is an import-only format; export to 'tela' (lossless) or 'openai'"
        )


class ChatGPTExportCodec(_ImportOnly):
    """ChatGPT ``conversations.json``: node trees become branches."""

    name = "chatgpt"
    description = "ChatGPT data export conversations.json (import only; tree -> branches)"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        yield from _list_units(data, "mapping")

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        expect(raw, dict, where, "a conversation")
        mapping = expect(raw.get("mapping"), dict, f"{where}.mapping", "mapping")
        cid = str(raw.get("conversation_id") or raw.get("id") or "") or None
        # walk every node from the roots; a node reachable from none (a cycle) is an error
        children: dict[str | None, list[str]] = {}
        for node_id, node in mapping.items():
            expect(node, dict, f"{where}.mapping.{node_id}", "a node")
            parent = node.get("parent")
            if parent is not None and parent not in mapping:
                raise FormatError(
                    f"parent {parent!r} is not in the mapping", f"{where}.mapping.{node_id}.parent"
                )
            children.setdefault(parent, []).append(node_id)
        order: list[str] = []
        stack = list(reversed(children.get(None, [])))
        while stack:
            nid = stack.pop()
            order.append(nid)
            stack.extend(reversed(children.get(nid, [])))
        if len(order) != len(mapping):
            stuck = sorted(set(mapping) - set(order))[0]
            raise FormatError(
                "the node tree has a cycle (this node never reaches a root)",
                f"{where}.mapping.{stuck}",
            )
        kept: dict[str, str | None] = {}  # node id -> nearest kept ancestor message id
        msgs: list[Message] = []
        pending_call: dict[str, str] = {}  # message id of an open tool call -> call id
        for nid in order:
            node = mapping[nid]
            parent = node.get("parent")
            anchor = kept.get(parent) if parent is not None else None
            msg = self._message(
                node.get("message"), nid, anchor, f"{where}.mapping.{nid}", report, pending_call
            )
            if msg is None:
                kept[nid] = anchor
                continue
            msgs.append(msg)
            kept[nid] = msg.id
        roots = [i for i, m in enumerate(msgs) if m.parent_id is None]
        if len(roots) > 1:  # edits of the first turn: give the siblings one shared root
            root = Message(
                role=Role.SYSTEM,
                content="",
                metadata={"tela.synthetic_root": True},
                created_at=msgs[roots[0]].created_at,
            )
            for i in roots:
                msgs[i] = msgs[i].model_copy(update={"parent_id": root.id})
            msgs.insert(0, root)
            report.note("ChatGPT conversations whose first turn was edited get an empty root")
        leaves = [nid for nid in order if not children.get(nid)]
        heads: list[str] = []
        for leaf in leaves:
            head = kept.get(leaf)
            if head is not None and head not in heads:
                heads.append(head)
        current = raw.get("current_node")
        main_head = kept.get(current) if isinstance(current, str) else None
        if main_head is None and heads:
            main_head = heads[-1]
        branches: dict[str, str] = {}
        if main_head is not None:
            branches[DEFAULT_BRANCH] = main_head
        n = 0
        for h in heads:
            if h != main_head and not _is_ancestor(h, main_head, msgs):
                n += 1
                branches[f"alt-{n}"] = h
        title = raw.get("title")
        return Conversation(
            messages=msgs,
            id=cid,
            branches=branches,
            title=title if isinstance(title, str) else None,
            created_at=_time(raw.get("create_time")),
            metadata={"source": "chatgpt"},
        )

    def _message(
        self,
        m: Any,
        nid: str,
        parent: str | None,
        where: str,
        report: LossReport,
        calls: dict[str, str],
    ) -> Message | None:
        if m is None:
            return None
        expect(m, dict, f"{where}.message", "a message")
        author = m.get("author") or {}
        role = author.get("role")
        content = m.get("content") or {}
        meta = m.get("metadata") or {}
        ctype = content.get("content_type")
        if meta.get("is_visually_hidden_from_conversation"):
            report.add("hidden", where, "hidden system message skipped")
            return None
        blocks: list[ContentBlock] = []
        if ctype in ("text", "multimodal_text"):
            for j, part in enumerate(content.get("parts") or []):
                if isinstance(part, str):
                    if part:
                        blocks.append(TextBlock(text=part))
                elif isinstance(part, dict) and part.get("content_type") == "image_asset_pointer":
                    blocks.append(
                        ImageBlock(
                            ref=str(part.get("asset_pointer")),
                            width=part.get("width") or None,
                            height=part.get("height") or None,
                        )
                    )
                else:
                    report.add(
                        "part",
                        f"{where}.message.content.parts[{j}]",
                        f"unknown part {part!r:.60} skipped",
                    )
        elif ctype == "code" or ctype == "execution_output":
            blocks.append(TextBlock(text=str(content.get("text", ""))))
        elif ctype in ("thoughts", "reasoning_recap"):
            texts = [
                str(t.get("content", ""))
                for t in content.get("thoughts") or []
                if isinstance(t, dict)
            ] or [str(content.get("content", ""))]
            blocks.append(ThinkingBlock(text="\n".join(texts)))
        elif ctype is not None:
            blocks.append(OpaqueBlock(source="chatgpt", data=content))
        created = _time(m.get("create_time"))
        fields: dict[str, Any] = {
            "id": str(m.get("id") or nid),
            "parent_id": parent,
            "metadata": {"chatgpt_node": nid},
        }
        if created is not None:
            fields["created_at"] = created
        recipient = m.get("recipient", "all")
        if role == "assistant" and recipient not in (None, "all"):
            # a call to a built-in tool (python, browser ...): its input is the text
            call_id = f"call_{nid}"
            calls[fields["id"]] = call_id
            text = "\n".join(b.text for b in blocks if isinstance(b, TextBlock))
            return Message(
                role=Role.ASSISTANT,
                content=[
                    *[b for b in blocks if isinstance(b, ThinkingBlock)],
                    ToolCallBlock(id=call_id, name=str(recipient), arguments={"input": text}),
                ],
                **fields,
            )
        if role == "tool":
            if parent is not None and parent in calls:
                text = "\n".join(b.text for b in blocks if isinstance(b, TextBlock))
                return Message.tool(calls.pop(parent), text, name=author.get("name"), **fields)
            report.add(
                "tool_output",
                where,
                f"output of tool {author.get('name')!r} with no call kept as assistant text",
            )
            role = "assistant"
        if role not in ("system", "user", "assistant"):
            raise FormatError(f"unknown author role {role!r}", f"{where}.message.author.role")
        if not blocks:
            if role == "system":
                return None  # the empty root system message every export has
            blocks.append(TextBlock(text=""))
        return Message(role=Role(role), content=blocks, **fields)


def _is_ancestor(candidate: str, head: str | None, msgs: list[Message]) -> bool:
    parents = {m.id: m.parent_id for m in msgs}
    cur = head
    while cur is not None:
        if cur == candidate:
            return True
        cur = parents.get(cur)
    return False


class ClaudeExportCodec(_ImportOnly):
    """Claude ``conversations.json`` (``chat_messages`` with ``sender`` human / assistant)."""

    name = "claude-export"
    description = "Claude data export conversations.json (import only)"

    def json_units(self, data: Any) -> Iterator[tuple[str, Any]]:
        yield from _list_units(data, "chat_messages")

    def decode_unit(self, raw: Any, where: str, report: LossReport) -> Conversation:
        expect(raw, dict, where, "a conversation")
        items = expect(raw.get("chat_messages"), list, f"{where}.chat_messages", "chat_messages")
        msgs = []
        for i, item in enumerate(items):
            w = f"{where}.chat_messages[{i}]"
            expect(item, dict, w, "a message")
            sender = item.get("sender")
            if sender not in ("human", "assistant"):
                raise FormatError(f"unknown sender {sender!r}", f"{w}.sender")
            role = Role.USER if sender == "human" else Role.ASSISTANT
            blocks: list[ContentBlock] = []
            content = item.get("content")
            if isinstance(content, list) and content:
                for j, b in enumerate(content):
                    if isinstance(b, dict) and b.get("type") == "text":
                        blocks.append(TextBlock(text=str(b.get("text", ""))))
                    elif isinstance(b, dict) and b.get("type") == "thinking":
                        blocks.append(ThinkingBlock(text=str(b.get("thinking", ""))))
                    elif isinstance(b, dict):
                        if role is Role.ASSISTANT:
                            blocks.append(OpaqueBlock(source="claude-export", data=b))
                        else:
                            report.add(
                                str(b.get("type")),
                                f"{w}.content[{j}]",
                                "block in a user turn skipped",
                            )
            elif isinstance(item.get("text"), str):
                blocks.append(TextBlock(text=item["text"]))
            for a in item.get("attachments") or []:
                if isinstance(a, dict) and a.get("extracted_content"):
                    blocks.append(
                        DocumentBlock(
                            text=a["extracted_content"],
                            title=a.get("file_name"),
                            mime_type=a.get("file_type") or None,
                        )
                    )
                else:
                    report.add("attachment", w, "attachment without extracted content skipped")
            for f in item.get("files") or []:
                name = f.get("file_name") if isinstance(f, dict) else None
                if name:
                    blocks.append(DocumentBlock(ref=str(name), title=str(name)))
            if not blocks:
                blocks.append(TextBlock(text=""))
            fields: dict[str, Any] = {}
            if (created := _time(item.get("created_at"))) is not None:
                fields["created_at"] = created
            if item.get("uuid"):
                fields["id"] = str(item["uuid"])
            msgs.append(Message(role=role, content=blocks, **fields))
        name = raw.get("name")
        return Conversation.linear(
            msgs,
            id=str(raw["uuid"]) if raw.get("uuid") else None,
            title=name if isinstance(name, str) and name else None,
            created_at=_time(raw.get("created_at")),
            metadata={"source": "claude"},
        )


__all__ = ["ChatGPTExportCodec", "ClaudeExportCodec"]
