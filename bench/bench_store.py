"""Store workload: append one by one, read the last 50 of a long thread, fork at the middle,
read 10,000 events of the change feed.

Ours (SQLite file) vs LangChain's ``SQLChatMessageHistory`` (langchain-community) and
LlamaIndex's ``SQLAlchemyChatStore`` (the default store of its ``Memory``), each on its own
SQLite file in the same temporary folder, in the same run. Peers have no fork: their fork is
what a user must do instead (read the thread, write the first half under a new key). Peers
have no change feed: its floor is a bare ``SELECT`` of the same 10,000 rows of the same table
(no ``Change`` objects), in the same run; the in-memory store is shown beside it.

    python bench/bench_store.py            # 10,000 appends, 100,000-message thread
    python bench/bench_store.py --quick    # 1,000 appends, 10,000-message thread
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

from tela_memory import Message
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore

from harness import Row, Stats, measure, print_table, write_json

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*sunset.*")

BATCH = 1_000


def _text(i: int) -> str:
    return f"message {i}: " + "lorem ipsum dolor sit amet " * (1 + i % 7)


def _time_once(fn: Callable[[], object]) -> float:
    return measure(fn, repeat=1, warmup=0).median


# -- ours ---------------------------------------------------------------------------------


def tela_rows(folder: Path, appends: int, long_n: int, short_n: int) -> list[Row]:
    rows: list[Row] = []
    backend = SQLiteStore(folder / "tela.db")
    store = backend.for_user("bench")  # what applications and adapters hold
    store.append("warm", Message.user("x"))

    counter = iter(range(10**9))
    stats = measure(
        lambda: store.append("appends", Message.user(_text(next(counter)))),
        repeat=appends,
        warmup=0,
    )
    rows.append(
        Row(
            "store",
            f"append x{appends}",
            "tela",
            stats.median,
            stats.p95,
            {"msg/s": round(1 / stats.median)},
        )
    )

    async def async_appends() -> Stats:
        samples = []
        loop = asyncio.get_running_loop()
        for i in range(min(appends, 2_000)):
            start = loop.time()
            await store.aappend("async-appends", Message.user(_text(i)))
            samples.append(loop.time() - start)
        return Stats(samples)

    stats = asyncio.run(async_appends())
    rows.append(
        Row(
            "store",
            f"append x{appends}",
            "tela (async)",
            stats.median,
            stats.p95,
            {"msg/s": round(1 / stats.median)},
        )
    )

    feed_start = backend.changes(limit=1).cursor  # before the long thread's 10,000+ appends
    for name, n in (("long", long_n), ("short", short_n)):
        for start in range(0, n, BATCH):
            store.append(
                name, [Message.user(_text(i)) for i in range(start, min(n, start + BATCH))]
            )
    rows += feed_rows(backend, feed_start)
    for name, n in (("long", long_n), ("short", short_n)):
        stats = measure(lambda name=name: store.read(name, last=50), repeat=200)  # type: ignore[misc]
        rows.append(Row("store", f"read last 50 of {n:,}", "tela", stats.median, stats.p95))
    middle = store.read("long", last=long_n // 2)[0].id
    names = iter(range(10**9))
    stats = measure(lambda: store.fork("long", middle, name=f"f{next(names)}"), repeat=200)
    rows.append(Row("store", f"fork at middle of {long_n:,}", "tela", stats.median, stats.p95))
    short_middle = store.read("short", last=short_n // 2)[0].id
    stats = measure(lambda: store.fork("short", short_middle, name=f"s{next(names)}"), repeat=200)
    rows.append(
        Row(
            "store",
            f"fork at middle of {short_n:,}",
            "tela",
            stats.median,
            stats.p95,
            {"note": "(short thread, same cost)"},
        )
    )
    backend.close()
    return rows


FEED = 10_000


def feed_rows(backend: SQLiteStore, start: str) -> list[Row]:
    """``changes(limit=10_000)`` against a bare SELECT of the same rows (the floor)."""
    op = f"change feed read of {FEED:,} events"
    batch = backend.changes(start, limit=FEED)
    assert len(batch.changes) == FEED, "the feed holds fewer events than the bench reads"
    stats = measure(lambda: backend.changes(start, limit=FEED), repeat=20)
    rows = [Row("store", op, "tela", stats.median, stats.p95, {"target": "< 50 ms"})]
    conn = backend.connection()
    after = int(start.rpartition(":")[2])
    sql = (
        "SELECT id, kind, user_id, thread_id, message_id, at FROM changes"
        " WHERE id > ? ORDER BY id LIMIT ?"
    )
    stats = measure(lambda: conn.execute(sql, (after, FEED)).fetchall(), repeat=20)
    rows.append(Row("store", op, "floor: bare SELECT, same table", stats.median, stats.p95))
    memory = InMemoryStore()
    for i in range(0, FEED, BATCH):
        memory.append("feed", [Message.user(_text(j)) for j in range(i, i + BATCH)], user_id="b")
    stats = measure(lambda: memory.changes(limit=FEED), repeat=20)
    rows.append(Row("store", op, "tela (in-memory store)", stats.median, stats.p95))
    return rows


# -- LangChain SQLChatMessageHistory -------------------------------------------------------


def langchain_rows(folder: Path, appends: int, long_n: int, short_n: int) -> list[Row]:
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import HumanMessage

    url = f"sqlite:///{folder / 'langchain.db'}"
    impl = "langchain SQLChatMessageHistory"

    def history(session: str) -> SQLChatMessageHistory:
        return SQLChatMessageHistory(session_id=session, connection=url)

    rows: list[Row] = []
    appender = history("appends")
    counter = iter(range(10**9))
    stats = measure(
        lambda: appender.add_message(HumanMessage(_text(next(counter)))), repeat=appends, warmup=1
    )
    rows.append(
        Row(
            "store",
            f"append x{appends}",
            impl,
            stats.median,
            stats.p95,
            {"msg/s": round(1 / stats.median)},
        )
    )
    for name, n in (("long", long_n), ("short", short_n)):
        h = history(name)
        for start in range(0, n, BATCH):
            h.add_messages([HumanMessage(_text(i)) for i in range(start, min(n, start + BATCH))])
    for name, n in (("long", long_n), ("short", short_n)):
        h = history(name)
        reps = 3 if n > 20_000 else 20
        stats = measure(lambda h=h: h.messages[-50:], repeat=reps)  # type: ignore[misc]
        rows.append(Row("store", f"read last 50 of {n:,}", impl, stats.median, stats.p95))
    src = history("long")
    forks = iter(range(10**9))

    def copy_fork() -> None:
        half = src.messages[: long_n // 2]
        history(f"fork{next(forks)}").add_messages(half)

    rows.append(
        Row(
            "store",
            f"fork at middle of {long_n:,}",
            impl,
            _time_once(copy_fork),
            None,
            {"note": "copy (no fork)"},
        )
    )
    return rows


# -- LlamaIndex SQLAlchemyChatStore ---------------------------------------------------------


def llamaindex_rows(folder: Path, appends: int, long_n: int, short_n: int) -> list[Row]:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.storage.chat_store.sql import SQLAlchemyChatStore

    impl = "llamaindex SQLAlchemyChatStore"

    async def run() -> list[Row]:
        store = SQLAlchemyChatStore(
            table_name="messages", async_database_uri=f"sqlite+aiosqlite:///{folder / 'li.db'}"
        )
        rows: list[Row] = []
        loop = asyncio.get_running_loop()
        await store.add_message("warm", ChatMessage(role="user", content="x"))
        samples = []
        for i in range(appends):
            start = loop.time()
            await store.add_message("appends", ChatMessage(role="user", content=_text(i)))
            samples.append(loop.time() - start)
        stats = Stats(samples)
        rows.append(
            Row(
                "store",
                f"append x{appends}",
                impl,
                stats.median,
                stats.p95,
                {"msg/s": round(1 / stats.median)},
            )
        )
        for name, n in (("long", long_n), ("short", short_n)):
            for start in range(0, n, BATCH):
                batch = [
                    ChatMessage(role="user", content=_text(i))
                    for i in range(start, min(n, start + BATCH))
                ]
                await store.add_messages(name, batch)
        for name, n in (("long", long_n), ("short", short_n)):
            samples = []
            for _ in range(20):
                start = loop.time()
                total = await store.count_messages(name)
                await store.get_messages(name, offset=max(0, total - 50), limit=50)
                samples.append(loop.time() - start)
            stats = Stats(samples)
            rows.append(Row("store", f"read last 50 of {n:,}", impl, stats.median, stats.p95))
        start = loop.time()
        half = await store.get_messages("long", limit=long_n // 2)
        await store.add_messages("fork", half)
        rows.append(
            Row(
                "store",
                f"fork at middle of {long_n:,}",
                impl,
                loop.time() - start,
                None,
                {"note": "copy (no fork)"},
            )
        )
        return rows

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    args = parser.parse_args()
    appends, long_n, short_n = (1_000, 10_000, 1_000) if args.quick else (10_000, 100_000, 1_000)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tela-bench-") as tmp:
        folder = Path(tmp)
        rows += tela_rows(folder, appends, long_n, short_n)
        rows += langchain_rows(folder, appends, long_n, short_n)
        rows += llamaindex_rows(folder, appends, long_n, short_n)
    order: dict[str, int] = {}
    for r in rows:
        order.setdefault(r.operation, len(order))
    rows.sort(key=lambda r: order[r.operation])
    print_table(rows)
    write_json("store" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
