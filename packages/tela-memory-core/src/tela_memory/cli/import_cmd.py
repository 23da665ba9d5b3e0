"""``tela-memory import FILE [--user U]`` and ``tela-memory formats``.

Owners: ``--user U`` imports every conversation as ``U``. Without it, each conversation goes to
the owner stored in the file (the lossless ``tela`` and ``jsonl`` formats keep owners, so an
export of two users comes back as two users), and a conversation without one (every other
format) goes to the default user ``local``.
"""

from __future__ import annotations

import dataclasses
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
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            "-u",
            help="Import everything as this user (default: the owners stored in the file; "
            f"conversations without one go to {DEFAULT_USER!r}).",
            show_default=False,
        ),
    ] = None,
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
    """Import conversations from a file into the store (all or nothing by default).

    Everything is read and checked before the first write. Importing a file again adds no
    duplicate: conversations already in the store are left as they are, and one an
    interrupted import left half written is completed (matched by message id).
    """
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
    convs = result.conversations
    if user is None:  # keep the owners stored in the file; the others are the default user's
        convs = [
            c if c.user_id is not None else dataclasses.replace(c, user_id=DEFAULT_USER)
            for c in convs
        ]
    with open_db(db) as store, progress(disable=json_out) as bar:
        target = store if user is None else store.for_user(user)
        task = bar.add_task(f"importing {file.name}", total=len(convs))
        report = import_conversations(
            target,
            convs,
            continue_on_error=continue_on_error,
            on_progress=lambda n: bar.update(task, completed=n),
        )
    skipped += [{"where": c, "error": why} for c, why in report.skipped]
    summary = {
        "file": str(file),
        "format": result.format,
        "user": user,
        "users": report.per_user(),
        "conversations": len(report.threads),
        "messages": report.messages,
        "branches": report.branches,
        "resumed": report.resumed,
        "unchanged": report.unchanged,
        "skipped": skipped,
        "losses": result.report.to_json(),
    }
    if json_out:
        emit_json(summary)
        return
    owners = report.per_user() or {user or DEFAULT_USER: 0}
    whom = (
        f"user [cyan]{escape(next(iter(owners)))}[/]"
        if len(owners) == 1
        else "users "
        + ", ".join(f"[cyan]{escape(u)}[/] ({n})" for u, n in list(owners.items())[:10])
        + (f" and {len(owners) - 10} more" if len(owners) > 10 else "")
    )
    console.print(
        f"Imported [bold]{len(report.threads)}[/] {plural(len(report.threads), 'conversation')} "
        f"([bold]{report.messages}[/] messages) from {escape(str(file))} "
        f"as [cyan]{result.format}[/] for {whom}."
    )
    if report.unchanged:
        err_console.print(
            f"{len(report.unchanged)} {plural(len(report.unchanged), 'conversation')} "
            "already imported, left as they were."
        )
    if report.resumed:
        err_console.print(
            f"completed {len(report.resumed)} partly imported "
            f"{plural(len(report.resumed), 'conversation')}."
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
