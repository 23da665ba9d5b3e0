"""``tela-memory eval locomo PATH``: retrieval quality on LoCoMo, without an LLM."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from tela_memory.cli._common import JsonOption, console, emit_json, progress
from tela_memory.errors import TelaMemoryError
from tela_memory.recall.embedder import Embedder

eval_app = typer.Typer(help="Evaluate recall on a benchmark.", no_args_is_help=True)


def make_embedder(spec: str, cache: Path | None) -> Embedder | None:
    """``auto`` (MiniLM when sentence-transformers is installed, else none), ``none``,
    ``minilm``, ``model2vec:PATH``, ``fastembed:NAME`` or a sentence-transformers name/path."""
    from tela_memory.recall.adapters import (
        MINILM,
        FastEmbedEmbedder,
        Model2VecEmbedder,
        SentenceTransformerEmbedder,
    )
    from tela_memory.recall.cache import CacheChain, CachedEmbedder, MemoryCache, SQLiteCache

    inner: Embedder
    if spec == "none":
        return None
    if spec == "auto":
        if importlib.util.find_spec("sentence_transformers") is None:
            return None
        inner = SentenceTransformerEmbedder(MINILM)
    elif spec == "minilm":
        inner = SentenceTransformerEmbedder(MINILM)
    elif spec.startswith("model2vec:"):
        inner = Model2VecEmbedder(spec.split(":", 1)[1])
    elif spec.startswith("fastembed:"):
        inner = FastEmbedEmbedder(spec.split(":", 1)[1])
    else:
        inner = SentenceTransformerEmbedder(spec)
    levels = [MemoryCache()] + ([SQLiteCache(cache)] if cache is not None else [])
    return CachedEmbedder(inner, CacheChain(*levels))


def _budgets(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise TelaMemoryError(f"--budget takes integers separated by commas, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise TelaMemoryError(f"--budget needs positive token counts, got {text!r}")
    return values


@eval_app.command("locomo")
def locomo(
    path: Annotated[Path, typer.Argument(help="A LoCoMo JSON file (list of conversations).")],
    k: Annotated[int, typer.Option("--k", help="Cut-off for the turn metrics.")] = 10,
    budget: Annotated[
        str, typer.Option("--budget", help="Token budgets, comma-separated.")
    ] = "1000,2000",
    ranker: Annotated[
        str, typer.Option("--ranker", help="hybrid (Recaller), lexical (BM25) or dense.")
    ] = "hybrid",
    embedder: Annotated[
        str,
        typer.Option(
            "--embedder",
            help="auto, none, minilm, model2vec:PATH, fastembed:NAME or a model path.",
        ),
    ] = "auto",
    cache: Annotated[
        Path | None, typer.Option("--cache", help="SQLite file caching embeddings across runs.")
    ] = None,
    details: Annotated[
        Path | None, typer.Option("--details", help="Write one JSON line per question.")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Rank every category 1-4 question's turns; print recall, NDCG, session recall,
    evidence within token budgets and search latency, overall and per category."""
    from tela_memory.evaluation import run_locomo

    if ranker not in ("hybrid", "lexical", "dense"):
        raise TelaMemoryError(f"--ranker must be hybrid, lexical or dense, got {ranker!r}")
    budgets = _budgets(budget)
    emb = make_embedder(embedder, cache) if ranker != "lexical" else None
    with progress(disable=json_out) as bar:
        task = bar.add_task("questions", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_locomo(
            path,
            k=k,
            budgets=budgets,
            embedder=emb,
            details_path=details,
            ranker=ranker,  # type: ignore[arg-type]
            progress=tick,
        )
    if json_out:
        emit_json(report)
        return
    model = report.model_id or "none (lexical only)"
    console.print(f"[bold]LoCoMo[/] {path.name}: ranker {report.ranker}, embedder {model}")
    console.print(report.table(), markup=False)


def register(app: typer.Typer) -> None:
    """Add ``tela-memory eval``."""
    app.add_typer(eval_app, name="eval")
