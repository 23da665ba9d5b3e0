"""The SQL of ``PostgresIndex``: tables, indexes, the RLS policy, filters and every statement.

Identifiers are composed with ``psycopg.sql.Identifier``; every value is a bound parameter
(named ``%(...)s``, so a filter used twice in one statement is bound once). Statements are
composed once per shape (mode, which filter fields) and cached by :class:`Statements`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any, Literal

from psycopg import sql

from tela_memory.errors import TelaMemoryError
from tela_memory.recall.types import SearchFilter
from tela_memory.stores import _common as common

SCHEMA_VERSION = 1
VectorType = Literal["vector", "halfvec"]
MAX_LEXICAL_CHARS = 100_000
"""Words beyond this many characters of a message are not indexed for full-text search (a
``tsvector`` holds at most 1 MB)."""

Query = sql.SQL | sql.Composed
"""A statement as psycopg runs it."""

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")
_OPS = {"vector": "vector_cosine_ops", "halfvec": "halfvec_cosine_ops"}


def check_name(name: str, what: str = "table") -> str:
    """A table (or schema) name: lower-case letters, digits and ``_``, at most 48 long."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise TelaMemoryError(
            f"invalid {what} name {name!r}: use 1-48 lower-case letters, digits and _ "
            "(not starting with a digit)"
        )
    return name


def token(value: str) -> str:
    """A hashed token for a metadata value: hex, nothing to escape, never a NUL byte."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def meta_token(key: str, value: object) -> str | None:
    """The token of a typed metadata value (``None``: not filterable, e.g. floats)."""
    if isinstance(value, bool):
        return token(f"{key}\x00b:{int(value)}")
    if isinstance(value, int):
        return token(f"{key}\x00i:{value}")
    if isinstance(value, str):
        return token(f"{key}\x00s:{value}")
    return None


def plain(value: str) -> str:
    """Text PostgreSQL can hold (no NUL bytes), for full-text indexing."""
    return value.replace("\x00", " ") if "\x00" in value else value


def _ids(values: tuple[str, ...]) -> list[str]:
    # PostgreSQL text cannot hold NUL: such a value matches no stored id
    return [v for v in values if "\x00" not in v]


class Names:
    """The identifiers of one index: its table, the meta table, indexes and policy."""

    def __init__(self, table: str, schema: str | None) -> None:
        self.table_name = check_name(table)
        self.schema = check_name(schema, "schema") if schema is not None else None

        def ident(name: str) -> sql.Identifier:
            return sql.Identifier(self.schema, name) if self.schema else sql.Identifier(name)

        self.table = ident(table)
        self.meta = ident(f"{table}_meta")
        self.qualified = f"{self.schema}.{table}" if self.schema else table
        self.hnsw = sql.Identifier(f"{table}_hnsw")
        self.policy = sql.Identifier(f"{table}_owner")
        self.policy_name = f"{table}_owner"
        self.lock_key = f"tela-index:{self.qualified}"


def where(flt: SearchFilter, params: dict[str, Any], alias: str = "d") -> sql.Composable:
    """The filter as a SQL condition on ``alias``; its values go into ``params``."""
    parts: list[sql.Composable] = []

    def col(name: str) -> sql.Composable:
        return sql.Identifier(alias, name)

    def cond(template: str, column: str, name: str, value: Any) -> None:
        params[name] = value
        parts.append(sql.SQL(template).format(col(column), sql.Placeholder(name)))

    if flt.user_id is not None:
        if "\x00" in flt.user_id:
            parts.append(sql.SQL("FALSE"))
        else:
            cond("{} = {}", "user_id", "f_user", flt.user_id)
    if flt.thread_ids is not None:
        cond("{} = ANY({}::text[])", "thread_id", "f_threads", _ids(flt.thread_ids))
    if flt.message_ids is not None:
        cond("{} = ANY({}::text[])", "id", "f_ids", _ids(flt.message_ids))
    if flt.roles is not None:
        cond("{} = ANY({}::text[])", "role", "f_roles", [r.value for r in flt.roles])
    if flt.since is not None:
        cond("{} >= {}", "ts", "f_since", common.to_micros(flt.since))
    if flt.until is not None:
        cond("{} < {}", "ts", "f_until", common.to_micros(flt.until))
    for i, (key, want) in enumerate(sorted(flt.metadata.items())):
        options = want if isinstance(want, tuple) else (want,)
        tokens = [t for o in options if (t := meta_token(key, o)) is not None]
        cond("{} && {}::text[]", "meta", f"f_meta{i}", tokens)
    if not parts:
        return sql.SQL("TRUE")
    return sql.SQL(" AND ").join(parts)


def shape(flt: SearchFilter) -> tuple[Any, ...]:
    """What the SQL of a filter depends on (not its values): the statement cache key."""
    return (
        flt.user_id is not None and "\x00" in flt.user_id,
        flt.user_id is not None,
        flt.thread_ids is not None,
        flt.message_ids is not None,
        flt.roles is not None,
        flt.since is not None,
        flt.until is not None,
        len(flt.metadata),
    )


# -- schema ----------------------------------------------------------------------------------

_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    id text COLLATE "C" PRIMARY KEY,
    user_id text COLLATE "C" NOT NULL,
    thread_id text COLLATE "C" NOT NULL,
    parent_id text COLLATE "C",
    role text COLLATE "C" NOT NULL,
    ts bigint NOT NULL,
    meta text[] NOT NULL DEFAULT '{{}}',
    own tsvector NOT NULL,
    tsv tsvector NOT NULL,
    message text NOT NULL
)"""

