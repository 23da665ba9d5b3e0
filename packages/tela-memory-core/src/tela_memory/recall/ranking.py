"""Hybrid ranking: fuse lexical and dense lists, add recency and neighbour evidence, de-dup.

Pure functions over :class:`~tela_memory.recall.types.Hit` lists, so any index can use them.
Everything done per thread keys threads by ``(user_id, thread_id)``
(:func:`~tela_memory.recall.types.thread_key`): two users' threads of the same id never lift
each other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from tela_memory.recall.index import ThreadTermCounts
from tela_memory.recall.types import Hit, ThreadKey, thread_key

Fusion = Literal["rrf", "score"]


@dataclass(frozen=True)
class RankingConfig:
    """How candidates are scored.

    Attributes:
        fusion: ``score`` (weighted sum of scores scaled to [0, 1] per list) or ``rrf``
            (reciprocal rank fusion).
        lexical_weight: the lexical side's share.
        dense_weight: the dense side's share.
        rrf_k: the RRF constant.
        neighbor_weight: share of the best adjacent turn's score (parent or child in the
            thread) added to a turn: a question and its answer lift each other.
        thread_weight: share of the thread's score added to each of its turns: a conversation
            that matches as a whole lifts its turns.
        thread_lexical: when the index can count query words per thread
            (``Index.supports_thread_terms``), the thread's score is BM25 over the whole
            thread (:func:`thread_bm25`) scaled min-max over the threads; otherwise (and
            without it) the mean of the thread's best ``thread_top`` candidates.
        recency_weight: added at most for the newest turn, decaying with ``half_life_days``.
        dedup: drop hits whose normalised text repeats a better hit's.
    """

    fusion: Fusion = "score"
    lexical_weight: float = 0.6
    dense_weight: float = 0.4
    rrf_k: int = 60
    neighbor_weight: float = 0.3
    thread_weight: float = 0.5
    thread_top: int = 3
    thread_lexical: bool = True
    recency_weight: float = 0.0
    half_life_days: float = 30.0
    dedup: bool = True


@runtime_checkable
class Reranker(Protocol):
    """Rescores candidates for a query (a cross-encoder, an LLM judge ...)."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """One score per hit, higher is better."""
        ...

    async def arerank(self, query: str, hits: Sequence[Hit]) -> list[float]:
        """Async twin of :meth:`rerank`."""
        ...


def _scaled(hits: Sequence[Hit], attr: str) -> dict[str, float]:
    values = [getattr(h, attr) for h in hits]
    nums = [v for v in values if v is not None]
    if not nums:
        return {}
    hi, lo = max(nums), min(nums)
    out: dict[str, float] = {}
    for h, v in zip(hits, values, strict=True):
        if v is not None:
            out[h.message.id] = (v - lo) / (hi - lo) if hi > lo else 1.0
    return out


def fuse(lexical: Sequence[Hit], dense: Sequence[Hit], config: RankingConfig) -> list[Hit]:
    """One list from the lexical and dense candidates, best first (``score`` set)."""
    best: dict[str, Hit] = {}
    for h in [*lexical, *dense]:
        prev = best.get(h.message.id)
        if prev is None:
            best[h.message.id] = h
        else:
            best[h.message.id] = prev.model_copy(
                update={
                    "lexical_score": prev.lexical_score
                    if prev.lexical_score is not None
                    else h.lexical_score,
                    "dense_score": prev.dense_score
                    if prev.dense_score is not None
                    else h.dense_score,
                }
            )
    scores: dict[str, float] = dict.fromkeys(best, 0.0)
    if config.fusion == "rrf":
        for hits, weight in ((lexical, config.lexical_weight), (dense, config.dense_weight)):
            for rank, h in enumerate(hits, start=1):
                scores[h.message.id] += weight / (config.rrf_k + rank)
    else:
        lex = _scaled(lexical, "lexical_score")
        den = _scaled(dense, "dense_score")
        # a side that returned nothing does not count against the other
        wl = config.lexical_weight if lex else 0.0
        wd = config.dense_weight if den else 0.0
        total = (wl + wd) or 1.0
        for mid in scores:
            scores[mid] = (wl * lex.get(mid, 0.0) + wd * den.get(mid, 0.0)) / total
    return _sorted(best, scores)


def with_neighbors(hits: Sequence[Hit], weight: float) -> list[Hit]:
    """Add ``weight`` x the best score of a turn's parent or child among the candidates."""
    if weight <= 0 or not hits:
        return list(hits)
    by_id = {h.message.id: h for h in hits}
    children: dict[str, list[str]] = {}
    for h in hits:
        if h.message.parent_id is not None:
            children.setdefault(h.message.parent_id, []).append(h.message.id)
    scores: dict[str, float] = {}
    for h in hits:
        near = [by_id[c].score for c in children.get(h.message.id, [])]
        parent = h.message.parent_id
        if parent is not None and parent in by_id:
            near.append(by_id[parent].score)
        scores[h.message.id] = h.score + weight * max(near, default=0.0)
    return _sorted(by_id, scores)


