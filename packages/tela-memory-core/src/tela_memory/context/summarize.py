"""Progressive summarisation: fold dropped spans into a running summary.

A :class:`Summarizer` receives the previous summary (or ``None``) and only the messages that
newly dropped out, never a span it has already seen, and returns the new summary text within
``max_tokens``. Two are provided:

* :class:`ExtractiveSummarizer`: offline, no model. It keeps the most informative sentences
  of each span (word-frequency scoring, user questions favoured) as ``- role: sentence``
  lines after the previous summary, dropping the oldest lines when over ``max_tokens``.
* :class:`LLMSummarizer`: any callable chat model ``(list[Message]) -> str`` (sync or async).
"""

from __future__ import annotations

import inspect
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message, Role
from tela_memory.tokens.base import TokenCounter

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]{3,}", re.UNICODE)
_ENTITY = re.compile(r"\b(?:\d[\w:./-]*|[A-Z][a-z]+)")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "your",
        "with",
        "this",
        "that",
        "have",
        "from",
        "they",
        "will",
        "would",
        "there",
        "their",
        "what",
        "about",
        "which",
        "when",
        "make",
        "can",
        "like",
        "just",
        "than",
        "then",
        "them",
        "these",
        "some",
        "could",
        "into",
        "has",
        "had",
        "was",
        "were",
        "been",
        "being",
        "its",
        "it's",
        "our",
        "out",
        "also",
        "how",
        "who",
        "why",
        "all",
        "any",
        "may",
        "might",
        "should",
    ]
)


@runtime_checkable
class Summarizer(Protocol):
    """Folds newly dropped messages into a running summary (synchronously)."""

    def summarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        """The new summary: ``previous`` extended with ``messages``, within ``max_tokens``."""
        ...


@runtime_checkable
class AsyncSummarizer(Protocol):
    """A summariser with a native async side (used by ``abuild``)."""

    async def asummarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        """Async twin of :meth:`Summarizer.summarize`."""
        ...


def fit_text(text: str, max_tokens: int, counter: TokenCounter, *, keep: str = "tail") -> str:
    """Cut ``text`` to at most ``max_tokens`` tokens, keeping its ``head`` or ``tail`` (lines
    first, then characters). Returns ``""`` if nothing fits."""
    if max_tokens <= 0:
        return ""
    if counter.count_text(text) <= max_tokens:
        return text
    lo, hi = 0, len(text)  # largest number of characters kept that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        part = text[-mid:] if keep == "tail" else text[:mid]
        if counter.count_text(part) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    part = text[-lo:] if keep == "tail" and lo else text[:lo]
    if keep == "tail" and "\n" in part:
        part = part[part.index("\n") + 1 :] or part
    return part


def _render(message: Message) -> str:
    text = message.text.strip()
    if not text:
        calls = message.tool_calls
        if calls:
            text = "called " + ", ".join(c.name for c in calls)
    return text


