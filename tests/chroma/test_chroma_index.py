"""What is particular to ``ChromaIndex``: a collection per user, the model recorded in the
catalog, bad folders and foreign collections, batching, odd ids, URLs, the server path."""

from __future__ import annotations

from pathlib import Path

import chromadb
import pytest
from chroma_helpers import unique_name

from tela_memory.errors import (
    BackendUnavailable,
    InvalidArgumentError,
    SchemaError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.messages import ImageBlock, Message, Role
from tela_memory.privacy import erase_user
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.testing.embedders import HashEmbedder
from tela_memory.testing.index_data import ADVERSARIAL, msg, uid
from tela_memory_chroma import ChromaIndex
from tela_memory_chroma.client import settings
from tela_memory_chroma.collections import catalog_collection, user_collection


def _names(client: chromadb.api.ClientAPI) -> set[str]:
    return {c.name for c in client.list_collections()}


def test_a_collection_per_user_and_erasure_deletes_it(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=settings())
    index = ChromaIndex(client=client, name="mem", embedder=HashEmbedder(16))
    index.upsert([msg("ada's words", user="ada", thread="t"), msg("bob's", user="bob", thread="t")])
    ada, bob = user_collection("mem", "ada"), user_collection("mem", "bob")
    assert {ada, bob, catalog_collection("mem")} <= _names(client)
    assert client.get_collection(ada).count() == 1
    assert index.delete_where({"user_id": "ada"}) == 1
    assert ada not in _names(client)
    assert index.count({"user_id": "bob"}) == 1
    assert index.search("words", filter={"user_id": "ada"}) == []


def test_erase_user_removes_the_index_side(tmp_path: Path) -> None:
    with (
        SQLiteStore(tmp_path / "s.db") as store,
        ChromaIndex(tmp_path / "chroma", embedder=HashEmbedder(16)) as index,
    ):
        store.append("t", [Message.user("pay the rent"), Message.assistant("done")], user_id="ada")
        store.append("t", Message.user("rent is due"), user_id="bob")
        StoreIndexer(store, index).sync()
        assert index.count() == 3
        receipt = erase_user("ada", store, index)
        assert sum(receipt.extra.values()) >= 2
        assert index.count({"user_id": "ada"}) == 0
        assert [h.message.user_id for h in index.search("rent", filter={"user_id": "bob"})] == [
            "bob"
        ]
        assert user_collection("tela", "ada") not in _names(index.client())


def test_model_recorded_and_checked_on_reopen(tmp_path: Path) -> None:
    folder = tmp_path / "chroma"
    with ChromaIndex(folder, embedder=HashEmbedder(16)) as index:
        index.upsert(msg("vectors", user="u", thread="t"))
        assert index.stored_model() == (HashEmbedder(16).model_id, 16)
    for other in (HashEmbedder(16, seed=3), HashEmbedder(8)):
        with ChromaIndex(folder, embedder=other) as index:
            with pytest.raises(EmbeddingMismatchError, match="holds vectors of"):
                index.upsert(msg("more", user="u", thread="t", at=1))
            with pytest.raises(EmbeddingMismatchError):
                index.search("vectors", filter={"user_id": "u"}, mode="dense")
    with ChromaIndex(folder) as index:  # no embedder: lexical search still works
        assert [h.text for h in index.search("vectors", filter={"user_id": "u"})] == ["vectors"]


def test_lexical_index_refuses_an_embedder_later() -> None:
    name = unique_name()
    with ChromaIndex(ephemeral=True, name=name) as index:
        index.upsert(msg("words only", user="u", thread="t"))
        assert index.stored_model() is None
    with ChromaIndex(ephemeral=True, name=name, embedder=HashEmbedder(16)) as index:
        with pytest.raises(EmbeddingMismatchError, match="without vectors"):
            index.upsert(msg("now with vectors", user="u", thread="t", at=1))
        index.drop()


def test_drop_vectors_needs_an_empty_index() -> None:
    with ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(16)) as index:
        index.upsert(msg("x y", user="u", thread="t"))
        with pytest.raises(UnsupportedOperation):
            index.drop_vectors()
        assert index.clear() == 1
        index.drop_vectors()
        index.embedder = HashEmbedder(8)
        assert index.upsert(msg("x y", user="u", thread="t")) == 1
        assert index.stored_model() == (HashEmbedder(8).model_id, 8)
        index.drop()


