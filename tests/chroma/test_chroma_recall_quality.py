"""What the recall quality of ``ChromaIndex`` rests on: stemmed words on the lexical side,
contextual vectors as the embedded index makes them, and the schema version guarding both."""

from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
import pytest
from chroma_helpers import unique_name

from tela_memory.errors import InvalidArgumentError, SchemaError
from tela_memory.recall.sqlite_index import SQLiteIndex
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import msg
from tela_memory_chroma import ChromaIndex
from tela_memory_chroma.client import settings
from tela_memory_chroma.collections import catalog_collection, user_collection


def test_inflected_words_find_each_other_lexically() -> None:
    with ChromaIndex(ephemeral=True, name=unique_name()) as index:
        index.upsert(
            [
                msg("The budget meetings moved again", user="u", thread="t"),
                msg("Nothing about that here", user="u", thread="t", at=1),
            ]
        )
        hits = index.search("meeting", filter={"user_id": "u"}, mode="lexical")
        assert [h.text for h in hits] == ["The budget meetings moved again"]
        assert index.search("moving", filter={"user_id": "u"}, mode="lexical")


def _stored_vector(index: ChromaIndex, user: str, mid: str) -> np.ndarray:
    col = index.client().get_collection(user_collection(index.name, user))
    got = col.get(ids=[mid], include=["embeddings"])
    assert got["embeddings"] is not None
    return np.asarray(got["embeddings"][0], dtype=np.float32)


def test_contextual_vectors_match_the_embedded_index_across_batches() -> None:
    first = msg("Where should we go in May?", user="u", thread="t")
    second = msg("Lisbon, for the tiles", user="u", thread="t", at=1).model_copy(
        update={"parent_id": first.id}
    )
    other = msg("Lisbon, for the tiles", user="v", thread="t", at=1).model_copy(
        update={"parent_id": first.id}  # another user's turn naming u's turn: never mixed
    )
    chroma = ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(32))
    sqlite = SQLiteIndex(":memory:", embedder=HashEmbedder(32))
    with chroma, sqlite:
        for index in (chroma, sqlite):
            index.upsert(first)  # the parent in an earlier batch: read back from the store
            index.upsert([second, other])
        want = sqlite._stored_vectors([second.id])[second.id][1]
        got = _stored_vector(chroma, "u", second.id)
        np.testing.assert_allclose(got, want, atol=1e-5)
        alone = HashEmbedder(32).embed_query("Lisbon, for the tiles")
        np.testing.assert_allclose(_stored_vector(chroma, "v", other.id), alone, atol=1e-5)
        assert not np.allclose(got, alone, atol=1e-3)


def test_context_weight_zero_embeds_each_turn_alone() -> None:
    first = msg("Where should we go in May?", user="u", thread="t")
    second = msg("Lisbon", user="u", thread="t", at=1).model_copy(update={"parent_id": first.id})
    emb = HashEmbedder(32)
    with ChromaIndex(ephemeral=True, name=unique_name(), embedder=emb, context_weight=0) as index:
        index.upsert([first, second])
        np.testing.assert_allclose(
            _stored_vector(index, "u", second.id), emb.embed_query("Lisbon"), atol=1e-5
        )
    with pytest.raises(InvalidArgumentError, match="context_weight"):
        ChromaIndex(ephemeral=True, context_weight=-1)


def test_an_index_of_schema_1_is_refused_and_can_be_dropped(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=settings())
    client.create_collection(
        catalog_collection("old"),
        embedding_function=None,
        metadata={"tela_index": "old", "tela_schema": 1, "tela_dimension": 0},
    )
    index = ChromaIndex(client=client, name="old")
    with pytest.raises(SchemaError, match="not stemmed"):
        index.upsert(msg("x", user="u", thread="t"))
    assert index.drop() is True
    assert catalog_collection("old") not in {c.name for c in client.list_collections()}
    assert index.upsert(msg("x", user="u", thread="t")) == 1