_META = """
CREATE TABLE IF NOT EXISTS {meta} (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    schema_version integer NOT NULL,
    text_config text NOT NULL,
    rls boolean NOT NULL,
    model_id text,
    dimension integer,
    vector_type text
)"""


def create_statements(names: Names) -> list[Query]:
    """Tables and their B-tree and GIN indexes (idempotent)."""
    t = names.table
    n = names.table_name
    return [
        sql.SQL(_TABLE).format(table=t),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (user_id, thread_id, ts, id)").format(
            sql.Identifier(f"{n}_thread"), t
        ),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} (parent_id) WHERE parent_id IS NOT NULL"
        ).format(sql.Identifier(f"{n}_parent"), t),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (tsv)").format(
            sql.Identifier(f"{n}_tsv"), t
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING gin (meta)").format(
            sql.Identifier(f"{n}_meta_gin"), t
        ),
        sql.SQL(_META).format(meta=names.meta),
    ]


_ALLOWED = (
    "(user_id = current_setting('tela.user_id', true) "
    "OR current_setting('tela.all_users', true) = 'on')"
)


def rls_statements(names: Names) -> list[Query]:
    """Row-level security on the table, forced for its owner too (run once, at creation)."""
    t = names.table
    return [
        sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t),
        sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t),
        sql.SQL("CREATE POLICY {} ON {} USING " + _ALLOWED + " WITH CHECK " + _ALLOWED).format(
            names.policy, t
        ),
    ]


def vector_statements(
    names: Names, vector_type: VectorType, dimension: int, m: int, ef_construction: int
) -> list[Query]:
    """The vector column and its HNSW index (cosine)."""
    column = sql.SQL("{}({})").format(sql.SQL(vector_type), sql.Literal(int(dimension)))
    return [
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS embedding {}").format(names.table, column),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON {} USING hnsw (embedding {}) "
            "WITH (m = {}, ef_construction = {})"
        ).format(
            names.hnsw,
            names.table,
            sql.SQL(_OPS[vector_type]),
            sql.Literal(int(m)),
            sql.Literal(int(ef_construction)),
        ),
    ]


# -- statements ------------------------------------------------------------------------------

# the query's words as an OR of their lexemes (the parser, stemmer and stopwords of the text
# search configuration; each lexeme quoted for tsquery input), NULL when there are none
_QUERY = r"""q AS MATERIALIZED (
    SELECT CASE WHEN count(*) = 0 THEN NULL ELSE string_agg(
        '''' || replace(replace(l, '\', '\\'), '''', '''''') || '''', ' | ')::tsquery END AS tsq
    FROM unnest(tsvector_to_array(to_tsvector(%(cfg)s::regconfig, %(qtext)s))) AS l
)"""