def test_corrupt_folder_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    index = ChromaIndex(folder)  # no I/O yet
    with pytest.raises(SchemaError, match="corrupt"):
        index.count()
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(BackendUnavailable, match="not a folder"):
        ChromaIndex(afile).count()


def test_foreign_collection_under_our_name_is_refused(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=settings())
    client.create_collection(catalog_collection("lc"), embedding_function=None)
    index = ChromaIndex(client=client, name="lc", embedder=HashEmbedder(16))
    with pytest.raises(SchemaError, match="not made by tela-memory"):
        index.upsert(msg("x", user="u", thread="t"))
    client.create_collection(
        user_collection("other", "u"), embedding_function=None, metadata={"foo": 1}
    )
    with pytest.raises(SchemaError, match="not this index's collection"):
        ChromaIndex(client=client, name="other").count({"user_id": "u"})


def test_upserts_are_batched_within_chromas_limit() -> None:
    with ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(16)) as index:
        limit = index.client().get_max_batch_size()
        n = limit + 1234
        ms = [msg(f"turn {i} banana", user="u", thread=f"t{i % 3}", at=i) for i in range(n)]
        assert index.upsert(ms) == n
        assert index.count({"user_id": "u"}) == n
        assert index.count({"user_id": "u", "thread_ids": ["t1"]}) == len(ms[1::3])
        assert len(index.search("banana", filter={"user_id": "u"}, k=5, mode="lexical")) == 5
        index.drop()


def test_odd_ids_and_dollar_values_stay_data() -> None:
    with ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(16)) as index:
        user = '$or"' + uid()
        odd = [*(v for v in ADVERSARIAL if v), "$and", "{'$ne': 1}", "a" * 500, "ü/../x"]
        ms = [
            Message(
                id=value,
                role=Role.USER,
                content="odd id here",
                user_id=user,
                thread_id=f"$in-{i}",
                metadata={"k": value, "$where": "x"},
            )
            for i, value in enumerate(odd)
        ]
        index.upsert(ms)
        for m in ms:
            for flt in (
                {"user_id": user, "message_ids": [m.id]},
                {"user_id": user, "metadata": {"k": m.id}},
                {"user_id": user, "thread_ids": [m.thread_id]},
            ):
                hits = index.search("odd id", filter=flt, k=50)
                assert [h.message for h in hits] == [m], flt
        for value in ("$ne", "$exists", "$regex"):
            assert index.search("odd", filter={"metadata": {"k": value}}) == []
            assert index.count({"user_id": user, "thread_ids": [value]}) == 0
        with pytest.raises(TelaMemoryError):  # an operator where a value belongs: refused
            index.search("odd", filter={"metadata": {"k": {"$ne": "x"}}})
        assert index.delete([m.id for m in ms]) == len(ms)
        index.drop()


