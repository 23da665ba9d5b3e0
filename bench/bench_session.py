"""Session workload: what persisting a streamed reply as it grows costs.

A 2,000-chunk reply (4 words a chunk) from an in-process model, consumed four ways in the same
run, each on its own SQLite file:

- ``bare``: the model's stream consumed and assembled, nothing stored (the floor);
- ``tela``: ``Session.stream`` with the default flush policy (first chunk, then every 128
  chunks / 4 KB / 0.25 s), reply marked incomplete until it ends;
- ``every-chunk``: ``Session.stream`` writing after every chunk (what naive streaming
  persistence does);
- ``at-end``: the stream consumed, then the whole reply appended once (what LangChain's
  ``RunnableWithMessageHistory`` and LlamaIndex chat engines do: nothing survives a crash);
- ``tela async``: ``Session.astream`` with the default policy.

    python bench/bench_session.py            # 2,000 chunks, 15 runs
    python bench/bench_session.py --quick    # 2,000 chunks, 5 runs
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from tela_memory import Message
from tela_memory.models import ChatChunk, ChatModel, ChunkAssembler, ToolSpec, Usage
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.sqlite import SQLiteStore

from harness import Row, measure, print_table, write_json

USER = "bench"


class Firehose(ChatModel):
    """Yields ``n`` chunks as fast as it can."""

    def __init__(self, n: int) -> None:
        self.chunks = [ChatChunk(text=f"tok{i} and more words ") for i in range(n)]
        self.chunks.append(ChatChunk(finish_reason="stop", usage=Usage(10, n)))

    def stream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None = None, **_: Any
    ) -> Iterator[ChatChunk]:
        yield from self.chunks

    async def astream(
        self, messages: Sequence[Message], *, tools: Sequence[ToolSpec] | None = None, **_: Any
    ) -> AsyncIterator[ChatChunk]:
        for chunk in self.chunks:
            yield chunk


def run(chunks: int, repeat: int) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="tela-bench-session-"))
    model = Firehose(chunks)
    work = f"stream {chunks} chunks"
    rows: list[Row] = []

    def bare() -> None:
        asm = ChunkAssembler()
        for chunk in model.stream([Message.user("go")]):
            asm.add(chunk)
        asm.result()

    def session_stream(store: SQLiteStore, flush: FlushPolicy) -> None:
        session = Session(store, model, user_id=USER, flush=flush)
        for _ in session.stream("go"):
            pass

    def at_end(store: SQLiteStore) -> None:
        asm = ChunkAssembler()
        for chunk in model.stream([Message.user("go")]):
            asm.add(chunk)
        thread = Session(store, model, user_id=USER).thread_id
        store.append(thread, [Message.user("go"), asm.result().message], user_id=USER)

    stores = {name: SQLiteStore(folder / f"{name}.db") for name in ("tela", "every", "end", "a")}
    for store in stores.values():
        store.append("warm", Message.user("warm"), user_id=USER)

    def tela_async() -> None:
        async def go() -> None:
            session = Session(stores["a"], model, user_id=USER)
            async for _ in session.astream("go"):
                pass

        asyncio.run(go())

    cases = [
        ("tela", lambda: session_stream(stores["tela"], FlushPolicy())),
        ("bare", bare),
        ("every-chunk", lambda: session_stream(stores["every"], FlushPolicy(max_chunks=1))),
        ("at-end", lambda: at_end(stores["end"])),
        ("tela async", tela_async),
    ]
    for impl, fn in cases:
        stats = measure(fn, repeat=repeat, warmup=1)
        rows.append(
            Row(
                work,
                "consume + persist",
                impl,
                stats.median,
                stats.p95,
                extra={"per chunk": f"{stats.median / chunks * 1e6:.1f} us"},
            )
        )
    base = next(r.median_s for r in rows if r.impl == "bare")
    for row in rows:
        row.extra["overhead vs bare"] = f"{(row.median_s - base) * 1e3:+.1f} ms"
    for store in stores.values():
        store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (CI)")
    parser.add_argument("--chunks", type=int, default=2_000)
    args = parser.parse_args()
    rows = run(args.chunks, repeat=5 if args.quick else 15)
    print_table(rows)
    path = write_json("session_quick" if args.quick else "session", rows)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
