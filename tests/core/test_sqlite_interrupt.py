"""A ``KeyboardInterrupt`` landing on any line of a SQLite write leaves the store usable.

The interrupt is injected with ``sys.settrace`` at the n-th line executed inside the store's
write path (``append`` and the transaction helper), for every n until the append completes
untouched; after each, this connection and a second one can still write, and nothing of the
interrupted append is half-visible.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType
from typing import Any

from tela_memory import Message
from tela_memory.stores import sqlite as sqlite_module
from tela_memory.stores.sqlite import SQLiteStore

_WATCHED = {sqlite_module.__file__}


class _Interrupt:
    """Raise ``KeyboardInterrupt`` at the ``at``-th line event in the watched module."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.seen = 0
        self.fired = False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename not in _WATCHED:
            return None
        if event == "line":
            self.seen += 1
            if self.seen == self.at:
                self.fired = True
                raise KeyboardInterrupt
        return self


def test_interrupt_at_any_line_of_append(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SQLiteStore(path) as store, SQLiteStore(path) as other:
        alice = store.for_user("alice")
        alice.append("t", Message.user("before"))
        at = 1
        interrupted = 0
        while True:
            trace = _Interrupt(at)
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
