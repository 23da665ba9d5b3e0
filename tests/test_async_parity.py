"""Every public ``x`` that has an async twin ``ax`` takes exactly the same parameters (names,
kinds, defaults), on the contracts and on every backend, so that a caller switching to the
async side changes nothing but ``await`` and the name (issue 18: twins drifted before)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from tela_memory import privacy
from tela_memory.context import ContextEngine
from tela_memory.recall.index import Index
from tela_memory.recall.recaller import Recaller
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.records.base import RecordStore
from tela_memory.records.memory import InMemoryRecordStore
from tela_memory.records.scoped import UserRecords
from tela_memory.records.sqlite import SQLiteRecordStore
from tela_memory.session import Session
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.scoped import UserStore
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory_langchain.graph_store import TelaStore
from tela_memory_langchain.history import TelaChatMessageHistory
from tela_memory_llamaindex.chat_store import TelaChatStore
from tela_memory_qdrant import QdrantIndex
from tela_memory_redis import RedisStore
from tela_memory_redis.index import RedisIndex

CLASSES: list[type[Any]] = [
    MessageStore, UserStore, SQLiteStore, InMemoryStore, RedisStore,
    Index, SQLiteIndex, RedisIndex, QdrantIndex, Recaller,
    RecordStore, UserRecords, SQLiteRecordStore, InMemoryRecordStore,
    Session, ContextEngine, TelaChatMessageHistory, TelaChatStore, TelaStore,
]  # fmt: skip

# pairs whose async side is defined by the framework, not by us
FOREIGN = {
    ("TelaChatMessageHistory", "messages"),  # a property; LangChain's twin is aget_messages
    ("TelaStore", "batch"),  # LangGraph's BaseStore spells both
}


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def _pairs(cls: type[Any]) -> list[tuple[str, str]]:
    names = {n for n in dir(cls) if not n.startswith("_")}
    out = []
    for name in sorted(names):
        twin = "a" + name
        if twin not in names or (cls.__name__, name) in FOREIGN:
            continue
        if callable(getattr(cls, name)) and not isinstance(
            inspect.getattr_static(cls, name), property
        ):
            out.append((name, twin))
    return out


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_async_twin_takes_the_same_parameters(cls: type[Any]) -> None:
    pairs = _pairs(cls)
    assert pairs, f"{cls.__name__} has no async twins to check"
    drift = {
        name: (_params(getattr(cls, name)), _params(getattr(cls, twin)))
        for name, twin in pairs
        if _params(getattr(cls, name)) != _params(getattr(cls, twin))
    }
    assert drift == {}


def test_async_twins_are_awaitable_or_async_iterators() -> None:
    for cls in CLASSES:
        for _, twin in _pairs(cls):
            fn = getattr(cls, twin)
            native = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
            assert native, f"{cls.__name__}.{twin}"


def test_privacy_functions_have_twins_with_the_same_parameters() -> None:
    for name in ("erase_user", "user_data"):
        assert _params(getattr(privacy, name)) == _params(getattr(privacy, "a" + name))
