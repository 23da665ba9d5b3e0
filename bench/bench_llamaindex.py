"""LlamaIndex memory workload: put messages one by one, then get the view of a long history.

Ours (``TelaMemory`` on a SQLite file) vs LlamaIndex's ``Memory`` (its default
``SQLAlchemyChatStore`` on an aiosqlite file), same token limit, same messages, same run.
``aput`` is timed per message while the history grows; ``aget`` is timed on a history loaded
in one ``aset`` (as ``chat_history=`` does), and the tokens each returns are counted with the
same tiktoken counter: the limit column says whether the view fits.

    python bench/bench_llamaindex.py            # 2,000 puts, 10,000-message history
    python bench/bench_llamaindex.py --quick    # 300 puts, 2,000-message history
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.memory import Memory

from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_llamaindex import TelaMemory, to_core
from tela_memory_llamaindex.memory import default_counter

from harness import Row, measure, print_table, write_json

warnings.filterwarnings("ignore", category=DeprecationWarning)

LIMIT = 8_000
COUNTER = default_counter()


def _msg(i: int) -> ChatMessage:
    role = "user" if i % 2 == 0 else "assistant"
    return ChatMessage(role=role, content=f"message {i}: " + "lorem ipsum dolor sit amet " * 6)


def _tokens(view: list[ChatMessage]) -> int:
    return COUNTER.count_messages([to_core(m) for m in view]) if view else 0


def _timed(
    loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[Any]]
) -> Callable[[], Any]:
    return lambda: loop.run_until_complete(make())


def run(
    impl: str, memory: Any, puts: int, history: int, loop: asyncio.AbstractEventLoop
) -> list[Row]:
    """Measure one memory: ``aput`` while growing to ``puts`` messages, ``aget`` after ``aset``."""
    counter = iter(range(10**9))
    put = measure(_timed(loop, lambda: memory.aput(_msg(next(counter)))), repeat=puts, warmup=0)
    rows = [Row("llamaindex", f"aput x{puts}", impl, put.median, put.p95)]

    loop.run_until_complete(memory.areset())
    loop.run_until_complete(memory.aset([_msg(i) for i in range(history)]))
    view: list[ChatMessage] = []

    async def get() -> None:
        view[:] = await memory.aget()

    got = measure(_timed(loop, get), repeat=5, warmup=1)
    rows.append(
        Row(
            "llamaindex",
            f"aget after aset of {history}",
            impl,
            got.median,
            got.p95,
            {"tokens": _tokens(view), "limit": LIMIT, "fits": _tokens(view) <= LIMIT},
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    args = parser.parse_args()
    puts, history = (300, 2_000) if args.quick else (2_000, 10_000)
    loop = asyncio.new_event_loop()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tela-bench-li-") as tmp:
        folder = Path(tmp)
        with SQLiteStore(folder / "tela.db") as store:
            ours = TelaMemory.from_defaults(
                store, session_id="bench", user_id="bench", token_limit=LIMIT
            )
            rows += run("tela", ours, puts, history, loop)
        peer = Memory.from_defaults(
            session_id="bench",
            token_limit=LIMIT,
            async_database_uri=f"sqlite+aiosqlite:///{folder / 'llamaindex.db'}",
        )
        rows += run("llamaindex Memory", peer, puts, history, loop)
        engine = getattr(peer.sql_store, "_async_engine", None)
        if engine is not None:
            loop.run_until_complete(engine.dispose())
    loop.close()
    order: dict[str, int] = {}
    for r in rows:
        order.setdefault(r.operation, len(order))
    rows.sort(key=lambda r: order[r.operation])
    print_table(rows)
    write_json("llamaindex" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
