"""PostgreSQL store workload: append one message, read the newest 50 of a 100,000-message
thread and of a 1,000-message one.

Ours (``PostgresStore``) against the bare SQL floor through psycopg on the same server in the
same run: a flat table (``session, seq, message json``) with one ``INSERT`` per append and
``ORDER BY seq DESC LIMIT 50`` + ``json.loads`` per read (what a minimal chat history does,
with no branches, ownership, feed or validation), and our own statements through bare
psycopg (the append's pipelined transaction with no validation or ``Message``; the read's
recursive walk returning rows only): the overhead of our layer is the ratio to the latter.
Peers (reported as "not installed" until they are bench dependencies): langchain-postgres
``PostgresChatMessageHistory`` and LlamaIndex ``PostgresChatStore``; they are not
dependencies of this project, and a peer that is not installed is reported as such.
Operations take turns (message k by every implementation before k+1), so drift of this
shared machine hits all alike.

    python bench/bench_postgres.py            # 2,000 appends, reads repeated 300 times
    python bench/bench_postgres.py --quick    # 300 appends, reads repeated 60 times

``TELA_PG_URL`` picks the server (default ``postgresql://postgres@127.0.0.1:5432/test``); the
tables go into a schema of their own, dropped at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from tela_memory import Message
from tela_memory_postgres import PostgresStore
from tela_memory_postgres._sql import STORE, compose

from harness import Row, Stats, print_table, write_json

URL = os.environ.get("TELA_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
LONG, SHORT, WINDOW = 100_000, 1_000, 50
FILL_BATCH = 2_000
PEERS = {
    "langchain-postgres PostgresChatMessageHistory": "langchain_postgres",
    "llama-index PostgresChatStore": "llama_index.storage.chat_store.postgres",
}


def _text(i: int) -> str:
    return f"message {i}: " + "lorem ipsum dolor sit amet " * (1 + i % 7)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class Floor:
    """The bare SQL through psycopg: a flat table, one connection, autocommit."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], schema: str) -> None:
        self.conn = conn
        self.table = sql.Identifier(schema, "floor_messages")
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                " session text NOT NULL, message json NOT NULL)"
            ).format(self.table)
        )
        conn.execute(sql.SQL("CREATE INDEX ON {} (session, seq)").format(self.table))
        self.insert = sql.SQL("INSERT INTO {} (session, message) VALUES (%s, %s::json)").format(
            self.table
        )
        self.newest = sql.SQL(
            "SELECT message::text FROM {} WHERE session = %s ORDER BY seq DESC LIMIT %s"
        ).format(self.table)

    def fill(self, session: str, n: int) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                self.insert,
                [(session, json.dumps({"role": "user", "content": _text(i)})) for i in range(n)],
            )

    def append(self, session: str, i: int) -> None:
        self.conn.execute(self.insert, (session, json.dumps({"role": "user", "content": _text(i)})))

    def read(self, session: str) -> list[object]:
        rows = self.conn.execute(self.newest, (session, WINDOW)).fetchall()
        return [json.loads(r[0]) for r in reversed(rows)]