def with_threads(hits: Sequence[Hit], weight: float, top: int) -> list[Hit]:
    """Add ``weight`` x the thread's score (mean of its best ``top`` candidate scores)."""
    if weight <= 0 or not hits:
        return list(hits)
    per: dict[ThreadKey, list[float]] = {}
    for h in hits:
        per.setdefault(thread_key(h.message), []).append(h.score)
    thread = {t: sum(sorted(v, reverse=True)[:top]) / top for t, v in per.items()}
    by_id = {h.message.id: h for h in hits}
    scores = {h.message.id: h.score + weight * thread[thread_key(h.message)] for h in hits}
    return _sorted(by_id, scores)


def thread_bm25(
    counts: ThreadTermCounts, *, k1: float = 1.2, b: float = 0.75
) -> dict[ThreadKey, float]:
    """BM25 of each thread as one document, the bag of its turns: a word's frequency is the
    number of the thread's turns containing it, a thread's length its number of turns, and a
    word's rarity is counted over the threads (so a name in every thread weighs little).
    Threads matching no word are left out."""
    n = len(counts.turns)
    if n == 0:
        return {}
    avg = sum(counts.turns.values()) / n or 1.0
    scores: dict[ThreadKey, float] = {}
    for per in counts.terms.values():
        df = sum(1 for t in per if t in counts.turns)
        if df == 0:
            continue
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for thread, tf in per.items():
            length = counts.turns.get(thread)
            if not length or tf <= 0:
                continue
            norm = k1 * (1.0 - b + b * length / avg)
            scores[thread] = scores.get(thread, 0.0) + idf * tf * (k1 + 1.0) / (tf + norm)
    return scores


def with_thread_scores(
    hits: Sequence[Hit], thread_scores: Mapping[ThreadKey, float], weight: float
) -> list[Hit]:
    """Add ``weight`` x the thread's score scaled min-max over ``thread_scores`` (best 1,
    worst 0; a thread missing from it gets 0) to each hit."""
    if weight <= 0 or not hits or not thread_scores:
        return list(hits)
    hi, lo = max(thread_scores.values()), min(thread_scores.values())
    scaled = {t: (v - lo) / (hi - lo) if hi > lo else 1.0 for t, v in thread_scores.items()}
    by_id = {h.message.id: h for h in hits}
    scores = {h.message.id: h.score + weight * scaled.get(thread_key(h.message), 0.0) for h in hits}
    return _sorted(by_id, scores)


@dataclass(frozen=True)
class ThreadHit:
    """A thread (session) ranked for a query: its best turn's score and its turns among the
    hits, best first. The thread is ``(user_id, thread_id)``."""

    thread_id: str | None
    score: float
    hits: tuple[Hit, ...]
    user_id: str | None = None

    @property
    def key(self) -> ThreadKey:
        """``(user_id, thread_id)``."""
        return self.user_id, self.thread_id


def rank_threads(hits: Sequence[Hit]) -> list[ThreadHit]:
    """Threads of ranked hits, in order of their best hit (whose score they take); two users'
    threads of the same id are two threads."""
    per: dict[ThreadKey, list[Hit]] = {}
    for h in hits:
        per.setdefault(thread_key(h.message), []).append(h)
    return [ThreadHit(t, v[0].score, tuple(v), user_id=u) for (u, t), v in per.items()]


def with_recency(
    hits: Sequence[Hit], weight: float, half_life_days: float, now: datetime
) -> list[Hit]:
    """Add up to ``weight`` for new turns, halving every ``half_life_days``."""
    if weight <= 0 or not hits:
        return list(hits)
    by_id = {h.message.id: h for h in hits}
    scores = {}
    for h in hits:
        age = max(0.0, (now - h.message.created_at).total_seconds() / 86400.0)
        scores[h.message.id] = h.score + weight * math.pow(0.5, age / half_life_days)
    return _sorted(by_id, scores)


_SPACE = re.compile(r"\W+", re.UNICODE)


def dedup(hits: Sequence[Hit]) -> list[Hit]:
    """Keep the first (best) of hits whose text is the same once case and punctuation go."""
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        key = _SPACE.sub(" ", h.text.lower()).strip()
        if key and key in seen:
            continue
        seen.add(key)
        out.append(h)
    return out


def _sorted(by_id: dict[str, Hit], scores: dict[str, float]) -> list[Hit]:
    order = sorted(scores, key=lambda i: (-scores[i], i))
    return [by_id[i].model_copy(update={"score": scores[i]}) for i in order]


__all__ = [
    "Fusion",
    "RankingConfig",
    "Reranker",
    "ThreadHit",
    "dedup",
    "fuse",
    "rank_threads",
    "thread_bm25",
    "with_neighbors",
    "with_recency",
    "with_thread_scores",
    "with_threads",
]
