"""Recall on the embedded SQLite index: filtered search latency at 100,000 stored messages,
indexing throughput, and the LoCoMo retrieval table (hybrid vs BM25 only vs dense only).

Latency: every search is filtered to one user (100 users x 1,000 messages, 20 threads each),
as a multi-user application must; the query is embedded beforehand and that time is reported
apart. Vectors come from the core's deterministic ``HashEmbedder`` at 384 dimensions (the size
of all-MiniLM-L6-v2), so no model time hides the index. Peers in the same run, same vectors:
numpy brute force over all vectors with the user filter applied after scoring (the naive way),
and LangChain's ``InMemoryVectorStore`` with a filter function.

LoCoMo: the dev split with all-MiniLM-L6-v2 when sentence-transformers is installed
(scripts/install-semantic), else BM25 only.

    python bench/bench_recall.py            # 100,000 messages + LoCoMo with MiniLM
    python bench/bench_recall.py --quick    # 5,000 messages + LoCoMo BM25 only (< 1 min)
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from tela_memory import Message
from tela_memory.evaluation import run_locomo
from tela_memory.recall.cache import CacheChain, CachedEmbedder, MemoryCache, SQLiteCache
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.recaller import Recaller
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens.counters import ApproxCounter, TiktokenCounter

from harness import RESULTS, Row, measure, print_table, write_json

ROOT = Path(__file__).resolve().parents[1]
LOCOMO = ROOT.parent / "shared" / "data" / "locomo" / "locomo-dev.json"
DIM = 384
K = 10
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def corpus() -> tuple[list[str], list[str]]:
    """Sentences and questions of LoCoMo, to make realistic synthetic messages."""
    data = json.loads(LOCOMO.read_text())
    turns = [
        t["text"]
        for c in data
        for k, v in c["conversation"].items()
        if k.startswith("session") and isinstance(v, list)
        for t in v
    ]
    questions = [q["question"] for c in data for q in c["qa"]]
    return turns, questions


def make_messages(
    n: int, users: int, per_thread: int, rng: random.Random, turns: list[str]
) -> dict[str, tuple[str, list[Message]]]:
    """``thread -> (user, messages)``: each message two random LoCoMo turns and a tag."""
    threads: dict[str, tuple[str, list[Message]]] = {}
    per_user = n // users
    for u in range(users):
        user = f"user-{u:04d}"
        for t in range(per_user // per_thread):
            tid = f"{user}-t{t:03d}"
            msgs = [
                Message(
                    role="user" if i % 2 == 0 else "assistant",  # type: ignore[arg-type]
                    content=f"{rng.choice(turns)} {rng.choice(turns)} tag{rng.randrange(10_000)}",
                    created_at=T0 + timedelta(days=t, minutes=i),
                )
                for i in range(per_thread)
            ]
            threads[tid] = (user, msgs)
    return threads


class LCHash(Embeddings):
    """The same HashEmbedder behind LangChain's Embeddings interface (for the peer)."""

    def __init__(self, inner: HashEmbedder) -> None:
        self.inner = inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.inner.embed(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text).tolist()


