"""LoCoMo evaluation: metrics, loader (malformed evidence), runner, and the real dev split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from locomo_sample import locomo_sample

from tela_memory.errors import InvalidMessageError
from tela_memory.evaluation import load, run_locomo
from tela_memory.evaluation.locomo import parse_date, session_of
from tela_memory.evaluation.metrics import group_ranking, ndcg, percentile, recall_all, recall_any
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.tokens.counters import ApproxCounter

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo" / "locomo-dev.json"


def test_metrics() -> None:
    ranked = ["a", "b", "c", "d"]
    assert recall_any(ranked, {"c", "z"}, 3) == 1.0
    assert recall_any(ranked, {"d"}, 3) == 0.0
    assert recall_all(ranked, {"a", "c"}, 3) == 1.0
    assert recall_all(ranked, {"a", "d"}, 3) == 0.0
    assert recall_all(ranked, set(), 3) == 0.0
    assert ndcg(ranked, {"a"}, 3) == 1.0
    assert 0 < ndcg(ranked, {"b"}, 3) < 1.0
    assert ndcg(ranked, {"z"}, 3) == 0.0
    assert group_ranking(["D2:1", "D1:4", "D2:3", "D3:1"], session_of) == ["D2", "D1", "D3"]
    assert percentile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert percentile([], 0.9) == 0.0


def test_loader(tmp_path: Path) -> None:
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(locomo_sample()))
    [conv] = load(path)
    assert [q.qa_index for q in conv.questions] == [0, 1, 2]  # cat 5 and dangling ids dropped
    assert conv.questions[1].evidence == ("D1:3",)
    first = conv.sessions[1][0]
    assert first.name == "Ann"
    assert first.metadata["dia_id"] == "D1:1"
    assert first.created_at == parse_date("1:56 pm on 8 May, 2023")
    assert conv.sessions[1][2].content[1].alt_text == "a red kayak on a lake"  # type: ignore[union-attr]


def test_loader_refuses_garbage(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(InvalidMessageError):
        load(bad)
    with pytest.raises(InvalidMessageError):
        load(tmp_path / "missing.json")
    with pytest.raises(InvalidMessageError):
        parse_date("yesterday")


def test_runner_on_a_small_file(tmp_path: Path) -> None:
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(locomo_sample()))
    details = tmp_path / "details.jsonl"
    report = run_locomo(
        path,
        k=2,
        budgets=(20, 200),
        embedder=HashEmbedder(64),
        details_path=details,
        counter=ApproxCounter(),
    )
    assert report.overall.questions == 3
    assert report.turns == 5
    assert report.overall.recall_any == 1.0
    assert report.overall.evidence_recall_all[200] == 1.0
    assert set(report.by_category) == {1, 2, 4}
    lines = [json.loads(x) for x in details.read_text().splitlines()]
    assert [x["qa_index"] for x in lines] == [0, 1, 2]
    assert lines[0]["ranked"][0] == "D1:1"
    assert "R_any@2" in report.table()


def test_bm25_on_the_dev_split() -> None:
    """A regression floor for the lexical side on the real data (reference BM25: 0.634)."""
    report = run_locomo(DEV, ranker="lexical", counter=ApproxCounter())
    assert report.overall.questions > 800
    assert report.overall.recall_any >= 0.64
    assert report.overall.session_recall_all >= 0.74
    assert report.search_ms_p95 < 100


def test_hybrid_needs_nothing_but_the_index_without_embedder() -> None:
    report = run_locomo(DEV, ranker="hybrid", counter=ApproxCounter(), budgets=(2000,))
    assert report.model_id is None
    assert report.overall.recall_any >= 0.64