_LEX = """lex AS (
    SELECT d.id, ts_rank(%(weights)s::float4[], d.tsv, q.tsq, 1)::float8 AS score
    FROM {source} d, q
    WHERE d.tsv @@ q.tsq{where}
    ORDER BY score DESC, d.id LIMIT %(k)s
), lexr AS (
    SELECT id, score, row_number() OVER (ORDER BY score DESC, id) AS rank FROM lex
)"""

_DENSE = """dense AS (
    SELECT d.id, d.embedding <=> %(vec)s AS dist
    FROM {source} d
    WHERE d.embedding IS NOT NULL{where}
    ORDER BY dist LIMIT %(k)s
), denser AS (
    SELECT id, 1 - dist AS score, row_number() OVER (ORDER BY dist, id) AS rank FROM dense
)"""

# A filter naming a user or message ids ("scoped"): read those rows once (B-tree) and rank
# them exactly. The fence (OFFSET 0, or a MATERIALIZED CTE shared by both sides) keeps the
# planner from walking the global GIN / HNSW index and filtering afterwards.
_FENCED_DENSE = "(SELECT d.id, d.embedding FROM {table} d WHERE {where} OFFSET 0)"
_FENCED_LEX = "(SELECT d.id, d.tsv FROM {table} d WHERE {where} OFFSET 0)"
_SCOPE = "mine AS MATERIALIZED (SELECT d.id, d.tsv, d.embedding FROM {table} d WHERE {where})"

_FUSED = """fused AS (
    SELECT coalesce(l.id, v.id) AS id, l.score AS lscore, v.score AS dscore,
        coalesce(1.0::float8 / ({rrf} + l.rank), 0) + coalesce(1.0::float8 / ({rrf} + v.rank), 0)
        AS score
    FROM lexr l FULL JOIN denser v ON l.id = v.id
)"""


