"""``--user`` is the acting user on every CLI command: another user's threads look missing.

Ada moves threads with markers in every field through the CLI (``export`` from one file,
``import --user ada`` into another). Then Bob, who has a thread of his own called ``A1`` too,
and users with hostile ids run every reading command on Ada's thread ids: no marker may reach
stdout or stderr, the exit code and output are those of a thread that never existed, and no
traceback or other user's name is printed. Each case is paired with Ada running the same
command, who does see her markers (so that an empty answer cannot pass vacuously).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tela_memory.formats import Conversation, write_file
from tela_memory.messages import Message
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.ownership import Victim, leaks, seed_victim

EXE = Path(sys.executable).parent / "tela-memory"
TIKTOKEN_CACHE = Path(sysconfig.get_paths()["purelib"]) / "llama_index/core/_static/tiktoken_cache"
ACTORS = ("bob", "ada' OR '1'='1", "*", "ADA", "ada ")
"""Bob (who owns a thread ``A1`` of his own) and hostile ids, each an opaque other user."""
THREAD_ACTORS = ACTORS[:3]
"""Who runs the per-thread commands (each is a subprocess: the three that differ most)."""
NEVER = "never-existed-7f3a"
"""A thread id nobody has: what a foreign thread must look like."""

# the reading commands, with {t} standing for a thread id
PATHS: dict[str, tuple[str, ...]] = {
    "show": ("show", "{t}"),
    "show --json": ("show", "{t}", "--json"),
    "context": ("context", "{t}", "--budget", "300"),
    "context --recall": ("context", "{t}", "--budget", "300", "--recall", "--query", "card PIN"),
    "context --recall --json": ("context", "{t}", "--recall", "--json", "--query", "card PIN"),
    "export": ("export", "{t}"),
    "export markdown": ("export", "{t}", "-f", "markdown"),
    "search --thread": ("search", "card PIN", "--thread", "{t}"),
}
# the user-wide ones (no thread id)
USER_PATHS: dict[str, tuple[str, ...]] = {
    "search": ("search", "card PIN"),
    "search --json": ("search", "card PIN", "--json", "-k", "20"),
    "threads": ("threads",),
    "threads --json": ("threads", "--json"),
    "export all": ("export",),
}


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}
    env.pop("TELA_MEMORY_DB", None)
    env.pop("TELA_MEMORY_DEBUG", None)
    if "TIKTOKEN_CACHE_DIR" not in env and TIKTOKEN_CACHE.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(TIKTOKEN_CACHE)
    return env


@dataclass
class World:
    """A SQLite file holding Ada's seeded threads and Bob's own ``A1`` and ``bob-2``."""

    db: str
    home: Path
    victim: Victim

    def run(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        who = ("--user", user) if user is not None else ()
        return subprocess.run(
            [str(EXE), *args, *who, "--db", self.db],
            capture_output=True,
            text=True,
            env=_env(self.home),
            timeout=300,
            check=False,
        )


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def _clean(proc: subprocess.CompletedProcess[str], who: str) -> None:
    """No traceback, and nothing that names Ada when someone else asked."""
    out = _output(proc)
    assert "Traceback" not in out
    if who.strip().lower() != "ada":
        assert re.search(r"\bada\b", out.replace(who, "")) is None, out


def _fill(args: tuple[str, ...], thread: str) -> list[str]:
    return [a.replace("{t}", thread) for a in args]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("ownership")
    src = tmp / "ada-laptop.db"
    with SQLiteStore(src) as backend:
        victim = seed_victim(backend.for_user("ada"))
    w = World(db=f"sqlite:///{tmp / 'shared.db'}", home=tmp, victim=victim)
    # Ada moves her threads through the CLI: export from her file, import into the shared one
    dump = tmp / "ada.tela.json"
    out = subprocess.run(
        [str(EXE), "export", "--user", "ada", "-o", str(dump), "--db", f"sqlite:///{src}"],
        capture_output=True,
        text=True,
        env=_env(tmp),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    imported = w.run("import", str(dump), "--json", user="ada")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["users"] == {"ada": len(victim.thread_ids)}
    # Bob has threads of his own, one with the same id as Ada's "A1"
    bob = tmp / "bob.tela.json"
    write_file(
        bob,
        [
            Conversation.linear(
                [Message.user("what was my card PIN again?"), Message.assistant("No idea yet.")],
                id="A1",
            ),
            Conversation.linear(
                [Message.user("my bike is in the shed"), Message.assistant("Noted.")], id="bob-2"
            ),
        ],
        "tela",
    )
    assert w.run("import", str(bob), user="bob").returncode == 0
    return w


def test_the_seeded_world_is_what_the_cases_assume(world: World) -> None:
    assert set(world.victim.thread_ids) == {"A1", "shared-1"}
    ada = json.loads(world.run("threads", "--json", user="ada").stdout)
    bob = json.loads(world.run("threads", "--json", user="bob").stdout)
    assert {t["id"] for t in ada["threads"]} == {"A1", "shared-1"}
    assert {t["id"] for t in bob["threads"]} == {"A1", "bob-2"}


def _secrets(victim: Victim) -> tuple[str, ...]:
    """Her markers, and her message ids (what ``context --json`` lists)."""
    return victim.markers + victim.message_ids


@pytest.mark.parametrize("who", THREAD_ACTORS)
@pytest.mark.parametrize("path", sorted(PATHS))
def test_another_users_thread_looks_missing(world: World, who: str, path: str) -> None:
    markers = _secrets(world.victim)
    missing = world.run(*_fill(PATHS[path], NEVER), user=who)
    for thread in world.victim.thread_ids:
        proc = world.run(*_fill(PATHS[path], thread), user=who)
        assert leaks(_output(proc), markers) == [], (path, who, thread)
        _clean(proc, who)
        if who == "bob" and thread == "A1":  # his own A1: he sees it, Ada's stays out
            assert proc.returncode == 0, proc.stderr
            if path.startswith(("show", "export")):
                assert "card PIN again" in proc.stdout
            continue
        assert proc.returncode == missing.returncode, (path, who, thread)
        assert proc.stderr.replace(thread, NEVER) == missing.stderr, (path, who, thread)
        if path.startswith(("search", "context")):  # no ids or times of stored data there
            assert proc.stdout.replace(thread, NEVER) == missing.stdout, (path, who, thread)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_owner_sees_her_thread_through_the_same_command(world: World, path: str) -> None:
    """The control of the test above: the same command, run by Ada, shows her markers."""
    for thread in world.victim.thread_ids:
        mine = world.run(*_fill(PATHS[path], thread), user="ada")
        assert mine.returncode == 0, (path, mine.stderr)
        assert leaks(_output(mine), _secrets(world.victim)) != [], (path, thread)


@pytest.mark.parametrize("who", ACTORS)
@pytest.mark.parametrize("path", sorted(USER_PATHS))
def test_user_wide_commands_see_only_the_acting_user(world: World, who: str, path: str) -> None:
    proc = world.run(*USER_PATHS[path], user=who)
    assert leaks(_output(proc), _secrets(world.victim)) == [], (path, who)
    _clean(proc, who)
    if who == "bob":
        assert proc.returncode == 0, proc.stderr
    elif path.startswith("export"):  # no threads: the same answer as on an empty store
        assert proc.returncode == 1
        assert "has no threads in this store" in proc.stderr


@pytest.mark.parametrize("path", sorted(USER_PATHS))
def test_the_owner_sees_her_threads_through_the_same_user_command(world: World, path: str) -> None:
    mine = world.run(*USER_PATHS[path], user="ada")
    assert mine.returncode == 0, mine.stderr
    assert leaks(_output(mine), _secrets(world.victim)) != [], path


def test_recall_never_crosses_users(world: World) -> None:
    """Bob's own A1 asks about a card PIN: only Ada has one, and recall must not bring hers."""
    bob = json.loads(
        world.run("context", "A1", "--recall", "--json", "--budget", "400", user="bob").stdout
    )
    ada = json.loads(
        world.run("context", "A1", "--recall", "--json", "--budget", "400", user="ada").stdout
    )
    assert "recalled" not in {d["decision"] for d in bob["decisions"].values()}
    assert "recalled" in {d["decision"] for d in ada["decisions"].values()}
    assert not set(bob["sent"]) & set(world.victim.message_ids)


