"""Recall on Chroma: upsert throughput and filtered search latency, same data, same run.

Ours (``ChromaIndex`` on ``chromadb.EphemeralClient``, the real engine in process, a
collection per user) vs the bare ``chromadb`` calls on the same vectors (the floor: one
collection, ``user_id`` in the metadata, ``upsert`` / ``query(where=...)``, embedding
included on both sides) vs LangChain's Chroma vector store on the same engine (the
``langchain-chroma`` package if installed, else ``langchain_community``'s ``Chroma``, the same
class before it moved). Everyone embeds with the core's deterministic ``HashEmbedder``, so no
model time hides the index. Every search is filtered to one user.

Lexical: Chroma ranks no text, so the bare floor for words is Chroma's own full-text filter on
a dense query (``where_document`` ``$contains`` any query word); ours finds the turns holding
each query word (a metadata word array, ``$contains``) and ranks them by the words' IDF.

    python bench/bench_chroma.py            # 20,000 messages, 100 users
    python bench/bench_chroma.py --quick    # 2,000 messages, 20 users
    python bench/bench_chroma.py --locomo   # LoCoMo dev recall: ChromaIndex vs SQLiteIndex

``--locomo`` runs the project's LoCoMo evaluation (``tela_memory.evaluation``: the same import,
questions and scoring as ``tela-memory eval locomo``) on ``ChromaIndex`` and on the embedded
``SQLiteIndex`` in the same run, one shared MiniLM embedder (cached, so both index the same
vectors), per ranker (``--rankers hybrid,lexical``).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import itertools
import random
import time
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import chromadb
from langchain_core.embeddings import Embeddings

from tela_memory import Message
from tela_memory.evaluation import locomo, runner
from tela_memory.evaluation.runner import Scores
from tela_memory.recall.embedder import Embedder
from tela_memory.recall.index import Index
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.recaller import Recaller
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens.counters import TiktokenCounter
from tela_memory_chroma import ChromaIndex
from tela_memory_chroma import lexical as tela_lexical
from tela_memory_chroma.client import settings

from harness import Row, measure, print_table, write_json

warnings.filterwarnings("ignore")

BATCH = 256
DIM = 64
K = 10
T0 = datetime(2024, 1, 1, tzinfo=UTC)

if importlib.util.find_spec("langchain_chroma") is not None:  # pragma: no cover - not installed
    from langchain_chroma import Chroma as LangChainChroma  # type: ignore[import-not-found]

    PEER = "langchain-chroma"
else:
    from langchain_community.vectorstores import Chroma as LangChainChroma

    PEER = "langchain-community Chroma"


# -- data -------------------------------------------------------------------------------------


def make_messages(n: int, users: int, seed: int = 7) -> list[Message]:
    rnd = random.Random(seed)
    vocab = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "ro", "sa", "te", "vu") for b in range(60)]
    out = []
    for i in range(n):
        user = f"user-{i % users}"
        words = rnd.choices(vocab, k=rnd.randint(6, 30))
        out.append(
            Message(
                role="user" if i % 2 == 0 else "assistant",
                content=" ".join(words),
                user_id=user,
                thread_id=f"{user}-thread-{(i // users) % 5}",
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


class LCHashEmbeddings(Embeddings):
    def __init__(self, emb: HashEmbedder) -> None:
        self.emb = emb

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.emb.embed(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self.emb.embed_query(text).tolist()  # type: ignore[no-any-return]


# -- runs -------------------------------------------------------------------------------------


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def upsert_row(impl: str, n: int, seconds: float) -> Row:
    return Row("upsert", f"index {n} msgs", impl, seconds, extra={"msgs/s": f"{n / seconds:,.0f}"})


def search_row(
    impl: str, label: str, queries: list[tuple[str, str]], fn: Callable[[str, str], Any]
) -> Row:
    cycle = itertools.cycle(queries)

    def one() -> None:
        user, text = next(cycle)
        fn(user, text)

    stats = measure(one, repeat=len(queries), warmup=3)
    return Row("search", label, impl, stats.median, stats.p95)


def _meta(m: Message) -> dict[str, Any]:
    return {"user_id": m.user_id, "thread_id": m.thread_id, "role": m.role.value}


def _fill(idx: Index, messages: list[Message]) -> None:
    for i in range(0, len(messages), BATCH):
        idx.upsert(messages[i : i + BATCH])


def _search(idx: Index, mode: str, user: str, query: str) -> Any:
    return idx.search(query, filter={"user_id": user}, k=K, mode=mode)  # type: ignore[arg-type]


def run(n: int, users: int, nq: int) -> list[Row]:
    messages = make_messages(n, users)
    queries = make_queries(messages, nq)
    embedder = HashEmbedder(DIM)
    client = chromadb.EphemeralClient(settings=settings())
    rows: list[Row] = []

    tela = ChromaIndex(client=client, name=f"b{uuid.uuid4().hex[:8]}", embedder=embedder)
    sqlite = SQLiteIndex(":memory:", embedder=HashEmbedder(DIM))
    warm = Message.user("warm up", user_id="warm", thread_id="warm", created_at=T0)
    for impl, idx in (("tela", tela), ("tela-sqlite", sqlite)):
        idx.upsert(warm)  # creates the catalog / tables: a one-time cost, not throughput
        rows.append(upsert_row(impl, n, _timed(functools.partial(_fill, idx, messages))))
    # a collection per user: a batch of many users' turns is one Chroma call per user in it
    by_user = sorted(messages, key=lambda m: m.user_id or "")
    grouped = ChromaIndex(client=client, name=f"g{uuid.uuid4().hex[:8]}", embedder=embedder)
    grouped.upsert(warm)
    seconds = _timed(functools.partial(_fill, grouped, by_user))
    rows.append(upsert_row("tela, batches of one user", n, seconds))
    grouped.drop()

    bare = client.create_collection(
        f"bare-{uuid.uuid4().hex[:8]}",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
    )

    def bare_add() -> None:
        for i in range(0, n, BATCH):
            batch = messages[i : i + BATCH]
            bare.upsert(
                ids=[m.id for m in batch],
                embeddings=embedder.embed([m.text for m in batch]).tolist(),
                documents=[tela_lexical.document(m.text) for m in batch],
                metadatas=[_meta(m) for m in batch],
            )

    rows.append(upsert_row("chromadb bare", n, _timed(bare_add)))

    # the same bare calls on our layout (a collection per user, one call per user per batch):
    # the floor of our design, so that our layer's own cost shows apart from it
    per_user: dict[str, Any] = {}

    def bare_per_user() -> None:
        for i in range(0, n, BATCH):
            mine: dict[str, list[Message]] = {}
            for m in messages[i : i + BATCH]:
                mine.setdefault(m.user_id or "", []).append(m)
            for user, batch in mine.items():
                if user not in per_user:
                    per_user[user] = client.create_collection(
                        f"bare-{uuid.uuid4().hex[:8]}",
                        embedding_function=None,
                        configuration={"hnsw": {"space": "cosine"}},
                    )
                per_user[user].upsert(
                    ids=[m.id for m in batch],
                    embeddings=embedder.embed([m.text for m in batch]).tolist(),
                    documents=[tela_lexical.document(m.text) for m in batch],
                    metadatas=[_meta(m) for m in batch],
                )

    rows.append(upsert_row("chromadb bare, a collection per user", n, _timed(bare_per_user)))
    for col in per_user.values():
        client.delete_collection(col.name)

    peer = LangChainChroma(
        client=client,
        collection_name=f"lc-{uuid.uuid4().hex[:8]}",
        embedding_function=LCHashEmbeddings(HashEmbedder(DIM)),
        collection_metadata={"hnsw:space": "cosine"},
    )

    def peer_add() -> None:
        for i in range(0, n, BATCH):
            batch = messages[i : i + BATCH]
            peer.add_texts(
                [m.text for m in batch],
                metadatas=[_meta(m) for m in batch],
                ids=[m.id for m in batch],
            )

    rows.append(upsert_row(PEER, n, _timed(peer_add)))

    def bare_dense(user: str, text: str, **extra: Any) -> Any:
        return bare.query(
            query_embeddings=[embedder.embed_query(text).tolist()],
            n_results=K,
            where={"user_id": user},
            include=["documents", "metadatas", "distances"],
            **extra,
        )

    def bare_words(user: str, text: str) -> Any:
        words = tela_lexical.terms(text)
        return bare_dense(user, text, where_document=tela_lexical.contains(words))

    for mode in ("dense", "hybrid", "lexical"):
        label = f"{mode} k={K}, one user"
        for impl, idx in (("tela", tela), ("tela-sqlite", sqlite)):
            rows.append(
                search_row(
                    impl,
                    label,
                    queries,
                    functools.partial(_search, idx, mode),
                )
            )
        if mode == "dense":
            rows.append(search_row("chromadb bare", label, queries, bare_dense))
            rows.append(
                search_row(
                    PEER,
                    label,
                    queries,
                    lambda u, q: peer.similarity_search(q, k=K, filter={"user_id": u}),
                )
            )
        else:
            rows.append(search_row("chromadb bare $contains", label, queries, bare_words))

    # sanity: the same top hit for the same dense query (same embedder, same engine)
    user, text = queries[0]
    ours_top = tela.search(text, filter={"user_id": user}, k=1, mode="dense")[0].text
    theirs = peer.similarity_search(text, k=1, filter={"user_id": user})[0].page_content
    floor = bare_dense(user, text)["metadatas"][0][0]
    assert ours_top == theirs, (ours_top, theirs)
    assert floor is not None
    tela.drop()
    tela.close()
    sqlite.close()
    return rows


# -- LoCoMo ------------------------------------------------------------------------------------

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo-dev.json"


def locomo_scores(
    path: Path, make_index: Callable[[SQLiteStore], Index], ranker: runner.Ranker
) -> Scores:
    """Turn metrics of the LoCoMo questions with the given index (the evaluation runner's own
    import, questions and scoring; it builds a ``SQLiteIndex`` itself, so its loop is here)."""
    conversations = locomo.load(path)
    counter = TiktokenCounter(encoding="cl100k_base")
    rows: list[dict[str, float]] = []
    with SQLiteStore(":memory:") as store:
        index = make_index(store)
        for conv in conversations:
            locomo.import_conversation(store, conv)
        StoreIndexer(store, index, batch_size=512).sync()
        recaller = Recaller(index, counter=counter)
        embedder = index.embedder if ranker != "lexical" else None
        for conv in conversations:
            for q in conv.questions:
                ranked, sessions, budgeted, _, _ = runner._ask(
                    recaller,
                    index,
                    conv,
                    q,
                    ranker,
                    (1000,),
                    embedder,
                )
                rows.append(runner._score(q, ranked, sessions, budgeted, K, 5))
        if isinstance(index, ChromaIndex):
            index.drop()
        index.close()
    return runner._mean(rows, (1000,))


def run_locomo(path: Path, rankers: list[runner.Ranker]) -> None:
    from tela_memory.cli.eval_cmd import make_embedder

    embedder = make_embedder("minilm", None)
    assert embedder is not None
    print(f"# LoCoMo dev ({path.name}), {embedder.model_id}, turn metrics at k={K}\n")
    print("| ranker | index | R_any@10 | R_all@10 | NDCG@10 | S_all@5 | ev@1000 |")
    print("|---|---|---|---|---|---|---|")
    for ranker in rankers:
        emb = embedder if ranker != "lexical" else None

        def sqlite(store: SQLiteStore, emb: Embedder | None = emb) -> Index:
            return SQLiteIndex.for_store(store, embedder=emb, follow=False)

        def chroma(_store: SQLiteStore, emb: Embedder | None = emb) -> Index:
            return ChromaIndex(ephemeral=True, name=f"l{uuid.uuid4().hex[:8]}", embedder=emb)

        for name, make in (("SQLiteIndex", sqlite), ("ChromaIndex", chroma)):
            s = locomo_scores(path, make, ranker)
            print(
                f"| {ranker} | {name} | {s.recall_any:.3f} | {s.recall_all:.3f} | {s.ndcg:.3f} "
                f"| {s.session_recall_all:.3f} | {s.evidence_recall_all[1000]:.3f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--messages", type=int, default=None, help="how many messages")
    parser.add_argument("--locomo", action="store_true", help="LoCoMo dev recall instead")
    parser.add_argument("--rankers", default="hybrid,lexical", help="with --locomo")
    args = parser.parse_args()
    if args.locomo:
        chosen = [r.strip() for r in args.rankers.split(",") if r.strip()]
        wrong = [r for r in chosen if r not in ("hybrid", "lexical", "dense")]
        if wrong:
            parser.error(f"unknown rankers {wrong}: use hybrid, lexical, dense")
        run_locomo(LOCOMO, chosen)
        return
    n, users, nq = (2_000, 20, 30) if args.quick else (20_000, 100, 100)
    if args.messages:
        n = args.messages
    print(f"# recall on Chroma (EphemeralClient): {n} messages, {users} users, {nq} queries\n")
    rows = run(n, users, nq)
    print_table(rows)
    print(
        "\n# our overhead over the bare chromadb calls (vs tela = floor / ours; <1: we cost more)\n"
    )
    floor = (
        "tela",
        "tela, batches of one user",
        "chromadb bare",
        "chromadb bare, a collection per user",
        "chromadb bare $contains",
    )
    print_table([r for r in rows if r.impl in floor])
    write_json("chroma" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
