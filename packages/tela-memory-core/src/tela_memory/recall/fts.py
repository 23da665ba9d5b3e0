"""The embedded index's tables and FTS5 side: the schema (and its migrations), query words,
stopwords, quoting, scope tokens."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3

from tela_memory.recall.types import SearchFilter, ThreadKey
from tela_memory.stores.base import DEFAULT_USER
from tela_memory.stores.sqlite_db import write_transaction

_WORD = re.compile(r"\w+", re.UNICODE)
# Function words that only slow an OR query down; BM25 would give them ~0 weight anyway.
STOPWORDS = frozenset(
    """
    a about after again all am an and any are as at be been before being but by can could
    did do does doing down during each few for from had has have having he her here hers him
    his how i if in into is it its itself just me more most my no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their
    theirs them then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours
    """.split()  # noqa: SIM905
)
MAX_SCOPE_TOKENS = 64

# One statement each (run one by one inside the opening transaction). ``recall_fts`` holds a
# turn's ranked text, its parent's (``context``, same id as the vectors' ``parent_id``) and the
# hashed scope tokens. Deleting a turn empties its children's ``context`` (no deleted words
# stay searchable); re-indexing a turn refreshes it (``SQLiteIndex._upsert``).
PARENT_ID = "json_extract(message, '$.parent_id')"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS recall_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS recall_docs(
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        message TEXT NOT NULL,
        text TEXT NOT NULL,
        vec BLOB
    )""",
    "CREATE INDEX IF NOT EXISTS recall_docs_user ON recall_docs(user_id, created_at)",
    "DROP INDEX IF EXISTS recall_docs_thread",
    "CREATE INDEX IF NOT EXISTS recall_docs_user_thread"
    " ON recall_docs(user_id, thread_id, created_at, id)",
    f"CREATE INDEX IF NOT EXISTS recall_docs_parent ON recall_docs({PARENT_ID})",
    """CREATE VIRTUAL TABLE IF NOT EXISTS recall_fts USING fts5(
        text, context, scope, tokenize = 'porter unicode61 remove_diacritics 2'
    )""",
    f"""CREATE TRIGGER IF NOT EXISTS recall_docs_ad AFTER DELETE ON recall_docs BEGIN
        DELETE FROM recall_fts WHERE rowid = old.rowid;
        UPDATE recall_fts SET context = '' WHERE rowid IN
            (SELECT rowid FROM recall_docs WHERE {PARENT_ID} = old.id);
    END""",
)


def scope_token(kind: str, value: str | None) -> str:
    """The hashed token standing for a user (``kind="u"``) or thread (``"t"``) in the FTS row.

    A row carries its user's token and its thread id's; a thread filter is always ANDed with
    the user's token by the readers, so ``(user, thread)`` is what selects a thread."""
    if value is None:
        return f"{kind}null"
    return kind + hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()


def query_terms(text: str) -> list[str]:
    """The distinct lower-cased words of a query, stopwords dropped unless nothing else is left."""
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))


def phrase(word: str) -> str:
    """``word`` as an FTS5 string (double-quoted, so it is never query syntax)."""
    return '"' + word.replace('"', '""') + '"'


def fts_query(text: str) -> str | None:
    """An FTS5 OR-query of the query's words (stopwords dropped unless nothing else is left).

    Every word is double-quoted, so no character of the input acts as query syntax.
    """
    unique = query_terms(text)
    if not unique:
        return None
    return " OR ".join(phrase(w) for w in unique)


def scope_conditions(flt: SearchFilter) -> list[str] | None:
    """FTS5 conditions on the hashed scope tokens (``None``: the filter admits nothing)."""
    scope = [f'scope : "{scope_token("u", flt.user_id)}"'] if flt.user_id is not None else []
    if flt.thread_ids is not None:
        if not flt.thread_ids:
            return None
        if len(flt.thread_ids) <= MAX_SCOPE_TOKENS:
            tokens = " OR ".join(f'"{scope_token("t", t)}"' for t in flt.thread_ids)
            scope.append(f"scope : ({tokens})")
    return scope


