"""Embedders, adapters and the embedding cache (offline; real libraries, self-made models)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tela_memory.errors import MissingDependency, TelaMemoryError
from tela_memory.recall.adapters import (
    FastEmbedEmbedder,
    Model2VecEmbedder,
    SentenceTransformerEmbedder,
)
from tela_memory.recall.cache import CacheChain, CachedEmbedder, MemoryCache, SQLiteCache, text_key
from tela_memory.recall.embedder import BaseEmbedder, Embedder, normalize
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.testing.embedders import HashEmbedder


def test_hash_embedder_is_deterministic_and_unit() -> None:
    a, b = HashEmbedder(32), HashEmbedder(32)
    va, vb = a.embed(["hello world", "other"]), b.embed(["hello world", "other"])
    assert va.shape == (2, 32)
    assert va.dtype == np.float32
    np.testing.assert_array_equal(va, vb)
    np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, rtol=1e-5)
    assert isinstance(a, Embedder)


def test_hash_embedder_similarity_follows_shared_words() -> None:
    e = HashEmbedder(256)
    q = e.embed_query("book a flight to Lisbon")
    near, far = e.embed(["flight to Lisbon booked", "my cat likes tuna"])
    assert float(near @ q) > float(far @ q)


def test_seed_changes_model_id() -> None:
    assert HashEmbedder(64).model_id != HashEmbedder(64, seed=1).model_id


def test_empty_batch() -> None:
    assert HashEmbedder(8).embed([]).shape == (0, 8)


class _Wrong(BaseEmbedder):
    model_id = "wrong"  # type: ignore[assignment]
    dimension = 4  # type: ignore[assignment]

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts), 3))


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(EmbeddingMismatchError):
        _Wrong().embed(["a"])
    with pytest.raises(EmbeddingMismatchError):
        normalize(np.ones((2, 4)), n=3, dimension=4)


@given(st.lists(st.text(max_size=30), max_size=12))
def test_cached_embedder_equals_direct(texts: list[str]) -> None:
    direct = HashEmbedder(16)
    cached = CachedEmbedder(HashEmbedder(16))
    np.testing.assert_allclose(cached.embed(texts), direct.embed(texts), atol=1e-6)
    np.testing.assert_allclose(cached.embed(texts), direct.embed(texts), atol=1e-6)


def test_each_text_is_embedded_once() -> None:
    inner = HashEmbedder(16)
    cached = CachedEmbedder(inner)
    cached.embed(["a", "b", "a"])
    assert inner.texts_embedded == 2
    cached.embed(["a", "b", "c"])
    assert inner.texts_embedded == 3
    cached.embed_query("a")
    cached.embed_query("a")
    assert inner.texts_embedded == 4  # queries are keyed apart from documents
    assert cached.hits >= 3


def test_sqlite_cache_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "cache.db"
    inner = HashEmbedder(16)
    first = SQLiteCache(path)
    CachedEmbedder(inner, first).embed(["persisted text"])
    first.close()
    again = HashEmbedder(16)
    vec = CachedEmbedder(again, SQLiteCache(path)).embed(["persisted text"])
    assert again.texts_embedded == 0
    np.testing.assert_allclose(vec, inner.embed(["persisted text"]), atol=1e-6)


def test_cache_is_keyed_by_model(tmp_path: Path) -> None:
    cache = SQLiteCache(tmp_path / "c.db")
    CachedEmbedder(HashEmbedder(16), cache).embed(["x"])
    other = HashEmbedder(16, seed=3)
    CachedEmbedder(other, cache).embed(["x"])
    assert other.texts_embedded == 1


def test_chain_fills_upper_levels(tmp_path: Path) -> None:
    memory, disk = MemoryCache(), SQLiteCache(tmp_path / "c.db")
    disk.put_many("m", {text_key("x"): np.ones(4, dtype=np.float32)})
    chain = CacheChain(memory, disk)
    got = chain.get_many("m", [text_key("x"), text_key("y")])
    assert list(got) == [text_key("x")]
    assert memory.get_many("m", [text_key("x")])


def test_memory_cache_evicts() -> None:
    cache = MemoryCache(max_items=2)
    for i in range(3):
        cache.put_many("m", {str(i): np.zeros(2, dtype=np.float32)})
    assert len(cache) == 2
    assert cache.get_many("m", ["0"]) == {}


def test_async_twins_match(tmp_path: Path) -> None:
    cached = CachedEmbedder(
        HashEmbedder(16), CacheChain(MemoryCache(), SQLiteCache(tmp_path / "c.db"))
    )

    async def go() -> tuple[np.ndarray, np.ndarray]:
        return await cached.aembed(["one", "two"]), await cached.aembed_query("one")

    docs, query = asyncio.run(go())
    np.testing.assert_allclose(docs, cached.embed(["one", "two"]), atol=1e-6)
    np.testing.assert_allclose(query, cached.embed_query("one"), atol=1e-6)


def test_unreadable_cache_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TelaMemoryError):
        SQLiteCache(blocker / "sub" / "c.db").get_many("m", ["k"])


# -- adapters -------------------------------------------------------------------------------


def _tiny_model2vec(path: Path) -> Path:
    from model2vec import StaticModel
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocab = {"[UNK]": 0, "[PAD]": 1, "red": 2, "blue": 3, "car": 4, "sky": 5}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    rng = np.random.default_rng(0)
    model = StaticModel(vectors=rng.normal(size=(len(vocab), 8)).astype(np.float32), tokenizer=tok)
    model.save_pretrained(str(path))
    return path


def test_model2vec_adapter_loads_lazily_and_embeds(tmp_path: Path) -> None:
    path = _tiny_model2vec(tmp_path / "m2v")
    emb = Model2VecEmbedder(path)
    assert emb._model is None  # no I/O in the constructor
    vecs = emb.embed(["red car", "blue sky", "red car"])
    assert emb.dimension == 8
    assert vecs.shape == (3, 8)
    np.testing.assert_allclose(vecs[0], vecs[2])
    assert emb.model_id == str(path)


def test_fastembed_adapter_knows_its_dimension_without_download() -> None:
    emb = FastEmbedEmbedder("BAAI/bge-small-en-v1.5")
    assert emb.dimension == 384
    assert emb._model is None


def test_missing_libraries_say_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastembed", None)
    monkeypatch.setitem(sys.modules, "model2vec", None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependency, match=r"tela-memory\[fastembed\]"):
        _ = FastEmbedEmbedder().dimension
    with pytest.raises(MissingDependency, match=r"tela-memory\[model2vec\]"):
        Model2VecEmbedder("x").embed(["a"])
    with pytest.raises(MissingDependency, match="sentence-transformers"):
        SentenceTransformerEmbedder("x").embed(["a"])
