"""Round-trip properties of the codecs.

Lossless formats (``tela``, ``jsonl``) give back exactly what they were given, branches and
all. Every other codec gives back the roles and content blocks it can hold, and when a
conversation holds only such content its loss report is empty.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory.formats import Conversation, FormatError, detect_format, read_text, write_text
from tela_memory.messages import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -------------------------------------------------------------------------------

any_text = st.text(min_size=0, max_size=40)
safe_text = st.text(
    alphabet=string.ascii_letters + string.digits + " .,?'-", min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s != "")
names = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)
json_scalars = st.one_of(st.integers(-1000, 1000), st.booleans(), safe_text, st.none())
arguments = st.dictionaries(names, json_scalars, max_size=3)
b64 = st.sampled_from(["iVBORw0KGgo=", "AAAA", "SGVsbG8="])


def images(with_url: bool = True, with_data: bool = True) -> st.SearchStrategy[ImageBlock]:
    options = []
    if with_data:
        options.append(st.builds(ImageBlock, data=b64, mime_type=st.just("image/png")))
    if with_url:
        options.append(st.builds(ImageBlock, url=st.just("https://example.com/a.png")))
    return st.one_of(*options)


@st.composite
def dialogue(
    draw: st.DrawFn,
    *,
    text: st.SearchStrategy[str] = any_text,
    thinking: bool = False,
    signatures: bool = False,
    image: st.SearchStrategy[ImageBlock] | None = None,
    calls_with_text: bool = True,
    system: bool = True,
) -> list[Message]:
    """A valid conversation: system?, then turns of user -> assistant (maybe tool calls)."""
    msgs: list[Message] = []
    if system and draw(st.booleans()):
        msgs.append(Message.system(draw(text)))
    n_calls = 0
    for _ in range(draw(st.integers(1, 4))):
        user_blocks: list[Any] = [TextBlock(text=draw(text))]
        if image is not None and draw(st.booleans()):
            user_blocks.append(draw(image))
        msgs.append(Message.user(user_blocks))
        blocks: list[Any] = []
        if thinking and draw(st.booleans()):
            sig = draw(st.one_of(st.none(), names)) if signatures else None
            blocks.append(ThinkingBlock(text=draw(text), signature=sig))
        if draw(st.booleans()):
            calls = []
            for _ in range(draw(st.integers(1, 2))):
                n_calls += 1
                calls.append(
                    ToolCallBlock(id=f"call_{n_calls}", name=draw(names), arguments=draw(arguments))
                )
            if calls_with_text and draw(st.booleans()):
                blocks.append(TextBlock(text=draw(text)))
            msgs.append(Message.assistant(blocks, tool_calls=calls))
            for c in calls:
                msgs.append(Message.tool(c.id, draw(text)))
            msgs.append(Message.assistant(draw(text)))
        else:
            blocks.append(TextBlock(text=draw(text)))
            msgs.append(Message.assistant(blocks))
    return msgs


def shape(messages: list[Message]) -> list[tuple[str, list[dict[str, Any]]]]:
    """What a codec must keep: roles and blocks (ids, times and metadata aside)."""
    return [(m.role.value, [b.model_dump() for b in m.content]) for m in messages]


def renumber_calls(messages: list[Message]) -> list[Message]:
    """Tool call ids in order of appearance (for formats that do not keep them)."""
    mapping: dict[str, str] = {}
    out = []
    for m in messages:
        blocks: list[Any] = []
        for b in m.content:
            if isinstance(b, ToolCallBlock):
                mapping[b.id] = f"call_{len(mapping) + 1}"
                b = b.model_copy(update={"id": mapping[b.id]})
            elif isinstance(b, ToolResultBlock):
                b = b.model_copy(update={"tool_call_id": mapping.get(b.tool_call_id, "?")})
            blocks.append(b)
        out.append(m.model_copy(update={"content": blocks}))
    return out


# -- lossless formats -------------------------------------------------------------------------


@st.composite
def trees(draw: st.DrawFn) -> Conversation:
    """A conversation with branches: a main path plus forks at random points."""
    main = draw(dialogue(thinking=True, signatures=True, image=images()))
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    main = [
        m.model_copy(
            update={
                "created_at": t0 + timedelta(seconds=i),
                "metadata": draw(st.dictionaries(names, json_scalars, max_size=2)),
                "name": draw(st.one_of(st.none(), names)),
            }
        )
        for i, m in enumerate(main)
    ]
    conv = Conversation.linear(
        main,
        id=draw(names),
        title=draw(st.one_of(st.none(), any_text)),
        tags=tuple(draw(st.lists(names, max_size=2))),
        metadata={"k": draw(json_scalars)},
        user_id="u1",
    )
    for b in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(main) - 1))
        parent = main[at].id
        extra = []
        for _ in range(draw(st.integers(1, 2))):
            m = Message.user(draw(any_text), parent_id=parent)
            extra.append(m)
            parent = m.id
        conv.messages.extend(extra)
        conv.branches[f"alt-{b}"] = parent
    return conv.validate()


@SETTINGS
@given(trees())
def test_tela_json_is_lossless(conv: Conversation) -> None:
    text, report = write_text([conv], "tela")
    assert not report
    assert not report.notes
    assert detect_format(text) == "tela"
    (back,) = read_text(text).conversations
    assert back.messages == conv.messages
    assert back.branches == conv.branches
    assert (back.id, back.title, back.tags, back.metadata, back.user_id) == (
        conv.id,
        conv.title,
        conv.tags,
        conv.metadata,
        conv.user_id,
    )
    for name in conv.branches:
        assert back.path(name) == conv.path(name)


@SETTINGS
@given(st.lists(trees(), min_size=1, max_size=3, unique_by=lambda c: c.id))
def test_jsonl_keeps_every_message_and_every_branch(convs: list[Conversation]) -> None:
    text, _ = write_text(convs, "jsonl")
    back = read_text(text, "jsonl").conversations
    assert len(back) == len(convs)
    for b, c in zip(back, convs, strict=True):
        # each line carries its thread and its owner: two users' threads stay two
        owned = {"thread_id": c.id, "user_id": c.user_id}
        bound = {m.id: m.model_copy(update=owned) for m in c.messages}
        assert {m.id: m for m in b.messages} == bound
        assert b.user_id == c.user_id
        assert b.branches == c.branches
        for name in c.branches:
            assert b.path(name) == [bound[m.id] for m in c.path(name)]


# -- codecs that hold part of the model --------------------------------------------------------

CASES: dict[str, tuple[st.SearchStrategy[list[Message]], Callable[[list[Message]], Any]]] = {
    "openai": (dialogue(image=images()), shape),
    "jsonl-conversations": (dialogue(image=images()), shape),
    "openai-responses": (dialogue(thinking=True, signatures=True, image=images()), shape),
    "anthropic": (dialogue(thinking=True, signatures=True, image=images()), shape),
    "gemini": (
        dialogue(text=safe_text, thinking=True, signatures=True, image=images(with_url=False)),
        shape,
    ),
    "chatml": (dialogue(text=safe_text, thinking=True), shape),
    "markdown": (dialogue(text=safe_text, thinking=True, image=images()), shape),
    "text": (dialogue(text=safe_text), shape),
    # ShareGPT reads a literal "<image>" as an image slot, and reports text holding it
    "sharegpt": (
        dialogue(text=any_text.filter(lambda t: "<image>" not in t), calls_with_text=False),
        lambda ms: shape(renumber_calls(ms)),
    ),
}


@pytest.mark.parametrize("fmt", sorted(CASES))
def test_codec_round_trips_what_it_can_hold(fmt: str) -> None:
    strategy, key = CASES[fmt]

    @SETTINGS
    @given(strategy)
    def check(msgs: list[Message]) -> None:
        conv = Conversation.linear(msgs, id="c1")
        text, report = write_text([conv], fmt)
        assert not report, report.summary()
        (back,) = read_text(text, fmt).conversations
        assert key(back.messages) == key(msgs)
        # detection may pick a format that reads the same (plain-text messages are valid
        # OpenAI and Anthropic alike); what it reads must be the same
        (auto,) = read_text(text).conversations
        assert key(auto.messages) == key(msgs)
        back.validate()

    check()


def test_losses_are_reported_not_dropped() -> None:
    msgs = [
        Message.user(
            [
                TextBlock(text="look"),
                ImageBlock(data="AAAA", mime_type="image/png"),
                DocumentBlock(url="https://example.com/x.pdf"),
            ]
        ),
        Message.assistant(
            [ThinkingBlock(text="hmm", signature="s")],
            tool_calls=[ToolCallBlock(id="c1", name="f")],
        ),
        Message.tool("c1", "ok"),
        Message.assistant("done"),
    ]
    conv = Conversation.linear(msgs, id="c")
    conv.messages.append(Message.user("alt", parent_id=msgs[0].id))
    conv.branches["alt"] = conv.messages[-1].id
    expected = {
        "sharegpt": {"image", "document", "thinking", "branch"},
        "text": {"image", "document", "thinking", "branch"},
        "openai": {"thinking", "document", "branch"},
        "chatml": {"image", "document", "thinking_signature", "branch"},
        "gemini": {"document.mime_type", "branch"},
        "markdown": {"document", "thinking_signature", "branch"},
    }
    for fmt, kinds in expected.items():
        _, report = write_text([conv], fmt)
        assert set(report.counts()) == kinds, (fmt, report.counts())
        assert report.summary() != "nothing lost"


# -- ChatGPT exports: node trees become branches ----------------------------------------------


@st.composite
def chatgpt_trees(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """A ChatGPT ``mapping`` (random tree of alternating turns) and its root-to-leaf texts."""
    mapping: dict[str, Any] = {
        "root": {"id": "root", "message": None, "parent": None, "children": []}
    }
    order = ["root"]
    for i in range(draw(st.integers(1, 12))):
        parent = draw(st.sampled_from(order))
        depth = 0
        p = parent
        while mapping[p]["parent"] is not None:
            depth += 1
            p = mapping[p]["parent"]
        nid = f"n{i}"
        role = "user" if depth % 2 == 0 else "assistant"
        mapping[nid] = {
            "id": nid,
            "parent": parent,
            "children": [],
            "message": {
                "id": nid,
                "author": {"role": role},
                "create_time": 1.7e9 + i,
                "content": {"content_type": "text", "parts": [f"text {nid}"]},
            },
        }
        mapping[parent]["children"].append(nid)
        order.append(nid)
    paths: dict[str, list[str]] = {}
    for nid in order:
        if nid != "root" and not mapping[nid]["children"]:
            texts, p = [], nid
            while p != "root":
                texts.append(f"text {p}")
                p = mapping[p]["parent"]
            paths[nid] = texts[::-1]
    return mapping, paths


@SETTINGS
@given(chatgpt_trees(), st.data())
def test_chatgpt_tree_every_leaf_is_a_branch(tree: Any, data: st.DataObject) -> None:
    mapping, paths = tree
    current = data.draw(st.sampled_from(sorted(paths)))
    doc = [{"title": "t", "mapping": mapping, "current_node": current, "id": "c"}]
    (conv,) = read_text(json.dumps(doc), "chatgpt").conversations
    got = {name: [m.text for m in conv.path(name) if m.text] for name in conv.branches}
    assert got["main"] == paths[current]
    assert sorted(map(tuple, got.values())) == sorted(map(tuple, paths.values()))
    assert len(conv.branches) == len(paths)


tricky_text = st.text(alphabet="ab #:|<>!`[](){}\n\t-=_", max_size=30)


@pytest.mark.parametrize("fmt", ["markdown", "text", "chatml"])
def test_text_formats_never_change_text_silently(fmt: str) -> None:
    """Markup-looking text may not survive a text format, but then the report says so."""

    @settings(max_examples=150, deadline=None)
    @given(dialogue(text=tricky_text, system=True))
    def check(msgs: list[Message]) -> None:
        conv = Conversation.linear(msgs, id="c1")
        text, report = write_text([conv], fmt)
        try:
            back = read_text(text, fmt).conversations
        except FormatError:
            assert report, "unreadable output without a loss report"
            return
        if not report:
            assert [shape(c.messages) for c in back] == [shape(msgs)]

    check()


# -- nothing changes without a report ---------------------------------------------------------

mimes = {"image": "image/png", "audio": "audio/wav", "document": "application/pdf"}
maybe = st.one_of(st.none(), names)


@st.composite
def media(draw: st.DrawFn, kind: str) -> Any:
    source = draw(st.sampled_from(["data", "url", "ref"]))
    value = {"data": "AAAA", "url": "https://example.com/f", "ref": "file-1"}[source]
    fields: dict[str, Any] = {source: value}
    if source == "data" or draw(st.booleans()):
        fields["mime_type"] = mimes[kind]
    if kind == "image":
        fields.update(
            detail=draw(st.sampled_from([None, "low", "high"])),
            alt_text=draw(maybe),
            width=draw(st.sampled_from([None, 64])),
        )
        return ImageBlock(**fields)
    if kind == "audio":
        return AudioBlock(transcript=draw(maybe), **fields)
    if draw(st.booleans()):
        fields["text"] = "extracted"
    return DocumentBlock(title=draw(maybe), pages=draw(st.sampled_from([None, 2])), **fields)


@st.composite
def anything(draw: st.DrawFn) -> list[Message]:
    """Every kind of block the model has, in valid places; no two assistant turns in a row,
    one result per tool message."""
    msgs: list[Message] = []
    if draw(st.booleans()):
        msgs.append(Message.system(draw(any_text), name=draw(maybe)))
    n = 0
    for _ in range(draw(st.integers(1, 3))):
        blocks: list[Any] = [TextBlock(text=draw(any_text))]
        for kind in draw(st.lists(st.sampled_from(["image", "audio", "document"]), max_size=2)):
            blocks.append(draw(media(kind)))
        msgs.append(Message.user(blocks, name=draw(maybe)))
        reply: list[Any] = []
        if draw(st.booleans()):
            redacted = draw(st.booleans())
            reply.append(
                ThinkingBlock(
                    text="" if redacted else draw(any_text),
                    signature=draw(maybe),
                    redacted=redacted,
                )
            )
        reply.append(TextBlock(text=draw(any_text)))
        if draw(st.booleans()):
            reply.append(
                OpaqueBlock(
                    source=draw(st.sampled_from(["anthropic", "other"])),
                    data={"type": "server_tool_use", "id": "s1"},
                )
            )
        calls = [
            ToolCallBlock(id=f"c{n + i}", name=draw(names), arguments=draw(arguments))
            for i in range(draw(st.integers(0, 2)))
        ]
        n += len(calls)
        msgs.append(Message.assistant(reply, tool_calls=calls, name=draw(maybe)))
        for c in calls:
            content = draw(
                st.one_of(
                    any_text,
                    st.lists(
                        st.one_of(st.builds(TextBlock, text=any_text), images()),
                        min_size=1,
                        max_size=2,
                    ),
                )
            )
            msgs.append(Message.tool(c.id, content, is_error=draw(st.booleans())))
        if calls:
            msgs.append(Message.assistant(draw(any_text)))
    return msgs


def full_shape(messages: list[Message]) -> list[tuple[str, str | None, list[dict[str, Any]]]]:
    return [(m.role.value, m.name, [b.model_dump() for b in m.content]) for m in messages]


@pytest.mark.parametrize(
    "fmt", ["openai", "openai-responses", "anthropic", "gemini", "sharegpt", "jsonl-conversations"]
)
def test_json_codecs_never_change_anything_silently(fmt: str) -> None:
    """Whatever a codec cannot hold is in the report; with an empty report, all comes back."""
    key = (lambda ms: full_shape(renumber_calls(ms))) if fmt == "sharegpt" else full_shape

    @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(anything())
    def check(msgs: list[Message]) -> None:
        text, report = write_text([Conversation.linear(msgs, id="c")], fmt)
        (back,) = read_text(text, fmt).conversations
        if not report:
            assert key(back.messages) == key(msgs)

    check()
