"""Imports are all or nothing, idempotent and resumable by message id (issue 20 item 4)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tela_memory.formats import Conversation, FormatError, read_file, read_text, write_file
from tela_memory.formats.store_io import ImportAborted, import_conversations, load_conversation
from tela_memory.messages import Message
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore

TWO = (
    '[{"messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}]},'
    ' {"messages": [{"role": "user", "content": "bad \\ud800 text"}]}]'
)
"""Valid JSON: the second conversation spells a lone surrogate with an escape."""


def _threads(store: SQLiteStore | InMemoryStore, user: str) -> list[str]:
    return [t.id for t in store.list_threads(user, limit=200).threads]


def _branchy() -> Conversation:
    msgs = [
        Message.user("q1"),
        Message.assistant("a1"),
        Message.user("q2"),
        Message.assistant("a2"),
    ]
    conv = Conversation.linear(msgs, id="t1", title="Title", tags=("x",))
    alt = Message.assistant("a1 again", parent_id=msgs[0].id)
    more = Message.user("q2 again", parent_id=alt.id)
    conv.messages += [alt, more]
    conv.branches["alt"] = more.id
    return conv


def _shape(store: SQLiteStore, user: str, tid: str) -> dict[str, list[str]]:
    conv = load_conversation(store, tid, user_id=user)
    return {name: [m.text for m in conv.path(name)] for name in sorted(conv.branches)}


def test_a_lone_surrogate_in_the_second_conversation_imports_nothing(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"\$\[1\].*lone surrogate U\+D800"):
        read_text(TWO, "openai")
    # conversations built around the model's validation are caught before the first write too
    first = Conversation.linear([Message.user("first"), Message.assistant("ok")])
    bad = Message.user("x").model_copy(update={"content": [{"type": "text", "text": "\ud800"}]})
    sneaky = Conversation.linear([Message.user("x").model_copy(update={"name": "\udc00"}), bad])
    for store in (InMemoryStore(), SQLiteStore(tmp_path / "a.db")):
        with pytest.raises(ImportAborted, match=r"#1 not imported.*surrogate"):
            import_conversations(store, [first, sneaky], user_id="ann")
        assert _threads(store, "ann") == []


def test_the_cli_imports_nothing_and_shows_no_traceback(tmp_path: Path) -> None:
    file = tmp_path / "two.json"
    file.write_text(TWO)
    db = tmp_path / "cli.db"
    proc = subprocess.run(
        [sys.executable, "-m", "tela_memory", "import", str(file), "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "lone surrogate" in proc.stderr
    with SQLiteStore(db) as store:
        assert _threads(store, "local") == []


def test_importing_the_same_file_twice_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    write_file(path, [_branchy()], "tela")
    with SQLiteStore(tmp_path / "s.db") as store:
        first = import_conversations(store, read_file(path).conversations, user_id="ann")
        shape = _shape(store, "ann", "t1")
        again = import_conversations(store, read_file(path).conversations, user_id="ann")
        assert (first.threads, first.messages) == (["t1"], 6)
        assert (again.threads, again.unchanged, again.messages) == ([], ["t1"], 0)
        assert _threads(store, "ann") == ["t1"]
        assert _shape(store, "ann", "t1") == shape


@pytest.mark.parametrize("done", ["main-part", "main", "fork"])
def test_an_interrupted_import_is_completed(tmp_path: Path, done: str) -> None:
    conv = _branchy()
    with SQLiteStore(tmp_path / "s.db") as store:
        ann = store.for_user("ann")
        main = conv.path()
        if done == "main-part":  # what a killed import leaves: a prefix, by message id
            ann.append("t1", [m.model_copy(update={"parent_id": None}) for m in main[:2]])
        else:
            ann.append("t1", [m.model_copy(update={"parent_id": None}) for m in main])
        if done == "fork":
            ann.fork("t1", main[0].id, name="alt")
        report = import_conversations(store, [conv], user_id="ann")
        assert report.resumed == ["t1"]
        assert _shape(store, "ann", "t1") == {
            "alt": ["q1", "a1 again", "q2 again"],
            "main": ["q1", "a1", "q2", "a2"],
        }
        assert store.get_thread("t1", user_id="ann").title == "Title"
        assert import_conversations(store, [conv], user_id="ann").unchanged == ["t1"]


_KILL = textwrap.dedent(
    """
    import os, sys
    from tela_memory.formats import read_file
    from tela_memory.formats import store_io
    from tela_memory.stores.sqlite import SQLiteStore

    stop, seen = int(sys.argv[3]), 0

    def trace(frame, event, arg):
        global seen
        if frame.f_code is store_io._write.__code__ and event == "line":
            seen += 1
            if seen == stop:
                os._exit(9)  # a kill: no cleanup runs
        return trace

    convs = read_file(sys.argv[1]).conversations
    with SQLiteStore(sys.argv[2]) as store:
        sys.settrace(trace)
        store_io.import_conversations(store, convs, user_id="ann")
        sys.settrace(None)
    print(seen)
    """
)


def test_a_killed_import_run_again_completes_without_duplicates(tmp_path: Path) -> None:
    other = Conversation.linear([Message.user("x"), Message.assistant("y")], id="t0")
    path = tmp_path / "in.json"
    write_file(path, [other, _branchy()], "tela")
    script = tmp_path / "kill.py"
    script.write_text(_KILL)
    stop = 1
    while True:
        db = tmp_path / f"k{stop}.db"
        proc = subprocess.run(
            [sys.executable, str(script), str(path), str(db), str(stop)],
            capture_output=True,
            text=True,
            check=False,
        )
        with SQLiteStore(db) as store:
            report = import_conversations(store, read_file(path).conversations, user_id="ann")
            assert sorted(report.threads + report.unchanged) == ["t0", "t1"]
            assert _shape(store, "ann", "t1") == {
                "alt": ["q1", "a1 again", "q2 again"],
                "main": ["q1", "a1", "q2", "a2"],
            }
            assert _shape(store, "ann", "t0") == {"main": ["x", "y"]}
        if proc.returncode == 0:  # the import got past every line: all kill points tried
            assert stop > 5, proc.stderr
            break
        assert proc.returncode == 9, proc.stderr
        stop += 1
    assert json.loads(proc.stdout) == stop - 1
