"""Writes a legacy Qdrant index as tela-memory at 0057bd3 (before threads were namespaced per
user) left it: a qdrant-client local-mode folder, indexed from a SQLite store by a
``StoreIndexer`` with a 16-dimension ``HashEmbedder``. (A Qdrant Edge shard is hundreds of
sparse files; the tests build the legacy shard from this folder's points instead, written by
the same payload code.)

Run it with the old code first on the path (``/tmp/before`` is a checkout of 0057bd3)::

    OLD=/tmp/before/packages
    PYTHONPATH=$OLD/tela-memory-core/src:$OLD/tela-memory-qdrant/src \\
        .venv/bin/python tests/qdrant/data/make_legacy_qdrant.py tests/qdrant/data/legacy_local

What they hold (ids and times fixed):

- ``notes``: an ownerless thread (the old store took no user): three turns about a sourdough
  starter; their points carry ``user_id`` null (payload and stored message);
- ``t1``: Ada's thread, two turns about a lighthouse;
- ``b1``: Bob's thread, one turn about chess.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tela_memory.messages import Message
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_qdrant import QdrantIndex

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _turns(prefix: str, texts: list[tuple[str, str]], day: int) -> list[Message]:
    return [
        Message(
            id=f"{prefix}-{i}",
            role=role,  # type: ignore[arg-type]
            content=text,
            created_at=T0 + timedelta(days=day, minutes=i),
        )
        for i, (role, text) in enumerate(texts)
    ]


def main(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    with SQLiteStore(":memory:") as store:
        store.append(
            "notes",
            _turns(
                "n",
                [
                    ("user", "my sourdough starter is called Bubbles"),
                    ("assistant", "feed Bubbles flour and water every morning"),
                    ("user", "Bubbles doubled overnight"),
                ],
                0,
            ),
        )
        store.append(
            "t1",
            _turns(
                "a",
                [
                    ("user", "which lighthouse should we visit in Brittany?"),
                    ("assistant", "Phare du Creach on Ouessant"),
                ],
                1,
            ),
            user_id="ada",
        )
        store.append("b1", _turns("b", [("user", "a good chess opening?")], 2), user_id="bob")
        with QdrantIndex(path=target, embedder=HashEmbedder(16)) as index:
            StoreIndexer(store, index).sync()
    (target / ".lock").unlink(missing_ok=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
