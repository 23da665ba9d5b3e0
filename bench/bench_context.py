"""Context under a hard budget: Tela Memory vs LangChain trim_messages vs LlamaIndex Memory.

Threads of 1,000 and 10,000 messages (mixed lengths, a tool call every 10 turns), budget 8,000,
the same tiktoken encoding (o200k_base) and the same OpenAI framing for everyone:

* ``tela``: ``ContextPolicy(8000).build`` cold (fresh count cache), cold with the extractive
  summariser, and the incremental case (one new message, rebuild) with a ``ContextBuilder``.
* ``lc-trim``: ``langchain_core.messages.trim_messages(strategy="last", include_system=True)``
  with a tiktoken token counter (cold = incremental: it keeps no state).
* ``li-memory``: ``llama_index.core.memory.Memory`` (``token_limit=8000``, tiktoken
  tokenizer): ``aget()``, and ``aput`` of one message + ``aget()``.
* ``encode-window``: encoding the kept window once (the floor for a cold build).

Every output is checked for invariant violations (a tool call without all its results or a
result without its call, tokens over the budget by our counter, the newest user message
missing), also across a budget sweep on the 1,000-message thread. The generated threads are
moved out of the garbage collector's reach (``gc.freeze``) before timing, for every peer alike.

Run: ``TIKTOKEN_CACHE_DIR=<dir with o200k_base> .venv/bin/python bench/bench_context.py
[--quick]`` (the script finds llama-index-core's bundled encodings when the variable is unset).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

if not os.environ.get("TIKTOKEN_CACHE_DIR"):
    _cache = Path(sysconfig.get_paths()["purelib"]) / "llama_index/core/_static/tiktoken_cache"
    if _cache.is_dir():
        os.environ["TIKTOKEN_CACHE_DIR"] = str(_cache)

import tiktoken

from tela_memory import Message, Role, ToolCallBlock
from tela_memory.context import ContextPolicy, Summary
from tela_memory.tokens import TiktokenCounter, tool_call_wire

from harness import Row, measure, print_table, write_json

BUDGET = 8_000
ENC = tiktoken.get_encoding("o200k_base")
WORDS = tuple(
    [
        "the",
        "model",
        "keeps",
        "context",
        "within",
        "a",
        "budget",
        "while",
        "tools",
        "return",
        "data",
        "about",
        "orders",
        "shipping",
        "invoices",
        "customers",
        "weather",
        "flights",
        "hotels",
        "code",
        "tests",
        "errors",
        "logs",
        "metrics",
        "users",
    ]
)


def make_thread(n: int, seed: int = 7) -> list[Message]:
    """``n`` messages: a system prompt, turns of mixed lengths, a tool call every 10 turns."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        size = rng.randint(lo, hi) if rng.random() > 0.05 else rng.randint(hi, hi * 4)
        return " ".join(rng.choice(WORDS) for _ in range(size)) + "."

    out = [Message.system("You are a helpful assistant. " + text(20, 60))]
    turn = 0
    while len(out) < n:
        out.append(Message.user(text(5, 120)))
        if turn % 10 == 9:
            calls = [
                ToolCallBlock(id=f"call-{turn}-{k}", name="lookup", arguments={"q": text(2, 6)})
                for k in range(rng.choice([1, 1, 2]))
            ]
            out.append(Message.assistant("", tool_calls=calls))
            out.extend(Message.tool(c.id, text(20, 300)) for c in calls)
        out.append(Message.assistant(text(10, 250)))
        turn += 1
    return out[:n]


# -- violations -----------------------------------------------------------------------------


def violations(sent: Sequence[Message], history: Sequence[Message], budget: int) -> dict[str, int]:
    """Tool pairs split, tokens over budget, newest user message missing."""
    counter = TiktokenCounter(encoding="o200k_base")
    split = 0
    open_calls: set[str] = set()
    for m in sent:
        if m.role is Role.TOOL:
            for r in m.tool_results:
                if r.tool_call_id in open_calls:
                    open_calls.discard(r.tool_call_id)
                else:
                    split += 1
            continue
        split += len(open_calls)
        open_calls = {c.id for c in m.tool_calls}
    split += len(open_calls)
    over = max(0, counter.count_messages(sent) - budget)
    users = [m for m in history if m.role is Role.USER]
    missing = int(bool(users) and users[-1].id not in {m.id for m in sent})
    return {"split": split, "over": int(over > 0), "over_by": over, "no_user": missing}


# -- LangChain ------------------------------------------------------------------------------


def to_langchain(history: Sequence[Message]) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    out: list[Any] = []
    for m in history:
        if m.role is Role.SYSTEM:
            out.append(SystemMessage(m.text, id=m.id))
        elif m.role is Role.USER:
            out.append(HumanMessage(m.text, id=m.id))
        elif m.role is Role.TOOL:
            out.append(ToolMessage(m.text, tool_call_id=m.tool_results[0].tool_call_id, id=m.id))
        else:
            calls = [
                {"id": c.id, "name": c.name, "args": c.arguments, "type": "tool_call"}
                for c in m.tool_calls
            ]
            out.append(AIMessage(m.text, tool_calls=calls, id=m.id))
    return out


