"""SQL of the store, composed once per PostgreSQL schema.

Every statement is a template whose only substitution is the schema name, quoted as an
identifier by ``psycopg.sql``; values always travel as parameters (``%s`` / ``%(name)s``),
never inside the SQL text.
"""

from __future__ import annotations

from functools import cache
from typing import LiteralString

from psycopg import sql


def compose(template: LiteralString, schema: str, **names: str) -> bytes:
    """``template`` with ``{s}`` replaced by the quoted schema name (and any other ``{name}``
    by the quoted identifier given), as the bytes psycopg sends (literal braces are written
    ``{{`` / ``}}``)."""
    identifiers = {k: sql.Identifier(v) for k, v in names.items()}
    return sql.SQL(template).format(s=sql.Identifier(schema), **identifiers).as_bytes(None)


class Statements:
    """Attribute access to the composed statements of one schema (built on first use)."""

    def __init__(self, schema: str, templates: dict[str, LiteralString]) -> None:
        self._schema = schema
        self._templates = templates

    def __getattr__(self, name: str) -> bytes:
        return _composed(self._schema, name, self._templates[name])


@cache
def _composed(schema: str, name: str, template: LiteralString) -> bytes:
    return compose(template, schema)


# a message as its thread, owner, parent and the JSON of everything else, which
# ``load_stored`` validates natively (about twice as fast as building it from columns)
MESSAGE_COLS: LiteralString = (
    "m.thread_id, m.user_id, m.parent_id, json_build_object('id', m.id, 'role', m.role,"
    " 'content', m.content, 'name', m.name, 'metadata', m.metadata,"
    " 'created_at', m.created_at)::text"
)
THREAD_COLS: LiteralString = (
    "t.id, t.user_id, t.title, t.tags::text, t.metadata::text, t.default_branch,"
    " t.message_count, t.created_at, t.updated_at"
)

