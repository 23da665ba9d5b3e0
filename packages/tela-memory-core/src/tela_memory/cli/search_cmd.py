"""``tela-memory search QUERY`` and ``tela-memory context THREAD --budget N``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tela_memory.cli._common import (
    DEFAULT_USER,
    DbOption,
    JsonOption,
    UserOption,
    console,
    emit_json,
    open_user,
)
from tela_memory.cli._history import context_view, search_history
from tela_memory.cli.show_cmd import render


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    user: UserOption = DEFAULT_USER,
    k: Annotated[int, typer.Option("-k", "--k", help="How many hits.")] = 5,
    thread: Annotated[
        list[str] | None, typer.Option("--thread", "-t", help="Only these threads.")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Search the user's past conversations (all their threads, or --thread ones)."""
    with open_user(db, user) as store:
        result = search_history(store, query, k=k, threads=thread)
    if json_out:
        emit_json(
            {
                "query": query,
                "method": result.method,
                "hits": [
                    {"score": s, "message": m.model_dump(mode="json")} for s, m in result.hits
                ],
            }
        )
        return
    if not result.hits:
        console.print(f"No match for {escape(query)!r}.")
    table = Table("score", "thread", "when", "role", "text", title=f"[dim]{result.method}[/]")
    for score, m in result.hits:
        table.add_row(
            f"{score:.2f}",
            escape(m.thread_id or ""),
            f"{m.created_at:%Y-%m-%d}",
            m.role.value,
            render(m)[:300],
        )
    console.print(table)


def context(
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    budget: Annotated[int, typer.Option("--budget", "-b", help="Token budget.")] = 4000,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch name.")] = None,
    model: Annotated[str, typer.Option("--model", help="Model whose tokenizer counts.")] = (
        "gpt-4o"
    ),
    recall: Annotated[
        bool, typer.Option("--recall", help="Add a recall slot fed by the user's other threads.")
    ] = False,
    query: Annotated[
        str | None, typer.Option("--query", help="What to recall for (default: last user turn).")
    ] = None,
    user: UserOption = DEFAULT_USER,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show what would be sent to the model for one of the user's threads and a token budget,
    and what was left out."""
    with open_user(db, user) as store:
        view = context_view(
            store, thread, budget, branch=branch, model=model, recall=recall, query=query
        )
    if json_out:
        emit_json({"thread": thread, **view.to_json()})
        return
    console.print(
        f"{view.history} messages ({view.tokens_total} tokens) -> [bold]{len(view.sent)}[/] "
        f"messages, [bold]{view.tokens_sent}[/] tokens (budget {view.budget}, "
        f"[green]{view.saved:.0%} saved[/])  [dim]{view.method}[/]"
    )
    for note in view.notes:
        console.print(f"[dim]note: {escape(note)}[/]")
    counts: dict[str, int] = {}
    for decision, _ in view.decisions.values():
        counts[decision] = counts.get(decision, 0) + 1
    if counts:
        console.print("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    table = Table("sent", "role", "why", "text")
    for m in view.sent:
        decision, reason = view.decisions.get(m.id, ("kept", ""))
        why = decision + (f" ({reason})" if reason else "")
        table.add_row("✓", m.role.value, why, escape(m.text[:90]))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``search`` and ``context``."""
    app.command("search")(search)
    app.command("context")(context)