_LC_ROLE = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def lc_counter(messages: Sequence[Any]) -> int:
    """OpenAI framing with tiktoken, as our counter does (the same rule for everyone)."""
    total = 3
    for m in messages:
        total += 3 + len(ENC.encode_ordinary(_LC_ROLE[m.type]))
        total += len(ENC.encode_ordinary(m.content if isinstance(m.content, str) else ""))
        for c in getattr(m, "tool_calls", None) or []:
            block = ToolCallBlock(id=c["id"], name=c["name"], arguments=c["args"])
            total += len(ENC.encode_ordinary(tool_call_wire(block)))
        if m.type == "tool":
            total += len(ENC.encode_ordinary(m.tool_call_id))
    return total


def lc_trim(lc_messages: list[Any], budget: int) -> list[Any]:
    from langchain_core.messages import trim_messages

    return trim_messages(
        lc_messages,
        max_tokens=budget,
        token_counter=lc_counter,
        strategy="last",
        include_system=True,
    )


# -- LlamaIndex -----------------------------------------------------------------------------


def to_llamaindex(history: Sequence[Message]) -> list[Any]:
    from llama_index.core.llms import ChatMessage, MessageRole

    roles = {
        Role.SYSTEM: MessageRole.SYSTEM,
        Role.USER: MessageRole.USER,
        Role.ASSISTANT: MessageRole.ASSISTANT,
        Role.TOOL: MessageRole.TOOL,
    }
    out = []
    for m in history:
        extra: dict[str, Any] = {"tela_id": m.id}
        if m.tool_calls:
            extra["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in m.tool_calls
            ]
        if m.role is Role.TOOL:
            extra["tool_call_id"] = m.tool_results[0].tool_call_id
        out.append(ChatMessage(role=roles[m.role], content=m.text, additional_kwargs=extra))
    return out


def li_memory(budget: int) -> Any:
    from llama_index.core.memory import Memory

    return Memory.from_defaults(
        session_id=f"bench-{random.random()}", token_limit=budget, tokenizer_fn=ENC.encode
    )


# -- run ------------------------------------------------------------------------------------


def by_ids(ids: Sequence[str], history: Sequence[Message]) -> list[Message]:
    index = {m.id: m for m in history}
    return [index[i] for i in ids if i in index]


def run_size(n: int, *, quick: bool, rows: list[Row], loop: asyncio.AbstractEventLoop) -> None:
    history = make_thread(n)
    gc.collect()
    gc.freeze()  # the thread is long-lived data: keep the collector's full passes out of timings
    workload = f"{n} msgs"
    counter = TiktokenCounter("gpt-4o")
    counter.count_text("warm up the encoding")
    repeat = 3 if n >= 10_000 else 5

    # ours: cold (fresh count cache each time), incremental, cold with a summary
    ctx = ContextPolicy(BUDGET, counter=counter).build(history)
    cold = measure(lambda: ContextPolicy(BUDGET, counter=counter).build(history), repeat=30)
    v = violations(ctx.messages, history, BUDGET)
    rows.append(
        Row(workload, "cold build", "tela", cold.median, cold.p95, {"tokens": ctx.tokens, **v})
    )
    floor = measure(lambda: TiktokenCounter("gpt-4o").count_messages(ctx.messages), repeat=30)
    rows.append(
        Row(
            workload, "cold build", "encode-window", floor.median, floor.p95, {"tokens": ctx.tokens}
        )
    )

    summary_policy = ContextPolicy(BUDGET, counter=counter, summary=Summary())
    sctx = summary_policy.build(history)
    summ = measure(
        lambda: ContextPolicy(BUDGET, counter=counter, summary=Summary()).build(history),
        repeat=2 if n >= 10_000 else 3,
    )
    v = violations(sctx.messages, history, BUDGET)
    rows.append(
        Row(
            workload,
            "cold build",
            "tela+summary",
            summ.median,
            summ.p95,
            {"tokens": sctx.tokens, **v},
        )
    )

    growing = list(history)
    builder = ContextPolicy(BUDGET, counter=counter, summary=Summary()).builder()
    builder.build(growing)
    state = {"i": 0}

    def one_more() -> None:
        state["i"] += 1
        role = Message.user if state["i"] % 2 else Message.assistant
        growing.append(role(f"new message {state['i']} " + "words " * 40))
        builder.build(growing)

    inc = measure(one_more, repeat=200 if not quick else 50)
    last = builder.build(growing)
    v = violations(last.messages, growing, BUDGET)
    rows.append(
        Row(workload, "+1 message", "tela", inc.median, inc.p95, {"tokens": last.tokens, **v})
    )

    # LangChain trim_messages
    lc = to_langchain(history)
    out = lc_trim(lc, BUDGET)
    lc_cold = measure(lambda: lc_trim(lc, BUDGET), repeat=repeat, warmup=0)
    sent = by_ids([m.id for m in out], history)
    v = violations(sent, history, BUDGET)
    tokens = counter.count_messages(sent)
    rows.append(
        Row(workload, "cold build", "lc-trim", lc_cold.median, lc_cold.p95, {"tokens": tokens, **v})
    )
    lc_grow = list(lc)

    def lc_one_more() -> None:
        from langchain_core.messages import HumanMessage

        lc_grow.append(HumanMessage("new message " + "words " * 40))
        lc_trim(lc_grow, BUDGET)

    lc_inc = measure(lc_one_more, repeat=repeat, warmup=0)
    rows.append(
        Row(workload, "+1 message", "lc-trim", lc_inc.median, lc_inc.p95, {"tokens": tokens, **v})
    )

    # LlamaIndex Memory
    if quick and n > 500:
        return
    memory = li_memory(BUDGET)
    start = time.perf_counter()
    loop.run_until_complete(memory.aput_messages(to_llamaindex(history)))
    put_all = time.perf_counter() - start
    rows.append(Row(workload, "load history", "li-memory", put_all, None, {}))
    got = loop.run_until_complete(memory.aget())
    li_get = measure(lambda: loop.run_until_complete(memory.aget()), repeat=repeat)
    sent = by_ids([m.additional_kwargs.get("tela_id", "") for m in got], history)
    v = violations(sent, history, BUDGET)
    tokens = counter.count_messages(sent)
    rows.append(
        Row(workload, "cold build", "li-memory", li_get.median, li_get.p95, {"tokens": tokens, **v})
    )

    def li_one_more() -> None:
        from llama_index.core.llms import ChatMessage

        loop.run_until_complete(memory.aput(ChatMessage(role="user", content="new " * 40)))
        loop.run_until_complete(memory.aget())

    li_inc = measure(li_one_more, repeat=repeat)
    rows.append(
        Row(workload, "+1 message", "li-memory", li_inc.median, li_inc.p95, {"tokens": tokens, **v})
    )


