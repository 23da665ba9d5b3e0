"""A ``KeyboardInterrupt`` landing on any line of a SQLite write leaves the file usable.

The interrupt is injected with ``sys.settrace`` at the n-th line executed inside the write
path (the store's ``append``, the index's ``upsert``, the embedding cache, the cursor store,
and the one transaction helper they share), for every n until the write completes untouched;
after each, this connection and a second one can still write, and nothing of the interrupted
write is half-visible.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import numpy as np

from interrupts import Interrupt
from tela_memory import Message
from tela_memory.recall import cache as cache_module
from tela_memory.recall import sqlite_index as index_module
from tela_memory.recall.cache import SQLiteCache
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.stores import cursors as cursors_module
from tela_memory.stores import sqlite as sqlite_module
from tela_memory.stores import sqlite_db
from tela_memory.stores.cursors import SQLiteCursorStore
from tela_memory.stores.sqlite import SQLiteStore

_WATCHED = {
    m.__file__ for m in (sqlite_module, sqlite_db, index_module, cache_module, cursors_module)
}


def test_interrupt_at_any_line_of_append(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SQLiteStore(path) as store, SQLiteStore(path) as other:
        alice = store.for_user("alice")
        alice.append("t", Message.user("before"))
        at = 1
        interrupted = 0
        while True:
            trace = Interrupt(at, _WATCHED)
            sys.settrace(trace)
            try:
                alice.append("t", [Message.user(f"q{at}"), Message.assistant(f"a{at}")])
            except KeyboardInterrupt:
                pass
            finally:
                sys.settrace(None)
            texts = [m.text for m in alice.read("t")]
            # all or nothing: the pair is there whole or not at all
            assert (f"q{at}" in texts) == (f"a{at}" in texts)
            # this connection and another one can still write (no transaction left open)
            assert not store.connection().in_transaction
            alice.append("t", Message.user(f"after {at}"))
            other.for_user("alice").append("t", Message.user(f"other {at}"))
            if not trace.fired:
                break
            interrupted += 1
            at += 1
        assert interrupted > 20  # the injection really walked the write path


def _walk(write: Any, after: Any) -> int:
    """``write(n)`` with an interrupt at its n-th traced line, then ``after(n)``, for every n
    until a write runs to the end untouched; returns how many writes were interrupted."""
    at = 1
    while True:
        trace = Interrupt(at, _WATCHED)
        sys.settrace(trace)
        try:
            write(at)
        except KeyboardInterrupt:
            pass
        finally:
            sys.settrace(None)
        after(at)
        if not trace.fired:
            return at - 1
        at += 1


def _ids(path: Path, table: str, column: str) -> set[str]:
    with sqlite3.connect(path) as raw:
        return {r[0] for r in raw.execute(f"SELECT {column} FROM {table}")}


def _turn(text: str, id: str) -> Message:
    return Message.user(text, id=id, thread_id="t", user_id="ada")


def test_interrupt_at_any_line_of_an_index_upsert(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    with SQLiteIndex(path) as index, SQLiteIndex(path) as other:

        def write(n: int) -> None:
            index.upsert([_turn(f"q{n}", id=f"q{n}"), _turn(f"r{n}", id=f"r{n}")])

        def after(n: int) -> None:
            assert not index.connection().in_transaction
            ids = _ids(path, "recall_docs", "id")
            assert (f"q{n}" in ids) == (f"r{n}" in ids)  # all or nothing
            index.upsert(_turn(f"after {n}", id=f"a{n}"))
            other.upsert(_turn(f"other {n}", id=f"o{n}"))

        assert _walk(write, after) > 5


def test_interrupt_at_any_line_of_an_embedding_cache_write(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    cache, other = SQLiteCache(path), SQLiteCache(path)
    try:
        vec = np.ones((1, 4), dtype=np.float32)[0]

        def write(n: int) -> None:
            cache.put_many("m", {f"k{n}": vec, f"j{n}": vec})
            cache.delete_many("m", [f"k{n}"])

        def after(n: int) -> None:
            assert not cache._connection().in_transaction
            keys = _ids(path, "recall_embedding_cache", "key")
            assert f"j{n}" in keys or f"k{n}" not in keys  # the pair went in whole
            cache.put_many("m", {f"a{n}": vec})
            other.put_many("m", {f"o{n}": vec})

        assert _walk(write, after) > 5
    finally:
        cache.close()
        other.close()


def test_interrupt_at_any_line_of_a_cursor_save(tmp_path: Path) -> None:
    path = tmp_path / "cursors.db"
    cursors, other = SQLiteCursorStore(path), SQLiteCursorStore(path)

    def write(n: int) -> None:
        cursors.set("index", f"c{n}")

    def after(n: int) -> None:
        assert cursors.get("index") in (f"c{n}", f"c{n - 1}", f"after {n - 1}", None)
        cursors.set("mine", f"after {n}")
        other.set("theirs", f"other {n}")

    assert _walk(write, after) > 3
