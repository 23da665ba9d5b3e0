"""``PostgresIndex`` beyond the shared suite: connections and errors, the fusion in SQL, the
parent's words, NUL bytes, async connections, erasure and following a store."""

from __future__ import annotations

import ast
import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pgvector_server
import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from tela_memory.errors import (
    BackendUnavailable,
    InvalidMessageError,
    SchemaError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.messages import Message
from tela_memory.privacy import erase_user
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.index import ThreadTermCounts, rrf_fuse
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.recaller import Recaller
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.recall.types import ThreadKey
from tela_memory.stores.memory import InMemoryStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import msg, uid
from tela_memory_postgres import index as index_module
from tela_memory_postgres.index import MissingExtensionError, PostgresIndex

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pgvector_server_url() -> str:
    """The superuser URL of this process's pgvector server (see pgvector_server.py)."""
    return pgvector_server.server_url()


SYSTEM_PG = "postgresql://postgres@127.0.0.1:5432/postgres"  # PostgreSQL 15, no pgvector
PACKAGE = Path(index_module.__file__).parent


def _table() -> str:
    return f"recall_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def index(pgvector_server_url: str) -> Iterator[PostgresIndex]:
    with PostgresIndex(pgvector_server_url, embedder=HashEmbedder(64), table=_table()) as idx:
        yield idx
        idx.drop()


# -- connections and errors -----------------------------------------------------------------


def test_no_io_in_the_constructor_and_a_clear_error_when_unreachable() -> None:
    idx = PostgresIndex("postgresql://nobody@127.0.0.1:1/none", timeout=1)  # nothing connects
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"127\.0\.0\.1.*unreachable.*refused"):
        idx.count()
    assert time.monotonic() - started < 30
    idx.close()


def test_async_unreachable_is_clear() -> None:
    async def go() -> None:
        async with PostgresIndex("postgresql://nobody@127.0.0.1:1/none", timeout=1) as idx:
            with pytest.raises(BackendUnavailable, match="unreachable"):
                await idx.acount()

    asyncio.run(go())


def test_password_is_not_shown() -> None:
    idx = PostgresIndex("postgresql://ana:s3cret@127.0.0.1:1/db", timeout=1)
    assert "s3cret" not in idx.address
    assert "s3cret" not in idx.watermark_name
    with pytest.raises(BackendUnavailable) as err:
        idx.count()
    assert "s3cret" not in str(err.value)
    idx.close()


def test_bad_arguments_are_refused() -> None:
    for kwargs in (
        {"table": "Robert'); DROP TABLE x; --"},
        {"table": ""},
        {"vector_type": "float8"},
        {"parent_weight": 2.0},
        {"ef_search": 0},
        {"text_config": "english; drop"},
    ):
        with pytest.raises(TelaMemoryError):
            PostgresIndex("postgresql://127.0.0.1:1/x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TelaMemoryError):
        PostgresIndex()
    with pytest.raises(TelaMemoryError):
        PostgresIndex(connection=object())  # type: ignore[arg-type]


def test_missing_vector_extension_says_what_to_do() -> None:
    """The system PostgreSQL 15 has no pgvector: an embedder is refused clearly, nothing is
    created, and the full-text index works there."""
    table = _table()
    with (
        PostgresIndex(SYSTEM_PG, embedder=HashEmbedder(16), table=table) as idx,
        pytest.raises(MissingExtensionError, match="CREATE EXTENSION vector"),
    ):
        idx.upsert(msg("needs vectors", user="u", thread="t"))
    with PostgresIndex(SYSTEM_PG, table=table) as lexical:
        assert lexical.count() == 0  # the refused write created nothing
        lexical.upsert(msg("words only here", user="u", thread="t"))
        assert [h.text for h in lexical.search("words", filter={"user_id": "u"})] == [
            "words only here"
        ]
        lexical.drop()


def test_another_model_is_refused_across_connections(
    index: PostgresIndex, pgvector_server_url: str
) -> None:
    index.upsert(msg("first vectors", user="u", thread="t"))
    with PostgresIndex(
        pgvector_server_url, embedder=HashEmbedder(64, seed=3), table=index.names.table_name
    ) as other:
        with pytest.raises(EmbeddingMismatchError, match="hash-bow-64"):
            other.upsert(msg("more", user="u", thread="t", at=1))
        with pytest.raises(EmbeddingMismatchError):
            other.search("first", mode="dense")
    assert index.stored_model() == ("hash-bow-64", 64)


def test_a_newer_schema_is_refused(index: PostgresIndex, pgvector_server_url: str) -> None:
    index.upsert(msg("x", user="u", thread="t"))
    with psycopg.connect(pgvector_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {} SET schema_version = 99").format(
                sql.Identifier(f"{index.names.table_name}_meta")
            )
        )
    with (
        PostgresIndex(pgvector_server_url, table=index.names.table_name) as again,
        pytest.raises(SchemaError, match="newer"),
    ):
        again.count()


