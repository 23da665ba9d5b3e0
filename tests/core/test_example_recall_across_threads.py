"""examples/recall_across_threads.py, run as CI runs it: a fresh HOME, a subprocess, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "recall_across_threads.py"


def _run(home: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env={**os.environ, "HOME": str(home), "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _section(out: str, start: str, end: str) -> str:
    return out.split(start, 1)[1].split(end, 1)[0]


def _check(out: str) -> None:
    three_weeks = _section(out, "Q: What did I tell you", "turns of another user")
    assert "crown on the upper left molar" in three_weeks
    assert "dental X-ray" in three_weeks  # image alt text is searchable
    assert "cleanings" not in three_weeks  # 60 days ago: outside the time filter
    assert "turns of another user: 0" in out
    assert "without a user: ScopeError (Recaller acts for one user: pass user_id=" in out
    assert "is cracked" not in out  # Bob's turns, which match better, never come back
    assert "Sorry to hear" not in out
    assert "bob-" not in out
    searched = _section(out, "Q: dental crown", "\n\n")
    assert "insurance-" in searched
    assert "health-" in searched  # one user's several threads
    context = out.split("context for today-", 1)[1]
    assert "[recalled]" in context
    assert "crown on the upper left molar" in context
    assert context.rstrip().endswith("When is my dentist appointment again?")


def test_example_lexical_only(tmp_path: Path) -> None:
    out = _run(tmp_path, TELA_RECALL_EMBEDDER="none")
    assert out.startswith("embedder: none (lexical only")
    _check(out)
    again = _run(tmp_path, TELA_RECALL_EMBEDDER="none")  # same default file, a new run
    # nothing is indexed twice: the 9 seeded turns are new; the previous run's last turn was
    # indexed by the search that followed it (the index follows the store)
    assert "indexed 9 new messages" in again
    _check(again)


@pytest.mark.semantic
def test_example_with_minilm(tmp_path: Path) -> None:
    _run(tmp_path, TELA_RECALL_EMBEDDER="none")  # a lexical index first: vectors come later
    out = _run(tmp_path)
    assert out.startswith("embedder: sentence-transformers/all-MiniLM-L6-v2 (hybrid")
    assert "Q: tooth repair ->" in out
    _check(out)
