"""``tela-memory eval locomo``: the command end to end (a subprocess, like a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

from locomo_sample import locomo_sample

EXE = Path(sys.executable).parent / "tela-memory"
TIKTOKEN_CACHE = Path(sysconfig.get_paths()["purelib"]) / "llama_index/core/_static/tiktoken_cache"


def _run(*args: str, home: Path) -> Any:
    env = {**os.environ, "HOME": str(home), "COLUMNS": "160", "NO_COLOR": "1"}
    if "TIKTOKEN_CACHE_DIR" not in env and TIKTOKEN_CACHE.is_dir():
        env["TIKTOKEN_CACHE_DIR"] = str(TIKTOKEN_CACHE)
    return subprocess.run(
        [str(EXE), "eval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_eval_locomo_json_and_details(tmp_path: Path) -> None:
    data = tmp_path / "mini.json"
    data.write_text(json.dumps(locomo_sample()))
    details = tmp_path / "d.jsonl"
    proc = _run(
        "locomo",
        str(data),
        "--k",
        "2",
        "--budget",
        "50,500",
        "--json",
        "--details",
        str(details),
        "--embedder",
        "none",
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["k"] == 2
    assert report["budgets"] == [50, 500]
    assert report["overall"]["questions"] == 3
    assert set(report["by_category"]) == {"1", "2", "4"}
    assert len(details.read_text().splitlines()) == 3


def test_eval_locomo_table_and_bad_input(tmp_path: Path) -> None:
    data = tmp_path / "mini.json"
    data.write_text(json.dumps(locomo_sample()))
    proc = _run("locomo", str(data), "--ranker", "lexical", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "R_any@10" in proc.stdout
    bad = _run("locomo", str(data), "--budget", "lots", home=tmp_path)
    assert bad.returncode == 1
    assert "--budget" in bad.stderr
    missing = _run("locomo", str(tmp_path / "nope.json"), "--embedder", "none", home=tmp_path)
    assert missing.returncode == 1
    assert "cannot read LoCoMo file" in missing.stderr