def test_no_sql_is_built_with_f_strings() -> None:
    """Values only ever travel as parameters: no f-string reaches ``sql.SQL`` or a cursor."""
    for path in sorted(PACKAGE.glob("*index*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("SQL", "execute", "executemany"):
                for arg in node.args:
                    assert not isinstance(arg, ast.JoinedStr), f"{path.name}:{node.lineno}"
                    assert not (isinstance(arg, ast.BinOp) and isinstance(arg.op, ast.Mod)), (
                        f"{path.name}:{node.lineno}"
                    )


# -- search ---------------------------------------------------------------------------------


def test_hybrid_is_the_cores_reciprocal_rank_fusion(index: PostgresIndex) -> None:
    user, thread = uid(), uid("t")
    words = ["apple", "banana", "cherry", "apple banana", "banana cherry pie", "apple pie"]
    index.upsert([msg(w, user=user, thread=thread, at=i) for i, w in enumerate(words)])
    flt = {"user_id": user}
    for query in ("apple pie", "banana", "cherry apple"):
        lex = index.search(query, filter=flt, mode="lexical", k=4)
        dense = index.search(query, filter=flt, mode="dense", k=4)
        fused = index.search(query, filter=flt, mode="hybrid", k=4)
        want = rrf_fuse([lex, dense], 4)
        assert [(h.message.id, h.score) for h in fused] == [(h.message.id, h.score) for h in want]
        assert [(h.lexical_score, h.dense_score) for h in fused] == [
            (h.lexical_score, h.dense_score) for h in want
        ]


def test_a_reply_is_found_by_its_parents_words(index: PostgresIndex) -> None:
    user, thread = uid(), uid("t")
    question = msg("did you visit the lighthouse museum", user=user, thread=thread)
    answer = msg("yes, last friday", user=user, thread=thread, at=1).model_copy(
        update={"parent_id": question.id}
    )
    index.upsert([answer])  # the reply first: its parent's words arrive with the parent
    index.upsert([question])
    flt = {"user_id": user}
    hits = index.search("lighthouse", filter=flt, mode="lexical")
    assert [h.message.id for h in hits] == [question.id, answer.id]
    assert hits[0].score > hits[1].score  # own words weigh more than the parent's
    index.delete(question.id)
    assert index.search("lighthouse", filter=flt, mode="lexical") == []
    other = uid()  # another user's message of the same id as a parent is never used
    index.upsert(question.model_copy(update={"user_id": other}))
    assert index.search("lighthouse", filter=flt, mode="lexical") == []


def test_nul_bytes_are_plain_data(index: PostgresIndex) -> None:
    user, thread = uid(), uid("t")
    m = msg("nul\x00inside the text", user=user, thread=thread, metadata={"k": "a\x00b"})
    index.upsert(m)
    hits = index.search("inside", filter={"user_id": user})
    assert hits[0].message == m
    assert index.search("inside", filter={"user_id": user + "\x00"}) == []
    assert index.count({"user_id": user, "thread_ids": [thread + "\x00"]}) == 0
    assert index.count({"user_id": user, "metadata": {"k": "a\x00b"}}) == 1
    assert index.delete(["\x00"]) == 0
    with pytest.raises(InvalidMessageError, match="NUL"):
        index.upsert(msg("x", user="a\x00b", thread=thread))


def test_halfvec_halves_the_vectors(pgvector_server_url: str) -> None:
    sizes = {}
    for kind in ("vector", "halfvec"):
        with PostgresIndex(
            pgvector_server_url, embedder=HashEmbedder(256), table=_table(), vector_type=kind
        ) as idx:
            idx.upsert(msg("size check", user="u", thread="t"))
            with psycopg.connect(pgvector_server_url) as conn:
                row = conn.execute(
                    sql.SQL("SELECT pg_column_size(embedding) FROM {}").format(
                        sql.Identifier(idx.names.table_name)
                    )
                ).fetchone()
            assert row is not None
            sizes[kind] = row[0]
            idx.drop()
    assert sizes["halfvec"] < 0.6 * sizes["vector"]


# -- async ----------------------------------------------------------------------------------


def test_an_injected_async_pool(pgvector_server_url: str) -> None:
    table = _table()

    async def go() -> None:
        async with AsyncConnectionPool(pgvector_server_url, min_size=1, max_size=2) as pool:
            idx = PostgresIndex(connection=pool, embedder=HashEmbedder(64), table=table)
            user, thread = uid(), uid("t")
            ms = [msg(f"async pool {i}", user=user, thread=thread, at=i) for i in range(3)]
            assert await idx.aupsert(ms) == 3
            assert await idx.acount({"user_id": user}) == 3
            hits = await idx.asearch("async pool", filter={"user_id": user})
            assert {h.message.id for h in hits} == {m.id for m in ms}
            assert len(await idx.aneighbors(ms[1].id)) == 2
            with pytest.raises(UnsupportedOperation, match="async methods"):
                idx.count()
            assert await idx.adelete(ms[0].id) == 1
            assert await idx.aclear() == 2
            await idx.aclose()
            async with pool.connection() as conn:
                await conn.execute(
                    sql.SQL("DROP TABLE {}, {}").format(
                        sql.Identifier(table), sql.Identifier(f"{table}_meta")
                    )
                )

    asyncio.run(go())


def test_an_injected_async_connection(pgvector_server_url: str) -> None:
    table = _table()

    async def go() -> None:
        conn = await psycopg.AsyncConnection.connect(pgvector_server_url)
        async with conn:
            idx = PostgresIndex(connection=conn, embedder=HashEmbedder(64), table=table)
            user, thread = uid(), uid("t")
            await idx.aupsert(msg("one connection", user=user, thread=thread))
            got = await asyncio.gather(
                *[idx.asearch("connection", filter={"user_id": user}) for _ in range(5)]
            )
            assert all(len(hits) == 1 for hits in got)
            await conn.execute(
                sql.SQL("DROP TABLE {}, {}").format(
                    sql.Identifier(table), sql.Identifier(f"{table}_meta")
                )
            )
            await conn.commit()

    asyncio.run(go())


# -- erasure and the store indexer ----------------------------------------------------------


def test_erase_user(pgvector_server_url: str) -> None:
    store = InMemoryStore()
    with PostgresIndex(
        pgvector_server_url, embedder=HashEmbedder(32), table=_table(), vacuum=True
    ) as idx:
        alice = store.append("a1", [Message.user("I live in Lisbon")], user_id="alice")
        alice += store.append("a2", Message.user("my cat is Mia"), user_id="alice")
        bob = store.append("a1", Message.user("I live in Oslo"), user_id="bob")
        idx.upsert(alice + bob)
        receipt = erase_user("alice", store, idx)
        assert receipt.extra["index:PostgresIndex"] == 2
        assert any("vacuumed" in d for d in receipt.scrubbed)
        assert any("WAL" in t for t in receipt.traces_left)
        assert idx.count({"user_id": "alice"}) == 0
        assert [h.message.id for h in idx.search("live", filter={"user_id": "bob"})] == [bob[0].id]
        again = erase_user("alice", store, idx)
        assert again.extra["index:PostgresIndex"] == 0
        idx.drop()


def test_store_indexer_follows_and_reindexes(pgvector_server_url: str) -> None:
    store = InMemoryStore()
    table = _table()
    store.append("t", [Message.user(f"turn {i} about sailing") for i in range(5)], user_id="u")
    with PostgresIndex(pgvector_server_url, embedder=HashEmbedder(32), table=table) as idx:
        indexer = StoreIndexer(store, idx)
        indexer.sync()
        assert idx.count({"user_id": "u"}) == 5
        store.append("t", Message.user("one more about sailing"), user_id="u")
        indexer.sync()
        assert idx.count({"user_id": "u"}) == 6
        idx.embedder = HashEmbedder(48)  # another model: rebuild
        indexer.reindex()
        assert idx.stored_model() == ("hash-bow-48", 48)
        assert len(idx.search("sailing", filter={"user_id": "u"}, mode="dense", k=10)) == 6
        idx.drop()


def test_recaller_and_thread_counts_match_sqlite(index: PostgresIndex, tmp_path: Path) -> None:
    """The Recaller ranks on this index; its per-thread word counts equal the SQLite index's."""
    user = uid()
    ms = [
        msg("we planned the sailing trip to crete", user=user, thread="trip", at=0),
        msg("the boat rental is booked for june", user=user, thread="trip", at=1),
        msg("sailing lessons start on monday", user=user, thread="trip", at=2),
        msg("my sister bakes bread", user=user, thread="home", at=3),
        msg("sailing is not for me", user=uid(), thread="trip", at=4),
    ]
    index.upsert(ms)
    with SQLiteIndex(tmp_path / "peer.db") as lite:
        lite.upsert(ms)
        for flt in ({"user_id": user}, {"thread_ids": ["trip"]}):
            ours = index.thread_term_counts("sailing boat bread", filter=flt)
            theirs = lite.thread_term_counts("sailing boat bread", filter=flt)
            assert ours.turns == theirs.turns

            # keys are each index's terms (here stemmed lexemes: "sail"), the counts the same
            def counts(c: ThreadTermCounts) -> list[list[tuple[ThreadKey, int]]]:
                return sorted(sorted(per.items()) for per in c.terms.values() if per)

            assert counts(ours) == counts(theirs)
            assert "sail" in ours.terms
    hits = Recaller(index).search("sailing boat", user_id=user, k=3)
    assert {h.message.id for h in hits} <= {m.id for m in ms[:4]}
    assert hits[0].message.thread_id == "trip"


def test_a_missing_database_is_named(pgvector_server_url: str) -> None:
    url = pgvector_server.database_url(pgvector_server_url, "no_such_db")
    with (
        PostgresIndex(url, timeout=2) as idx,
        pytest.raises(BackendUnavailable, match='database "no_such_db" does not exist'),
    ):
        idx.search("anything", filter={"user_id": "u"})
