"""``tela-memory export [THREAD...] | --user U``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tela_memory.cli._common import (
    DbOption,
    JsonOption,
    console,
    emit_json,
    err_console,
    open_db,
    plural,
)
from tela_memory.errors import TelaMemoryError
from tela_memory.formats import write_file, write_text
from tela_memory.formats.store_io import load_conversation, user_thread_ids


def export(
    threads: Annotated[
        list[str] | None, typer.Argument(help="Thread ids (or use --user).", show_default=False)
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Export every thread of this user.")
    ] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="Output format.")] = "tela",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export threads (all branches where the format can hold them) to a file or stdout."""
    if not threads and user is None:
        raise TelaMemoryError("name thread ids to export, or --user USER for all of a user's")
    with open_db(db) as store:
        ids = list(threads or []) + (user_thread_ids(store, user) if user is not None else [])
        if not ids:
            raise TelaMemoryError(f"user {user!r} has no threads in this store")
        convs = [load_conversation(store, t) for t in dict.fromkeys(ids)]
    if output is not None:
        report = write_file(output, convs, format)
        text = None
    else:
        text, report = write_text(convs, format)
    if json_out:
        emit_json(
            {
                "format": format,
                "conversations": len(convs),
                "messages": sum(len(c.messages) for c in convs),
                "output": str(output) if output else None,
                "losses": report.to_json(),
                **({"content": text} if text is not None else {}),
            }
        )
        return
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        console.print(
            f"Exported [bold]{len(convs)}[/] {plural(len(convs), 'conversation')} to "
            f"{escape(str(output))} "
            f"as [cyan]{escape(format)}[/]."
        )
    if report or report.notes:
        err_console.print(f"[yellow]not kept by {escape(format)}:[/]\n{escape(report.summary())}")


def register(app: typer.Typer) -> None:
    """Add ``export``."""
    app.command("export")(export)
