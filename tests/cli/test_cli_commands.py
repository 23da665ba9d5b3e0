"""The ``tela-memory`` command line, run as a real subprocess on real SQLite files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tela_memory.messages import Message
from tela_memory.stores.sqlite import SQLiteStore

DATA = Path(__file__).parents[2] / ".." / "shared" / "data" / "chats"
SAMPLE = DATA / "sharegpt-sample.json"
EXE = Path(sys.executable).parent / "tela-memory"
# the cl100k / o200k files llama-index-core (a dev dependency) ships
TIKTOKEN_CACHE = Path(sysconfig.get_paths()["purelib"]) / "llama_index/core/_static/tiktoken_cache"


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    """Run ``tela-memory ARGS --db <a fresh SQLite file>``; returns the CompletedProcess."""
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {**os.environ, "HOME": str(tmp_path), "COLUMNS": "160", "NO_COLOR": "1"}
    env.pop("TELA_MEMORY_DB", None)
    if "TIKTOKEN_CACHE_DIR" not in env and TIKTOKEN_CACHE.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(TIKTOKEN_CACHE)  # exact counts offline

    def run(*args: str, stdin: str | None = None, use_db: bool = True) -> Any:
        cmd = [str(EXE), *args, *(["--db", db] if use_db else [])]
        return subprocess.run(
            cmd, capture_output=True, text=True, env=env, input=stdin, timeout=300, check=False
        )

    run.db = db  # type: ignore[attr-defined]
    return run


def as_json(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def threads_in(cli: Any) -> int:
    return int(as_json(cli("stats", "--json"))["threads"])


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_help_lists_every_command(cli: Any) -> None:
    out = cli("--help", use_db=False)
    assert out.returncode == 0
    for name in (
        "import",
        "export",
        "show",
        "threads",
        "search",
        "context",
        "stats",
        "erase",
        "demo",
        "formats",
    ):
        assert name in out.stdout


def test_version_flag_and_command_print_the_installed_version(cli: Any) -> None:
    from importlib.metadata import version

    for args in (("--version",), ("version",)):
        out = cli(*args, use_db=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == version("tela-memory-core")


def test_sharegpt_sample_import_and_export_back(cli: Any, tmp_path: Path) -> None:
    imported = cli("import", str(SAMPLE))
    assert imported.returncode == 0, imported.stderr
    assert "Imported 500 conversations (2000 messages)" in " ".join(imported.stdout.split())
    assert "500/500" in imported.stderr  # the progress bar
    out = tmp_path / "back.json"
    exported = cli("export", "--user", "local", "--format", "sharegpt", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(out.read_text()) == json.loads(SAMPLE.read_text())


def test_import_json_output(cli: Any) -> None:
    data = as_json(cli("import", str(SAMPLE), "--json", "--user", "ann"))
    assert (data["format"], data["conversations"], data["messages"]) == ("sharegpt", 500, 2000)
    assert data["skipped"] == []
    assert as_json(cli("stats", "--json", "--user", "ann"))["messages"] == 2000


def test_import_from_stdin(cli: Any) -> None:
    body = json.dumps([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}])
    data = as_json(cli("import", "-", "--json", stdin=body))
    assert (data["format"], data["messages"]) == ("openai", 2)


def test_truncated_json_fails_and_imports_nothing(cli: Any, tmp_path: Path) -> None:
    text = SAMPLE.read_text()
    bad = tmp_path / "cut.json"
    bad.write_text(text[: len(text) // 3])
    proc = cli("import", str(bad))
    assert proc.returncode == 1
    assert "truncated JSON" in proc.stderr
    assert "line" in proc.stderr
    assert threads_in(cli) == 0
    scripted = cli("import", str(bad), "--json")
    assert scripted.returncode == 1
    error = json.loads(scripted.stdout)["error"]
    assert error["type"] == "FormatError"
    assert error["where"].startswith("input line ")


def test_conflicting_import_is_atomic_unless_continue_on_error(cli: Any, tmp_path: Path) -> None:
    sample = json.loads(SAMPLE.read_text())
    assert cli("import", str(write(tmp_path / "a.json", sample[:3]))).returncode == 0
    mixed = write(tmp_path / "b.json", sample[2:6])  # identity_2 is already there
    proc = cli("import", str(mixed))
    assert proc.returncode == 1
    assert "identity_2" in proc.stderr
    assert "nothing was imported" in proc.stderr
    assert threads_in(cli) == 3
    data = as_json(cli("import", str(mixed), "--continue-on-error", "--json"))
    assert data["conversations"] == 3
    assert [s["where"] for s in data["skipped"]] == ["identity_2"]
    assert threads_in(cli) == 6


def test_bad_conversation_skipped_with_continue_on_error(cli: Any, tmp_path: Path) -> None:
    sample = json.loads(SAMPLE.read_text())[:4]
    sample[1]["conversations"][0]["from"] = "robot"
    path = write(tmp_path / "bad.json", sample)
    proc = cli("import", str(path))
    assert proc.returncode == 1
    assert "$[1].conversations[0].from" in proc.stderr
    assert threads_in(cli) == 0
    proc = cli("import", str(path), "--continue-on-error")
    assert proc.returncode == 0
    assert "skipped 1" in proc.stderr
    assert threads_in(cli) == 3


def test_wrong_format_flag(cli: Any) -> None:
    proc = cli("import", str(SAMPLE), "--format", "gemini")
    assert proc.returncode == 1
    assert "--format sharegpt" in proc.stderr
    assert threads_in(cli) == 0


def test_invalid_utf8_and_huge_file(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes(
        '[{"id": "x", "conversations": [{"from": "human", "value": "olé"}]}]'.encode("latin-1")
    )
    proc = cli("import", str(bad))
    assert proc.returncode == 1
    assert "invalid UTF-8" in proc.stderr
    huge = tmp_path / "huge.json"
    with huge.open("wb") as fh:
        fh.truncate(200 * 1024 * 1024)
    proc = cli("import", str(huge), "--format", "sharegpt")
    assert proc.returncode == 1
    assert "MB" in proc.stderr
    assert "--max-size" in proc.stderr
    assert threads_in(cli) == 0


def test_show_threads_search_context(cli: Any) -> None:
    assert cli("import", str(SAMPLE)).returncode == 0
    shown = as_json(cli("show", "identity_2", "--json"))
    assert [m["content"][0]["text"] for m in shown["messages"]][:2] == [
        "What is up?",
        "Hello! How can I help you today?",
    ]
    listed = as_json(cli("threads", "--json", "--limit", "5"))
    assert len(listed["threads"]) == 5
    assert listed["next_cursor"]
    found = as_json(cli("search", "Vicuna LMSYS", "-k", "3", "--json"))
    assert len(found["hits"]) == 3
    assert all("Vicuna" in h["message"]["content"][0]["text"] for h in found["hits"])
    ctx = as_json(cli("context", "identity_2", "--budget", "40", "--json"))
    assert ctx["tokens_sent"] <= 40 < ctx["tokens_total"]
    assert ctx["dropped"]
    text = cli("show", "identity_2")
    assert "What is up?" in text.stdout


def test_context_with_recall_from_other_threads(cli: Any, tmp_path: Path) -> None:
    src = tmp_path / "r.db"
    with SQLiteStore(src) as store:
        store.append(
            "old",
            [Message.user("My locker code is 4711."), Message.assistant("Noted.")],
            user_id="ann",
        )
        store.append(
            "new",
            [
                Message.user("hello " * 50),
                Message.assistant("hi " * 50),
                Message.user("What is my locker code?"),
            ],
            user_id="ann",
        )
    db = f"sqlite:///{src}"
    ann = ("--user", "ann", "--db", db)
    plain = as_json(cli("context", "new", "--budget", "200", "--json", *ann, use_db=False))
    assert "recalled" not in {d["decision"] for d in plain["decisions"].values()}
    data = as_json(
        cli("context", "new", "--budget", "200", "--recall", "--json", *ann, use_db=False)
    )
    recalled = [i for i, d in data["decisions"].items() if d["decision"] == "recalled"]
    assert recalled
    assert data["tokens_sent"] <= 200
    with SQLiteStore(src) as store:
        assert "4711" in " ".join(store.get(i, user_id="ann").text for i in recalled)


def test_unknown_thread_and_store(cli: Any) -> None:
    proc = cli("show", "nope")
    assert proc.returncode == 1
    assert "nope" in proc.stderr
    proc = cli("stats", "--db", "nosuch://x", use_db=False)
    assert proc.returncode == 1
    assert "no store backend for scheme 'nosuch'" in proc.stderr


def test_erase_asks_first(cli: Any) -> None:
    assert cli("import", str(SAMPLE)).returncode == 0
    proc = cli("erase", "--user", "local", stdin="n\n")
    assert proc.returncode == 1  # aborted
    assert threads_in(cli) == 500
    proc = cli("erase", "--user", "local", "--json")
    assert proc.returncode == 1
    assert "--yes" in proc.stderr
    receipt = as_json(cli("erase", "--user", "local", "--yes", "--json"))
    assert (receipt["threads"], receipt["messages"]) == (500, 2000)
    assert threads_in(cli) == 0


def test_tela_json_round_trip_keeps_branches(cli: Any, tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    with SQLiteStore(src) as backend:
        store = backend.for_user("ann")
        first = store.append("t1", [Message.user("hi"), Message.assistant("hello")])
        store.append("t1", Message.user("and then?"))
        store.fork("t1", first[0].id, name="retry")
        store.append("t1", Message.assistant("hey there"), branch="retry")
        store.update_thread("t1", title="Greeting", tags=["demo"])
    dump = tmp_path / "dump.json"
    proc = cli(
        "export", "t1", "--user", "ann", "-o", str(dump), "--db", f"sqlite:///{src}", use_db=False
    )
    assert proc.returncode == 0, proc.stderr
    assert cli("import", str(dump), "--user", "ann").returncode == 0
    again = tmp_path / "again.json"
    assert cli("export", "--user", "ann", "-o", str(again)).returncode == 0
    a = json.loads(dump.read_text())["conversations"][0]
    b = json.loads(again.read_text())["conversations"][0]
    for key in ("id", "title", "tags", "branches", "default_branch", "messages"):
        assert a[key] == b[key], key
    assert set(a["branches"]) == {"main", "retry"}


def test_export_to_stdout_reports_losses_on_stderr(cli: Any, tmp_path: Path) -> None:
    src = tmp_path / "src.db"
    with SQLiteStore(src) as backend:
        store = backend.for_user("ann")
        store.append("t", [Message.user("q"), Message.assistant("a")])
        store.fork("t", store.read("t")[0].id, name="alt")
    db = f"sqlite:///{src}"
    proc = cli("export", "t", "-u", "ann", "-f", "markdown", "--db", db, use_db=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("# t")
    assert "branch" in proc.stderr


def test_formats_listing(cli: Any) -> None:
    rows = as_json(cli("formats", "--json", use_db=False))
    lossless = {r["name"] for r in rows if r["lossless"]}
    assert lossless == {"tela", "jsonl"}
    assert {r["name"] for r in rows if not r["export"]} == {"chatgpt", "claude-export"}


def test_demo_runs_offline_and_cleans_up(cli: Any) -> None:
    proc = cli("demo", use_db=False)
    assert proc.returncode == 0, proc.stderr
    for step in ("1. Import", "2. What the model", "3. Recall", "4. Fork", "5. Export", "6. Erase"):
        assert step in proc.stdout
    assert "blue-heron-42" in proc.stdout


def test_demo_json_summary(cli: Any) -> None:
    data = as_json(cli("demo", "--json", use_db=False))
    assert data["imported"]["messages"] >= 300
    assert data["context"]["tokens_sent"] <= data["context"]["budget"]
    assert data["context"]["saved"] > 0.5
    assert data["recall"]["hits"][0]["thread"] == "demo-1"
    assert "blue-heron-42" in data["recall"]["hits"][0]["text"]
    assert any("blue-heron-42" in t for t in data["recall"]["in_context"])
    assert data["recall"]["context_tokens"] <= data["context"]["budget"]
    assert set(data["fork"]) == {"main", "short-answer"}
    assert data["export"]["sharegpt"]["losses"] == {"image": 1, "branch": 1, "structure": 18}
    assert data["export"]["markdown"]["losses"]["branch"] == 1
    assert data["erase"]["threads_left"] == 0
    assert not Path(data["workdir"]).exists()
