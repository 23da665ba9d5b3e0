"""Recall on Qdrant: upsert throughput and filtered search latency, same data, same run.

Ours (``QdrantIndex`` on qdrant-client's local mode, in memory; ``QdrantEdgeIndex`` on Qdrant
Edge, the engine embedded, in a temporary folder) vs the embedded default (``SQLiteIndex``, in
memory) vs LangChain's ``QdrantVectorStore`` (langchain-qdrant) on the same
local-mode engine, every one embedding with the core's deterministic ``HashEmbedder`` (so no
model time hides the index). The peer's hybrid mode gets our BM25 sparse vectors through its
``SparseEmbeddings`` interface (its usual FastEmbed sparse model needs a download). Every search
is filtered to one user, as a multi-user application must.

No Qdrant server runs on this machine: local mode is qdrant-client's pure-Python engine (exact
search over numpy), so these are figures for the embedded use, not for a Qdrant server.

    python bench/bench_qdrant.py            # 20,000 messages, 100 users
    python bench/bench_qdrant.py --quick    # 2,000 messages, 20 users
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from langchain_core.embeddings import Embeddings
from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
from qdrant_client import QdrantClient, models

from tela_memory import Message
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_qdrant import QdrantEdgeIndex, QdrantIndex
from tela_memory_qdrant import sparse as tela_sparse

from harness import Row, measure, print_table, write_json

warnings.filterwarnings("ignore", category=UserWarning)

BATCH = 256
DIM = 64
K = 10
T0 = datetime(2024, 1, 1, tzinfo=UTC)


# -- data -------------------------------------------------------------------------------------


def make_messages(n: int, users: int, seed: int = 7) -> list[Message]:
    rnd = random.Random(seed)
    vocab = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "ro", "sa", "te", "vu") for b in range(60)]
    out = []
    for i in range(n):
        user = f"user-{i % users}"
        thread = f"{user}-thread-{(i // users) % 5}"
        words = rnd.choices(vocab, k=rnd.randint(6, 30))
        out.append(
            Message(
                role="user" if i % 2 == 0 else "assistant",
                content=" ".join(words),
                user_id=user,
                thread_id=thread,
                created_at=T0 + timedelta(minutes=i),
            )
        )
    return out


def make_queries(messages: list[Message], count: int, seed: int = 11) -> list[tuple[str, str]]:
    """(user, query) pairs: three words of one of that user's turns."""
    rnd = random.Random(seed)
    out = []
    for m in rnd.sample(messages, count):
        words = m.text.split()
        out.append((m.user_id or "", " ".join(rnd.sample(words, min(3, len(words))))))
    return out


# -- LangChain adapters for the same embedder ------------------------------------------------


class LCHashEmbeddings(Embeddings):
    def __init__(self, emb: HashEmbedder) -> None:
        self.emb = emb

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.emb.embed(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.emb.embed_query(text).tolist()  # type: ignore[no-any-return]


class LCBm25Sparse(SparseEmbeddings):
    """Our BM25 term weights, handed to langchain-qdrant's hybrid mode."""

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [self._one(tela_sparse.document_vector(t)) for t in texts]

    def embed_query(self, text: str) -> SparseVector:
        return self._one(tela_sparse.query_vector(text))

    @staticmethod
    def _one(v: models.SparseVector | None) -> SparseVector:
        if v is None:
            return SparseVector(indices=[], values=[])
        return SparseVector(indices=list(v.indices), values=list(v.values))


def langchain_store(hybrid: bool) -> QdrantVectorStore:
    client = QdrantClient(location=":memory:")
    name = f"lc-{uuid.uuid4().hex[:8]}"
    client.create_collection(
        name,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
        sparse_vectors_config={"sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    return QdrantVectorStore(
        client,
        name,
        embedding=LCHashEmbeddings(HashEmbedder(DIM)),
        retrieval_mode=RetrievalMode.HYBRID if hybrid else RetrievalMode.DENSE,
        vector_name="dense",
        sparse_embedding=LCBm25Sparse(),
        sparse_vector_name="sparse",
    )


def lc_user_filter(user: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key="metadata.user_id", match=models.MatchValue(value=user))]
    )


# -- runs -------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def upsert_row(impl: str, n: int, seconds: float) -> Row:
    return Row("upsert", f"index {n} msgs", impl, seconds, extra={"msgs/s": f"{n / seconds:,.0f}"})


