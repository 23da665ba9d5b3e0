"""Fuzzing every decoder and the import (issue 20 item 6): fixed seeds, a bounded case count.

Inputs are valid documents of each format with one to three nodes replaced or removed by
hostile values (lone surrogates, integers beyond 64 bits, NaN, the wrong JSON type, deep
nesting), plus random text. Only ``TelaMemoryError`` subclasses may escape, and a failing
import leaves the store exactly as it was.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout, suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_formats_input import chatgpt_export

from tela_memory.cli import main
from tela_memory.errors import TelaMemoryError
from tela_memory.formats import CODECS, Conversation, read_text, write_text
from tela_memory.formats.store_io import import_conversations
from tela_memory.messages import (
    ImageBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from tela_memory.stores.sqlite import SQLiteStore

CASES = 300
FUZZ = settings(
    max_examples=CASES,
    derandomize=True,  # a fixed seed: the same cases on every run
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

CLAUDE_EXPORT = [
    {
        "uuid": "c-1",
        "name": "Trip",
        "created_at": "2025-03-01T10:00:00Z",
        "chat_messages": [
            {
                "uuid": "m1",
                "sender": "human",
                "text": "Plan a trip",
                "created_at": "2025-03-01T10:00:00Z",
                "attachments": [{"file_name": "n.txt", "extracted_content": "Lisbon"}],
            },
            {
                "uuid": "m2",
                "sender": "assistant",
                "created_at": "2025-03-01T10:00:05Z",
                "content": [
                    {"type": "text", "text": "Lisbon it is."},
                    {"type": "tool_use", "name": "web_search", "input": {"q": "x"}},
                ],
            },
        ],
    }
]


def _rich() -> list[Conversation]:
    call = ToolCallBlock(id="call-1", name="weather", arguments={"city": "Oslo", "days": 3})
    msgs = [
        Message.system("be brief"),
        Message.user([TextBlock(text="look"), ImageBlock(url="https://x.test/a.png")]),
        Message.assistant([ThinkingBlock(text="hm", signature="sig")], tool_calls=[call]),
        Message.tool("call-1", "snow"),
        Message.assistant("It snows.", metadata={"score": 1}),
    ]
    first = Conversation.linear(msgs, id="rich", title="Weather", user_id="ada")
    alt = Message.assistant("Or rain.", parent_id=msgs[-2].id)
    first.messages.append(alt)
    first.branches["alt"] = alt.id
    second = Conversation.linear([Message.user("hi"), Message.assistant("hello")], id="small")
    return [first, second]


def _sample(name: str) -> str:
    if name == "chatgpt":
        return json.dumps(chatgpt_export())
    if name == "claude-export":
        return json.dumps(CLAUDE_EXPORT)
    text, _ = write_text(_rich(), name)
    return text


SAMPLES = {name: _sample(name) for name in CODECS}

_hostile_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**80),
    st.integers(max_value=-(2**63) - 1, min_value=-(2**80)),
    st.floats(),  # NaN and infinities included: json.loads reads them back
    st.text(max_size=8),
    st.sampled_from(["\ud800", "a\udfffb", "", " ", "\x00", "9" * 400]),
    st.sampled_from(
        ["user", "assistant", "tool", "system", "human", "gpt", "model", "text", "image_url"]
    ),
    st.sampled_from(["tool_use", "tool_result", "function_call", "input_text", "thinking"]),
)
_hostile = st.recursive(
    _hostile_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _nodes(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _nodes(value, (*path, i))


def _replace(data: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return data


_DEEP = "__deep__"  # replaced by deeply nested arrays once the document is written


@st.composite
def documents(draw: st.DrawFn, name: str) -> str:
    """A hostile variant of a valid ``name`` document."""
    base = SAMPLES[name]
    if draw(st.integers(0, 9)) == 0:  # random text, or a cut of the valid document
        if draw(st.booleans()):
            return draw(st.text(max_size=200))
        return base[: draw(st.integers(0, len(base)))]
    lines = base.splitlines()
    if not base.lstrip().startswith(("{", "[")):  # a text format: splice hostile lines in
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(lines)))
            lines.insert(at, draw(st.sampled_from(lines) | st.text(max_size=40)))
            if draw(st.booleans()):
                lines.insert(at, json.dumps(draw(_hostile)))
        return "\n".join(lines)
    line_based = CODECS[name].line_based
    docs = (
        [json.loads(line) for line in lines if line.strip()] if line_based else [json.loads(base)]
    )
    for _ in range(draw(st.integers(1, 3))):
        which = draw(st.integers(0, len(docs) - 1))
        paths = list(_nodes(docs[which]))
        path = draw(st.sampled_from(paths))
        value = draw(_hostile) if draw(st.integers(0, 19)) else _DEEP
        with suppress(KeyError, IndexError):
            docs[which] = _replace(
                docs[which], path, value, delete=bool(path) and draw(st.booleans())
            )
    depth = draw(st.sampled_from([70, 500, 5_000]))
    deep = "[" * depth + "]" * depth
    dumped = [json.dumps(d).replace(f'"{_DEEP}"', deep) for d in docs]
    return "\n".join(dumped) if line_based else dumped[0]


def _content(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the store keeps for users (not the change feed, which records deletes)."""
    with sqlite3.connect(path) as conn:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith(("sqlite_", "changes", "meta", "recall_")) and "fts" not in r[0]
        ]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"'), key=repr) for t in tables}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SQLiteStore, Path]]:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    with SQLiteStore(path) as store:
        store.for_user("fuzz").append("small", [Message.user("already here")])
        yield store, path


