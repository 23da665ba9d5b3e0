"""Hypothesis strategies for LlamaIndex ``ChatMessage`` objects with every block type."""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import strategies as st
from llama_index.core.base.llms.types import (
    AudioBlock,
    CacheControl,
    CachePoint,
    ChatMessage,
    CitableBlock,
    CitationBlock,
    DocumentBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    VideoBlock,
)

text = st.text(max_size=40)
ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
json_scalar = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | text
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ident, inner, max_size=3),
    max_leaves=6,
)
json_object = st.dictionaries(ident, json_value, max_size=3)
urls = st.sampled_from(
    ["https://example.com/a.png", "https://example.com/b.wav", "https://example.com/doc.pdf"]
)
b64 = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b))


def _image(data: bytes | None, url: str | None, mime: str | None, detail: str | None) -> Any:
    return ImageBlock(image=data, url=url, image_mimetype=mime, detail=detail)


images = st.builds(
    _image,
    st.none() | b64,
    st.none() | urls,
    st.none() | st.sampled_from(["image/png", "image/jpeg"]),
    st.sampled_from([None, "auto", "low", "high", "ultra"]),
)
audios = st.builds(
    lambda data, url, fmt: AudioBlock(audio=data, url=url, format=fmt),
    st.none() | b64,
    st.none() | urls,
    st.sampled_from([None, "mp3", "wav"]),
)
videos = st.builds(
    lambda data, url, fps: VideoBlock(video=data, url=url, fps=fps),
    st.none() | b64,
    st.none() | urls,
    st.none() | st.integers(1, 60),
)
documents = st.builds(
    lambda data, url, title: DocumentBlock(data=data, url=url, title=title),
    st.none() | b64,
    st.none() | urls,
    st.none() | text,
)
thinking = st.builds(
    lambda content, tokens, info: ThinkingBlock(
        content=content, num_tokens=tokens, additional_information=info
    ),
    st.none() | text,
    st.none() | st.integers(0, 500),
    st.sampled_from(
        [{}, {"signature": "sig=="}, {"redacted": True}, {"redacted": False}, {"other": 1}]
    ),
)
tool_calls = st.builds(
    lambda cid, name, kwargs: ToolCallBlock(tool_call_id=cid, tool_name=name, tool_kwargs=kwargs),
    st.none() | ident,
    ident,
    json_object | st.sampled_from(['{"q": 1}', '{"partial": ', "", "[1, 2]"]),
)
cache_points = st.builds(
    lambda kind: CachePoint(cache_control=CacheControl(type=kind)),
    st.sampled_from(["ephemeral", "persistent"]),
)
citables = st.builds(
    lambda title, body: CitableBlock(title=title, source="doc://1", content=[TextBlock(text=body)]),
    text,
    text,
)
citations = st.builds(
    lambda body, page: CitationBlock(
        cited_content=TextBlock(text=body),
        source="doc://1",
        title="t",
        additional_location_info={"page": page},
    ),
    text,
    st.integers(0, 99),
)
text_blocks = st.builds(TextBlock, text=text)
any_block = st.one_of(
    text_blocks,
    images,
    audios,
    videos,
    documents,
    thinking,
    tool_calls,
    cache_points,
    citables,
    citations,
)
kwargs = st.dictionaries(
    st.sampled_from(["x", "session_id", "name", "tool_call_id", "refusal"]),
    json_value,
    max_size=3,
)
openai_calls = st.lists(
    st.builds(
        lambda cid, name, args: {
            "id": cid,
            "type": "function",
            "function": {"name": name, "arguments": args},
        },
        ident,
        ident,
        st.sampled_from(['{"a": 1}', '{ "a" : 1 }', "{}"]),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def chat_messages(draw: st.DrawFn) -> ChatMessage:
    """Any ``ChatMessage``: every role, any mix of blocks, arbitrary JSON kwargs."""
    role = draw(st.sampled_from(list(MessageRole)))
    blocks = draw(st.lists(any_block, max_size=4))
    extra = draw(kwargs)
    if role is MessageRole.ASSISTANT and draw(st.booleans()):
        extra["tool_calls"] = draw(openai_calls)
    return ChatMessage(role=role, blocks=blocks, additional_kwargs=extra)


@st.composite
def paired_histories(draw: st.DrawFn) -> list[ChatMessage]:
    """A conversation a store accepts: every tool result answers an earlier call."""
    out: list[ChatMessage] = []
    for turn in range(draw(st.integers(1, 4))):
        out.append(
            ChatMessage(role="user", blocks=draw(st.lists(any_block, min_size=1, max_size=2)))
        )
        if draw(st.booleans()):
            call_id = f"call-{turn}-{draw(ident)}"
            out.append(
                ChatMessage(
                    role="assistant",
                    blocks=[
                        ToolCallBlock(tool_call_id=call_id, tool_name="lookup", tool_kwargs={})
                    ],
                )
            )
            out.append(
                ChatMessage(
                    role="tool",
                    blocks=draw(st.lists(text_blocks | images, max_size=2)),
                    additional_kwargs={"tool_call_id": call_id},
                )
            )
        out.append(draw(chat_messages().filter(lambda m: m.role not in ("tool", "function"))))
    return out
