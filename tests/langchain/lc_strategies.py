"""Hypothesis strategies for LangChain messages of every kind the converter handles."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
ids = st.text(alphabet="abcdef0123456789-_", min_size=1, max_size=12)
b64 = st.binary(min_size=1, max_size=12).map(lambda b: __import__("base64").b64encode(b).decode())
mimes = st.sampled_from(["image/png", "image/jpeg", "audio/wav", "application/pdf", "text/plain"])
urls = ids.map(lambda s: f"https://example.com/{s}")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
json_dicts = st.dictionaries(keys, json_values, max_size=3)


def _with(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {**extra, **base}


@st.composite
def media_blocks(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["image", "audio", "file"]))
    block: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):  # v1 standard
        key = draw(st.sampled_from(["url", "base64", "file_id"]))
        block[key] = draw(urls if key == "url" else b64 if key == "base64" else ids)
    else:  # v0 with source_type
        source = draw(st.sampled_from(["url", "base64", "id"]))
        block["source_type"] = source
        key = {"url": "url", "base64": "data", "id": "id"}[source]
        block[key] = draw(urls if source == "url" else b64 if source == "base64" else ids)
    if draw(st.booleans()):
        block["mime_type"] = draw(mimes)
    if draw(st.booleans()):
        block["id"] = draw(ids)
    if draw(st.booleans()):
        block["extras"] = draw(json_dicts)
    return block


@st.composite
def plain_text_blocks(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text-plain", "mime_type": "text/plain", "text": draw(texts)}
    if draw(st.booleans()):
        block["title"] = draw(texts)
    return block


@st.composite
def image_url_blocks(draw: st.DrawFn) -> dict[str, Any]:
    url = draw(urls | b64.map(lambda d: f"data:image/png;base64,{d}"))
    if draw(st.booleans()):
        return {"type": "image_url", "image_url": url}
    inner: dict[str, Any] = {"url": url}
    if draw(st.booleans()):
        inner["detail"] = draw(st.sampled_from(["auto", "low", "high"]))
    return {"type": "image_url", "image_url": inner}


text_blocks = st.builds(
    lambda t, extra: {"type": "text", "text": t, **extra},
    texts,
    st.fixed_dictionaries({}, optional={"id": ids, "annotations": st.just([])}),
)
reasoning_blocks = st.one_of(
    st.builds(lambda t: {"type": "reasoning", "reasoning": t}, texts),
    st.builds(
        lambda t, s: {"type": "reasoning", "reasoning": t, "extras": {"signature": s}}, texts, ids
    ),
    st.builds(lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, texts, ids),
    st.builds(lambda d: {"type": "redacted_thinking", "data": d}, b64),
)
# Blocks the core has no type for: they must come back as they went in.
foreign_blocks = st.one_of(
    st.builds(
        lambda i, n, a: {"type": "tool_use", "id": i, "name": n, "input": a}, ids, keys, json_dicts
    ),
    st.builds(lambda v: {"type": "non_standard", "value": v}, json_dicts),
    st.builds(lambda t, d: {"type": f"x-{t}", **d}, keys, json_dicts),
    st.builds(lambda d: {"type": "image", "source": {"type": "base64", "data": d}}, b64),
)
content_items = st.one_of(
    texts,
    text_blocks,
    reasoning_blocks,
    media_blocks(),
    plain_text_blocks(),
    image_url_blocks(),
    foreign_blocks,
)
contents = texts | st.lists(content_items, max_size=4)


@st.composite
def tool_calls(draw: st.DrawFn, *, with_ids: bool = False) -> dict[str, Any]:
    call_id = draw(ids) if with_ids else draw(st.none() | ids)
    return {"name": draw(keys), "args": draw(json_dicts), "id": call_id, "type": "tool_call"}


common = {
    "id": st.none() | ids,
    "name": st.none() | keys,
    "additional_kwargs": json_dicts,
    "response_metadata": json_dicts,
}
usage = st.builds(
    lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
    st.integers(0, 10**6),
    st.integers(0, 10**6),
)


def _common(draw: st.DrawFn) -> dict[str, Any]:
    return {k: draw(v) for k, v in common.items()}


@st.composite
def ai_messages(draw: st.DrawFn, *, call_ids: bool = False) -> AIMessage:
    calls = draw(st.lists(tool_calls(with_ids=call_ids), max_size=3, unique_by=lambda c: c["id"]))
    return AIMessage(
        content=draw(contents),
        tool_calls=calls,
        usage_metadata=draw(st.none() | usage),
        **_common(draw),
    )


@st.composite
def tool_messages(draw: st.DrawFn, call_id: str | None = None) -> ToolMessage:
    content = draw(texts | st.lists(texts | text_blocks | image_url_blocks() | foreign_blocks))
    return ToolMessage(
        content=content,
        tool_call_id=call_id or draw(ids),
        status=draw(st.sampled_from(["success", "error"])),
        artifact=draw(st.none() | json_values),
        **_common(draw),
    )


@st.composite
def plain_messages(draw: st.DrawFn) -> BaseMessage:
    kind = draw(st.sampled_from(["human", "system", "developer", "chat"]))
    extra = _common(draw)
    content = draw(contents)
    if kind == "human":
        return HumanMessage(content=content, **extra)
    if kind == "system":
        return SystemMessage(content=content, **extra)
    if kind == "developer":
        extra["additional_kwargs"]["__openai_role__"] = "developer"
        return SystemMessage(content=content, **extra)
    role = draw(st.sampled_from(["user", "assistant", "critic", "system", "narrator"]))
    return ChatMessage(content=content, role=role, **extra)


lc_messages = st.one_of(plain_messages(), ai_messages(), tool_messages())


@st.composite
def conversations(draw: st.DrawFn) -> list[BaseMessage]:
    """A history that a store accepts: every tool message answers a call made before it."""
    out: list[BaseMessage] = []
    used: set[str] = set()
    for _ in range(draw(st.integers(1, 5))):
        out.append(draw(plain_messages()))
        ai = draw(ai_messages(call_ids=True))
        fresh = [c for c in ai.tool_calls if c["id"] not in used]
        ai = ai.model_copy(update={"tool_calls": fresh})
        used.update(c["id"] for c in fresh if c["id"])
        out.append(ai)
        for call in fresh:
            out.append(draw(tool_messages(call_id=call["id"])))
    return out