class BareAppend:
    """Our append's statements (lock, head, one insert of message + event + head + thread)
    in one pipelined transaction through bare psycopg: no validation, no ``Message``."""

    def __init__(self, url: str, schema: str, thread: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.lock = compose(STORE["lock_head"], schema)
        self.insert = compose(STORE["insert_messages"], schema)
        self.thread = thread

    def append(self, i: int) -> None:
        conn = self.conn
        with conn.pipeline(), conn.transaction():
            ((_, head, depth),) = conn.execute(self.lock, (None, "bench", self.thread)).fetchall()
            mid = str(uuid.uuid4())
            conn.execute(
                self.insert,
                {
                    "ids": [mid], "parents": [head], "depths": [depth + 1], "roles": ["user"],
                    "names": [None], "contents": [json.dumps([{"type": "text", "text": _text(i)}])],
                    "metas": ["{}"], "times": [datetime.now(UTC)], "user": "bench",
                    "thread": self.thread, "head": mid, "head_depth": depth + 1, "branch": "main",
                },
            )  # fmt: skip


def _fill(store: PostgresStore, thread: str, n: int) -> None:
    for start in range(0, n, FILL_BATCH):
        batch = [Message.user(_text(i)) for i in range(start, min(n, start + FILL_BATCH))]
        store.append(thread, batch, user_id="bench")


def _turns(impls: dict[str, Callable[[int], object]], times: int) -> dict[str, Stats]:
    samples: dict[str, list[float]] = {name: [] for name in impls}
    for fn in impls.values():  # warm up (prepared statements, caches)
        for i in range(3):
            fn(-1 - i)
    for i in range(times):
        for name, fn in impls.items():
            start = time.perf_counter()
            fn(i)
            samples[name].append(time.perf_counter() - start)
    return {name: Stats(s) for name, s in samples.items()}


def run(appends: int, reads: int) -> list[Row]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(URL, autocommit=True)
    rows: list[Row] = []
    try:
        store = PostgresStore(URL, schema=schema, pool_size=2)
        store.migrate()
        floor = Floor(admin, schema)
        walk = compose(STORE["chain"], schema)

        started = time.perf_counter()
        _fill(store, "long", LONG)
        _fill(store, "short", SHORT)
        floor.fill("long", LONG)
        floor.fill("short", SHORT)
        print(f"filled {LONG:,} + {SHORT:,} messages each in {time.perf_counter() - started:.1f} s")
        heads = {t: store.read(t, user_id="bench", last=1)[0].id for t in ("long", "short")}

        store.append("bare-appends", Message.user("first"), user_id="bench")
        bare = BareAppend(URL, schema, "bare-appends")
        appended = _turns(
            {
                "tela": lambda i: store.append("appends", Message.user(_text(i)), user_id="bench"),
                "floor: our statements, bare psycopg": bare.append,
                "floor: bare INSERT (flat table)": lambda i: floor.append("appends", i),
            },
            appends,
        )
        bare.conn.close()
        for impl, stats in appended.items():
            rows.append(Row("postgres", "append one message", impl, stats.median, stats.p95))

        def bare_walk(thread: str) -> Callable[[int], object]:
            params = {"start": heads[thread], "limit": WINDOW, "since": _DAWN}
            return lambda i: admin.execute(walk, params).fetchall()

        impls: dict[str, Callable[[int], object]] = {}
        for thread, size in (("long", LONG), ("short", SHORT)):  # all in turns, both sizes
            impls[f"{size}|tela"] = lambda i, t=thread: store.read(t, user_id="bench", last=WINDOW)
            impls[f"{size}|floor: bare SELECT ... LIMIT 50 + json.loads"] = lambda i, t=thread: (
                floor.read(t)
            )
            impls[f"{size}|floor: our recursive walk, rows only"] = bare_walk(thread)
        for key, stats in _turns(impls, reads).items():
            size_text, impl = key.split("|", 1)
            rows.append(
                Row("postgres", f"newest 50 of {int(size_text):,}", impl, stats.median, stats.p95)
            )
        for name, module in PEERS.items():
            if not _installed(module):
                rows.append(Row("postgres", "append / newest 50", name, float("nan"),
                                extra={"note": f"not installed ({module})"}))  # fmt: skip
        store.close()
    finally:
        admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        admin.close()
    return rows


_DAWN = datetime(1, 1, 1, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI)")
    args = parser.parse_args()
    appends, reads = (300, 60) if args.quick else (2_000, 300)
    rows = run(appends, reads)
    print_table([r for r in rows if r.median_s == r.median_s])
    for r in rows:
        if r.median_s != r.median_s:
            print(f"{r.impl}: {r.extra['note']}; not measured")
    ours = {r.operation: r.median_s for r in rows if r.impl == "tela"}
    ratio = ours[f"newest 50 of {LONG:,}"] / ours[f"newest 50 of {SHORT:,}"]
    print(f"tela newest 50 of {LONG:,} / of {SHORT:,}: {ratio:.2f}x (target: within 2x)")
    write_json("postgres" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
