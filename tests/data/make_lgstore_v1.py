"""Writes ``lgstore_v1.db``: a file as tela-memory-langchain wrote it before items had owners.

Run it with the code of 0057bd3 first on the path (the checked-in file was made this way)::

    OLD=<a checkout of 0057bd3>/packages
    PYTHONPATH=$OLD/tela-memory-core/src:$OLD/tela-memory-langchain/src \
        python tests/data/make_lgstore_v1.py tests/data/lgstore_v1.db

What it holds: a message store (schema 1) with Ada's thread ``a1``; LangGraph items written
by one shared ``TelaStore`` (no owner), indexed with ``HashEmbedder(8)`` on ``text``:
``("memories", "ada")`` home and pets/cat, ``("memories", "bob")`` home, ``("profile", "ada")``
name, ``("shared", "notes")`` motd (no user in it) and ``("memories", "ada")`` a TTL item
(100 years).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tela_memory.messages import Message
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_langchain.graph_store import TelaStore


def main(path: Path) -> None:
    path.unlink(missing_ok=True)
    with SQLiteStore(path) as messages:
        messages.append("a1", Message.user("I live in Lisbon"), user_id="ada")
        graph = TelaStore.for_store(  # type: ignore[call-arg]
            messages, index={"embed": HashEmbedder(8), "fields": ["text"]}
        )
        graph.put(("memories", "ada"), "home", {"text": "ada lives in Lisbon"})
        graph.put(("memories", "ada", "pets"), "cat", {"text": "ada has a cat named Tom"})
        graph.put(("memories", "bob"), "home", {"text": "bob lives in Oslo"})
        graph.put(("profile", "ada"), "name", {"text": "Ada Lovelace"})
        graph.put(("shared", "notes"), "motd", {"text": "welcome to the team"})
        graph.put(
            ("memories", "ada"), "trip", {"text": "ada flies to Rome"}, ttl=60 * 24 * 365 * 100
        )
        graph.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
