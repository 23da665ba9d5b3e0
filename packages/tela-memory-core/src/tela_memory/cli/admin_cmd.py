"""``tela-memory stats [--user U | --all-users]`` and ``tela-memory erase --user U``.

The two admin commands: ``stats --all-users`` counts the whole store (no data, only counts)
and ``erase --user U`` removes everything of ``U``. Plain ``stats`` counts the acting user's.
"""

from __future__ import annotations

import sqlite3
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
    open_db,
)
from tela_memory.errors import NotFoundError, TelaMemoryError, UnsupportedOperation
from tela_memory.stores.base import MAX_CHANGES_LIMIT, MessageStore


def _live_threads(store: MessageStore) -> dict[str, set[str]]:
    """Every user's threads, found by replaying the store's change feed from its start (the
    contract has no list of users; the feed names the user of every write)."""
    live: dict[str, set[str]] = {}
    cursor: str | None = None
    try:
        while True:
            batch = store.changes(cursor, limit=MAX_CHANGES_LIMIT)
            for c in batch.changes:
                if c.kind == "append" and c.thread_id is not None:
                    live.setdefault(c.user_id, set()).add(c.thread_id)
                elif c.kind == "thread_deleted" and c.thread_id is not None:
                    live.get(c.user_id, set()).discard(c.thread_id)
                elif c.kind == "user_erased":
                    live.pop(c.user_id, None)
            cursor = batch.cursor
            if not batch.more:
                break
    except UnsupportedOperation as exc:
        raise TelaMemoryError(
            f"{type(store).__name__} cannot list every user (it has no change feed); "
            "pass --user USER"
        ) from exc
    return live


def _all_stats(store: MessageStore) -> dict[str, Any]:
    """Counts of the whole store, every user (an admin read through the contract)."""
    users = threads = branches = messages = 0
    roles: dict[str, int] = {}
    for user, tids in sorted(_live_threads(store).items()):
        found = 0
        for tid in sorted(tids):
            try:
                info = store.get_thread(tid, user_id=user)
            except NotFoundError:
                continue
            found += 1
            messages += info.message_count
            seen: set[str] = set()
            for b in store.branches(tid, user_id=user):
                branches += 1
                for m in store.read(tid, user_id=user, branch=b.name):
                    if m.id not in seen:
                        seen.add(m.id)
                        roles[m.role.value] = roles.get(m.role.value, 0) + 1
        threads += found
        users += 1 if found else 0
    data: dict[str, Any] = {"backend": store.schemes[0] if store.schemes else type(store).__name__}
    path = getattr(store, "path", None)  # a store kept in one file says where
    if isinstance(path, Path):
        data["path"] = str(path)
        data["bytes"] = path.stat().st_size if path.exists() else None
    data.update(users=users, threads=threads, branches=branches, messages=messages, roles=roles)
    return data


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
            help="Admin: count the whole store, every user (stores with a change feed).",
        ),
    ] = False,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Counts of the user's threads, branches and messages (--all-users: the whole store's)."""
    with open_db(db) as store:
        data = _all_stats(store) if all_users else _user_stats(store, user)
    if json_out:
        emit_json(data)
        return
    table = Table("", "", show_header=False)
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        table.add_row(key, escape(str(value)))
    console.print(table)


def _file_tables(path: Path) -> set[str]:
    try:
        raw = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return set()
    try:
        return {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return set()
    finally:
        raw.close()


def _embedded_parts(store: MessageStore) -> tuple[list[Any], bool]:
    """What else the store's file holds of a user (a recall index, an embedding cache kept
    in the same SQLite file), and whether it has LangGraph items (``lgstore_*``, which are
    not tied to users). A store not kept in one file has no such parts."""
    path = getattr(store, "path", None)
    if not isinstance(path, Path) or not path.exists():
        return [], False
    from tela_memory.privacy import EmbeddingCacheEntries
    from tela_memory.recall.cache import SQLiteCache
    from tela_memory.recall.sqlite_index import SQLiteIndex

    tables = _file_tables(path)
    parts: list[Any] = []
    if "recall_docs" in tables:
        parts.append(SQLiteIndex.for_store(store))
    if "recall_embedding_cache" in tables:
        parts.append(EmbeddingCacheEntries(SQLiteCache(path)))
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
    """Erase everything stored for a user: threads, messages, branches (any store), and in a
    SQLite file also the recall index entries and cached embeddings of the user's messages."""
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
