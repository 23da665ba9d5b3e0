"""Writes ``tests/data/recall_v1.db``: a store and its embedded recall index as
tela-memory-core at 0057bd3 (before threads were namespaced per user) left them.

Run it with the old code first on the path (``/tmp/before`` is a checkout of 0057bd3)::

    PYTHONPATH=/tmp/before/packages/tela-memory-core/src \\
        .venv/bin/python tests/data/make_recall_v1.py tests/data/recall_v1.db

What the file holds (times fixed, ids fixed, so the file is reproducible):

- ``notes``: an ownerless thread (the old store took no user): three turns about a sourdough
  starter, indexed with ``user_id`` NULL and the FTS scope token ``unull``;
- ``t1``: Ada's thread, four turns about a lighthouse trip (a question and its answer, so
  turns carry their parent's words as context and contextual vectors);
- ``b1``: Bob's thread, two turns about chess;
- the index was filled by a ``StoreIndexer`` named ``recall`` (watermark saved) with a 32-dimension
  ``HashEmbedder``; then Ada's last turn was edited in the store and not synced yet, so a
  change waits in ``recall_changes``.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tela_memory.messages import Message, TextBlock
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder

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
    target.unlink(missing_ok=True)
    with SQLiteStore(target) as store:
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
        ada = store.append(
            "t1",
            _turns(
                "a",
                [
                    ("user", "which lighthouse should we visit in Brittany?"),
                    ("assistant", "Phare du Creach on Ouessant is the most powerful"),
                    ("user", "how do we get to Ouessant?"),
                    ("assistant", "take the ferry from Le Conquet"),
                ],
                1,
            ),
            user_id="ada",
        )
        store.append(
            "b1",
            _turns(
                "b",
                [("user", "what is a good chess opening?"), ("assistant", "try the Italian")],
                2,
            ),
            user_id="bob",
        )
        with SQLiteIndex.for_store(store, embedder=HashEmbedder(32)) as index:
            StoreIndexer(store, index, name="recall").sync()
        store.update_message(
            ada[3].model_copy(update={"content": [TextBlock(text="take the ferry from Brest")]})
        )
    with sqlite3.connect(target) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    with sqlite3.connect(target, isolation_level=None) as conn:
        conn.execute("VACUUM")
    conn.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
