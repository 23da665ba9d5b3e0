"""Erasing a user's LangGraph namespaces with the messages: ``TelaStore.delete_namespace`` and
``UserNamespaces`` in ``tela_memory.privacy.erase_user``, on the store's own SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message
from tela_memory.privacy import aerase_user, erase_user
from tela_memory.stores import DEFAULT_USER
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory_langchain.graph_store import TelaStore, UserNamespaces


def _fill(path: Path) -> tuple[SQLiteStore, TelaStore]:
    messages = SQLiteStore(path)
    messages.append("a1", Message.user("I live in Lisbon"), user_id="alice")
    messages.append("b1", Message.user("I live in Oslo"), user_id="bob")
    # One space shared by the whole app (as before items had owners), the user in the namespace.
    graph = TelaStore.for_store(
        messages, user_id=DEFAULT_USER, index={"embed": HashEmbedder(8), "fields": ["text"]}
    )
    for user in ("alice", "bob", "alice2"):
        graph.put(("memories", user), "home", {"text": f"{user} home"})
        graph.put(("memories", user, "pets"), "cat", {"text": f"{user} has a cat"})
        graph.put(("profile", user), "name", {"text": user})
    graph.put(("memories", "alice"), "tmp", {"text": "expires"}, ttl=10)
    return messages, graph


def test_user_namespaces_go_with_the_user(tmp_path: Path) -> None:
    messages, graph = _fill(tmp_path / "tela.db")
    part = UserNamespaces(graph, ("memories", "{user_id}"), ("profile", "{user_id}"))
    receipt = erase_user("alice", messages, part)
    assert receipt.messages == 1
    assert receipt.extra == {"UserNamespaces": 4}
    assert graph.search(("memories", "alice")) == []
    assert graph.search(("profile", "alice")) == []
    assert graph.search(("alice",)) == []
    left = {(i.namespace, i.key) for i in graph.search((), limit=100)}
    assert left == {(("memories", u), "home") for u in ("bob", "alice2")} | {
        (("memories", u, "pets"), "cat") for u in ("bob", "alice2")
    } | {
        (("profile", u), "name") for u in ("bob", "alice2")
    }  # "alice2" shares a prefix of characters, not of labels: kept
    rows = graph._connection().execute(
        "SELECT count(*) FROM lgstore_vectors WHERE ns LIKE 'memories.alice%' AND ns NOT LIKE"
        " 'memories.alice2%'"
    )
    assert rows.fetchone()[0] == 0  # the vectors went with the items
    assert erase_user("alice", messages, part).extra == {"UserNamespaces": 0}
    graph.close()
    messages.close()


def test_async_twin(tmp_path: Path) -> None:
    messages, graph = _fill(tmp_path / "tela.db")
    part = UserNamespaces(graph, ("memories", "{user_id}"))
    receipt = asyncio.run(aerase_user("alice", messages, part))
    assert receipt.extra == {"UserNamespaces": 3}
    assert asyncio.run(graph.asearch(("memories", "alice"))) == []
    assert len(graph.search(("profile", "alice"))) == 1  # not one of the templates
    graph.close()
    messages.close()


def test_delete_namespace_and_templates_refuse_bad_input(tmp_path: Path) -> None:
    messages, graph = _fill(tmp_path / "tela.db")
    with pytest.raises(InvalidMessageError, match="non-empty tuple"):
        graph.delete_namespace(())
    with pytest.raises(InvalidMessageError, match=r"without '\.'"):
        graph.delete_namespace(("memories", "a.b"))
    with pytest.raises(InvalidMessageError, match="user_id"):
        UserNamespaces(graph, ("memories", "alice"))
    with pytest.raises(InvalidMessageError, match="at least one"):
        UserNamespaces(graph)
    assert graph.delete_namespace(("memories", "bob")) == 2
    # a user id with a dot cannot be a namespace label, so it owns nothing here
    assert erase_user("a.b", messages, UserNamespaces(graph, ("m", "{user_id}"))).extra == {
        "UserNamespaces": 0
    }
    graph.close()
    messages.close()