def search_rows(
    impl: str, label: str, queries: list[tuple[str, str]], fn: Callable[[str, str], Any]
) -> Row:
    cycle = itertools.cycle(queries)

    def one() -> None:
        user, text = next(cycle)
        fn(user, text)

    stats = measure(one, repeat=len(queries), warmup=3)
    return Row("search", label, impl, stats.median, stats.p95)


def run(n: int, users: int, nq: int, folder: str) -> list[Row]:
    messages = make_messages(n, users)
    queries = make_queries(messages, nq)
    rows: list[Row] = []

    tela = QdrantIndex(location=":memory:", embedder=HashEmbedder(DIM))
    tela_engine = QdrantIndex(location=":memory:", embedder=HashEmbedder(DIM), fusion="qdrant")
    sqlite = SQLiteIndex(":memory:", embedder=HashEmbedder(DIM))
    edge = QdrantEdgeIndex(f"{folder}/edge", embedder=HashEmbedder(DIM))
    ours: tuple[tuple[str, Any], ...] = (
        ("tela", tela),
        ("tela-edge", edge),
        ("tela-sqlite", sqlite),
    )
    warm = Message.user("warm up", user_id="warm", thread_id="warm", created_at=T0)
    for impl, idx in ours:
        idx.upsert(warm)  # creates the collection / shard: a one-time cost, not throughput
        seconds = _timed(
            lambda idx=idx: [idx.upsert(messages[i : i + BATCH]) for i in range(0, n, BATCH)]
        )
        rows.append(upsert_row(impl, n, seconds))
    for i in range(0, n, BATCH):
        tela_engine.upsert(messages[i : i + BATCH])

    lc_dense, lc_hybrid = langchain_store(False), langchain_store(True)
    for impl, store in (("langchain-qdrant", lc_dense), ("langchain-qdrant hybrid", lc_hybrid)):

        def add(store: QdrantVectorStore = store) -> None:
            for i in range(0, n, BATCH):
                batch = messages[i : i + BATCH]
                store.add_texts(
                    [m.text for m in batch],
                    metadatas=[
                        {"user_id": m.user_id, "thread_id": m.thread_id, "role": m.role.value}
                        for m in batch
                    ],
                    ids=[str(uuid.uuid5(uuid.NAMESPACE_URL, m.id)) for m in batch],
                )

        rows.append(upsert_row(impl, n, _timed(add)))

    for mode in ("dense", "hybrid", "lexical"):
        label = f"{mode} k={K}, one user"
        for impl, idx in ours:
            rows.append(
                search_rows(
                    impl,
                    label,
                    queries,
                    lambda u, q, idx=idx, mode=mode: idx.search(
                        q, filter={"user_id": u}, k=K, mode=mode
                    ),
                )
            )
        if mode == "hybrid":
            rows.append(
                search_rows(
                    "tela fusion=qdrant",
                    label,
                    queries,
                    lambda u, q: tela_engine.search(q, filter={"user_id": u}, k=K),
                )
            )
        if mode != "lexical":
            store = lc_dense if mode == "dense" else lc_hybrid
            rows.append(
                search_rows(
                    "langchain-qdrant",
                    label,
                    queries,
                    lambda u, q, store=store: store.similarity_search(
                        q, k=K, filter=lc_user_filter(u)
                    ),
                )
            )

    # sanity: the same top hit for the same dense query (same embedder, same engine)
    user, text = queries[0]
    ours_top = tela.search(text, filter={"user_id": user}, k=1, mode="dense")[0].text
    theirs = lc_dense.similarity_search(text, k=1, filter=lc_user_filter(user))[0].page_content
    assert ours_top == theirs, (ours_top, theirs)

    assert edge.search(text, filter={"user_id": user}, k=1, mode="dense")[0].text == ours_top
    for idx in (tela, tela_engine, sqlite, edge):
        idx.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    args = parser.parse_args()
    n, users, nq = (2_000, 20, 30) if args.quick else (20_000, 100, 100)
    print(f"# recall on Qdrant local mode: {n} messages, {users} users, {nq} queries\n")
    with tempfile.TemporaryDirectory() as folder:
        rows = run(n, users, nq, folder)
    print_table(rows)
    print("\n# the embedded engines: Qdrant Edge vs the SQLite index (vs tela = vs tela-edge)\n")
    print_table([r for r in rows if r.impl in ("tela-edge", "tela-sqlite")], ours="tela-edge")
    write_json("qdrant" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
