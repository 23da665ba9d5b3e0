"""The SQLite store facing bad files, other processes and odd URLs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tela_memory import (
    BackendUnavailable,
    Message,
    MissingDependency,
    SchemaError,
    TelaMemoryError,
    open_store,
)
from tela_memory.plugins import from_url
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.stores.sqlite_schema import SCHEMA_VERSION


def test_no_io_in_constructor(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "store.db"
    store = SQLiteStore(target)
    assert not target.exists()
    store.append("t", Message.user("x"), user_id="u")
    assert target.exists()
    store.close()


def test_open_store_by_url(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with open_store(f"sqlite:///{path}") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == path
    with open_store("sqlite:///:memory:") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path is None
    assert isinstance(open_store("memory://"), InMemoryStore)
    # a scheme of a known extra that is not installed names the extra to install
    with pytest.raises(MissingDependency, match=r"pip install \"tela-memory\[mongo\]\""):
        from_url("tela_memory.stores", "mongodb://localhost/db", "store", {"mongodb": "mongo"})
    with pytest.raises(TelaMemoryError, match="no store backend"):
        open_store("ftp://example")
    with pytest.raises(TelaMemoryError, match="no scheme"):
        open_store("chat.db")


def test_corrupt_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(BackendUnavailable):
        SQLiteStore(path).read("t", user_id="u")
    assert path.read_bytes() == junk


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="not a Tela Memory store"):
        SQLiteStore(path).read("t", user_id="u")


def test_newer_schema_is_refused_without_touching_data(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with SQLiteStore(path) as store:
        store.append("t", Message.user("keep me"), user_id="u")
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="newer"):
        SQLiteStore(path).read("t", user_id="u")
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    conn.close()


def test_read_only_file_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    with SQLiteStore(path) as store:
        store.append("t", Message.user("stored"), user_id="u")
    uri_store = SQLiteStore(path)
    # open the same file through a read-only connection to simulate a read-only mount
    uri_store._conn = sqlite3.connect(
        f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
    )
    with pytest.raises(BackendUnavailable, match="read-only"):
        uri_store.append("t", Message.user("more"), user_id="u")
    assert [m.text for m in uri_store.read("t", user_id="u")] == ["stored"]


def test_several_processes_append_to_one_thread(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with SQLiteStore(path) as store:
        store.append("shared", Message.system("start"), user_id="u")
    script = textwrap.dedent(
        f"""
        import sys
        from tela_memory import Message
        from tela_memory.stores.sqlite import SQLiteStore
        w = sys.argv[1]
        with SQLiteStore({str(path)!r}) as store:
            for i in range(40):
                pair = [Message.user(f"{{w}}-{{i}}"), Message.assistant(f"{{w}}-{{i}}")]
                store.append("shared", pair, user_id="u")
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, f"p{n}"]) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    with SQLiteStore(path) as store:
        chain = store.read("shared", user_id="u")
    assert len(chain) == 1 + 4 * 40 * 2
    for i in range(1, len(chain), 2):
        assert chain[i].text == chain[i + 1].text
    for n in range(4):
        assert [m.text for m in chain if m.role == "user" and m.text.startswith(f"p{n}-")] == [
            f"p{n}-{i}" for i in range(40)
        ]


def test_companion_tables_created_first_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "index-first.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE recall_meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.commit()
    conn.close()
    with SQLiteStore(path) as store:
        store.append("t", Message.user("hello"), user_id="u")
        assert [m.text for m in store.read("t", user_id="u")] == ["hello"]
