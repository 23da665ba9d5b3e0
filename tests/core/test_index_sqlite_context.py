"""The embedded index ranks a turn by its parent's words too (weighted 0.3), counts only its
own words per thread, keeps children right when a parent is re-indexed or deleted, and
migrates files built before the parent column existed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message, Role, TextBlock
from tela_memory.recall.fts import scope_token
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.stores._common import to_micros
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import msg

# The layout written by the previous version (recall_fts without the parent column).
_OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS recall_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recall_docs(
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT,
    thread_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    message TEXT NOT NULL,
    text TEXT NOT NULL,
    vec BLOB
);
CREATE INDEX IF NOT EXISTS recall_docs_user ON recall_docs(user_id, created_at);
CREATE INDEX IF NOT EXISTS recall_docs_thread ON recall_docs(thread_id, created_at, id);
CREATE VIRTUAL TABLE IF NOT EXISTS recall_fts USING fts5(
    text, scope, tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS recall_docs_ad AFTER DELETE ON recall_docs BEGIN
    DELETE FROM recall_fts WHERE rowid = old.rowid;
END;
"""


def _chain(*texts: str, thread: str, user: str = "u1", at: int = 0) -> list[Message]:
    """Turns of one branch, each the parent of the next, alternating user / assistant."""
    out: list[Message] = []
    for i, text in enumerate(texts):
        m = msg(
            text,
            user=user,
            thread=thread,
            at=at + i,
            role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
        )
        if out:
            m = m.model_copy(update={"parent_id": out[-1].id})
        out.append(m)
    return out


def _ids(index: SQLiteIndex, query: str, **kw: object) -> list[str]:
    return [h.message.id for h in index.search(query, mode="lexical", k=20, **kw)]  # type: ignore[arg-type]


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SQLiteIndex]:
    with SQLiteIndex(tmp_path / "recall.db", embedder=HashEmbedder(dimension=32)) as idx:
        yield idx


def test_parent_words_find_a_reply_below_turns_holding_them(index: SQLiteIndex) -> None:
    question, reply = _chain(
        "Where did you go camping last summer?", "By a lake, lovely.", thread="t1"
    )
    other = _chain("Hello there", "We went camping with the kids in June.", thread="t2", at=10)
    noise = _chain("The weather is nice", "Indeed, sunny all week.", thread="t3", at=20)
    index.upsert([question, reply, *noise])  # parent in the same batch
    index.upsert(other)

    hits = index.search("camping", mode="lexical", k=10)
    order = [h.message.id for h in hits]
    assert set(order) == {question.id, other[1].id, reply.id}
    assert order[-1] == reply.id  # found through its parent only, so ranked last
    by_id = {h.message.id: h for h in hits}
    assert by_id[reply.id].text == "By a lake, lovely."  # the hit shows the turn's own text
    assert 0 < (by_id[reply.id].lexical_score or 0) < (by_id[question.id].lexical_score or 0)
    # the parent's words reach only its direct children
    assert "camping" not in _ids(index, "sunny")
    assert _ids(index, "sunny") == [noise[1].id]


def test_parent_indexed_in_an_earlier_batch_counts(index: SQLiteIndex) -> None:
    question, reply = _chain("Any news about the marathon?", "Yes, I finished it!", thread="t1")
    index.upsert(question)
    index.upsert(reply)
    assert _ids(index, "marathon") == [question.id, reply.id]


def test_parent_not_indexed_leaves_the_column_empty(index: SQLiteIndex) -> None:
    _question, reply = _chain("Any news about the marathon?", "Yes, I finished it!", thread="t1")
    index.upsert(reply)  # its parent was never indexed
    assert _ids(index, "marathon") == []
    assert _ids(index, "finished") == [reply.id]


def test_parent_weight_zero_ranks_by_own_words_only(tmp_path: Path) -> None:
    question, reply = _chain("Where did you go camping?", "By a lake.", thread="t1")
    with SQLiteIndex(tmp_path / "own.db", parent_weight=0) as idx:
        idx.upsert([question, reply])
        assert _ids(idx, "camping") == [question.id]
    with pytest.raises(TelaMemoryError, match="parent_weight"):
        SQLiteIndex(tmp_path / "bad.db", parent_weight=-0.1)


def test_thread_term_counts_count_own_words_only(index: SQLiteIndex) -> None:
    t1 = _chain("Where did you go camping?", "By a lake.", "Sounds great.", thread="t1")
    t2 = _chain("I love camping.", "Me too, camping is fun.", thread="t2", at=10)
    index.upsert([*t1, *t2])
    counts = index.thread_term_counts("camping", filter={"user_id": "u1"})
    t1_key, t2_key = ("u1", "t1"), ("u1", "t2")  # threads are (user, thread id)
    assert counts.turns == {t1_key: 3, t2_key: 2}
    assert counts.terms["camping"] == {t1_key: 1, t2_key: 2}  # the reply in t1 does not count


def test_deleting_a_parent_takes_its_words_out_of_children(index: SQLiteIndex) -> None:
    question, reply = _chain("My secret password is swordfish", "Noted.", thread="t1")
    index.upsert([question, reply])
    assert _ids(index, "swordfish") == [question.id, reply.id]
    assert index.delete(question.id) == 1
    assert _ids(index, "swordfish") == []
    assert _ids(index, "noted") == [reply.id]


