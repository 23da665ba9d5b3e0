"""Row-level security: under a role that does not own the table (no superuser, no BYPASSRLS),
the database itself admits only the rows of the user each transaction names, so a raw query
without our filter sees nothing of anyone else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pgvector_server
import psycopg
import pytest
from pgvector_server import database_url
from psycopg import sql

from tela_memory.errors import BackendUnavailable, SchemaError
from tela_memory.messages import Message
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import msg, uid
from tela_memory.testing.index_suite import IndexConformance
from tela_memory_postgres.index import PostgresIndex

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pgvector_server_url() -> str:
    """The superuser URL of this process's pgvector server (see pgvector_server.py)."""
    return pgvector_server.server_url()


@pytest.fixture(scope="module")
def app_role(pgvector_server_url: str) -> Iterator[str]:
    """A login role that is neither superuser nor BYPASSRLS (trust auth on the test server)."""
    role = f"tela_app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pgvector_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS").format(sql.Identifier(role))
        )
    yield role
    with psycopg.connect(pgvector_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


class Pair:
    """The owner's index (creates the table and the policy) and the app role's."""

    def __init__(self, server_url: str, role: str, embedder: HashEmbedder | None) -> None:
        self.table = f"rls_{uuid.uuid4().hex[:12]}"
        self.owner_url = server_url
        self.app_url = database_url(server_url, "postgres", user=role)
        self.owner = PostgresIndex(server_url, embedder=embedder, table=self.table, rls=True)
        self.owner.create()
        self.owner.grant(role)
        self.app = PostgresIndex(self.app_url, embedder=embedder, table=self.table, rls=True)

    def close(self) -> None:
        self.app.close()
        self.owner.drop()
        self.owner.close()


@pytest.fixture
def pair(pgvector_server_url: str, app_role: str) -> Iterator[Pair]:
    p = Pair(pgvector_server_url, app_role, HashEmbedder(64))
    yield p
    p.close()


class TestRowLevelSecurityUnderAppRole(IndexConformance):
    """The whole suite through the policy, as the app role."""

    @pytest.fixture
    def index(
        self, embedder: HashEmbedder, pgvector_server_url: str, app_role: str
    ) -> Iterator[PostgresIndex]:
        p = Pair(pgvector_server_url, app_role, embedder)
        yield p.app
        p.close()


def _fill(pair: Pair) -> tuple[list[Message], list[Message]]:
    alice, bob, thread = uid("alice"), uid("bob"), uid("t")
    hers = [msg(f"alice secret {i}", user=alice, thread=thread, at=i) for i in range(3)]
    his = [msg(f"bob secret {i}", user=bob, thread=thread, at=i) for i in range(2)]
    pair.app.upsert([*hers, *his])
    return hers, his


def _raw(pair: Pair, setting: tuple[str, str] | None, query: str = "") -> list[str]:
    """User ids a raw query without any filter returns, as the app role."""
    with psycopg.connect(pair.app_url) as conn, conn.transaction():
        if setting is not None:
            conn.execute("SELECT set_config(%s, %s, true)", setting)
        rows = conn.execute(
            sql.SQL("SELECT user_id FROM {} " + query).format(sql.Identifier(pair.table))
        ).fetchall()
    return [r[0] for r in rows]


def test_raw_query_sees_only_the_transactions_user(pair: Pair) -> None:
    hers, his = _fill(pair)
    alice, bob = hers[0].user_id, his[0].user_id
    assert _raw(pair, ("tela.user_id", str(alice))) == [alice] * 3
    assert _raw(pair, ("tela.user_id", str(bob))) == [bob] * 2
    assert _raw(pair, None) == []  # nothing set: nothing at all
    assert _raw(pair, ("tela.user_id", "' OR '1'='1")) == []
    # a "filter" that tries to reach the other user is cut by the policy, not by us
    assert _raw(pair, ("tela.user_id", str(alice)), "WHERE user_id <> 'nobody'") == [alice] * 3
    # the owner, too, is under the policy (FORCE ROW LEVEL SECURITY) when it is not a superuser;
    # the superuser test server connection bypasses it
    with psycopg.connect(pair.owner_url) as conn:
        count = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(pair.table))
        ).fetchone()
    assert count == (5,)


def test_the_app_role_cannot_write_for_another_user(pair: Pair) -> None:
    hers, _ = _fill(pair)
    table = sql.Identifier(pair.table)
    with psycopg.connect(pair.app_url) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('tela.user_id', 'mallory', true)")
            moved = conn.execute(
                sql.SQL("UPDATE {} SET user_id = 'mallory' WHERE id = %s RETURNING id").format(
                    table
                ),
                (hers[0].id,),
            ).fetchall()
        assert moved == []  # alice's row is not there for mallory
        insert = sql.SQL(
            "INSERT INTO {} (id, user_id, thread_id, role, ts, own, tsv, message) "
            "VALUES ('x', 'alice-not-me', 't', 'user', 0, '', '', '{{}}')"
        ).format(table)
        with conn.transaction():
            conn.execute("SELECT set_config('tela.user_id', 'mallory', true)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(insert)
    assert pair.app.count({"user_id": hers[0].user_id}) == 3


def test_searches_through_the_policy(pair: Pair) -> None:
    hers, his = _fill(pair)
    for mode in ("lexical", "dense", "hybrid"):
        got = pair.app.search("secret", filter={"user_id": hers[0].user_id}, mode=mode, k=50)
        assert {h.message.id for h in got} == {m.id for m in hers}
    assert pair.app.count({"user_id": his[0].user_id}) == 2
    assert pair.app.count() == 5  # the contract's cross-user form (tela.all_users)
    assert pair.app.delete_where({"user_id": his[0].user_id}) == 2
    assert pair.app.count() == 3


def test_the_app_role_cannot_change_the_tables(pair: Pair) -> None:
    with pytest.raises(BackendUnavailable, match="refused"):
        pair.app.drop()


def test_rls_mode_must_match_the_table(pair: Pair) -> None:
    _fill(pair)
    with (
        PostgresIndex(pair.owner_url, table=pair.table) as plain,
        pytest.raises(SchemaError, match="rls=True"),
    ):
        plain.count()