class Statements:
    """The index's statements, composed once per shape."""

    def __init__(self, names: Names, *, vector_type: VectorType, rrf_k: int) -> None:
        self.n = names
        self.vector_type = vector_type
        self.rrf_k = rrf_k
        self._cache: dict[tuple[Any, ...], Query] = {}

    def _cached(self, key: tuple[Any, ...], build: Callable[[], Query]) -> Query:
        got = self._cache.get(key)
        if got is None:
            got = self._cache[key] = build()
        return got

    def search(
        self, mode: str, flt: SearchFilter, params: dict[str, Any], *, scoped: bool
    ) -> Query:
        """One statement: rows ``(message, score, lexical_score, dense_score)``, best first.
        ``scoped``: rank the filter's rows exactly instead of walking the GIN / HNSW index."""
        cond = where(flt, params)

        def build() -> Query:
            t = self.n.table
            shared = scoped and mode == "hybrid"
            lex_src: sql.Composable
            dense_src: sql.Composable
            extra: sql.Composable
            if not scoped:
                lex_src = dense_src = t
                extra = sql.SQL(" AND {}").format(cond)
            elif shared:
                lex_src = dense_src = sql.SQL("mine")
                extra = sql.SQL("")
            else:
                lex_src = sql.SQL(_FENCED_LEX).format(table=t, where=cond)
                dense_src = sql.SQL(_FENCED_DENSE).format(table=t, where=cond)
                extra = sql.SQL("")
            lex = sql.SQL(_LEX).format(source=lex_src, where=extra)
            dense = sql.SQL(_DENSE).format(source=dense_src, where=extra)
            if mode == "lexical":
                return sql.SQL(
                    "WITH {}, {} SELECT d.message, l.score, l.score, NULL::float8 FROM lexr l "
                    "JOIN {} d ON d.id = l.id ORDER BY l.rank"
                ).format(sql.SQL(_QUERY), lex, t)
            if mode == "dense":
                return sql.SQL(
                    "WITH {} SELECT d.message, v.score, NULL::float8, v.score FROM denser v "
                    "JOIN {} d ON d.id = v.id ORDER BY v.rank"
                ).format(dense, t)
            scope = sql.SQL(_SCOPE).format(table=t, where=cond) if shared else None
            fused = sql.SQL(_FUSED).format(rrf=sql.Literal(int(self.rrf_k)))
            ctes = [sql.SQL(_QUERY), *([scope] if scope is not None else []), lex, dense, fused]
            return sql.SQL(
                "WITH {} SELECT d.message, f.score, f.lscore, f.dscore FROM fused f "
                "JOIN {} d ON d.id = f.id ORDER BY f.score DESC, f.id LIMIT %(k)s"
            ).format(sql.SQL(", ").join(ctes), t)

        return self._cached(("search", mode, scoped, *shape(flt)), build)

    def count(self, flt: SearchFilter, params: dict[str, Any]) -> Query:
        """``count(*)`` of what the filter matches."""
        cond = where(flt, params)
        return self._cached(
            ("count", *shape(flt)),
            lambda: sql.SQL("SELECT count(*) FROM {} d WHERE {}").format(self.n.table, cond),
        )

    def delete(self, flt: SearchFilter | None, params: dict[str, Any], *, relink: bool) -> Query:
        """Delete by ids (``flt`` None: ``%(ids)s``) or by filter; the replies of deleted turns
        lose their parent's words. Returns ``count(*)`` of the deleted."""
        cond = where(flt, params) if flt is not None else sql.SQL("d.id = ANY(%(ids)s::text[])")

        def build() -> Query:
            t = self.n.table
            fix = sql.SQL(
                ", fix AS (UPDATE {} c SET tsv = c.own FROM gone g WHERE c.parent_id = g.id "
                "AND c.user_id = g.user_id AND c.thread_id = g.thread_id "
                "AND c.id <> ALL(ARRAY(SELECT id FROM gone)) RETURNING 1)"
            ).format(t)
            return sql.SQL(
                "WITH gone AS (DELETE FROM {} d WHERE {} RETURNING d.id, d.user_id, d.thread_id)"
                "{} SELECT count(*) FROM gone"
            ).format(t, cond, fix if relink else sql.SQL(""))

        key = ("delete", relink, None if flt is None else shape(flt))
        return self._cached(key, build)

    def upsert(self, *, vectors: bool, relink: bool) -> Query:
        """Insert or replace one document (run with ``executemany``)."""

        def build() -> Query:
            t = self.n.table
            cols = [
                "id",
                "user_id",
                "thread_id",
                "parent_id",
                "role",
                "ts",
                "meta",
                "own",
                "tsv",
                "message",
            ]
            if vectors:
                cols.append("embedding")
            tsv = (
                sql.SQL("v.own || coalesce(setweight(p.own, 'D'), ''::tsvector)")
                if relink
                else sql.SQL("v.own")
            )
            parent = (
                sql.SQL(
                    " LEFT JOIN {} p ON p.id = v.parent_id AND p.user_id = v.user_id "
                    "AND p.thread_id = v.thread_id"
                ).format(t)
                if relink
                else sql.SQL("")
            )
            emb = sql.SQL(", %(embedding)s AS embedding") if vectors else sql.SQL("")
            emb_col = sql.SQL(", v.embedding") if vectors else sql.SQL("")
            updates = sql.SQL(", ").join(
                sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in cols[1:]
            )
            return sql.SQL(
                "INSERT INTO {t} AS d ({cols}) "
                "SELECT v.id, v.user_id, v.thread_id, v.parent_id, v.role, v.ts, v.meta, v.own, "
                "{tsv}, v.message{emb_col} FROM (SELECT %(id)s::text AS id, %(user_id)s::text "
                "AS user_id, %(thread_id)s::text AS thread_id, %(parent_id)s::text AS parent_id, "
                "%(role)s::text AS role, %(ts)s::bigint AS ts, %(meta)s::text[] AS meta, "
                "setweight(to_tsvector(%(cfg)s::regconfig, %(text)s), 'A') AS own, "
                "%(message)s::text AS message{emb}) v{parent} "
                "ON CONFLICT (id) DO UPDATE SET {updates}"
            ).format(
                t=t,
                cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
                tsv=tsv,
                emb_col=emb_col,
                emb=emb,
                parent=parent,
                updates=updates,
            )

        return self._cached(("upsert", vectors, relink), build)

    def relink_children(self) -> Query:
        """Give the replies of ``%(ids)s`` their parent's current words."""
        return self._cached(
            ("relink",),
            lambda: sql.SQL(
                "UPDATE {t} c SET tsv = c.own || setweight(p.own, 'D') FROM {t} p "
                "WHERE p.id = ANY(%(ids)s::text[]) AND c.parent_id = p.id "
                "AND c.user_id = p.user_id AND c.thread_id = p.thread_id"
            ).format(t=self.n.table),
        )

    def stored_vectors(self) -> Query:
        """``(id, user_id, thread_id, embedding)`` of ``%(ids)s`` that have a vector."""
        return self._cached(
            ("vectors",),
            lambda: sql.SQL(
                "SELECT id, user_id, thread_id, embedding FROM {} "
                "WHERE id = ANY(%(ids)s::text[]) AND embedding IS NOT NULL"
            ).format(self.n.table),
        )

    def thread_terms(self, flt: SearchFilter, params: dict[str, Any]) -> Query:
        """Rows ``(lexeme or NULL, user_id, thread_id, count)``: per thread under the filter,
        its turns (``NULL``) and those of them whose own words hold each query lexeme."""
        cond = where(flt, params)

        def build() -> Query:
            return sql.SQL(
                "WITH lx AS (SELECT array_agg(l) AS ls FROM (SELECT l FROM unnest("
                "tsvector_to_array(to_tsvector(%(cfg)s::regconfig, %(qtext)s))) AS l "
                "LIMIT %(terms)s) x), "
                "docs AS MATERIALIZED (SELECT d.user_id, d.thread_id, d.own FROM {} d WHERE {}) "
                "SELECT NULL::text, user_id, thread_id, count(*) FROM docs "
                "GROUP BY user_id, thread_id "
                "UNION ALL SELECT w.l, docs.user_id, docs.thread_id, count(*) FROM docs, lx, "
                "unnest(tsvector_to_array(docs.own)) AS w(l) WHERE w.l = ANY(lx.ls) "
                "GROUP BY w.l, docs.user_id, docs.thread_id"
            ).format(self.n.table, cond)

        return self._cached(("terms", *shape(flt)), build)

    def neighbors(self, flt: SearchFilter, params: dict[str, Any]) -> Query:
        """Rows ``(message, ts, id)`` around ``%(mid)s`` in its own thread, oldest first."""
        cond = where(flt, params)

        def build() -> Query:
            side = (
                "(SELECT d.message, d.ts, d.id FROM {t} d, a WHERE d.user_id = a.user_id "
                "AND d.thread_id = a.thread_id AND (d.ts, d.id) {op} (a.ts, a.id) AND {cond} "
                "ORDER BY d.ts {dir}, d.id {dir} LIMIT {limit})"
            )
            t = self.n.table
            older = sql.SQL(side).format(
                t=t,
                op=sql.SQL("<"),
                cond=cond,
                dir=sql.SQL("DESC"),
                limit=sql.Placeholder("before"),
            )
            newer = sql.SQL(side).format(
                t=t, op=sql.SQL(">"), cond=cond, dir=sql.SQL("ASC"), limit=sql.Placeholder("after")
            )
            return sql.SQL(
                "WITH a AS (SELECT user_id, thread_id, ts, id FROM {} WHERE id = %(mid)s) "
                "SELECT message FROM ({} UNION ALL {}) n ORDER BY ts, id"
            ).format(t, older, newer)

        return self._cached(("neighbors", *shape(flt)), build)


__all__ = [
    "MAX_LEXICAL_CHARS",
    "SCHEMA_VERSION",
    "Names",
    "Query",
    "Statements",
    "VectorType",
    "check_name",
    "create_statements",
    "meta_token",
    "plain",
    "rls_statements",
    "shape",
    "token",
    "vector_statements",
    "where",
]
