"""The message model: validation, shortcuts, ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tela_memory import (
    ImageBlock,
    InvalidMessageError,
    Message,
    Role,
    TelaMemoryError,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
    ToolResultBlock,
    new_id,
)
from tela_memory.errors import SchemaError
from tela_memory.messages import INT_MAX, INT_MIN, load_stored, load_stored_branch

_UNICODE = st.characters(codec="utf-8")  # what the model accepts: no lone surrogate


def _text(*, max_size: int | None = None, **kw: int) -> st.SearchStrategy[str]:
    return st.text(_UNICODE, max_size=max_size, **kw)


def test_text_shortcut_and_properties() -> None:
    call = ToolCallBlock(id="c1", name="search", arguments={"q": "x"})
    m = Message.assistant("looking", tool_calls=[call])
    assert m.content[0] == TextBlock(text="looking")
    assert m.tool_calls == [call]
    assert m.text == "looking"
    assert m.created_at.tzinfo is not None
    tool = Message.tool("c1", "result text")
    assert tool.tool_results[0].text == "result text"
    assert tool.text == "result text"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"role": "wizard", "content": "hi"}, "role"),
        ({"role": "user", "content": [{"type": "hologram"}]}, "content"),
        ({"role": "tool", "content": "no result block"}, "tool_result"),
        ({"role": "user", "content": [{"type": "tool_call", "id": "c", "name": "f"}]}, "assistant"),
        (
            {"role": "assistant", "content": [{"type": "tool_result", "tool_call_id": "c"}]},
            "tool messages",
        ),
        (
            {"role": "tool", "content": [{"type": "tool_result", "tool_call_id": ""}]},
            "tool_call_id",
        ),
        ({"role": "user", "content": "x", "metadata": {"when": datetime.now()}}, "metadata"),
        ({"role": "user", "content": "x", "metadata": {"n": float("nan")}}, "metadata"),
        ({"role": "user", "content": [{"type": "image"}]}, "exactly one"),
        ({"role": "user", "content": "x", "surprise": 1}, "surprise"),
    ],
)
def test_bad_messages_raise_clear_errors(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidMessageError) as info:
        Message(**fields)
    assert isinstance(info.value, TelaMemoryError)
    assert fragment in str(info.value)


def test_parse_accepts_json_and_reports_errors() -> None:
    m = Message.user("hello")
    assert Message.parse(m.model_dump_json()) == m
    assert Message.parse(json.loads(m.model_dump_json())) == m
    with pytest.raises(InvalidMessageError, match="role"):
        Message.parse({"role": "robot"})
    with pytest.raises(InvalidMessageError):
        Message.parse("{not json")


def test_messages_are_immutable() -> None:
    m = Message.user("x")
    with pytest.raises(Exception):  # noqa: B017, PT011 - pydantic's frozen error
        m.role = Role.SYSTEM  # type: ignore[misc]


def test_tool_result_content_may_hold_images() -> None:
    block = ToolResultBlock(
        tool_call_id="c", content=[TextBlock(text="chart:"), ImageBlock(url="https://x/y.png")]
    )
    assert block.text == "chart:"


def test_ids_are_uuid7_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)


@given(
    _text(),
    st.dictionaries(_text(max_size=10), st.integers(INT_MIN, INT_MAX) | _text() | st.none()),
)
def test_json_round_trip(text: str, metadata: dict[str, object]) -> None:
    m = Message.user(text, metadata=metadata, name="n")
    assert Message.parse(m.model_dump_json()) == m


# -- reading back what a store wrote -----------------------------------------------------------

_blocks = st.one_of(
    st.builds(TextBlock, text=_text()),
    st.builds(ImageBlock, url=st.just("https://example.com/a.png"), alt_text=_text() | st.none()),
    st.builds(ThinkingBlock, text=_text(), signature=_text() | st.none()),
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(INT_MIN, INT_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_times = st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]))


@st.composite
def stored_messages(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from(["user", "assistant", "tool", "system"]))
    common: dict[str, Any] = {
        "metadata": draw(st.dictionaries(_text(max_size=8), _json, max_size=3)),
        "created_at": draw(_times),
        "name": draw(_text(max_size=8) | st.none()),
        "thread_id": draw(_text(min_size=1, max_size=8) | st.none()),
        "parent_id": draw(_text(min_size=1, max_size=8) | st.none()),
    }
    if kind == "tool":
        return Message.tool(draw(_text(min_size=1, max_size=8)), draw(_text()), **common)
    blocks = draw(st.lists(_blocks, max_size=3))
    if kind == "assistant":
        calls = [
            ToolCallBlock(
                id=f"c{i}",
                name="f",
                arguments=draw(st.dictionaries(_text(max_size=5), _json, max_size=2)),
            )
            for i in range(draw(st.integers(0, 2)))
        ]
        return Message.assistant(blocks, tool_calls=calls, **common)
    return Message(role=Role(kind), content=blocks, **common)


@given(stored_messages())
def test_load_stored_gives_back_what_full_validation_gives(message: Message) -> None:
    raw = message.model_dump_json()
    loaded = load_stored(raw)
    assert loaded == message == Message.model_validate_json(raw)
    assert type(loaded) is Message
    assert loaded.created_at.utcoffset() == timedelta(0)


def test_load_stored_skips_the_rules_checked_on_the_way_in() -> None:
    # the behaviour that shows the native fast path is in use (if a pydantic release laid the
    # schema out differently, load_stored would fall back to full validation and fail here)
    no_result = '{"id": "x", "role": "tool", "content": [], "created_at": "2026-01-01T00:00:00Z"}'
    with pytest.raises(ValidationError):
        Message.model_validate_json(no_result)
    assert load_stored(no_result).role is Role.TOOL


@pytest.mark.parametrize(
    ("stamp", "hour"), [("2026-01-01T10:00:00", 10), ("2026-01-01T10:00:00+02:00", 8)]
)
def test_load_stored_gives_times_in_utc(stamp: str, hour: int) -> None:
    raw = f'{{"id": "x", "role": "user", "created_at": "{stamp}"}}'
    for loaded in (load_stored(raw), *load_stored_branch([raw], thread_id="t", user_id=None,
                                                        parent_id=None)):  # fmt: skip
        assert loaded.created_at.tzinfo is UTC
        assert loaded.created_at.hour == hour
        assert loaded.created_at == Message.model_validate_json(raw).created_at


_AT = '"created_at": "2026-01-01T00:00:00Z"'


@pytest.mark.parametrize(
    "body",
    [
        '"role": "robot"',
        '"role": "user", "content": "a string is a shortcut for callers, not for stored data"',
        '"role": "user", "content": [{"type": "text"}]',
        '"role": "user", "extra": 1',
        '"role": "user", "content": [{"type": "image"}]',
        '"role": "user", "metadata": []',
    ],
)
def test_load_stored_still_rejects_malformed_data(body: str) -> None:
    with pytest.raises(SchemaError, match="stored message is unreadable"):
        load_stored(f'{{"id": "x", {body}, {_AT}}}')
    for junk in (b"not json", b"{}", b"\xff\xfe"):
        with pytest.raises(SchemaError):
            load_stored(junk)


def test_rule_errors_name_the_rule_not_the_model() -> None:
    with pytest.raises(InvalidMessageError) as err:
        Message(role="tool", content="no result block")
    assert str(err.value).startswith("invalid message: a tool message must carry")
    with pytest.raises(InvalidMessageError, match=r"metadata\.score: nan is not a finite number"):
        Message.user("x", metadata={"score": float("nan")})


@given(st.lists(stored_messages(), max_size=6), st.sampled_from([None, "ana"]))
def test_load_stored_branch_binds_the_chain(messages: list[Message], user: str | None) -> None:
    bound = {"thread_id", "user_id", "parent_id"}
    raws = [m.model_dump_json(exclude=bound) for m in messages]
    loaded = load_stored_branch(raws, thread_id="t", user_id=user, parent_id="root")
    parents = ["root", *(m.id for m in messages)][: len(messages)]
    expected = [
        m.model_copy(update={"thread_id": "t", "user_id": user, "parent_id": p})
        for m, p in zip(messages, parents, strict=True)
    ]
    assert loaded == expected
    assert all(load_stored(r) == m.model_copy(update=dict.fromkeys(bound)) for r, m in
               zip(raws, messages, strict=True))  # fmt: skip


def test_load_stored_branch_stops_at_the_first_bad_entry() -> None:
    good = Message.user("fine").model_dump_json()
    with pytest.raises(SchemaError, match="entry 1 of the read"):
        load_stored_branch([good, '{"role": "user"}'], thread_id="t", user_id=None, parent_id=None)
    with pytest.raises(SchemaError):
        load_stored_branch([good, None], thread_id="t", user_id=None, parent_id=None)  # type: ignore[list-item]


def test_load_stored_needs_the_id_and_time_a_store_always_writes() -> None:
    # full validation would invent a fresh id (and time) for such junk on every read
    for junk in ('{"role": "user"}', '{"role": "user", "id": "x"}', f'{{"role": "user", {_AT}}}'):
        assert Message.model_validate_json(junk).role is Role.USER
        with pytest.raises(SchemaError):
            load_stored(junk)


def test_argument_errors_are_value_errors_too() -> None:
    """issue 20 item 11: frameworks catch ``ValueError`` for bad arguments."""
    from tela_memory.errors import InvalidArgumentError, TelaMemoryError

    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(InvalidArgumentError, TelaMemoryError)
    assert issubclass(InvalidMessageError, InvalidArgumentError)
    with pytest.raises(ValueError, match="lone surrogate"):
        Message.user("\ud800")