def sweep(
    history: list[Message],
    budgets: Sequence[int],
    ends: Sequence[int],
    loop: asyncio.AbstractEventLoop,
    *,
    li_ends: Sequence[int],
) -> list[Row]:
    """Violations found across budgets and thread end points (summed), per implementation."""
    counter = TiktokenCounter("gpt-4o")
    totals: dict[str, dict[str, int]] = {}

    def add(impl: str, v: dict[str, int] | None) -> None:
        bucket = totals.setdefault(
            impl, {"runs": 0, "split": 0, "over": 0, "no_user": 0, "errors": 0}
        )
        bucket["runs"] += 1
        if v is None:
            bucket["errors"] += 1
            return
        for k in ("split", "over", "no_user"):
            bucket[k] += v[k]

    for end in ends:
        part = history[: len(history) - end]
        lc = to_langchain(part)
        for budget in budgets:
            try:
                ctx = ContextPolicy(budget, counter=counter, summary=Summary()).build(part)
                add("tela", violations(ctx.messages, part, budget))
            except Exception:
                add("tela", None)
            out = lc_trim(lc, budget)
            add("lc-trim", violations(by_ids([m.id for m in out], part), part, budget))
            if end in li_ends:
                memory = li_memory(budget)
                loop.run_until_complete(memory.aput_messages(to_llamaindex(part)))
                got = loop.run_until_complete(memory.aget())
                ids = [m.additional_kwargs.get("tela_id", "") for m in got]
                add("li-memory", violations(by_ids(ids, part), part, budget))
    label = "budget sweep"
    return [Row(f"{len(history)} msgs", label, impl, 0.0, None, v) for impl, v in totals.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    rows: list[Row] = []
    sizes = [500, 2_000] if args.quick else [1_000, 10_000]
    for n in sizes:
        run_size(n, quick=args.quick, rows=rows, loop=loop)
    budgets = (
        [300, 600, 1_000, 2_000, 4_000, 8_000]
        if args.quick
        else [200, 300, 500, 800, 1_000, 1_500, 2_000, 3_000, 4_000, 6_000, 8_000, 12_000, 16_000]
    )
    ends = range(4) if args.quick else range(12)
    li_ends = [0, 3, 7] if not args.quick else [2]
    sweep_rows = sweep(
        make_thread(300 if args.quick else 1_000, seed=11), budgets, ends, loop, li_ends=li_ends
    )
    print_table(rows)
    print()
    print("Invariant violations across the budget sweep (budgets x thread end points):")
    for r in sweep_rows:
        print(f"  {r.impl:10s} {r.extra}")
    write_json("context_quick" if args.quick else "context", rows + sweep_rows)
    loop.close()


if __name__ == "__main__":
    main()
