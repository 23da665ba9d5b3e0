"""LangChain workloads: chat-history appends and reads, and the model's view per new turn.

1. History: a thread of N messages (a tool call and its result every 10 turns), then
   ``add_messages`` of one user + assistant turn, R times, and a read of the whole history.
   Ours (``TelaChatMessageHistory`` on a SQLite file) vs ``langchain_community``'s
   ``SQLChatMessageHistory`` (SQLite file) vs langchain-core's ``InMemoryChatMessageHistory``.
   The ``tool_calls`` column counts the assistant tool calls read back (of those written).
2. View per turn: a history of N messages grows by one turn, then the view sent to the model
   is built under a 4,000-token budget with the same exact counter (tiktoken cl100k_base):
   ours appends the turn to a SQLite store and runs the ``ContextEngine`` (what
   ``TelaContextMiddleware`` does per model call, store I/O included),
   the peer is ``trim_messages(strategy="last", include_system=True)``, which counts the
   whole thread again on every call.

    python bench/bench_langchain.py            # N = 10,000
    python bench/bench_langchain.py --quick    # N = 1,000 (CI)
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tiktoken
from langchain_core.chat_history import BaseChatMessageHistory, InMemoryChatMessageHistory
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    trim_messages,
)
from llama_index.core.utils import get_tokenizer

from tela_memory.context import ContextEngine, ContextPolicy
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.tokens import TiktokenCounter
from tela_memory_langchain import TelaChatMessageHistory, messages_to_core, messages_to_langchain

from harness import Row, measure, print_table, write_json

warnings.filterwarnings("ignore", category=DeprecationWarning)
BUDGET = 4_000
USER = "bench"  # the acting user: the history and the engine read and write only their threads
FILLER = "lorem ipsum dolor sit amet consectetur " * 4


def conversation(n: int, start: int = 0) -> list[BaseMessage]:
    """At least ``n`` messages: user / assistant turns, every 10th with a tool call and result."""
    out: list[BaseMessage] = []
    i = start
    while len(out) < n:
        out.append(HumanMessage(f"question {i}: {FILLER}"))
        if i % 10 == 5:
            call = f"call_{i}"
            out.append(AIMessage("", tool_calls=[{"name": "lookup", "args": {"q": i}, "id": call}]))
            out.append(ToolMessage(f"result {i}", tool_call_id=call))
        out.append(AIMessage(f"answer {i}: {FILLER}"))
        i += 1
    return out  # whole turns: a few more than n when the last turn had a tool call


def _calls(messages: Sequence[BaseMessage]) -> int:
    return sum(len(m.tool_calls) for m in messages if isinstance(m, AIMessage))


def history_rows(
    name: str, make: Callable[[], BaseChatMessageHistory], n: int, r: int
) -> list[Row]:
    history = make()
    seed = conversation(n)
    history.add_messages(seed)
    turns = iter(range(n, n + 10 * r + 100))

    def add() -> None:
        i = next(turns)
        history.add_messages([HumanMessage(f"more {i}: {FILLER}"), AIMessage(f"ok {i}")])

    added = measure(add, repeat=r, warmup=1)
    view: list[BaseMessage] = []

    def read() -> None:
        view[:] = history.messages

    got = measure(read, repeat=max(3, r // 20), warmup=1)
    written = _calls(seed)
    return [
        Row("history", f"add_messages (turn) at {n}", name, added.median, added.p95),
        Row(
            "history",
            f"read {n + 2 * (r + 1)} messages",
            name,
            got.median,
            got.p95,
            {"tool_calls": f"{_calls(view)}/{written}"},
        ),
    ]


def view_rows(n: int, r: int, encoding: Any, tmp: Path) -> list[Row]:
    system = SystemMessage("You are a careful assistant. " * 5)
    lc_history: list[BaseMessage] = [system, *conversation(n)]
    policy = ContextPolicy(BUDGET, counter=TiktokenCounter(encoding="cl100k_base"))
    store = SQLiteStore(tmp / "view.db")
    user = store.for_user(USER)
    user.append("bench", messages_to_core(lc_history))
    engine = ContextEngine(store, policy)
    engine.build(
        "bench", user_id=USER
    )  # the first build of a long history (then the per-turn cost)
    tokens: dict[str, int] = {}
    turn = iter(range(n, n + 10 * r + 100))

    def ours() -> None:  # what TelaContextMiddleware does per model call, store I/O included
        i = next(turn)
        new = [HumanMessage(f"new {i}: {FILLER}"), AIMessage(f"reply {i}")]
        user.append("bench", messages_to_core(new))
        ctx = engine.build("bench", user_id=USER, query=f"new {i}")
        view = messages_to_langchain(ctx.messages)
        tokens["tela"] = ctx.report.tokens_out
        tokens["tela_n"] = len(view)

    def count(message: BaseMessage) -> int:
        return len(encoding.encode(message.text)) + 4

    def count_all(messages: list[BaseMessage]) -> int:  # an exact counter, as LangChain takes it
        return sum(count(m) for m in messages)

    def theirs() -> None:
        i = next(turn)
        lc_history.extend([HumanMessage(f"new {i}: {FILLER}"), AIMessage(f"reply {i}")])
        view = trim_messages(
            lc_history,
            max_tokens=BUDGET,
            token_counter=count_all,
            strategy="last",
            include_system=True,
            start_on="human",
        )
        tokens["trim"] = sum(count(m) for m in view)
        tokens["trim_n"] = len(view)

    mine = measure(ours, repeat=r, warmup=1)
    peer = measure(theirs, repeat=max(3, r // 10), warmup=1)
    store.close()
    op = f"view of a new turn at {n}"
    return [
        Row(
            "view",
            op,
            "tela",
            mine.median,
            mine.p95,
            {"messages": tokens["tela_n"], "tokens": tokens["tela"]},
        ),
        Row(
            "view",
            op,
            "trim_messages",
            peer.median,
            peer.p95,
            {"messages": tokens["trim_n"], "tokens": tokens["trim"]},
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    args = parser.parse_args()
    n, r = (1_000, 30) if args.quick else (10_000, 100)
    get_tokenizer()  # points tiktoken at llama-index-core's bundled encodings (offline)
    encoding = tiktoken.get_encoding("cl100k_base")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "tela.db")
        rows += history_rows(
            "tela", lambda: TelaChatMessageHistory("t", store=store, user_id=USER), n, r
        )
        from langchain_community.chat_message_histories import SQLChatMessageHistory

        url = f"sqlite:///{Path(tmp) / 'community.db'}"
        rows += history_rows(
            "SQLChatMessageHistory",
            lambda: SQLChatMessageHistory(session_id="t", connection=url),
            n,
            r,
        )
        rows += history_rows("InMemoryChatMessageHistory", InMemoryChatMessageHistory, n, r)
        store.close()
        rows += view_rows(n, r, encoding, Path(tmp))
    print_table(rows)
    print(f"results: {write_json('langchain_quick' if args.quick else 'langchain', rows)}")


if __name__ == "__main__":
    main()
