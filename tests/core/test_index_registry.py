"""``open_index(url)``: the installed index for a URL scheme, through entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from tela_memory.errors import InvalidArgumentError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.recall import SQLiteIndex, open_index
from tela_memory.stores.memory import InMemoryStore
from tela_memory.testing.embedders import HashEmbedder


def test_a_sqlite_url_opens_the_embedded_index_with_its_options(tmp_path: Path) -> None:
    path = tmp_path / "recall.db"
    embedder = HashEmbedder(16)
    with open_index(f"sqlite:///{path}", embedder=embedder) as index:
        assert isinstance(index, SQLiteIndex)
        assert index.embedder is embedder
        assert index.path == str(path)
        index.upsert(Message.user("a file of its own", thread_id="t", user_id="u"))
    assert path.exists()


def test_an_index_from_a_url_follows_a_store() -> None:
    store = InMemoryStore()
    with open_index("sqlite:///:memory:").follow(store) as index:
        store.for_user("u").append("t", Message.user("found without a sync"))
        assert index.count({"user_id": "u"}) == 1


def test_bad_urls_say_what_is_wrong() -> None:
    with pytest.raises(TelaMemoryError, match="no index backend for scheme 'nope'"):
        open_index("nope://x")
    with pytest.raises(TelaMemoryError, match="has no scheme"):
        open_index("recall.db")
    with pytest.raises(InvalidArgumentError, match="names no file"):
        open_index("sqlite://")