def test_stats_count_only_the_acting_user(world: World) -> None:
    counts = {
        who: json.loads(world.run("stats", "--json", user=who).stdout) for who in ("ada", *ACTORS)
    }
    assert counts["ada"]["threads"] == 2
    assert counts["bob"]["threads"] == 2
    assert counts["bob"]["messages"] == 4
    for who in ACTORS[1:]:
        assert (counts[who]["threads"], counts[who]["messages"]) == (0, 0)
    whole = json.loads(world.run("stats", "--json", "--all-users").stdout)
    assert whole["users"] == 2
    assert whole["threads"] == 4


def test_bad_user_ids_are_refused_cleanly(world: World) -> None:
    for bad in ("", "x" * 201, "bob\x01"):
        proc = world.run("show", "A1", user=bad)
        assert proc.returncode == 1
        assert "user_id must be" in proc.stderr
        assert leaks(_output(proc), world.victim.markers) == []
        _clean(proc, "?")


def test_an_import_goes_to_the_acting_user_only(world: World, tmp_path: Path) -> None:
    """Bob imports a file claiming to be Ada's ``shared-1``: it becomes his own thread (no
    squatting, and no conflict that would tell him Ada has one); Ada's stays as it was."""
    db = tmp_path / "copy.db"
    db.write_bytes(Path(world.db.removeprefix("sqlite:///")).read_bytes())
    copy = World(db=f"sqlite:///{db}", home=tmp_path, victim=world.victim)
    before = copy.run("export", "shared-1", user="ada").stdout
    claim = tmp_path / "claim.json"
    fake = [Message.user("injected"), Message.assistant("text")]
    write_file(claim, [Conversation.linear(fake, id="shared-1", user_id="ada")], "tela")
    proc = copy.run("import", str(claim), "--json", user="bob")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["users"] == {"bob": 1}
    assert copy.run("export", "shared-1", user="ada").stdout == before
    mine = json.loads(copy.run("show", "shared-1", "--json", user="bob").stdout)
    assert [m["content"][0]["text"] for m in mine["messages"]] == ["injected", "text"]
    # now it is his: importing it again is a no-op on his own thread, Ada's still untouched
    again = copy.run("import", str(claim), "--json", user="bob")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["unchanged"] == ["shared-1"]
    assert copy.run("export", "shared-1", user="ada").stdout == before
    _clean(again, "bob")


