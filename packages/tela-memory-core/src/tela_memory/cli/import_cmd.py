"""``tela-memory import FILE`` and ``tela-memory formats``."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

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
    err_console,
    open_db,
    plural,
    progress,
)
from tela_memory.errors import TelaMemoryError
from tela_memory.formats import CODECS, DEFAULT_MAX_BYTES, read_file, read_text
from tela_memory.formats._io import decode_utf8
from tela_memory.formats.store_io import import_conversations


def import_file(
    file: Annotated[Path, typer.Argument(help="File to import ('-' reads stdin).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="Format name, or 'auto' to detect it.")
    ] = "auto",
    user: UserOption = DEFAULT_USER,
    continue_on_error: Annotated[
        bool,
        typer.Option(
            "--continue-on-error",
            help="Skip bad conversations and keep the rest (default: all or nothing).",
        ),
    ] = False,
    max_size: Annotated[
        int,
        typer.Option(
            "--max-size",
            help="Largest whole-document file to read, in MB (JSONL is streamed and has no limit).",
        ),
    ] = DEFAULT_MAX_BYTES // 1_000_000,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import conversations from a file into the store (all or nothing by default)."""
    with (
        err_console.status(f"reading {file.name}", spinner="dots")
        if not json_out
        else (nullcontext())
    ):
        if str(file) == "-":
            text = decode_utf8(sys.stdin.buffer.read(), "stdin")
            result = read_text(text, format, continue_on_error=continue_on_error)
        else:
            result = read_file(
                file, format, continue_on_error=continue_on_error, max_bytes=max_size * 1_000_000
            )
    skipped: list[dict[str, Any]] = [{"where": e.where, "error": e.reason} for e in result.skipped]
    with open_db(db) as store, progress(disable=json_out) as bar:
        task = bar.add_task(f"importing {file.name}", total=len(result.conversations))
        report = import_conversations(
            store,
            result.conversations,
            user_id=user,
            continue_on_error=continue_on_error,
            on_progress=lambda n: bar.update(task, completed=n),
        )
    skipped += [{"where": c, "error": why} for c, why in report.skipped]
    summary = {
        "file": str(file),
        "format": result.format,
        "user": user,
        "conversations": len(report.threads),
        "messages": report.messages,
        "branches": report.branches,
        "skipped": skipped,
        "losses": result.report.to_json(),
    }
    if json_out:
        emit_json(summary)
        return
    console.print(
        f"Imported [bold]{len(report.threads)}[/] {plural(len(report.threads), 'conversation')} "
        f"([bold]{report.messages}[/] messages) from {escape(str(file))} "
        f"as [cyan]{result.format}[/] for user [cyan]{escape(user)}[/]."
    )
    if result.report or result.report.notes:
        err_console.print(f"[yellow]not kept:[/]\n{escape(result.report.summary())}")
    if skipped:
        err_console.print(f"[yellow]skipped {len(skipped)}:[/]")
        for s in skipped[:20]:
            err_console.print(f"  {escape(str(s['where']))}: {escape(s['error'])}")


def list_formats(json_out: JsonOption = False) -> None:
    """List the formats import and export understand."""
    rows: list[dict[str, str | bool]] = [
        {
            "name": c.name,
            "description": c.description,
            "lossless": c.lossless,
            "export": c.name not in ("chatgpt", "claude-export"),
            "streamed": c.line_based,
        }
        for c in CODECS.values()
    ]
    if json_out:
        emit_json(rows)
        return
    table = Table("format", "description", "lossless", "export")
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["description"]),
            "yes" if r["lossless"] else "",
            "yes" if r["export"] else "import only",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``formats``."""
    app.command("import")(import_file)
    app.command("formats")(list_formats)


__all__ = ["TelaMemoryError", "register"]
