"""A ``KeyboardInterrupt`` landing on any line of a LangGraph ``TelaStore`` write leaves the
file usable: the interrupt is walked over every line of a ``batch`` of puts and a delete
(the store's module, its schema module and the shared SQLite helper), and after each the
batch is there whole or not at all, no transaction is left open, and this store and a
second one on the same file can write."""

from __future__ import annotations

import sys
from pathlib import Path

from langgraph.store.base import IndexConfig, PutOp

from interrupts import Interrupt
from tela_memory.stores import sqlite_db
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_langchain import _graph_schema, graph_store
from tela_memory_langchain.graph_store import TelaStore

_WATCHED = {m.__file__ for m in (graph_store, _graph_schema, sqlite_db)}


def test_interrupt_at_any_line_of_a_batch(tmp_path: Path) -> None:
    path = str(tmp_path / "graph.db")
    config: IndexConfig = {"embed": HashEmbedder(16), "dims": 16, "fields": ["text"]}
    store = TelaStore(path, user_id="ada", index=config)
    other = TelaStore(path, user_id="ada")
    store.put(("notes",), "old", {"text": "before"})
    at, interrupted = 1, 0
    try:
        while True:
            trace = Interrupt(at, _WATCHED)
            ops = [
                PutOp(("notes",), f"a{at}", {"text": f"first {at}"}),
                PutOp(("notes",), f"b{at}", {"text": f"second {at}"}),
                PutOp(("notes",), "old", None),  # a delete in the same batch
            ]
            sys.settrace(trace)
            try:
                store.batch(ops)
            except KeyboardInterrupt:
                pass
            finally:
                sys.settrace(None)
            got = {k: store.get(("notes",), k) for k in (f"a{at}", f"b{at}", "old")}
            done = got[f"a{at}"] is not None
            # all or nothing: both puts and the delete, or none of them
            assert (got[f"b{at}"] is not None) == done
            assert (got["old"] is None) == done
            # no transaction left open: this store still writes, and so does another connection
            store.put(("notes",), "old", {"text": "again"})
            other.put(("notes",), f"other{at}", {"text": "x"})
            if not trace.fired:
                break
            interrupted += 1
            at += 1
    finally:
        other.close()
        store.close()
    assert interrupted > 20  # the injection really walked the write path
