"""An index that crashes half-way through indexing, for tests of resuming after a crash."""

from __future__ import annotations

from typing import TypeVar

from tela_memory.recall.index import Document, Index

I = TypeVar("I", bound=Index)  # noqa: E741 - the conventional name of a type variable


def crashing(index_class: type[I], *, batches: int = 1) -> type[I]:
    """A subclass of ``index_class`` whose writes fail with ``RuntimeError("power cut")``
    after ``batches`` upserts, like a process killed in the middle of
    ``StoreIndexer.sync()``: the next sync with a healthy index must resume where it stopped.
    """

    class Crashing(index_class):  # type: ignore[valid-type,misc]
        ok = batches

        def _upsert(self, docs: list[Document]) -> None:
            if self.ok <= 0:
                raise RuntimeError("power cut")
            self.ok -= 1
            super()._upsert(docs)

    Crashing.__name__ = Crashing.__qualname__ = f"Crashing{index_class.__name__}"
    return Crashing


__all__ = ["crashing"]