def _check(store: SQLiteStore, path: Path, text: str, name: str, *, keep_going: bool) -> None:
    try:
        result = read_text(text, name, continue_on_error=keep_going)
    except TelaMemoryError:
        return
    before = _content(path)
    try:
        report = import_conversations(
            store, result.conversations, user_id="fuzz", continue_on_error=keep_going
        )
    except TelaMemoryError:
        assert _content(path) == before, "a failing import changed the store"
        return
    for tid in report.threads:  # keep the store small: undo what a good case wrote
        if tid != "small":
            store.delete_thread(tid, user_id="fuzz")


@pytest.mark.parametrize("name", sorted(CODECS))
def test_decoders_raise_only_our_errors(name: str, db: tuple[SQLiteStore, Path]) -> None:
    store, path = db

    @FUZZ
    @given(text=documents(name), keep_going=st.booleans())
    def run(text: str, keep_going: bool) -> None:
        _check(store, path, text, name, keep_going=keep_going)

    run()


def test_detection_raises_only_our_errors(db: tuple[SQLiteStore, Path]) -> None:
    store, path = db

    @FUZZ
    @given(text=st.sampled_from(sorted(CODECS)).flatmap(documents))
    def run(text: str) -> None:
        _check(store, path, text, "auto", keep_going=False)

    run()


def _cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


def test_cli_import_fails_cleanly_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["tela-memory"])
    db = tmp_path / "cli.db"
    with SQLiteStore(db) as store:
        store.for_user("local").append("seed", [Message.user("already here")])
    url = f"sqlite:///{db}"
    file = tmp_path / "in.txt"
    names = sorted(CODECS)

    @settings(FUZZ, max_examples=100)
    @given(name=st.sampled_from(names), data=st.data(), auto=st.booleans())
    def run(name: str, data: st.DataObject, auto: bool) -> None:
        file.write_text(data.draw(documents(name)), encoding="utf-8", errors="surrogatepass")
        before = _content(db)
        code, err = _cli("import", str(file), "--db", url, "-f", "auto" if auto else name)
        assert "Traceback" not in err, err
        assert "unexpected" not in err, err
        if code != 0:
            assert _content(db) == before, err
        else:
            with SQLiteStore(db) as store:
                for t in store.list_threads("local", limit=200).threads:
                    if t.id != "seed":
                        store.delete_thread(t.id, user_id="local")

    run()
