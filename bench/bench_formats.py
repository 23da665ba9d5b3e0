"""Formats workload: provider-format conversion and importing conversations into a store.

* OpenAI Chat Completions dicts -> typed messages, and back: ours (``from_openai_chat`` /
  ``to_openai_chat``, validated pydantic messages) vs LangChain's ``convert_to_messages`` /
  ``convert_to_openai_messages`` on the same 10,000-message conversation with tool calls.
* Reading the ShareGPT sample (500 conversations) into conversations, and writing it back.
* Importing the ShareGPT sample into an embedded SQLite store: ours (``import_conversations``:
  validated, all-or-nothing) vs LangChain ``SQLChatMessageHistory.add_messages`` per
  conversation sharing one SQLAlchemy engine (one SQLite file each side, same run).
* Reading all of it back for its user: ours (``load_conversation`` per thread through
  ``store.for_user(...)``, every branch) vs ``SQLChatMessageHistory.messages`` per session.

    python bench/bench_formats.py            # 10,000 messages, 3 import rounds
    python bench/bench_formats.py --quick    # 2,000 messages, 1 import round
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

from tela_memory.formats import from_openai_chat, read_text, to_openai_chat, write_text
from tela_memory.formats.store_io import import_conversations, load_conversation
from tela_memory.stores.sqlite import SQLiteStore

from harness import Row, measure, print_table, write_json

warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*sunset.*")

SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chats"
SAMPLE = SAMPLE / "sharegpt-sample.json"


def openai_history(n: int) -> list[dict[str, Any]]:
    """A conversation with a tool call every 10 turns."""
    out: list[dict[str, Any]] = [{"role": "system", "content": "You are helpful."}]
    i = 0
    while len(out) < n:
        i += 1
        out.append({"role": "user", "content": f"question {i}: " + "lorem ipsum " * (i % 9)})
        if i % 10 == 0:
            call = {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": "lookup", "arguments": json.dumps({"q": i})},
            }
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
            out.append({"role": "tool", "tool_call_id": f"call_{i}", "content": f"result {i}"})
        out.append({"role": "assistant", "content": f"answer {i}: " + "dolor sit " * (i % 7)})
    return out[:n]


def conversion_rows(n: int, repeat: int) -> list[Row]:
    from langchain_core.messages import convert_to_messages, convert_to_openai_messages

    history = openai_history(n)
    ours = from_openai_chat(history)
    theirs = convert_to_messages(history)
    assert len(ours) == len(theirs)
    rows = []
    for op, fn, impl in [
        ("openai dicts -> messages", lambda: from_openai_chat(history), "tela"),
        ("openai dicts -> messages", lambda: convert_to_messages(history), "langchain"),
        ("messages -> openai dicts", lambda: to_openai_chat(ours), "tela"),
        ("messages -> openai dicts", lambda: convert_to_openai_messages(theirs), "langchain"),
    ]:
        s = measure(fn, repeat=repeat)
        rows.append(Row("formats", f"{op} ({n})", impl, s.median, s.p95))
    return rows


def sharegpt_rows(repeat: int) -> list[Row]:
    text = SAMPLE.read_text(encoding="utf-8")
    convs = read_text(text, "sharegpt").conversations
    rows = []
    s = measure(lambda: read_text(text, "sharegpt"), repeat=repeat)
    rows.append(Row("formats", "read ShareGPT (500 conv)", "tela", s.median, s.p95))
    s = measure(lambda: write_text(convs, "sharegpt"), repeat=repeat)
    rows.append(Row("formats", "write ShareGPT (500 conv)", "tela", s.median, s.p95))
    s = measure(lambda: json.loads(text), repeat=repeat)
    rows.append(Row("formats", "read ShareGPT (500 conv)", "json.loads only", s.median, s.p95))
    return rows


def import_rows(folder: Path, rounds: int) -> list[Row]:
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from langchain_core.messages import AIMessage, HumanMessage
    from sqlalchemy import create_engine

    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    convs = read_text(json.dumps(data), "sharegpt").conversations
    n_msgs = sum(len(c.messages) for c in convs)
    rows = []
    k = iter(range(10**6))

    def ours() -> None:
        with SQLiteStore(folder / f"tela-{next(k)}.db") as store:
            import_conversations(store.for_user("bench"), convs)

    s = measure(ours, repeat=rounds, warmup=0)
    rows.append(Row("import", f"ShareGPT sample ({n_msgs} msgs)", "tela", s.median, s.p95))

    def langchain() -> None:
        engine = create_engine(f"sqlite:///{folder / f'lc-{next(k)}.db'}")
        for c in data:
            history = SQLChatMessageHistory(session_id=c["id"], connection=engine)
            history.add_messages(
                [
                    HumanMessage(t["value"]) if t["from"] == "human" else AIMessage(t["value"])
                    for t in c["conversations"]
                ]
            )

    s = measure(langchain, repeat=rounds, warmup=0)
    rows.append(
        Row(
            "import",
            f"ShareGPT sample ({n_msgs} msgs)",
            "langchain SQLChatMessageHistory",
            s.median,
            s.p95,
        )
    )
    rows += export_rows(folder, data, convs, rounds)
    return rows


def export_rows(folder: Path, data: Any, convs: list[Any], rounds: int) -> list[Row]:
    """Every imported thread read back for its user (tela: all branches) vs LangChain."""
    from langchain_community.chat_message_histories import SQLChatMessageHistory
    from sqlalchemy import create_engine

    label = f"read back {len(convs)} threads"
    with SQLiteStore(folder / "tela-read.db") as store:
        bench = store.for_user("bench")
        import_conversations(bench, convs)
        ids = [c.id for c in convs]
        s = measure(lambda: [load_conversation(bench, t) for t in ids], repeat=rounds)
    rows = [Row("export", label, "tela", s.median, s.p95)]
    engine = create_engine(f"sqlite:///{folder / 'lc-read.db'}")
    histories = [SQLChatMessageHistory(session_id=c["id"], connection=engine) for c in data]
    for h, c in zip(histories, convs, strict=True):
        h.add_messages(_lc(c))
    s = measure(lambda: [h.messages for h in histories], repeat=rounds)
    rows.append(Row("export", label, "langchain SQLChatMessageHistory", s.median, s.p95))
    return rows


def _lc(conv: Any) -> list[Any]:
    from langchain_core.messages import AIMessage, HumanMessage

    return [
        HumanMessage(m.text) if m.role.value == "user" else AIMessage(m.text) for m in conv.path()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 1 min)")
    args = parser.parse_args()
    n, repeat, rounds = (2_000, 5, 1) if args.quick else (10_000, 10, 3)
    rows = conversion_rows(n, repeat) + sharegpt_rows(repeat)
    with tempfile.TemporaryDirectory() as tmp:
        rows += import_rows(Path(tmp), rounds)
    print_table(rows)
    print(f"results: {write_json('formats', rows)}")


if __name__ == "__main__":
    main()
