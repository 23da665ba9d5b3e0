"""Erasure leaves no recoverable trace in the raw files: the SQLite store's database and WAL,
the full-text segments of the embedded index in the same file, a separate index file and the
SQLite embedding cache of its embedder.

The files are read byte by byte while the store is still open (the worst case: nothing has
been closed or checkpointed by a clean shutdown)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tela_memory.context import SUMMARY_KEY
from tela_memory.messages import Message, TextBlock, ThinkingBlock, ToolCallBlock
from tela_memory.privacy import erase_user, message_texts
from tela_memory.recall.cache import CachedEmbedder, SQLiteCache, text_key
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.records import SQLiteRecordStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing import HashEmbedder

# one marker per place a string is kept; they end in "qx" so that the porter stemmer of the
# full-text index keeps them whole, and start with pairs no English word shares
ADA = {
    "text": "zqvtextqx",
    "edited": "jxwedittedqx",
    "metadata": "vqzmetaqx",
    "arguments": "xjkargsqx",
    "thinking": "kzqthoughtqx",
    "result": "wqjresultqx",
    "title": "qzvtitleqx",
    "tag": "zjqtagqx",
    "name": "jqzvnameqx",
    "summary": "wjzsummaryqx",
}
BOB = "bobuniqueqx"

# the folder, the store, the index in its file, an index in a file of its own
World = tuple[Path, SQLiteStore, SQLiteIndex, SQLiteIndex]


def _raw(folder: Path) -> bytes:
    """Every byte of every file in ``folder`` (database, WAL, shared memory, other files)."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def _found(raw: bytes) -> set[str]:
    """The Ada markers present in ``raw``. Full-text segments store a term after the prefix
    it shares with the previous term, so the marker without its first letter is searched."""
    return {k for k, v in ADA.items() if v[1:].encode() in raw}


def _seed(store: SQLiteStore) -> None:
    ada = store.for_user("ada")
    ada.append("chat", Message.user(f"my secret is {ADA['text']} and more", name=ADA["name"]))
    call = ToolCallBlock(id="c1", name="lookup", arguments={"q": ADA["arguments"]})
    (asked,) = ada.append(
        "chat",
        Message.assistant(
            [ThinkingBlock(text=f"thinking about {ADA['thinking']}"), call],
            metadata={"note": ADA["metadata"]},
        ),
    )
    ada.append("chat", Message.tool("c1", f"found {ADA['result']}"))
    (answer,) = ada.append("chat", Message.assistant("here is the answer"))
    ada.update_message(answer.model_copy(update={"content": [TextBlock(text=ADA["edited"])]}))
    ada.update_thread(
        "chat",
        title=f"about {ADA['title']}",
        tags=[ADA["tag"]],
        # where the context engine keeps a thread's progressive summary
        metadata={SUMMARY_KEY: {"text": f"so far: {ADA['summary']}"}},
    )
    ada.fork("chat", asked.id, name="alt")
    store.for_user("bob").append("chat", Message.user(f"bob says {BOB}"))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    folder = tmp_path / "data"
    folder.mkdir()
    # a short busy timeout: the test that holds a reader open waits this long for it
    store = SQLiteStore(folder / "store.db", timeout=0.2)
    cached = CachedEmbedder(HashEmbedder(), SQLiteCache(folder / "cache.db"))
    same = SQLiteIndex.for_store(store)
    other = SQLiteIndex(folder / "index.db", embedder=cached)
    _seed(store)
    for index in (same, other):
        StoreIndexer(store, index).sync()
    try:
        yield folder, store, same, other
    finally:
        other.close()
        same.close()
        store.close()
        cached.cache.close()  # type: ignore[attr-defined]


def test_every_marker_is_in_the_files_before_erasure(world: World) -> None:
    """The control: the scanner finds what was written (so the next test can fail)."""
    folder = world[0]
    assert _found(_raw(folder)) == set(ADA)
    assert BOB.encode() in _raw(folder)


def test_erasure_leaves_no_trace_in_database_wal_or_fts(world: World) -> None:
    folder, store, same, other = world
    receipt = erase_user("ada", store, same, other)
    assert receipt.messages == 4
    raw = _raw(folder)
    assert _found(raw) == set()
    assert BOB.encode() in raw  # only Ada went
    assert receipt.traces_left == ()
    assert "store file: WAL checkpointed and truncated" in receipt.scrubbed
    assert any("full-text segments merged" in s for s in receipt.scrubbed)
    assert (folder / "store.db-wal").stat().st_size == 0
    # every store and index still works, and Bob's recall still finds him
    store.for_user("bob").append("chat", Message.user("still here"))
    StoreIndexer(store, other).sync()
    hits = other.search(BOB, mode="lexical", filter={"user_id": "bob"})
    assert hits[0].message.text == f"bob says {BOB}"


def test_a_reader_holding_the_wal_is_reported_then_scrubbed_on_the_next_run(world: World) -> None:
    folder, store, same, other = world
    reader = sqlite3.connect(folder / "store.db")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM messages").fetchone()  # holds a snapshot
        held = erase_user("ada", store)
        assert any("store file: the WAL is in use" in t for t in held.traces_left)
    finally:
        reader.close()
    again = erase_user("ada", store, same, other)
    assert again.messages == 0
    assert again.traces_left == ()
    assert _found(_raw(folder)) == set()


def test_records_in_the_same_file_are_erased_everywhere_without_trace(world: World) -> None:
    folder, store, same, other = world
    records = SQLiteRecordStore(store)
    fact = "qvjfactqx"
    records.put(("facts",), "city", {"text": f"lives near {fact}"}, user_id="ada", kind="fact")
    records.put(("facts",), "city", {"text": "lives in Oslo"}, user_id="bob", kind="fact")
    assert fact[1:].encode() in _raw(folder)
    receipt = erase_user("ada", store, same, other, records)
    assert receipt.extra["records:SQLiteRecordStore"] == 1
    assert receipt.traces_left == ()
    assert "record file: WAL checkpointed and truncated" in receipt.scrubbed
    assert records.get(("facts",), "city", user_id="ada") is None
    assert records.get(("facts",), "city", user_id="bob") is not None
    raw = _raw(folder)
    assert fact[1:].encode() not in raw
    assert _found(raw) == set()


def test_the_embedding_cache_keeps_no_key_or_vector_of_the_user(world: World) -> None:
    """The cache is keyed by a hash of each text: the hash alone confirms a guessed text, and
    the vector is the text's embedding, so both are the user's data."""
    folder, store, same, other = world

    def traces(user: str) -> set[bytes]:
        texts = [t for m in store.for_user(user).read("chat") for t in message_texts(m)]
        vectors = HashEmbedder().embed(texts).astype("float32")
        return {text_key(t).encode() for t in texts} | {v.tobytes() for v in vectors}

    def found(wanted: set[bytes]) -> set[bytes]:
        raw = b"".join(p.read_bytes() for p in sorted(folder.glob("cache.db*")))
        return {w for w in wanted if w in raw}

    ada, bob = traces("ada"), traces("bob")
    bob_before = found(bob)
    assert len(found(ada)) >= 4  # the control: keys and vectors are there
    assert bob_before
    receipt = erase_user("ada", store, same, other)
    assert receipt.extra["embedding_cache:SQLiteCache"] > 0
    assert "embedding cache file: WAL checkpointed and truncated" in receipt.scrubbed
    assert receipt.traces_left == ()
    assert found(ada) == set()
    assert found(bob) == bob_before  # Bob's entries stay: his next sync embeds nothing
