"""Test helper: a ``sys.settrace`` tracer that raises ``KeyboardInterrupt`` at the n-th line
executed inside a set of watched modules (to walk an interrupt over every line of a path)."""

from __future__ import annotations

from collections.abc import Iterable
from types import FrameType
from typing import Any


class Interrupt:
    """Raise ``KeyboardInterrupt`` at the ``at``-th line event in the watched files, once."""

    def __init__(self, at: int, watched: Iterable[str | None]) -> None:
        self.at = at
        self.watched = {w for w in watched if w}
        self.seen = 0
        self.fired = False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename not in self.watched:
            return None
        if event == "line" and not self.fired:
            self.seen += 1
            if self.seen == self.at:
                self.fired = True
                raise KeyboardInterrupt
        return self
