"""The message model: validation, shortcuts, ids."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tela_memory import (
    ImageBlock,
    InvalidMessageError,
    Message,
    Role,
    TelaMemoryError,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
    new_id,
)


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


@given(st.text(), st.dictionaries(st.text(max_size=10), st.integers() | st.text() | st.none()))
def test_json_round_trip(text: str, metadata: dict[str, object]) -> None:
    m = Message.user(text, metadata=metadata, name="n")
    assert Message.parse(m.model_dump_json()) == m
