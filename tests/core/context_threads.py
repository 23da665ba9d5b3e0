"""Shared helpers for the context tests: random threads and the invariant checker."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tela_memory import (
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from tela_memory.context import Context, Decision
from tela_memory.context.units import is_thinking_only
from tela_memory.tokens import TokenCounter

WORDS = [
    "budget",
    "context",
    "window",
    "tool",
    "result",
    "memory",
    "cache",
    "prefix",
    "summary",
    "thread",
    "message",
    "token",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "river",
    "mountain",
    "paper",
    "engine",
    "policy",
    "invariant",
    "order",
]


@st.composite
def texts(draw: st.DrawFn, max_words: int = 120) -> str:
    n = draw(st.integers(1, max_words))
    rng = random.Random(draw(st.integers(0, 2**16)))
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


@st.composite
def threads(draw: st.DrawFn, max_turns: int = 25, broken: bool = True) -> list[Message]:
    """A random conversation: system prompt, turns with tool calls (parallel too), thinking
    blocks, images, a mid-thread system message, and (optionally) broken tool pairs."""
    out: list[Message] = []
    counter = 0
    if draw(st.booleans()):
        out.append(Message.system(draw(texts(40))))
    for turn in range(draw(st.integers(0, max_turns))):
        blocks: list[Any] = [TextBlock(text=draw(texts()))]
        if draw(st.integers(0, 9)) == 0:
            w, h = draw(st.integers(16, 3000)), draw(st.integers(16, 3000))
            blocks.append(ImageBlock(url=f"https://example.org/{turn}.png", width=w, height=h))
        out.append(Message.user(blocks))
        if draw(st.integers(0, 12)) == 0:
            out.append(Message.system(draw(texts(20))))
        kind = draw(st.sampled_from(["text", "text", "tools", "thinking_only", "tools_split"]))
        thinking = (
            [ThinkingBlock(text=draw(texts(25)), signature=f"sig{turn}")]
            if draw(st.booleans())
            else []
        )
        if kind == "text":
            out.append(Message.assistant([*thinking, TextBlock(text=draw(texts()))]))
        elif kind == "thinking_only":
            out.append(Message(role=Role.ASSISTANT, content=[ThinkingBlock(text=draw(texts(25)))]))
            out.append(Message.assistant(draw(texts())))
        else:
            n = draw(st.integers(1, 3))
            ids = [f"call-{counter + i}" for i in range(n)]
            counter += n
            calls = [ToolCallBlock(id=i, name="search", arguments={"q": i}) for i in ids]
            if kind == "tools_split" and n > 1:
                out.append(Message.assistant(thinking, tool_calls=calls[:1]))
                out.append(Message.assistant([], tool_calls=calls[1:]))
            else:
                out.append(Message.assistant(thinking, tool_calls=calls))
            answered = list(draw(st.permutations(ids)))
            if broken and draw(st.integers(0, 15)) == 0:
                answered = answered[:-1]  # a call never answered
            for i in answered:
                out.append(Message.tool(i, draw(texts(150))))
            if broken and draw(st.integers(0, 20)) == 0:
                out.append(Message.tool("call-orphan", "a result without its call."))
            out.append(Message.assistant(draw(texts())))
    return out


def check(ctx: Context, history: Sequence[Message], budget: int, counter: TokenCounter) -> None:
    """Assert every invariant of the issue on one built context."""
    sent = ctx.messages
    # 1. never over budget, by the same counter
    assert counter.count_messages(sent) == ctx.report.tokens_out
    assert ctx.report.tokens_out <= budget
    # 2. tool pairs: every call has all its results right after it, every result its call
    open_calls: set[str] = set()
    for m in sent:
        if m.role is Role.TOOL:
            for r in m.tool_results:
                assert r.tool_call_id in open_calls, f"orphan tool result {r.tool_call_id}"
                open_calls.discard(r.tool_call_id)
            continue
        if m.tool_calls and m.role is Role.ASSISTANT and open_calls:
            open_calls |= {c.id for c in m.tool_calls}  # parallel calls split over messages
            continue
        assert not open_calls, f"tool calls {open_calls} sent without their results"
        open_calls = {c.id for c in m.tool_calls}
    assert not open_calls, f"tool calls {open_calls} sent without their results"
    # 3. order kept; messages unchanged except documented truncation; thinking stays
    position = {m.id: i for i, m in enumerate(history)}
    by_id = {m.id: m for m in history}
    truncated = set(ctx.report.ids(Decision.TRUNCATED))
    last = -1
    for k, m in enumerate(sent):
        if m.id not in position:
            assert m.metadata.get("tela.kind") == "summary"
            continue
        assert position[m.id] > last, "message order changed"
        last = position[m.id]
        original = by_id[m.id]
        if m.id not in truncated:
            assert m == original
        kept_thinking = [b for b in m.content if isinstance(b, ThinkingBlock)]
        assert kept_thinking == [b for b in original.content if isinstance(b, ThinkingBlock)]
        if is_thinking_only(m) and position[m.id] < len(history) - 1:
            # held with the assistant message after it (unless it is the newest message)
            nxt = sent[k + 1] if k + 1 < len(sent) else None
            assert nxt is not None
            assert position.get(nxt.id) == position[m.id] + 1
    # 4. first message after the stable prefix is never a tool result
    p = ctx.report.stable_prefix_messages
    if len(sent) > p:
        assert sent[p].role is not Role.TOOL
    # 5. the newest user message is sent (possibly truncated by the rule)
    users = [m for m in history if m.role is Role.USER]
    if users:
        assert users[-1].id in {m.id for m in sent}, "latest user turn dropped"


__all__ = ["WORDS", "check", "texts", "threads"]
