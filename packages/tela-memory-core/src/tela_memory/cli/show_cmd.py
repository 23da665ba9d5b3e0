"""``tela-memory show THREAD`` and ``tela-memory threads``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.panel import Panel
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
from tela_memory.messages import Message, Role

_COLOURS = {
    Role.SYSTEM: "magenta",
    Role.DEVELOPER: "magenta",
    Role.USER: "cyan",
    Role.ASSISTANT: "green",
    Role.TOOL: "yellow",
}


def render(m: Message) -> str:
    """A one-paragraph rendering of a message's blocks for the terminal."""
    parts: list[str] = []
    for b in m.content:
        if b.type == "text":
            parts.append(escape(b.text))
        elif b.type == "tool_call":
            parts.append(f"[bold]→ {escape(b.name)}[/]({escape(str(b.arguments))}) [dim]{b.id}[/]")
        elif b.type == "tool_result":
            parts.append(f"[bold]← {b.tool_call_id}[/] {escape(b.text)}")
        elif b.type == "thinking":
            parts.append(f"[dim italic]thinking: {escape(b.text[:200])}[/]")
        elif b.type == "image":
            parts.append(f"[dim]\\[image {escape(b.alt_text or b.mime_type or '')}][/]")
        else:
            parts.append(f"[dim]\\[{b.type}][/]")
    return "\n".join(parts)


def show(
    thread: Annotated[str, typer.Argument(help="Thread id.")],
    branch: Annotated[str | None, typer.Option("--branch", "-b", help="Branch name.")] = None,
    last: Annotated[int | None, typer.Option("--last", "-n", help="Only the last N.")] = None,
    user: UserOption = DEFAULT_USER,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show the messages of one of the user's threads (its default branch unless --branch)."""
    with open_user(db, user) as store:
        info = store.get_thread(thread)
        branches = store.branches(thread)
        msgs = store.read(thread, branch=branch, last=last)
    if json_out:
        emit_json(
            {
                "thread": info,
                "branch": branch or info.default_branch,
                "branches": branches,
                "messages": [m.model_dump(mode="json") for m in msgs],
            }
        )
        return
    names = ", ".join(b.name for b in branches)
    console.print(
        f"[bold]{escape(info.title or thread)}[/]  user {escape(str(info.user_id))}  "
        f"{info.message_count} messages  branches: {escape(names)}"
    )
    for m in msgs:
        title = f"{m.role.value}{' ' + m.name if m.name else ''} · {m.created_at:%Y-%m-%d %H:%M}"
        console.print(
            Panel(
                render(m) or "[dim](empty)[/]",
                title=escape(title),
                title_align="left",
                border_style=_COLOURS[m.role],
            )
        )


def threads(
    user: UserOption = DEFAULT_USER,
    limit: Annotated[int, typer.Option("--limit", help="How many (newest first).")] = 50,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """List the user's threads, most recently active first."""
    with open_user(db, user) as store:
        page = store.list_threads(limit=limit)
    if json_out:
        emit_json({"user": user, "threads": page.threads, "next_cursor": page.next_cursor})
        return
    table = Table("thread", "title", "messages", "updated")
    for t in page.threads:
        table.add_row(
            escape(t.id),
            escape(t.title or ""),
            str(t.message_count),
            f"{t.updated_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"[dim]more than {limit}; use --limit[/]")


def register(app: typer.Typer) -> None:
    """Add ``show`` and ``threads``."""
    app.command("show")(show)
    app.command("threads")(threads)