def test_store_update_and_retention_reach_children(tmp_path: Path) -> None:
    """Through the store: ``update_message`` on a parent refreshes its indexed children on the
    next ``sync()``; a parent the store deletes leaves its children's context at once."""
    with SQLiteStore(tmp_path / "s.db") as store, SQLiteIndex.for_store(store) as index:
        stored = store.append(
            "t1",
            [
                Message(role=Role.USER, content="Shall we book the ferry?"),
                Message(role=Role.ASSISTANT, content="Yes, tomorrow morning."),
            ],
            user_id="u1",
        )
        parent, child = stored
        assert child.parent_id == parent.id
        indexer = StoreIndexer(store, index)
        indexer.sync()
        assert _ids(index, "ferry") == [parent.id, child.id]

        store.update_message(
            parent.model_copy(update={"content": [TextBlock(text="Shall we book the train?")]}),
            user_id="u1",
        )
        indexer.sync()
        assert _ids(index, "ferry") == []
        assert _ids(index, "train") == [parent.id, child.id]

        store.delete_thread("t1", user_id="u1")
        assert _ids(index, "train") == []
        with index._read() as conn:  # nothing of the thread is left in the FTS table
            assert conn.execute("SELECT count(*) FROM recall_fts").fetchone()[0] == 0


def _write_old_file(path: Path, messages: list[Message], embedder: HashEmbedder) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(_OLD_SCHEMA)
    conn.execute(
        "INSERT INTO recall_meta(key, value) VALUES ('model_id', ?), ('dimension', ?)",
        (embedder.model_id, str(embedder.dimension)),
    )
    vectors = embedder.embed([m.text for m in messages])
    for m, vec in zip(messages, vectors, strict=True):
        cur = conn.execute(
            "INSERT INTO recall_docs(id, user_id, thread_id, role, created_at, metadata, message,"
            " text, vec) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                m.id,
                m.user_id,
                m.thread_id,
                m.role.value,
                to_micros(m.created_at),
                json.dumps(m.metadata),
                m.model_dump_json(exclude_none=True),
                m.text,
                np.asarray(vec, dtype=np.float32).tobytes(),
            ),
        )
        ranked = f"{m.name}: {m.text}" if m.name else m.text
        conn.execute(
            "INSERT INTO recall_fts(rowid, text, scope) VALUES (?, ?, ?)",
            (
                cur.lastrowid,
                ranked,
                f"{scope_token('u', m.user_id)} {scope_token('t', m.thread_id)}",
            ),
        )
    conn.close()


def test_old_file_is_migrated_on_open(tmp_path: Path) -> None:
    embedder = HashEmbedder(dimension=32)
    question, reply = _chain("Did you adopt the puppy?", "Yes! She is called Luna.", thread="t1")
    question = question.model_copy(update={"name": "Caroline"})
    other = _chain("Dinner tonight?", "Sure, pasta.", thread="t2", user="u2", at=5)
    path = tmp_path / "old.db"
    _write_old_file(path, [question, reply, *other], embedder)
    with sqlite3.connect(path) as raw:
        before = dict(raw.execute("SELECT id, vec FROM recall_docs").fetchall())

    with SQLiteIndex(path, embedder=embedder) as index:
        # found through its parent's words, below the parent; scope still filters
        assert _ids(index, "puppy") == [question.id, reply.id]
        assert _ids(index, "puppy", filter={"user_id": "u2"}) == []
        assert _ids(index, "caroline") == [question.id, reply.id]  # name kept in ranked text
        counts = index.thread_term_counts("puppy", filter={"user_id": "u1"})
        assert counts.terms["puppy"] == {("u1", "t1"): 1}
        # vectors untouched (no re-embedding), dense search still works
        with index._read() as conn:
            assert dict(conn.execute("SELECT id, vec FROM recall_docs").fetchall()) == before
            columns = [r[1] for r in conn.execute("PRAGMA table_info(recall_fts)")]
            assert columns == ["text", "context", "scope"]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            assert "recall_fts_old" not in tables
        dense = index.search("Dinner tonight?", mode="dense", k=1, filter={"user_id": "u2"})
        assert dense[0].message.id == other[0].id
        # the new delete trigger is in place: deleting the parent clears the child's context
        index.delete(question.id)
        assert _ids(index, "puppy") == []

    with SQLiteIndex(path, embedder=embedder) as again:  # opening twice is harmless
        assert _ids(again, "luna") == [reply.id]
        assert again.count() == 3


def test_failed_migration_leaves_the_old_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    question, reply = _chain("Did you adopt the puppy?", "Yes!", thread="t1")
    _write_old_file(path, [question, reply], HashEmbedder(dimension=32))
    with sqlite3.connect(path, isolation_level=None) as raw:
        # a table in the way of the rename makes the migration fail half-way
        raw.execute("CREATE TABLE recall_fts_old(x)")
    with pytest.raises(TelaMemoryError):
        SQLiteIndex(path).count()
    with sqlite3.connect(path) as raw:
        columns = [r[1] for r in raw.execute("PRAGMA table_info(recall_fts)")]
        triggers = [
            r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        ]
    assert columns == ["text", "scope"]
    assert triggers == ["recall_docs_ad"]