def test_tela_export_of_two_users_comes_back_as_two_users(tmp_path: Path) -> None:
    env = _env(tmp_path)
    both = tmp_path / "both.tela.json"
    write_file(
        both,
        [
            Conversation.linear([Message.user("ada's t1")], id="t1", user_id="ada"),
            Conversation.linear([Message.user("bob's t1")], id="t1", user_id="bob"),
        ],
        "tela",
    )

    def run(*args: str) -> Any:
        return subprocess.run(
            [str(EXE), *args], capture_output=True, text=True, env=env, check=False
        )

    db = f"sqlite:///{tmp_path / 'restore.db'}"
    data = json.loads(run("import", str(both), "--json", "--db", db).stdout)
    assert data["users"] == {"ada": 1, "bob": 1}
    for who in ("ada", "bob"):
        shown = json.loads(run("show", "t1", "--json", "--user", who, "--db", db).stdout)
        assert shown["messages"][0]["content"][0]["text"] == f"{who}'s t1"
        assert shown["thread"]["user_id"] == who
    # into one user it is explicit, and two t1 for carol conflict: all or nothing
    other = f"sqlite:///{tmp_path / 'carol.db'}"
    proc = run("import", str(both), "--user", "carol", "--db", other)
    assert proc.returncode == 1
    assert "nothing was imported" in proc.stderr
    assert (
        json.loads(run("stats", "--json", "--user", "carol", "--db", other).stdout)["threads"] == 0
    )


def test_demo_refuses_a_user_with_threads(world: World) -> None:
    proc = world.run("demo", user="ada")
    assert proc.returncode == 1
    assert "pick another --user" in proc.stderr
    assert json.loads(world.run("stats", "--json", user="ada").stdout)["threads"] == 2
