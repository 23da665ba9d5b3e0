"""A per-message count cache: a thread is counted once.

:class:`CachedCounter` wraps any counter. Entries are keyed by message id (the wrapped
counter's id is part of the cache, so two counters never share counts) and checked against a
cheap fingerprint of the content, so a message edited in place (same id, new content) is
recounted instead of served stale. The cache is a bounded LRU.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import (
    AudioBlock,
    ContentBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
)
from tela_memory.tokens.base import TokenCounter
from tela_memory.tokens.models import Family


def _block_key(block: ContentBlock) -> Hashable:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ThinkingBlock):
        return ("th", block.text, block.signature, block.redacted)
    if isinstance(block, ToolCallBlock):
        return ("tc", block.id, block.name, json.dumps(block.arguments, sort_keys=True))
    if isinstance(block, ToolResultBlock):
        inner = (
            block.content
            if isinstance(block.content, str)
            else tuple(_block_key(b) for b in block.content)
        )
        return ("tr", block.tool_call_id, inner)
    if isinstance(block, ImageBlock):
        src = block.url or block.ref or str(len(block.data or ""))
        return ("im", src, block.width, block.height, block.detail)
    if isinstance(block, DocumentBlock):
        return ("doc", block.text, block.pages, block.title, len(block.data or ""))
    if isinstance(block, AudioBlock):
        return ("au", block.duration_s, block.transcript)
    if isinstance(block, OpaqueBlock):
        return ("op", json.dumps(block.data, sort_keys=True))
    return repr(block)  # pragma: no cover


def fingerprint(message: Message) -> int:
    """A cheap hash of what a message costs (role, name, content)."""
    return hash((message.role, message.name, tuple(_block_key(b) for b in message.content)))


class CachedCounter:
    """A :class:`TokenCounter` that remembers message counts by id.

    Args:
        counter: the counter doing the work.
        maxsize: how many message counts to keep (least recently used are forgotten).
    """

    def __init__(self, counter: TokenCounter, *, maxsize: int = 200_000) -> None:
        if maxsize <= 0:
            raise InvalidMessageError(f"maxsize must be > 0, got {maxsize}")
        self.inner = counter
        self.maxsize = maxsize
        self._cache: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def id(self) -> str:
        """The wrapped counter's id."""
        return self.inner.id

    @property
    def family(self) -> Family:
        """The wrapped counter's family."""
        return self.inner.family

    @property
    def reply_priming(self) -> int:
        """The wrapped counter's per-request tokens."""
        return self.inner.reply_priming

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` (not cached)."""
        return self.inner.count_text(text)

    def count_message(self, message: Message) -> int:
        """Tokens of a message, from the cache when its id and content are known."""
        fp = fingerprint(message)
        with self._lock:
            entry = self._cache.get(message.id)
            if entry is not None and entry[0] == fp:
                self._cache.move_to_end(message.id)
                self.hits += 1
                return entry[1]
        count = self.inner.count_message(message)
        with self._lock:
            self.misses += 1
            self._cache[message.id] = (fp, count)
            self._cache.move_to_end(message.id)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
        return count

    def count_messages(self, messages: Iterable[Message]) -> int:
        """Tokens of a request: cached message counts plus reply priming."""
        return self.reply_priming + sum(self.count_message(m) for m in messages)

    def invalidate(self, message_id: str | None = None) -> None:
        """Forget one message's count, or all counts when ``message_id`` is None."""
        with self._lock:
            if message_id is None:
                self._cache.clear()
            else:
                self._cache.pop(message_id, None)

    def __len__(self) -> int:
        return len(self._cache)


__all__ = ["CachedCounter", "fingerprint"]