def row_scope(user_id: str, thread_id: str) -> str:
    """The ``scope`` column of a turn's FTS row: its user's and its thread id's tokens."""
    return f"{scope_token('u', user_id)} {scope_token('t', thread_id)}"


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables and migrate older files, in one transaction, nothing re-embedded:

    - a ``recall_fts`` without the parent column gets it (each row its parent's text);
    - rows indexed without a user (before threads were namespaced per user) get the owner
      the store gave their message, else :data:`~tela_memory.stores.base.DEFAULT_USER` (the
      store's own migration gives ownerless threads to it), in the row, in the stored
      message and in the FTS scope token, so that user finds them and nobody else does.
    """
    with write_transaction(conn):
        columns = [r[1] for r in conn.execute("PRAGMA table_info(recall_fts)")]
        old = bool(columns) and "context" not in columns
        if old:
            conn.execute("DROP TRIGGER IF EXISTS recall_docs_ad")
            conn.execute("ALTER TABLE recall_fts RENAME TO recall_fts_old")
        for statement in SCHEMA:
            conn.execute(statement)
        if old:
            conn.execute(
                "INSERT INTO recall_fts(rowid, text, context, scope) "
                "SELECT o.rowid, o.text, coalesce(po.text, ''), o.scope FROM recall_fts_old AS o "
                "JOIN recall_docs AS d ON d.rowid = o.rowid "
                "LEFT JOIN recall_docs AS p ON p.id = json_extract(d.message, '$.parent_id') "
                "AND p.thread_id = d.thread_id AND p.user_id IS d.user_id "
                "LEFT JOIN recall_fts_old AS po ON po.rowid = p.rowid"
            )
            conn.execute("DROP TABLE recall_fts_old")
        _own_legacy_rows(conn)


def _own_legacy_rows(conn: sqlite3.Connection) -> None:
    """Give rows indexed without a user their owner (see :func:`create_tables`)."""
    if conn.execute("SELECT 1 FROM recall_docs WHERE user_id IS NULL LIMIT 1").fetchone() is None:
        return
    has_messages = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'"
    ).fetchone()
    owner = (
        "coalesce((SELECT m.user_id FROM messages AS m WHERE m.id = d.id), ?)"
        if has_messages
        else "?"
    )
    rows = conn.execute(
        f"SELECT d.rowid, {owner}, d.thread_id FROM recall_docs AS d WHERE d.user_id IS NULL",
        (DEFAULT_USER,),
    ).fetchall()
    conn.executemany(
        "UPDATE recall_docs SET user_id = ?, message = json_set(message, '$.user_id', ?) "
        "WHERE rowid = ?",
        [(user, user, rowid) for rowid, user, _ in rows],
    )
    conn.executemany(
        "UPDATE recall_fts SET scope = ? WHERE rowid = ?",
        [(row_scope(user, thread), rowid) for rowid, user, thread in rows],
    )


def indexed_texts(conn: sqlite3.Connection, ids: list[str]) -> dict[str, tuple[ThreadKey, str]]:
    """The thread and ranked text (``recall_fts.text``) of those of these messages that are
    indexed."""
    rows = conn.execute(
        "SELECT d.id, d.user_id, d.thread_id, f.text FROM recall_docs AS d "
        "JOIN recall_fts AS f ON f.rowid = d.rowid "
        "WHERE d.id IN (SELECT value FROM json_each(?))",
        (json.dumps(ids),),
    )
    return {str(r[0]): ((r[1], r[2]), str(r[3])) for r in rows}


__all__ = [
    "PARENT_ID",
    "SCHEMA",
    "STOPWORDS",
    "create_tables",
    "fts_query",
    "indexed_texts",
    "phrase",
    "query_terms",
    "row_scope",
    "scope_conditions",
    "scope_token",
]