class ExtractiveSummarizer:
    """An offline summariser: picks the most informative sentences of each dropped span.

    Args:
        per_span: at most this many sentences are taken from each span.
        max_sentence_chars: longer sentences are cut to this many characters.
        max_messages: of a longer span (the first build of a long history), only the newest
            ``max_messages`` are read; the summary still counts the whole span as covered.
    """

    def __init__(
        self, *, per_span: int = 8, max_sentence_chars: int = 240, max_messages: int = 1_000
    ) -> None:
        if per_span <= 0 or max_sentence_chars <= 0 or max_messages <= 0:
            raise TelaMemoryError("per_span, max_sentence_chars and max_messages must be > 0")
        self.per_span = per_span
        self.max_sentence_chars = max_sentence_chars
        self.max_messages = max_messages

    def _sentences(self, messages: Sequence[Message]) -> list[tuple[int, str, str]]:
        out: list[tuple[int, str, str]] = []
        for m in messages:
            if m.role in (Role.SYSTEM, Role.DEVELOPER):
                continue
            for sentence in _SENTENCE.split(_render(m)):
                s = " ".join(sentence.split())
                if len(s) >= 12:
                    out.append((len(out), m.role.value, s[: self.max_sentence_chars]))
        return out

    def summarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        """Previous lines plus the most distinctive sentences of ``messages``.

        A sentence scores the inverse document frequency of its words within the span (rare
        words carry information, boilerplate repeated every turn does not), plus a bonus for
        numbers and capitalised names, favouring user questions; near-duplicates of a chosen
        sentence are skipped. The oldest lines are cut first when over ``max_tokens``.
        """
        sentences = self._sentences(messages[-self.max_messages :])
        df: Counter[str] = Counter()
        words_of: list[set[str]] = []
        for _, _, s in sentences:
            words = {w for w in (x.lower() for x in _WORD.findall(s)) if w not in _STOP}
            words_of.append(words)
            df.update(words)
        n = len(sentences) or 1

        def score(i: int) -> float:
            words = words_of[i]
            if not words:
                return 0.0
            base = sum(math.log(1 + n / df[w]) for w in words) / math.sqrt(len(words) + 4)
            text = sentences[i][2]
            base += 0.5 * len(_ENTITY.findall(text[1:]))
            if sentences[i][1] == Role.USER.value:
                base *= 1.2
            if text.endswith("?"):
                base *= 1.1
            return float(base)

        chosen: list[int] = []
        for i in sorted(range(len(sentences)), key=score, reverse=True):
            if len(chosen) >= self.per_span:
                break
            w = words_of[i]
            if any(
                len(w & words_of[j]) >= 0.8 * max(1, min(len(w), len(words_of[j]))) for j in chosen
            ):
                continue
            chosen.append(i)
        lines = [f"- {sentences[i][1]}: {sentences[i][2]}" for i in sorted(chosen)]
        text = "\n".join(x for x in [previous or "", *lines] if x)
        return fit_text(text, max_tokens, counter, keep="tail")

    async def asummarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        """Same as :meth:`summarize` (pure CPU work)."""
        return self.summarize(previous, messages, max_tokens=max_tokens, counter=counter)


ChatFn = Callable[[list[Message]], str] | Callable[[list[Message]], Awaitable[str]]

SUMMARY_INSTRUCTIONS = (
    "You maintain a running summary of a conversation for an assistant that can no longer see "
    "the older turns. Extend the existing summary with the new messages. Keep facts, names, "
    "decisions, numbers, open questions and user preferences; drop pleasantries. Answer with "
    "the updated summary only, at most {max_tokens} tokens."
)


class LLMSummarizer:
    """Summarises with any chat model given as a callable ``(list[Message]) -> str``.

    The callable receives a system message with instructions, the previous summary and the
    new span rendered as text; it may be sync or async (async ones need ``abuild``). An
    answer longer than ``max_tokens`` is cut to fit.
    """

    def __init__(self, model: ChatFn, *, instructions: str = SUMMARY_INSTRUCTIONS) -> None:
        if not callable(model):
            raise TelaMemoryError(f"model must be callable, got {type(model).__name__}")
        self.model = model
        self.instructions = instructions
        call = model if inspect.isfunction(model) else type(model).__call__
        self.is_async = inspect.iscoroutinefunction(model) or inspect.iscoroutinefunction(call)

    def prompt(
        self, previous: str | None, messages: Sequence[Message], max_tokens: int
    ) -> list[Message]:
        """The messages sent to the model."""
        span = "\n".join(f"{m.role.value}: {_render(m)}" for m in messages if _render(m))
        body = f"Existing summary:\n{previous or '(none)'}\n\nNew messages:\n{span}"
        return [
            Message.system(self.instructions.format(max_tokens=max_tokens)),
            Message.user(body),
        ]

    def _check(self, answer: object) -> str:
        if not isinstance(answer, str):
            raise TelaMemoryError(
                f"the summary model returned {type(answer).__name__}, expected str"
            )
        return answer.strip()

    def summarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        """Ask the model (sync callables only)."""
        if self.is_async:
            raise TelaMemoryError("this LLMSummarizer wraps an async model: use abuild()")
        answer = self.model(self.prompt(previous, messages, max_tokens))
        if inspect.isawaitable(answer):
            raise TelaMemoryError("the summary model returned an awaitable: use abuild()")
        return fit_text(self._check(answer), max_tokens, counter, keep="head")

    async def asummarize(
        self,
        previous: str | None,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        counter: TokenCounter,
    ) -> str:
        """Ask the model, awaiting it if it is async."""
        answer = self.model(self.prompt(previous, messages, max_tokens))
        if inspect.isawaitable(answer):
            answer = await answer
        return fit_text(self._check(answer), max_tokens, counter, keep="head")


__all__ = [
    "SUMMARY_INSTRUCTIONS",
    "AsyncSummarizer",
    "ExtractiveSummarizer",
    "LLMSummarizer",
    "Summarizer",
    "fit_text",
]
