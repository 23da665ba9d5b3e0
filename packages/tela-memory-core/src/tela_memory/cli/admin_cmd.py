"""``tela-memory stats [--user U | --all-users]`` and ``tela-memory erase --user U``.

The two admin commands: ``stats --all-users`` counts the whole store (no data, only counts)
and ``erase --user U`` removes everything of ``U``. Plain ``stats`` counts the acting user's.
"""

from __future__ import annotations

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
    open_db,
)
from tela_memory.errors import TelaMemoryError
from tela_memory.stores.base import MessageStore
from tela_memory.stores.sqlite import SQLiteStore


def _sqlite_stats(store: SQLiteStore) -> dict[str, Any]:
    conn = store.connection()

    def one(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    roles = dict(conn.execute("SELECT role, count(*) FROM messages GROUP BY role").fetchall())
    path = store.path
    return {
        "backend": "sqlite",
        "path": str(path) if path else ":memory:",
        "bytes": path.stat().st_size if path and path.exists() else None,
        "users": one("SELECT count(DISTINCT user_id) FROM threads"),
        "threads": one("SELECT count(*) FROM threads"),
        "branches": one("SELECT count(*) FROM branches"),
        "messages": one("SELECT count(*) FROM messages"),
        "roles": roles,
    }


def _user_stats(store: MessageStore, user: str) -> dict[str, Any]:
    from tela_memory.formats.store_io import user_thread_ids

    mine = store.for_user(user)
    ids = user_thread_ids(mine)
    infos = [mine.get_thread(t) for t in ids]
    return {
        "backend": type(store).__name__,
        "user": user,
        "threads": len(infos),
        "messages": sum(t.message_count for t in infos),
        "branches": sum(len(mine.branches(t)) for t in ids),
    }


def stats(
    user: UserOption = DEFAULT_USER,
    all_users: Annotated[
        bool,
        typer.Option(
            "--all-users",
            help="Admin: count the whole store, every user (embedded SQLite only).",
        ),
    ] = False,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Counts of the user's threads, branches and messages (--all-users: the whole store's)."""
    with open_db(db) as store:
        if not all_users:
            data = _user_stats(store, user)
        elif isinstance(store, SQLiteStore):
            data = _sqlite_stats(store)
        else:
            raise TelaMemoryError(
                f"{type(store).__name__} cannot list every user; pass --user USER"
            )
    if json_out:
        emit_json(data)
        return
    table = Table("", "", show_header=False)
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        table.add_row(key, escape(str(value)))
    console.print(table)


def _embedded_parts(store: MessageStore) -> tuple[list[Any], bool]:
    """What else a SQLite file holds of a user (the recall index, an embedding cache), and
    whether it has LangGraph items (``lgstore_*``, which are not tied to users)."""
    if not isinstance(store, SQLiteStore):
        return [], False
    from tela_memory.privacy import EmbeddingCacheEntries
    from tela_memory.recall.cache import SQLiteCache
    from tela_memory.recall.sqlite_index import SQLiteIndex

    rows = store.connection().execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    tables = {r[0] for r in rows}
    parts: list[Any] = []
    if "recall_docs" in tables:
        parts.append(SQLiteIndex.for_store(store))
    if "recall_embedding_cache" in tables and store.path is not None:
        parts.append(EmbeddingCacheEntries(SQLiteCache(store.path)))
    return parts, "lgstore_items" in tables


def _close(part: Any) -> None:
    close = getattr(part, "close", None) or getattr(getattr(part, "cache", None), "close", None)
    if close is not None:
        close()


def erase(
    user: Annotated[str, typer.Option("--user", "-u", help="Admin: the user to erase (required).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Erase everything stored for a user: threads, messages, branches, and in a SQLite file
    also the recall index entries and cached embeddings of the user's messages."""
    if not yes:
        if json_out:
            raise TelaMemoryError("erase with --json needs --yes (there is no one to ask)")
        typer.confirm(f"Erase everything of user {user!r}? This cannot be undone", abort=True)
    from tela_memory.privacy import erase_user

    with open_db(db) as store:
        parts, graph_items = _embedded_parts(store)
        try:
            receipt = erase_user(user, store, *parts)
        finally:
            for part in parts:
                _close(part)
    if json_out:
        emit_json(receipt)
        return
    console.print(
        f"Erased user [cyan]{escape(user)}[/]: {receipt.threads} threads, "
        f"{receipt.messages} messages, {receipt.branches} branches"
        + "".join(f", {v} {escape(_NAMES.get(k, k))}" for k, v in receipt.extra.items())
        + "."
    )
    if graph_items:
        console.print(
            "[dim]LangGraph items (TelaStore) in this file are not tied to users; erase them"
            " with tela_memory_langchain.graph_store.UserNamespaces (docs/langchain.md).[/]"
        )


_NAMES = {
    "index:SQLiteIndex": "recall index entries",
    "embedding_cache:SQLiteCache": "cached embeddings",
}


def register(app: typer.Typer) -> None:
    """Add ``stats`` and ``erase``."""
    app.command("stats")(stats)
    app.command("erase")(erase)
