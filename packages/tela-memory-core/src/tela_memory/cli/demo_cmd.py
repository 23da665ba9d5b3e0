"""``tela-memory demo``: the whole tour, offline, on a throw-away SQLite file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.rule import Rule
from rich.table import Table

from tela_memory.cli._common import JsonOption, console, emit_json, open_db, progress
from tela_memory.cli._history import context_view, search_history
from tela_memory.cli.demo_data import USER, demo_conversations
from tela_memory.errors import TelaMemoryError
from tela_memory.formats import read_file, write_file
from tela_memory.formats.store_io import import_conversations, load_conversation, user_thread_ids
from tela_memory.messages import Message


def _step(n: int, title: str, quiet: bool) -> None:
    if not quiet:
        console.print()
        console.print(Rule(f"[bold]{n}. {title}", align="left"))


def _counter() -> tuple[Any, str]:
    from tela_memory.tokens import ApproxCounter, counter_for_model

    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return counter_for_model("gpt-4o"), "tiktoken o200k_base"
    return ApproxCounter(), "approximate (set TIKTOKEN_CACHE_DIR for exact tiktoken counts)"


def demo(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Store URL (default: a new SQLite file in a temp folder)."),
    ] = None,
    user: Annotated[
        str,
        typer.Option(
            "--user",
            "-u",
            help="The demo's user: its conversations are imported for this user, who is "
            "erased at the end (so it must have no threads in --db).",
        ),
    ] = USER,
    budget: Annotated[int, typer.Option("--budget", help="Token budget for step 2.")] = 600,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the temp folder (database and exports).")
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Import a bundled multi-week conversation, prune, recall, fork, export and erase."""
    quiet = json_out
    workdir = Path(tempfile.mkdtemp(prefix="tela-demo-"))
    url = db or f"sqlite:///{workdir / 'demo.db'}"
    summary: dict[str, Any] = {"db": url, "workdir": str(workdir)}
    try:
        with open_db(url) as backend:
            store = backend.for_user(user)
            if user_thread_ids(store):  # step 6 erases the user: never someone's real threads
                raise TelaMemoryError(
                    f"user {user!r} already has threads in this store and the demo erases its "
                    "user at the end; pick another --user"
                )
            # 1. import ---------------------------------------------------------------------
            _step(1, "Import a bundled conversation (6 sessions over 5 weeks)", quiet)
            source = workdir / "maya.tela.json"
            write_file(source, demo_conversations(), "tela")
            read = read_file(source)
            with progress(disable=quiet) as bar:
                task = bar.add_task("importing", total=len(read.conversations))
                report = import_conversations(
                    store,
                    read.conversations,
                    on_progress=lambda n: bar.update(task, completed=n),
                )
            threads = [store.get_thread(t) for t in user_thread_ids(store)]
            summary["imported"] = {"threads": len(report.threads), "messages": report.messages}
            if not quiet:
                table = Table("thread", "title", "messages", "first message")
                for t in threads:
                    first = store.read(t.id)[0]
                    table.add_row(
                        t.id,
                        escape(t.title or ""),
                        str(t.message_count),
                        f"{first.created_at:%a %d %b %Y}",
                    )
                console.print(table)
                console.print(
                    f"{report.messages} messages for user [cyan]{escape(user)}[/], "
                    "with weather tool calls and a photo of a tomato leaf."
                )

            # 2. context ----------------------------------------------------------------------
            _step(2, f"What the model would get for a {budget}-token budget", quiet)
            latest = threads[-1].id
            counter, how = _counter()
            view = context_view(store, latest, budget, counter=counter)
            summary["context"] = view.to_json()
            if not quiet:
                console.print(
                    f"thread {latest} holds {view.history} messages ({view.tokens_total} tokens);"
                    f" the model gets [bold]{len(view.sent)}[/] messages, "
                    f"[bold]{view.tokens_sent}[/] tokens: [green]{view.saved:.0%} fewer tokens[/]"
                )
                summary_msg = next(
                    (
                        m
                        for m in view.sent
                        if m.id not in view.decisions or view.decisions[m.id][0] == "summary"
                    ),
                    None,
                )
                if summary_msg is not None:
                    console.print(
                        f"  summary of the older turns: [italic]"
                        f"{escape(summary_msg.text[:160].replace(chr(10), ' / '))}…[/]"
                    )
                console.print(f"[dim]{view.method}; tokens {how}[/]")
                for note in view.notes:
                    console.print(f"[dim]note: {escape(note)}[/]")

            # 3. recall -----------------------------------------------------------------------
            _step(3, "Recall an old fact from another thread", quiet)
            question = store.read(latest, last=1)[0].text
            others = [t.id for t in threads if t.id != latest]
            result = search_history(store, question, k=3, threads=others)
            with_recall = context_view(store, latest, budget, counter=counter, recall=True)
            recalled = [
                m
                for m in with_recall.sent
                if with_recall.decisions.get(m.id, ("",))[0] == "recalled"
            ]
            summary["recall"] = {
                "question": question,
                "method": result.method,
                "hits": [
                    {"thread": m.thread_id, "text": m.text, "score": s} for s, m in result.hits
                ],
                "in_context": [m.text for m in recalled],
                "context_tokens": with_recall.tokens_sent,
            }
            if not quiet:
                console.print(f"Maya asks in {latest}: [italic]{escape(question)}[/]")
                console.print("searching her other threads:")
                console.print(f"[dim]{result.method}[/]")
                for score, m in result.hits:
                    console.print(
                        f"  {score:5.2f}  {m.thread_id}  {m.created_at:%d %b}  "
                        f"{escape(m.text[:100])}"
                    )
                console.print(
                    f"with a recall slot, the {budget}-token context for this question "
                    f"({with_recall.tokens_sent} tokens) carries {len(recalled)} recalled turns:"
                )
                for m in recalled:
                    console.print(
                        f"  [green]+[/] {m.thread_id} {m.created_at:%d %b}: {escape(m.text[:90])}"
                    )

            # 4. fork -------------------------------------------------------------------------
            _step(4, "Fork a branch and try another answer", quiet)
            found = result.hits[0][1] if result.hits else None
            answer = (
                f"From your note on {found.created_at:%d %b}: {found.text}"
                if found is not None
                else "I could not find it in your earlier chats."
            )
            asked = store.read(latest, last=1)[0]
            store.append(latest, Message.assistant(answer))
            branch = store.fork(latest, asked.id, name="short-answer")
            store.append(latest, Message.assistant("blue-heron-42"), branch=branch.name)
            branches = {
                b.name: len(store.read(latest, branch=b.name)) for b in store.branches(latest)
            }
            summary["fork"] = branches
            if not quiet:
                console.print(f"main answers: [italic]{escape(answer[:100])}[/]")
                console.print(
                    f"forked {latest} at the question (O(1), nothing copied), other answer there:"
                )
                for b in store.branches(latest):
                    last = store.read(latest, branch=b.name, last=1)[0]
                    console.print(
                        f"  branch [cyan]{b.name}[/]: {branches[b.name]} messages, "
                        f"last: {escape(last.text[:60])}"
                    )

            # 5. export -----------------------------------------------------------------------
            _step(5, "Export to ShareGPT and Markdown", quiet)
            convs = [load_conversation(store, t.id) for t in threads]
            exports: dict[str, Any] = {}
            for fmt, name in (("sharegpt", "maya.sharegpt.json"), ("markdown", "maya.md")):
                path = workdir / name
                losses = write_file(path, convs, fmt)
                exports[fmt] = {
                    "path": str(path),
                    "bytes": path.stat().st_size,
                    "losses": losses.counts(),
                }
                if not quiet:
                    console.print(f"[cyan]{fmt}[/] -> {path} ({path.stat().st_size:,} bytes)")
                    lost = ", ".join(f"{n} {k}" for k, n in sorted(losses.counts().items()))
                    console.print(f"  not kept (reported, not silently dropped): {lost or '-'}")
            summary["export"] = exports
            if not quiet:
                head = (workdir / "maya.md").read_text(encoding="utf-8").splitlines()[:12]
                console.print("[dim]" + escape("\n".join(head)) + "[/]")

            # 6. erase ------------------------------------------------------------------------
            _step(6, "Erase the user", quiet)
            receipt = backend.erase_user(user)
            left = len(user_thread_ids(store))
            summary["erase"] = {**receipt.model_dump(mode="json"), "threads_left": left}
            if not quiet:
                console.print(
                    f"erased {receipt.threads} threads, {receipt.messages} messages, "
                    f"{receipt.branches} branches; threads left for {escape(user)}: {left}"
                )
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    if json_out:
        emit_json(summary)
    elif keep:
        console.print(f"\nkept {workdir}")


def register(app: typer.Typer) -> None:
    """Add ``demo``."""
    app.command("demo")(demo)
