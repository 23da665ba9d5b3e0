"""The ``tela-memory`` command line (typer + rich, from the ``cli`` extra).

Adding a command from another module
------------------------------------
Every module of this package whose name ends in ``_cmd`` (``import_cmd.py``, ``eval_cmd.py``,
...) is discovered automatically; it must define ``register(app: typer.Typer) -> None``.
Nothing else has to be edited. A module that fails to import (for example because an optional
dependency is missing) is reported on stderr and the other commands keep working.

Example, ``tela_memory/cli/eval_cmd.py``::

    from pathlib import Path
    from typing import Annotated

    import typer

    from tela_memory.cli._common import JsonOption, console, emit_json

    eval_app = typer.Typer(help="Evaluate recall on a benchmark.", no_args_is_help=True)

    @eval_app.command("locomo")
    def locomo(
        path: Annotated[Path, typer.Argument(help="locomo JSON file")],
        k: Annotated[int, typer.Option("--k", help="cut-off")] = 10,
        json_out: JsonOption = False,
    ) -> None:
        report = ...
        if json_out:
            emit_json(report)          # plain JSON on stdout, nothing else
        else:
            console.print(...)         # rich output

    def register(app: typer.Typer) -> None:
        app.add_typer(eval_app, name="eval")   # or: app.command("name")(function)

Conventions every command follows (helpers in :mod:`tela_memory.cli._common`):

- ``--db URL`` (``DbOption``; default: ``$TELA_MEMORY_DB`` or the embedded SQLite file) and
  open the store with ``with open_db(db) as store:``.
- ``--user U`` (``UserOption``, default ``local``): the acting user. A command that reads or
  writes threads does so in this user's namespace only (``with open_user(db, user) as
  store:`` gives a ``UserStore``); another user's thread looks exactly like a missing one.
  A command that acts across users says so with a named flag (``stats --all-users``) or is
  an admin command by name (``erase --user U``).
- ``--json`` (``JsonOption``): print exactly one JSON document on stdout with ``emit_json``.
- Raise a :class:`tela_memory.errors.TelaMemoryError` for bad input: :func:`main` prints it
  in red on stderr and exits with status 1 (usage errors exit with 2, as click does). Any
  other exception is reported by its type only, without a traceback (which could show stored
  data); set ``TELA_MEMORY_DEBUG=1`` to see it.
- Long work shows a progress bar on stderr (``progress()``), so stdout stays parseable.

Packages outside the core can add commands through the entry point group ``tela_memory.cli``
whose value is such a ``register`` function.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import warnings
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TextIO

from tela_memory.errors import MissingDependency, TelaMemoryError

if TYPE_CHECKING:
    import typer

CLI_GROUP = "tela_memory.cli"
DEBUG_ENV = "TELA_MEMORY_DEBUG"


def build_app() -> typer.Typer:
    """Build the typer application with every discovered command registered."""
    try:
        import typer
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependency("typer", "cli") from exc

    app = typer.Typer(
        name="tela-memory",
        help="Tela Memory: conversation memory for LLM apps (import, export, search, demo).",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    def print_version(wanted: bool) -> None:
        if wanted:
            from importlib.metadata import version as dist_version

            typer.echo(dist_version("tela-memory-core"))
            raise typer.Exit()

    @app.callback()
    def root(
        show_version: bool = typer.Option(
            False,
            "--version",
            help="Print the installed version and exit.",
            is_eager=True,
            callback=print_version,
        ),
    ) -> None:
        """Tela Memory: conversation memory for LLM apps (import, export, search, demo)."""

    @app.command("version")
    def version() -> None:
        """Print the installed version."""
        print_version(True)

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.endswith("_cmd"):
            continue
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
            module.register(app)
        except Exception as exc:  # a broken command module must not break the others
            print(f"tela-memory: command module {info.name!r} not loaded: {exc}", file=sys.stderr)
    for ep in entry_points(group=CLI_GROUP):
        try:
            ep.load()(app)
        except Exception as exc:
            print(f"tela-memory: plugin {ep.name!r} not loaded: {exc}", file=sys.stderr)
    order = {name: i for i, name in enumerate(_ORDER)}
    app.registered_commands.sort(key=lambda c: order.get(c.name or "", len(order)))
    return app


_ORDER = (
    "demo",
    "import",
    "export",
    "threads",
    "show",
    "search",
    "context",
    "stats",
    "erase",
    "formats",
    "version",
)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tela-memory`` script."""
    warnings.showwarning = _warning
    try:
        app = build_app()
        app(args=argv, prog_name="tela-memory")
    except TelaMemoryError as exc:
        args = sys.argv[1:] if argv is None else argv
        if "--json" in args:  # scripts get the error as JSON on stdout too
            error = {"type": type(exc).__name__, "message": str(exc)}
            if getattr(exc, "where", None):
                error["where"] = str(exc.where)  # type: ignore[attr-defined]
            print(json.dumps({"error": error}, ensure_ascii=False))
        _fail(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug: no traceback (it can show stored data) unless asked
        if os.environ.get(DEBUG_ENV):
            raise
        message = f"unexpected {type(exc).__name__}; set {DEBUG_ENV}=1 to see the traceback"
        if "--json" in (sys.argv[1:] if argv is None else argv):
            print(json.dumps({"error": {"type": type(exc).__name__, "message": message}}))
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def _warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _fail(exc: TelaMemoryError) -> None:
    try:
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
    except ImportError:  # pragma: no cover
        print(f"error: {exc}", file=sys.stderr)
    sys.exit(1)


__all__ = ["CLI_GROUP", "DEBUG_ENV", "build_app", "main"]
