"""``tela-memory export [THREAD...] [--user U]``: the acting user's threads (all of them when
none is named). Another user's thread with the same id is not this user's: it reads as missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tela_memory.cli._common import (
    DEFAULT_USER,
    DbOption,
    JsonOption,
    UserOption,
    console,
    emit_json,
    err_console,
    open_user,
    plural,
)
from tela_memory.errors import TelaMemoryError
from tela_memory.formats import write_file, write_text
from tela_memory.formats.store_io import load_conversation, user_thread_ids


def export(
    threads: Annotated[
        list[str] | None,
        typer.Argument(
            help="The user's thread ids (default: all the user's threads).", show_default=False
        ),
    ] = None,
    user: UserOption = DEFAULT_USER,
    format: Annotated[str, typer.Option("--format", "-f", help="Output format.")] = "tela",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export the user's threads (all branches where the format can hold them) to a file or
    stdout: the named ones, or all of them when none is named."""
    with open_user(db, user) as store:
        ids = list(threads or []) or user_thread_ids(store)
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
