"""Every string and number the message model accepts can be stored (issue 20 item 5)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message
from tela_memory.recall.errors import InvalidQueryError
from tela_memory.recall.types import SearchFilter, check_query
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore

PROPERTY = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # what every store keeps
_ids = itertools.count()
_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)  # st.text never draws them: mixed in here
_any_text = st.lists(st.characters() | _SURROGATES, max_size=20).map("".join)
_any_int = st.integers() | st.integers(min_value=2**62, max_value=2**70).map(lambda i: i * -1)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[MessageStore]]:
    sqlite = SQLiteStore(tmp_path_factory.mktemp("u") / "u.db")
    yield [sqlite, InMemoryStore()]
    sqlite.close()


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _round_trips(stores: list[MessageStore], message: Message) -> None:
    for store in stores:
        tid = f"t{next(_ids)}"
        store.append(tid, [message], user_id="u")
        (back,) = store.read(tid, user_id="u")
        assert back.content == message.content
        assert (back.name, back.metadata, back.id) == (message.name, message.metadata, message.id)


@PROPERTY
@given(text=_any_text, name=_any_text, key=_any_text, value=_any_text | _any_int)
def test_every_accepted_string_is_utf8_and_round_trips(
    stores: list[MessageStore], text: str, name: str, key: str, value: str | int
) -> None:
    bad = any(_has_surrogate(s) for s in (text, name, key, value) if isinstance(s, str))
    bad = bad or (isinstance(value, int) and not INT_MIN <= value <= INT_MAX)
    if bad:
        with pytest.raises(InvalidMessageError, match=r"lone surrogate|out of range"):
            Message.user(text, name=name or None, metadata={key: value})
        return
    message = Message.user(text, name=name or None, metadata={key: value})
    for s in (text, name, key, value):
        if isinstance(s, str):
            s.encode("utf-8")
    message.model_dump_json().encode("utf-8")
    _round_trips(stores, message)


@PROPERTY
@given(call_id=_any_text.filter(bool), tool=_any_text.filter(bool), arg=_any_text | _any_int)
def test_tool_calls_too(stores: list[MessageStore], call_id: str, tool: str, arg: Any) -> None:
    bad = any(_has_surrogate(s) for s in (call_id, tool, arg) if isinstance(s, str))
    bad = bad or (isinstance(arg, int) and not INT_MIN <= arg <= INT_MAX)
    call = {"type": "tool_call", "id": call_id, "name": tool, "arguments": {"a": arg, "b": [arg]}}
    if bad:
        with pytest.raises(InvalidMessageError, match=r"lone surrogate|out of range|unicode"):
            Message(role="assistant", content=[call])
        return
    message = Message(role="assistant", content=[call])
    _round_trips(stores, message)


def test_errors_say_what_is_wrong() -> None:
    with pytest.raises(InvalidMessageError, match=r"content\.0\.text: lone surrogate U\+D800"):
        Message.user("ok \ud800")
    with pytest.raises(InvalidMessageError, match=r"^invalid message: name: lone surrogate"):
        Message.user("ok", name="\udfff")
    with pytest.raises(InvalidMessageError, match=r"metadata\.n: integer 2{0}"):
        Message.user("ok", metadata={"n": 2**64 * 2})
    with pytest.raises(InvalidMessageError, match="not a finite number"):
        Message.user("ok", metadata={"n": [float("inf")]})
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(InvalidMessageError, match="nested more than 64"):
        Message.user("ok", metadata={"n": deep})


@pytest.mark.parametrize(
    "fields",
    [
        {"metadata": {"n": 2**63}},
        {"metadata": {"n": (1, -(2**63) - 1)}},
        {"user_id": "\ud800"},
        {"thread_ids": ["ok", "\udc00"]},
        {"message_ids": ["\ud800"]},
        {"metadata": {"k": "\ud800"}},
    ],
)
def test_filters_refuse_what_a_backend_cannot_bind(fields: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(InvalidQueryError, match=r"surrogate|out of range"):
        SearchFilter(**fields)
    with pytest.raises(InvalidQueryError, match=r"surrogate|out of range"):
        SearchFilter.coerce(fields)
    assert SearchFilter(metadata={"n": INT_MAX, "m": INT_MIN}).metadata["n"] == INT_MAX


def test_queries_refuse_lone_surrogates() -> None:
    with pytest.raises(InvalidQueryError, match="lone surrogate"):
        check_query("where \ud800")
