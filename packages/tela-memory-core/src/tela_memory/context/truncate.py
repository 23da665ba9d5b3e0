"""The rule for one message larger than the room it must fit in.

The newest user turn is never dropped; when it (or a tool result the current turn depends on)
is too large, it is cut by this rule:

1. Text-bearing parts (text blocks, tool-result text, document text) share the room left
   after the fixed parts (framing, thinking, tool calls, media), in proportion to their size.
   Each keeps its first two thirds and last third of what fits, joined by a marker
   ``[... N tokens cut by tela-memory ...]``.
2. If the fixed parts alone do not fit, images and documents without text are replaced by a
   short placeholder.
3. If it still does not fit (huge tool-call arguments or thinking), ``None`` is returned and
   the caller raises ``BudgetError``.

The message keeps its id; ``metadata["tela.truncated"]`` records the original token count.
"""

from __future__ import annotations

from typing import Any

from tela_memory.context.errors import BudgetError
from tela_memory.context.units import Unit
from tela_memory.messages import (
    DocumentBlock,
    ImageBlock,
    Message,
    TextBlock,
    ToolResultBlock,
)
from tela_memory.tokens.base import TokenCounter

MARKER = "\n[... {n} tokens cut by tela-memory ...]\n"
PLACEHOLDER = "[{kind} omitted by tela-memory: larger than the context budget]"


def _cut(text: str, room: int, counter: TokenCounter) -> str:
    """Head two thirds + marker + tail third of ``text`` within ``room`` tokens."""
    total = counter.count_text(text)
    if total <= room:
        return text
    marker = MARKER.format(n=total)
    room -= counter.count_text(marker)
    if room <= 0:
        return ""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        head, tail = text[: (mid * 2) // 3], text[len(text) - (mid - (mid * 2) // 3) :]
        if counter.count_text(head) + counter.count_text(tail) <= room:
            lo = mid
        else:
            hi = mid - 1
    head_n = (lo * 2) // 3
    head, tail = text[:head_n], text[len(text) - (lo - head_n) :] if lo - head_n else ""
    return head + marker + tail


def _texts(message: Message) -> list[str]:
    out: list[str] = []
    for b in message.content:
        if isinstance(b, TextBlock):
            out.append(b.text)
        elif isinstance(b, ToolResultBlock):
            if isinstance(b.content, str):
                out.append(b.content)
            else:
                out.extend(x.text for x in b.content if isinstance(x, TextBlock))
        elif isinstance(b, DocumentBlock) and b.text is not None:
            out.append(b.text)
    return out


def _rebuild(message: Message, texts: list[str], drop_media: bool) -> Message:
    it = iter(texts)
    blocks: list[Any] = []
    for b in message.content:
        if isinstance(b, TextBlock):
            blocks.append(TextBlock(text=next(it)))
        elif isinstance(b, ToolResultBlock):
            if isinstance(b.content, str):
                blocks.append(b.model_copy(update={"content": next(it)}))
            else:
                inner: list[TextBlock | ImageBlock] = []
                for x in b.content:
                    if isinstance(x, TextBlock):
                        inner.append(TextBlock(text=next(it)))
                    elif drop_media:
                        inner.append(TextBlock(text=PLACEHOLDER.format(kind="image")))
                    else:
                        inner.append(x)
                blocks.append(b.model_copy(update={"content": inner}))
        elif isinstance(b, DocumentBlock) and b.text is not None:
            blocks.append(b.model_copy(update={"text": next(it)}))
        elif drop_media and isinstance(b, ImageBlock | DocumentBlock):
            blocks.append(TextBlock(text=PLACEHOLDER.format(kind=b.type)))
        else:
            blocks.append(b)
    return message.model_copy(update={"content": blocks})


def truncate_message(message: Message, room: int, counter: TokenCounter) -> Message | None:
    """``message`` cut to at most ``room`` tokens by the rule above, or ``None``."""
    original = counter.count_message(message)
    if original <= room:
        return message
    texts = _texts(message)
    for drop_media in (False, True):
        fixed = counter.count_message(_rebuild(message, [""] * len(texts), drop_media))
        if fixed > room:
            continue
        sizes = [counter.count_text(t) for t in texts]
        total = sum(sizes) or 1
        slack = 0
        for _ in range(6):  # token boundaries can make the joined result a little larger
            share = room - fixed - slack
            if share < 0:
                break
            cut = [
                _cut(t, (share * s) // total, counter) for t, s in zip(texts, sizes, strict=True)
            ]
            candidate = _rebuild(message, cut, drop_media)
            cost = counter.count_message(candidate)
            if cost <= room:
                meta = {**message.metadata, "tela.truncated": original}
                return candidate.model_copy(update={"metadata": meta})
            slack += cost - room + 1
    return None


def fit_units(
    kept: list[Unit], total: int, room: int, counter: TokenCounter, truncated: dict[str, int]
) -> tuple[list[Unit], int]:
    """Cut the largest message of ``kept`` so the units fit ``room``; record it in
    ``truncated`` (id -> original tokens). Raises ``BudgetError`` when it cannot."""
    over = total - room
    best: tuple[int, int, int] | None = None  # (tokens, unit index, message index)
    for ui, u in enumerate(kept):
        for mi, m in enumerate(u.messages):
            t = counter.count_message(m)
            if best is None or t > best[0]:
                best = (t, ui, mi)
    if best is not None and best[0] - over > 0:
        t, ui, mi = best
        cut = truncate_message(kept[ui].messages[mi], t - over, counter)
        if cut is not None:
            u = kept[ui]
            msgs = list(u.messages)
            msgs[mi] = cut
            new_tokens = sum(counter.count_message(m) for m in msgs)
            kept = [
                *kept[:ui],
                Unit(msgs, tokens=new_tokens, seq=u.seq, turn=u.turn),
                *kept[ui + 1 :],
            ]
            truncated[cut.id] = t
            total = total - u.tokens + new_tokens
            if total <= room:
                return kept, total
    raise BudgetError(
        f"the newest turn needs {total} tokens but only {room} are left after the pinned "
        "prefix, and it cannot be cut to fit (tool-call arguments or thinking too large): "
        "raise the budget"
    )


__all__ = ["MARKER", "PLACEHOLDER", "fit_units", "truncate_message"]
