"""``tela-memory eval locomo``: the command end to end (a subprocess, like a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

EXE = Path(sys.executable).parent / "tela-memory"
TIKTOKEN_CACHE = Path(sysconfig.get_paths()["purelib"]) / "llama_index/core/_static/tiktoken_cache"


def _sample() -> list[dict[str, object]]:
    return [
        {
            "sample_id": "s1",
            "conversation": {
                "speaker_a": "Ann",
                "speaker_b": "Bo",
                "session_1_date_time": "1:56 pm on 8 May, 2023",
                "session_1": [
                    {"speaker": "Ann", "dia_id": "D1:1", "text": "I bought a kayak last week"},
                    {"speaker": "Bo", "dia_id": "D1:2", "text": "Nice, where will you paddle?"},
                    {
                        "speaker": "Ann",
                        "dia_id": "D1:3",
                        "text": "On the lake near my aunt",
                        "img_url": ["https://x.test/k.jpg"],
                        "blip_caption": "a red kayak on a lake",
                    },
                ],
                "session_2_date_time": "10:00 am on 9 June, 2023",
                "session_2": [
                    {"speaker": "Bo", "dia_id": "D2:1", "text": "My dog learned to fetch"},
                    {"speaker": "Ann", "dia_id": "D2:2", "text": "Your dog is clever"},
                ],
            },
            "qa": [
                {
                    "question": "What did Ann buy?",
                    "answer": "a kayak",
                    "evidence": ["D1:1"],
                    "category": 4,
                },
                {"question": "Where does Ann paddle?", "evidence": ["D1:3; D9:9"], "category": 1},
                {"question": "What can the dog do?", "evidence": ["D2:1"], "category": 2},
                {"question": "Adversarial", "evidence": ["D2:2"], "category": 5},
                {"question": "No evidence", "evidence": ["D7:7"], "category": 4},
            ],
        }
    ]


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
    data.write_text(json.dumps(_sample()))
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
    data.write_text(json.dumps(_sample()))
    proc = _run("locomo", str(data), "--ranker", "lexical", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "R_any@10" in proc.stdout
    bad = _run("locomo", str(data), "--budget", "lots", home=tmp_path)
    assert bad.returncode == 1
    assert "--budget" in bad.stderr
    missing = _run("locomo", str(tmp_path / "nope.json"), "--embedder", "none", home=tmp_path)
    assert missing.returncode == 1
    assert "cannot read LoCoMo file" in missing.stderr