STORE: dict[str, LiteralString] = {
    # -- append ---------------------------------------------------------------------------
    "lock_thread": (
        "SELECT default_branch FROM {s}.threads WHERE user_id = %s AND id = %s FOR UPDATE"
    ),
    # the thread's and the branch's rows, locked: after waiting for another writer, PostgreSQL
    # returns the newest version of both, so the head read here is the one that writer left
    "lock_head": (
        "SELECT t.default_branch, b.head_id, b.head_depth FROM {s}.threads AS t"
        " JOIN {s}.branches AS b ON b.user_id = t.user_id AND b.thread_id = t.id"
        " AND b.name = coalesce(%s, t.default_branch) WHERE t.user_id = %s AND t.id = %s"
        " FOR UPDATE OF t, b"
    ),
    "add_user": "INSERT INTO {s}.users (id) VALUES (%s) ON CONFLICT DO NOTHING",
    "add_thread": (
        "INSERT INTO {s}.threads (user_id, id, default_branch) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING"
    ),
    "add_branch": (
        "INSERT INTO {s}.branches (user_id, thread_id, name, head_id) VALUES (%s, %s, %s, NULL)"
        " ON CONFLICT DO NOTHING"
    ),
    # one statement: the messages, their feed events, the branch head and the thread
    "insert_messages": (
        "WITH rows AS ("
        " SELECT * FROM unnest(%(ids)s::text[], %(parents)s::text[], %(depths)s::int[],"
        " %(roles)s::text[], %(names)s::text[], %(contents)s::text[], %(metas)s::text[],"
        " %(times)s::timestamptz[]) WITH ORDINALITY"
        " AS r(id, parent_id, depth, role, name, content, metadata, created_at, n)),"
        " ins AS (INSERT INTO {s}.messages (id, user_id, thread_id, parent_id, depth, role,"
        " name, content, metadata, created_at)"
        " SELECT id, %(user)s, %(thread)s, parent_id, depth, role, name, content::json,"
        " metadata::json, created_at FROM rows ORDER BY n RETURNING 1),"
        " feed AS (INSERT INTO {s}.changes (kind, user_id, thread_id, message_id)"
        " SELECT 'append', %(user)s, %(thread)s, id FROM rows ORDER BY n RETURNING 1),"
        " head AS (UPDATE {s}.branches SET head_id = %(head)s, head_depth = %(head_depth)s"
        " WHERE user_id = %(user)s AND thread_id = %(thread)s AND name = %(branch)s RETURNING 1)"
        " UPDATE {s}.threads SET updated_at = now(),"
        " message_count = message_count + (SELECT count(*) FROM ins)"
        " WHERE user_id = %(user)s AND id = %(thread)s"
    ),
    "log": (
        "INSERT INTO {s}.changes (kind, user_id, thread_id, message_id)"
        " SELECT %s, %s, t, m FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS e(t, m, n)"
        " ORDER BY n"
    ),
    "update_message": (
        "UPDATE {s}.messages AS m SET content = %s::json, name = %s, metadata = %s::json"
        " WHERE m.id = %s AND m.user_id = %s RETURNING " + MESSAGE_COLS
    ),
    # -- reading ---------------------------------------------------------------------------
    # the head of the branch (the thread's default when %(branch)s is NULL), then the walk
    # towards the root that stops after %(limit)s messages; the first row says whether the
    # thread and the branch exist
    "read": (
        "WITH RECURSIVE t AS (SELECT default_branch FROM {s}.threads"
        " WHERE user_id = %(user)s AND id = %(thread)s),"
        " b AS (SELECT head_id FROM {s}.branches WHERE user_id = %(user)s"
        " AND thread_id = %(thread)s AND name = coalesce(%(branch)s, (SELECT default_branch"
        " FROM t))),"
        " chain AS (SELECT m.*, 1 AS n FROM {s}.messages AS m"
        " WHERE m.id = (SELECT head_id FROM b)"
        " UNION ALL SELECT m.*, c.n + 1 FROM chain AS c JOIN {s}.messages AS m"
        " ON m.id = c.parent_id WHERE c.n < %(limit)s AND c.created_at >= %(since)s)"
        " SELECT EXISTS (SELECT 1 FROM t), EXISTS (SELECT 1 FROM b), " + MESSAGE_COLS + ""
        " FROM (SELECT 1) AS one LEFT JOIN chain AS m ON m.created_at >= %(since)s"
        " ORDER BY m.n DESC"
    ),
    "chain": (
        "WITH RECURSIVE chain AS (SELECT m.*, 1 AS n FROM {s}.messages AS m WHERE m.id = %(start)s"
        " UNION ALL SELECT m.*, c.n + 1 FROM chain AS c JOIN {s}.messages AS m"
        " ON m.id = c.parent_id WHERE c.n < %(limit)s AND c.created_at >= %(since)s)"
        " SELECT " + MESSAGE_COLS + " FROM chain AS m WHERE m.created_at >= %(since)s"
        " ORDER BY m.n DESC"
    ),
    # the thread's default branch, whether the branch exists, its head and the head's depth
    "thread_head": (
        "SELECT t.default_branch, b.name IS NOT NULL, b.head_id, coalesce(b.head_depth, 0)"
        " FROM {s}.threads AS t LEFT JOIN {s}.branches AS b ON b.user_id = t.user_id"
        " AND b.thread_id = t.id AND b.name = coalesce(%s, t.default_branch)"
        " WHERE t.user_id = %s AND t.id = %s"
    ),
    "depth_of": "SELECT depth, parent_id FROM {s}.messages WHERE id = %s",
    "ancestor_at": (
        "WITH RECURSIVE up AS (SELECT id, parent_id, depth FROM {s}.messages WHERE id = %s"
        " UNION ALL SELECT m.id, m.parent_id, m.depth FROM {s}.messages AS m"
        " JOIN up ON m.id = up.parent_id WHERE up.depth > %s)"
        " SELECT id FROM up WHERE depth = %s"
    ),
    "get": "SELECT " + MESSAGE_COLS + " FROM {s}.messages AS m WHERE m.id = %s AND m.user_id = %s",
    # -- branches --------------------------------------------------------------------------
    "message_thread": ("SELECT thread_id, depth FROM {s}.messages WHERE id = %s AND user_id = %s"),
    "count_branches": "SELECT count(*) FROM {s}.branches WHERE user_id = %s AND thread_id = %s",
    "fork": (
        "INSERT INTO {s}.branches (user_id, thread_id, name, head_id, head_depth, forked_from)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING created_at"
    ),
    "branches": (
        "SELECT b.name, b.head_id, b.forked_from, b.created_at, b.name = t.default_branch"
        " FROM {s}.branches AS b JOIN {s}.threads AS t"
        " ON t.user_id = b.user_id AND t.id = b.thread_id"
        " WHERE b.user_id = %s AND b.thread_id = %s"
        " ORDER BY b.name = t.default_branch DESC, b.created_at, b.name"
    ),
    "branch_of_locked_thread": (
        "SELECT t.default_branch, b.head_id FROM {s}.threads AS t JOIN {s}.branches AS b"
        " ON b.user_id = t.user_id AND b.thread_id = t.id AND b.name = %s"
        " WHERE t.user_id = %s AND t.id = %s FOR UPDATE OF t"
    ),
    "set_default": "UPDATE {s}.threads SET default_branch = %s WHERE user_id = %s AND id = %s",
    "drop_branch": "DELETE FROM {s}.branches WHERE user_id = %s AND thread_id = %s AND name = %s",
    # the messages only the dropped branch reached: from its head up, while no other branch
    # points at a message and no other child hangs from it
    "prune_branch": (
        "WITH RECURSIVE up AS (SELECT m.id, m.parent_id, m.depth FROM {s}.messages AS m"
        " WHERE m.id = %(head)s"
        " AND NOT EXISTS (SELECT 1 FROM {s}.branches AS b WHERE b.head_id = m.id)"
        " AND NOT EXISTS (SELECT 1 FROM {s}.messages AS c WHERE c.parent_id = m.id)"
        " UNION ALL SELECT p.id, p.parent_id, p.depth FROM up"
        " JOIN {s}.messages AS p ON p.id = up.parent_id"
        " WHERE NOT EXISTS (SELECT 1 FROM {s}.branches AS b WHERE b.head_id = p.id)"
        " AND NOT EXISTS (SELECT 1 FROM {s}.messages AS c"
        " WHERE c.parent_id = p.id AND c.id <> up.id))"
        " DELETE FROM {s}.messages AS m USING up WHERE m.id = up.id RETURNING m.id, m.depth"
    ),
    "uncount": (
        "UPDATE {s}.threads SET message_count = message_count - %s WHERE user_id = %s AND id = %s"
    ),
    # -- threads ---------------------------------------------------------------------------
    "get_thread": "SELECT "
    + THREAD_COLS
    + " FROM {s}.threads AS t WHERE t.user_id = %s AND t.id = %s",
    "update_thread": (
        "UPDATE {s}.threads AS t SET title = coalesce(%s, t.title),"
        " tags = coalesce(%s::json, t.tags), metadata = coalesce(%s::json, t.metadata),"
        " updated_at = now() WHERE t.user_id = %s AND t.id = %s RETURNING " + THREAD_COLS
    ),
    "list_threads": (
        "SELECT " + THREAD_COLS + " FROM {s}.threads AS t WHERE t.user_id = %s"
        " AND (%s::timestamptz IS NULL OR (t.updated_at, t.id) < (%s::timestamptz, %s))"
        " ORDER BY t.updated_at DESC, t.id DESC LIMIT %s"
    ),
    "delete_thread_messages": ("DELETE FROM {s}.messages WHERE user_id = %s AND thread_id = %s"),
    "delete_thread_branches": ("DELETE FROM {s}.branches WHERE user_id = %s AND thread_id = %s"),
    "delete_thread": "DELETE FROM {s}.threads WHERE user_id = %s AND id = %s",
    # -- admin -----------------------------------------------------------------------------
    "user_threads": ("SELECT id FROM {s}.threads WHERE user_id = %s ORDER BY created_at, id"),
    "user_messages": (
        "SELECT " + MESSAGE_COLS + " FROM {s}.messages AS m WHERE m.user_id = %s ORDER BY m.seq"
    ),
    "repeatable_read": "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "lock_user_threads": ("SELECT id FROM {s}.threads WHERE user_id = %s ORDER BY id FOR UPDATE"),
    "erase_messages": "DELETE FROM {s}.messages WHERE user_id = %s",
    "erase_branches": "DELETE FROM {s}.branches WHERE user_id = %s",
    "erase_threads": "DELETE FROM {s}.threads WHERE user_id = %s",
    "erase_user_row": "DELETE FROM {s}.users WHERE id = %s",
    "erase_events": "DELETE FROM {s}.changes WHERE user_id = %s",
    "retain_age": (
        "DELETE FROM {s}.messages WHERE created_at < %s RETURNING user_id, thread_id, id"
    ),
    "retain_count": (
        "DELETE FROM {s}.messages WHERE seq IN (SELECT seq FROM (SELECT seq, row_number()"
        " OVER (PARTITION BY user_id, thread_id ORDER BY seq DESC) AS n FROM {s}.messages) AS r"
        " WHERE n > %s) RETURNING user_id, thread_id, id"
    ),
    "orphans_to_roots": (
        "UPDATE {s}.messages SET parent_id = NULL WHERE parent_id = ANY(%s::text[])"
    ),
    "lost_heads": (
        "UPDATE {s}.branches SET head_id = NULL, head_depth = 0 WHERE head_id = ANY(%s::text[])"
    ),
    # of the threads that lost messages: drop branches left empty (not the default), count
    # again, then drop the threads left empty with their branches
    "empty_branches": (
        "DELETE FROM {s}.branches AS b USING {s}.threads AS t WHERE b.head_id IS NULL"
        " AND t.user_id = b.user_id AND t.id = b.thread_id AND b.name <> t.default_branch"
        " AND (b.user_id, b.thread_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
    ),
    "recount": (
        "UPDATE {s}.threads AS t SET message_count = (SELECT count(*) FROM {s}.messages AS m"
        " WHERE m.user_id = t.user_id AND m.thread_id = t.id)"
        " WHERE (t.user_id, t.id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
    ),
    "empty_thread_branches": (
        "SELECT count(*) FROM {s}.branches AS b JOIN {s}.threads AS t"
        " ON t.user_id = b.user_id AND t.id = b.thread_id WHERE t.message_count = 0"
        " AND (t.user_id, t.id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
    ),
    "drop_empty_threads": (
        "DELETE FROM {s}.threads WHERE message_count = 0"
        " AND (user_id, id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " RETURNING user_id, id"
    ),
    # -- the change feed -------------------------------------------------------------------
    "feed_id": "SELECT value FROM {s}.meta WHERE key = 'feed_id'",
    # only events of transactions that have ended (xid below the oldest one still running),
    # so a writer that commits late never slips in behind a cursor already handed out
    "changes": (
        "SELECT xid::text, id, kind, user_id, thread_id, message_id, at FROM {s}.changes"
        " WHERE (xid, id) > (%s::xid8, %s)"
        " AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY xid, id LIMIT %s"
    ),
    "feed_end": "SELECT xid::text, id FROM {s}.changes ORDER BY xid DESC, id DESC LIMIT 1",
    # -- cursors of followers --------------------------------------------------------------
    "get_cursor": "SELECT cursor FROM {s}.cursors WHERE name = %s",
    "set_cursor": (
        "INSERT INTO {s}.cursors (name, cursor) VALUES (%s, %s)"
        " ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, updated_at = now()"
    ),
    "forget_cursor": "DELETE FROM {s}.cursors WHERE name = %s",
}


__all__ = ["MESSAGE_COLS", "STORE", "THREAD_COLS", "Statements", "compose"]
