"""Recall over past conversations on Chroma, with a collection per user.

The conversations live in a SQLite store (the embedded default); ``StoreIndexer`` copies them
into a ``ChromaIndex`` on ``chromadb.PersistentClient`` in a temporary folder (the real Chroma
engine, in process, no server). Alice and Bob both talked about the dentist in a thread they
each called ``health``: each user's turns are in a Chroma collection of their own, so a
search for Alice cannot reach Bob's, and erasing Bob deletes his collection.

Offline, a few seconds: the embedder is the core's deterministic ``HashEmbedder`` (use a real
model through ``tela_memory.recall`` adapters in practice). A Chroma server works the same
way: ``ChromaIndex(url="http://127.0.0.1:8000")`` (``chroma run --path ./data``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tela_memory import Message
from tela_memory.privacy import erase_user
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.recaller import Recaller
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_chroma import ChromaIndex


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as folder,
        SQLiteStore(Path(folder) / "chat.db") as store,
        ChromaIndex(Path(folder) / "chroma", embedder=HashEmbedder(64)) as index,
    ):
        store.append(
            "health",
            [
                Message.user("My dentist appointment is on Tuesday at 9."),
                Message.assistant("Noted: dentist, Tuesday 9am."),
            ],
            user_id="alice",
        )
        store.append("trip", Message.user("Book a table in Lisbon for Friday."), user_id="alice")
        store.append("health", Message.user("My dentist is Dr. Bob's cousin."), user_id="bob")
        report = StoreIndexer(store, index).sync()
        print(f"indexed {report.indexed} turns into {index.address}")

        recaller = Recaller(index)
        for hit in recaller.search("when is the dentist?", user_id="alice", k=3):
            print(f"alice  {hit.score:.3f}  [{hit.message.thread_id}] {hit.text}")
        lexical = index.search("dentist", filter={"user_id": "alice"}, mode="lexical")
        assert all(h.message.user_id == "alice" for h in lexical)
        print("alice's turns about the dentist:", len(lexical))

        receipt = erase_user("bob", store, index)
        print("erased bob:", receipt.messages, "messages;", dict(receipt.extra))
        assert index.count({"user_id": "bob"}) == 0
        assert index.count({"user_id": "alice"}) == 3


if __name__ == "__main__":
    main()