def test_urls_and_arguments(tmp_path: Path) -> None:
    assert ChromaIndex.from_url(f"chroma://{tmp_path}/x?name=abc").name == "abc"
    assert ChromaIndex.from_url("chroma://:memory:").address == "ephemeral (in process)"
    server = ChromaIndex.from_url("chroma+http://127.0.0.1:9/")
    assert server.address == "http://127.0.0.1:9"
    assert server.watermark_name == "chroma:http://127.0.0.1:9/tela"
    local = ChromaIndex.from_url(f"chroma://{tmp_path}/x")
    assert local.watermark_name == f"chroma:path:{(tmp_path / 'x').resolve()}/tela"
    for bad in ("redis://x", "chroma://", "chroma://:memory:?user=x"):
        with pytest.raises(InvalidArgumentError):
            ChromaIndex.from_url(bad)
    with pytest.raises(InvalidArgumentError):
        ChromaIndex()
    with pytest.raises(InvalidArgumentError):
        ChromaIndex(tmp_path, ephemeral=True)
    with pytest.raises(InvalidArgumentError):
        ChromaIndex(client="not a client")  # type: ignore[arg-type]
    for name in ("", "a", "-x", "x..y", "x/y", "a b"):
        with pytest.raises(InvalidArgumentError):
            ChromaIndex(ephemeral=True, name=name)
    with pytest.raises(BackendUnavailable, match=r"cannot open|failed"):
        ChromaIndex(url="http://127.0.0.1:9").count()
    injected = chromadb.PersistentClient(path=str(tmp_path / "inj"), settings=settings())
    watermark = f"chroma:path:{(tmp_path / 'inj').resolve()}/tela"
    assert ChromaIndex(client=injected).watermark_name == watermark
    one, two = ChromaIndex(ephemeral=True), ChromaIndex(ephemeral=True)
    assert one.watermark_name != two.watermark_name  # memory: each one is filled anew
    index = ChromaIndex(ephemeral=True, name=unique_name())
    index.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        index.count()


@pytest.mark.integration
def test_server_from_url_and_an_injected_http_client(chroma_server: str) -> None:
    url = chroma_server.replace("http://", "chroma+http://") + f"?name={unique_name()}"
    with ChromaIndex.from_url(url, embedder=HashEmbedder(16)) as index:
        index.upsert([msg("over the wire", user="u", thread="t")])
        assert [h.text for h in index.search("wire", filter={"user_id": "u"})] == ["over the wire"]
        host, port = chroma_server.removeprefix("http://").split(":")
        client = chromadb.HttpClient(host=host, port=int(port), settings=settings())
        other = ChromaIndex(client=client, name=index.name, embedder=HashEmbedder(16))
        assert other.count({"user_id": "u"}) == 1
        assert other.watermark_name == f"chroma:{chroma_server}/{index.name}"
        index.drop()


def test_turns_without_text_never_come_back_from_dense_search() -> None:
    """A turn with no text gets a placeholder vector (Chroma needs one per record): it is
    counted and deletable, but no dense search returns it, filtered or not."""
    with ChromaIndex(ephemeral=True, name=unique_name(), embedder=HashEmbedder(16)) as index:
        silent = [
            msg("", user="u", thread="t", at=i, content=[ImageBlock(url=f"https://x.test/{i}.png")])
            for i in range(5)
        ]
        spoken = msg("the only words", user="u", thread="t", at=9)
        index.upsert([*silent, spoken])
        assert index.count({"user_id": "u"}) == 6
        for flt in ({"user_id": "u"}, {"user_id": "u", "thread_ids": ["t"]}, None):
            hits = index.search("anything at all", filter=flt, k=50, mode="dense")
            assert [h.message.id for h in hits] == [spoken.id], flt
        assert index.delete([m.id for m in silent]) == 5
        index.drop()


def test_a_collection_deleted_by_another_client_is_opened_anew(tmp_path: Path) -> None:
    """Two indexes on one folder: when one erases a user, the other (which had that user's
    collection open) finds nothing for them instead of failing, and writes recreate it."""
    client = chromadb.PersistentClient(path=str(tmp_path / "c"), settings=settings())
    one = ChromaIndex(client=client, name="shared", embedder=HashEmbedder(16))
    two = ChromaIndex(client=client, name="shared", embedder=HashEmbedder(16))
    one.upsert(msg("kept words", user="u", thread="t"))
    assert two.count({"user_id": "u"}) == 1  # two has the collection open now
    assert one.delete_where({"user_id": "u"}) == 1
    for mode in ("lexical", "dense", "hybrid"):
        assert two.search("kept", filter={"user_id": "u"}, mode=mode) == []
    assert two.count({"user_id": "u"}) == 0
    assert two.upsert(msg("back again", user="u", thread="t")) == 1
    assert [h.text for h in one.search("back", filter={"user_id": "u"})] == ["back again"]
