"""Run the LoCoMo retrieval evaluation: import, index, ask, score.

No LLM is involved: for each category 1-4 question the conversation's turns are ranked and the
labelled evidence turns are looked for in the ranking and in token-budgeted recalls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tela_memory.evaluation import metrics
from tela_memory.evaluation.locomo import (
    Conversation,
    Question,
    import_conversation,
    load,
    session_of,
)
from tela_memory.recall.embedder import Embedder
from tela_memory.recall.index import Index
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.ranking import rank_threads
from tela_memory.recall.recaller import RecallConfig, Recaller
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.recall.types import Hit
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.tokens.base import TokenCounter
from tela_memory.tokens.counters import TiktokenCounter

Ranker = Literal["hybrid", "lexical", "dense"]
RANKED_DEPTH = 50


class Scores(BaseModel):
    """Mean scores over a set of questions (each 0-1)."""

    questions: int = 0
    recall_any: float = 0.0
    recall_all: float = 0.0
    ndcg: float = 0.0
    session_recall_all: float = 0.0
    evidence_recall_all: dict[int, float] = Field(default_factory=dict)
    """Budget (tokens) -> share of questions whose evidence all fit in the recall."""


class LocomoReport(BaseModel):
    """Result of :func:`run_locomo`."""

    ranker: Ranker
    model_id: str | None
    k: int
    session_k: int
    budgets: tuple[int, ...]
    conversations: int
    turns: int
    overall: Scores
    by_category: dict[int, Scores]
    search_ms_p50: float
    search_ms_p95: float
    embed_ms_p50: float | None = None
    embed_ms_p95: float | None = None
    index_seconds: float

    def table(self) -> str:
        """A small markdown table of the scores."""
        budgets = [f"ev@{b}" for b in self.budgets]
        head = [
            "",
            "n",
            f"R_any@{self.k}",
            f"R_all@{self.k}",
            f"NDCG@{self.k}",
            f"S_all@{self.session_k}",
            *budgets,
        ]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name, s in [("overall", self.overall)] + [
            (f"cat {c}", v) for c, v in sorted(self.by_category.items())
        ]:
            cells = [
                name,
                str(s.questions),
                f"{s.recall_any:.3f}",
                f"{s.recall_all:.3f}",
                f"{s.ndcg:.3f}",
                f"{s.session_recall_all:.3f}",
                *(f"{s.evidence_recall_all.get(b, 0.0):.3f}" for b in self.budgets),
            ]
            rows.append("| " + " | ".join(cells) + " |")
        rows.append(
            f"\nsearch p50 {self.search_ms_p50:.2f} ms, p95 {self.search_ms_p95:.2f} ms"
            + (
                f"; query embedding p50 {self.embed_ms_p50:.2f} ms, p95 {self.embed_ms_p95:.2f} ms"
                if self.embed_ms_p50 is not None and self.embed_ms_p95 is not None
                else ""
            )
            + f"; indexing {self.turns} turns took {self.index_seconds:.1f} s"
        )
        return "\n".join(rows)


def run_locomo(
    path: str | Path,
    *,
    k: int = 10,
    budgets: Sequence[int] = (1000, 2000),
    embedder: Embedder | None = None,
    details_path: str | Path | None = None,
    ranker: Ranker = "hybrid",
    config: RecallConfig | None = None,
    session_k: int = 5,
    counter: TokenCounter | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LocomoReport:
    """Evaluate recall on a LoCoMo file.

    Args:
        path: ``locomo*.json``.
        k: cut-off for turn metrics.
        budgets: token budgets for the evidence-within-budget metric.
        embedder: dense side (``None``: lexical only).
        details_path: write one JSON line per question
            ``{"sample_id", "qa_index", "ranked": [turn ids, best first]}``.
        ranker: ``hybrid`` (the :class:`Recaller`), or a single side of the index
            (``lexical`` BM25, ``dense`` vectors) as baselines.
        config: recall knobs for ``hybrid``.
        session_k: cut-off for session recall.
        counter: token counter for budgets (default tiktoken ``cl100k_base``).
        progress: called with (questions done, questions total).
    """
    conversations = load(path)
    counter = counter or TiktokenCounter(encoding="cl100k_base")
    if ranker == "dense" and embedder is None:
        from tela_memory.errors import UnsupportedOperation

        raise UnsupportedOperation("the dense ranker needs an embedder")
    total = sum(len(c.questions) for c in conversations)
    per_question: list[tuple[Question, dict[str, float]]] = []
    search_ms: list[float] = []
    embed_ms: list[float] = []
    index_seconds = 0.0
    turns = 0
    details = open(details_path, "w", encoding="utf-8") if details_path else None  # noqa: SIM115
    try:
        with SQLiteStore(":memory:") as store:
            index = SQLiteIndex.for_store(store, embedder=embedder if ranker != "lexical" else None)
            recaller = Recaller(index, config=config, counter=counter)
            start = time.perf_counter()
            for conv in conversations:
                turns += import_conversation(store, conv)
            StoreIndexer(store, index, batch_size=512).sync()
            index_seconds = time.perf_counter() - start
            for conv in conversations:
                for q in conv.questions:
                    ranked, sessions, budgeted, s_ms, e_ms = _ask(
                        recaller, index, conv, q, ranker, budgets, embedder
                    )
                    search_ms.append(s_ms)
                    if e_ms is not None:
                        embed_ms.append(e_ms)
                    per_question.append((q, _score(q, ranked, sessions, budgeted, k, session_k)))
                    if details is not None:
                        details.write(
                            json.dumps(
                                {"sample_id": q.sample_id, "qa_index": q.qa_index, "ranked": ranked}
                            )
                            + "\n"
                        )
                    if progress is not None:
                        progress(len(per_question), total)
            index.close()
    finally:
        if details is not None:
            details.close()
    by_cat: dict[int, list[dict[str, float]]] = {}
    for q, s in per_question:
        by_cat.setdefault(q.category, []).append(s)
    return LocomoReport(
        ranker=ranker,
        model_id=embedder.model_id if embedder is not None and ranker != "lexical" else None,
        k=k,
        session_k=session_k,
        budgets=tuple(budgets),
        conversations=len(conversations),
        turns=turns,
        overall=_mean([s for _, s in per_question], budgets),
        by_category={c: _mean(v, budgets) for c, v in sorted(by_cat.items())},
        search_ms_p50=metrics.percentile(search_ms, 0.5),
        search_ms_p95=metrics.percentile(search_ms, 0.95),
        embed_ms_p50=metrics.percentile(embed_ms, 0.5) if embed_ms else None,
        embed_ms_p95=metrics.percentile(embed_ms, 0.95) if embed_ms else None,
        index_seconds=index_seconds,
    )


def _dia(hit: Hit) -> str:
    return str(hit.message.metadata.get("dia_id", hit.message.id))


def _ask(
    recaller: Recaller,
    index: Index,
    conv: Conversation,
    q: Question,
    ranker: Ranker,
    budgets: Sequence[int],
    embedder: Embedder | None,
) -> tuple[list[str], list[str], dict[int, set[str]], float, float | None]:
    vector = None
    e_ms = None
    if embedder is not None and ranker != "lexical":
        t0 = time.perf_counter()
        vector = embedder.embed_query(q.question)
        e_ms = (time.perf_counter() - t0) * 1000
    flt = {"user_id": conv.user_id}
    t0 = time.perf_counter()
    if ranker == "hybrid":
        hits = recaller.search(
            q.question, user_id=conv.user_id, k=RANKED_DEPTH, query_vector=vector
        )
    else:
        hits = index.search(
            q.question, filter=flt, k=RANKED_DEPTH, mode=ranker, query_vector=vector
        )
    s_ms = (time.perf_counter() - t0) * 1000
    budgeted: dict[int, set[str]] = {}
    for b in budgets:
        if ranker == "hybrid":
            result = recaller.pack(q.question, b, hits, conv.user_id)
        else:
            result = recaller.pack(q.question, b, hits, conv.user_id, neighbors=False)
        budgeted[b] = {str(t.message.metadata.get("dia_id")) for t in result.turns}
    # sessions as Recaller.search_threads orders them: by their best turn
    sessions = [session_of(_dia(t.hits[0])) for t in rank_threads(hits)]
    return [_dia(h) for h in hits], sessions, budgeted, s_ms, e_ms


def _score(
    q: Question,
    ranked: list[str],
    sessions: list[str],
    budgeted: dict[int, set[str]],
    k: int,
    session_k: int,
) -> dict[str, float]:
    ev = q.evidence
    ev_sessions = {session_of(e) for e in ev}
    out = {
        "recall_any": metrics.recall_any(ranked, ev, k),
        "recall_all": metrics.recall_all(ranked, ev, k),
        "ndcg": metrics.ndcg(ranked, ev, k),
        "session_recall_all": metrics.recall_all(sessions, ev_sessions, session_k),
    }
    for b, got in budgeted.items():
        out[f"ev{b}"] = 1.0 if all(e in got for e in ev) else 0.0
    return out


def _mean(rows: list[dict[str, float]], budgets: Sequence[int]) -> Scores:
    n = len(rows)
    if n == 0:
        return Scores()

    def avg(key: str) -> float:
        return sum(r[key] for r in rows) / n

    return Scores(
        questions=n,
        recall_any=avg("recall_any"),
        recall_all=avg("recall_all"),
        ndcg=avg("ndcg"),
        session_recall_all=avg("session_recall_all"),
        evidence_recall_all={b: avg(f"ev{b}") for b in budgets},
    )


__all__ = ["LocomoReport", "Ranker", "Scores", "run_locomo"]
