"""Recall with the real all-MiniLM-L6-v2 (torch, CPU; installed by scripts/install-semantic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tela_memory.evaluation import run_locomo
from tela_memory.messages import Message
from tela_memory.recall import SQLiteIndex
from tela_memory.recall.adapters import MINILM, SentenceTransformerEmbedder
from tela_memory.recall.cache import CachedEmbedder
from tela_memory.recall.recaller import Recaller
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.tokens.counters import ApproxCounter

pytestmark = pytest.mark.semantic
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in a package; never a hub

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo" / "locomo-dev.json"


@pytest.fixture(scope="module")
def minilm() -> CachedEmbedder:
    return CachedEmbedder(SentenceTransformerEmbedder(MINILM))


def test_minilm_loads_offline(minilm: CachedEmbedder) -> None:
    assert minilm.dimension == 384
    assert minilm.model_id == MINILM
    dog, puppy, tax = minilm.embed(["a dog", "a puppy", "quarterly tax return"])
    assert float(dog @ puppy) > float(dog @ tax) + 0.2


def test_dense_recall_finds_synonyms(minilm: CachedEmbedder, tmp_path: Path) -> None:
    with (
        SQLiteStore(tmp_path / "s.db") as store,
        SQLiteIndex.for_store(store, embedder=minilm) as index,
    ):
        stored = store.append(
            "t1",
            [
                Message.user("I adopted a puppy from the shelter"),
                Message.user("The invoice is due on Friday"),
                Message.user("We watched a film about sailing"),
            ],
            user_id="u",
        )
        index.upsert(stored)
        store.append("t2", [Message.user("I adopted a kitten")], user_id="other")
        index.upsert(store.read("t2", user_id="other"))
        hits = Recaller(index).search("new pet dog", user_id="u", k=1)
        assert hits[0].message.id == stored[0].id
        assert "puppy" not in "new pet dog"


def test_locomo_hybrid_beats_both_sides(minilm: CachedEmbedder) -> None:
    """Dev split: the hybrid ranker against the reference BM25 (0.634 / 0.531 / 0.743) and
    MiniLM dense (0.543 / 0.434 / 0.613) figures."""
    report = run_locomo(DEV, embedder=minilm, counter=ApproxCounter())
    s = report.overall
    assert s.recall_any >= 0.70
    assert s.recall_all >= 0.58
    assert s.session_recall_all >= 0.74
    assert s.evidence_recall_all[2000] >= 0.72
    dense = run_locomo(
        DEV, embedder=minilm, ranker="dense", counter=ApproxCounter(), budgets=(2000,)
    )
    assert 0.50 <= dense.overall.recall_any < s.recall_any