def bench_latency(n: int, users: int, repeat: int, tmp: Path) -> list[Row]:
    rng = random.Random(7)
    turns, questions = corpus()
    threads = make_messages(n, users, 50, rng, turns)
    embedder = HashEmbedder(DIM)
    rows: list[Row] = []
    workload = f"{n:,} msgs / {users} users"

    with SQLiteStore(tmp / "bench.db") as store:
        start = time.perf_counter()
        for tid, (user, msgs) in threads.items():
            store.append(tid, msgs, user_id=user)
        append_s = time.perf_counter() - start
        print(f"stored {n:,} messages in {append_s:.1f} s", file=sys.stderr)

        # indexing throughput: lexical only, then with vectors (hash embedder, cost included)
        with SQLiteIndex(tmp / "lex.db") as lex, SQLiteStore(tmp / "bench.db") as again:
            t0 = time.perf_counter()
            StoreIndexer(again, lex, batch_size=1000).sync()
            lex_s = time.perf_counter() - t0
        rows.append(
            Row(
                workload,
                "index (FTS5 only)",
                "tela",
                lex_s / n,
                extra={"msgs/s": f"{n / lex_s:,.0f}"},
            )
        )
        index = SQLiteIndex.for_store(store, embedder=embedder)
        t0 = time.perf_counter()
        StoreIndexer(store, index, batch_size=1000).sync()
        vec_s = time.perf_counter() - t0
        rows.append(
            Row(
                workload,
                "index (FTS5 + vectors)",
                "tela",
                vec_s / n,
                extra={"msgs/s": f"{n / vec_s:,.0f}"},
            )
        )
        t0 = time.perf_counter()
        all_texts = [m.text for _, ms in threads.values() for m in ms]
        embedder.embed(all_texts)
        embed_s = time.perf_counter() - t0
        rows.append(
            Row(
                workload,
                "index (FTS5 + vectors)",
                "hash embedding alone",
                embed_s / n,
                extra={"msgs/s": f"{n / embed_s:,.0f}"},
            )
        )

        owners = [u for u, ms in threads.values() for _ in ms]
        lc = InMemoryVectorStore(LCHash(embedder))
        t0 = time.perf_counter()
        lc.add_documents(
            [
                LCDocument(page_content=t, metadata={"user_id": o})
                for t, o in zip(all_texts, owners, strict=True)
            ]
        )
        lc_s = time.perf_counter() - t0
        rows.append(
            Row(
                workload,
                "index (FTS5 + vectors)",
                "langchain InMemoryVectorStore",
                lc_s / n,
                extra={"msgs/s": f"{n / lc_s:,.0f}"},
            )
        )

        # queries: a random LoCoMo question for a random user, embedded beforehand
        user_ids = sorted({u for u, _ in threads.values()})
        qs = [(rng.choice(user_ids), rng.choice(questions)) for _ in range(200)]
        t0 = time.perf_counter()
        qv = [embedder.embed_query(q) for _, q in qs]
        embed_q = (time.perf_counter() - t0) / len(qs)
        recaller = Recaller(index)
        # the same file without following the store: what a read's catch-up costs
        unfollowed = SQLiteIndex.for_store(store, embedder=embedder, follow=False)
        matrix = embedder.embed(all_texts)
        owner_arr = np.array(owners)

        def cycle(fn: Any) -> Any:
            it = itertools.cycle(range(len(qs)))
            return lambda: fn(next(it))

        ops = {
            ("search lexical", "tela"): lambda i: index.search(
                qs[i][1], filter={"user_id": qs[i][0]}, k=K, mode="lexical"
            ),
            ("search lexical", "tela, not following the store (follow=False)"): lambda i: (
                unfollowed.search(qs[i][1], filter={"user_id": qs[i][0]}, k=K, mode="lexical")
            ),
            ("search dense", "tela"): lambda i: index.search(
                qs[i][1], filter={"user_id": qs[i][0]}, k=K, mode="dense", query_vector=qv[i]
            ),
            ("search dense", "numpy brute force + post-filter"): lambda i: _numpy(
                matrix, owner_arr, qv[i], qs[i][0]
            ),
            ("search dense", "langchain InMemoryVectorStore"): lambda i: (
                lc.similarity_search_by_vector(
                    qv[i].tolist(), k=K, filter=lambda d, u=qs[i][0]: d.metadata["user_id"] == u
                )
            ),
            ("search hybrid (Recaller)", "tela"): lambda i: recaller.search(
                qs[i][1], user_id=qs[i][0], k=K, query_vector=qv[i]
            ),
            ("search dense, no user filter (all 100%)", "tela"): lambda i: index.search(
                qs[i][1], k=K, mode="dense", query_vector=qv[i]
            ),
            ("search lexical, no user filter (all 100%)", "tela"): lambda i: index.search(
                qs[i][1], k=K, mode="lexical"
            ),
        }
        for (op, _), fn in ops.items():  # every search must find something
            assert len(fn(0)) == K, op
        for (op, impl), fn in ops.items():
            reps = repeat if "langchain" not in impl else max(5, repeat // 10)
            st = measure(cycle(fn), repeat=reps, warmup=3)
            rows.append(Row(workload, op, impl, st.median, st.p95))
        rows.append(Row(workload, "embed query (apart)", "hash embedder", embed_q))
        unfollowed.close()
        index.close()
    return rows


def _numpy(matrix: np.ndarray, owners: np.ndarray, q: np.ndarray, user: str) -> list[int]:
    scores = matrix @ q
    order = np.argsort(-scores)
    return [int(i) for i in order if owners[i] == user][:K]


def bench_locomo(quick: bool) -> tuple[list[Row], str]:
    have_model = importlib.util.find_spec("sentence_transformers") is not None and not quick
    tables = []
    rows = []
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    counter = ApproxCounter()
    tik = (
        ROOT
        / ".venv"
        / "lib"
        / "python3.11"
        / "site-packages"
        / "llama_index"
        / "core"
        / "_static"
        / "tiktoken_cache"
    )
    if "TIKTOKEN_CACHE_DIR" not in os.environ and tik.exists():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(tik)
        counter = TiktokenCounter(encoding="cl100k_base")  # type: ignore[assignment]
    emb = None
    if have_model:
        from tela_memory.recall.adapters import MINILM, SentenceTransformerEmbedder

        RESULTS.mkdir(exist_ok=True)
        emb = CachedEmbedder(
            SentenceTransformerEmbedder(MINILM),
            CacheChain(MemoryCache(), SQLiteCache(RESULTS / "embeddings.db")),
        )
    rankers = ["lexical", "dense", "hybrid"] if emb is not None else ["lexical", "hybrid"]
    for ranker in rankers:
        rep = run_locomo(LOCOMO, embedder=emb, ranker=ranker, counter=counter)  # type: ignore[arg-type]
        label = {
            "lexical": "BM25 only (FTS5)",
            "dense": "dense only (MiniLM)",
            "hybrid": "hybrid (Recaller)" + ("" if emb else ", no embedder"),
        }[ranker]
        s = rep.overall
        tables.append(
            f"| {label} | {s.recall_any:.3f} | {s.recall_all:.3f} | {s.ndcg:.3f} | "
            f"{s.session_recall_all:.3f} | {s.evidence_recall_all[1000]:.3f} | "
            f"{s.evidence_recall_all[2000]:.3f} | "
            f"{rep.search_ms_p50:.2f} / {rep.search_ms_p95:.2f} |"
        )
        rows.append(
            Row(
                "locomo dev (883 q)",
                "search",
                label,
                rep.search_ms_p50 / 1000,
                rep.search_ms_p95 / 1000,
                extra={
                    "R_any@10": f"{s.recall_any:.3f}",
                    "R_all@10": f"{s.recall_all:.3f}",
                    "S_all@5": f"{s.session_recall_all:.3f}",
                    "ev@2000": f"{s.evidence_recall_all[2000]:.3f}",
                },
            )
        )
    head = (
        "| ranker | R_any@10 | R_all@10 | NDCG@10 | S_all@5 | ev@1000 | ev@2000 | "
        "search ms p50 / p95 |\n|---|---|---|---|---|---|---|---|\n"
        "| reference BM25 | 0.634 | 0.531 | | 0.743 | | | |\n"
        "| reference MiniLM dense | 0.543 | 0.434 | | 0.613 | | | |"
    )
    return rows, head + "\n" + "\n".join(tables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = parser.parse_args()
    import tempfile

    n, users, repeat = (5_000, 10, 50) if args.quick else (100_000, 100, 200)
    with tempfile.TemporaryDirectory() as tmp:
        rows = bench_latency(n, users, repeat, Path(tmp))
    print_table(rows)
    loc_rows, table = bench_locomo(args.quick)
    print()
    print(table, flush=True)
    write_json("recall_quick" if args.quick else "recall", rows + loc_rows)


if __name__ == "__main__":
    main()
