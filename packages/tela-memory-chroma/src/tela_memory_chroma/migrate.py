"""Bring the turns of an existing Chroma collection (one built by LangChain's ``Chroma`` vector
store, say) into a Tela Memory store, from which ``StoreIndexer`` fills a ``ChromaIndex``.

Such a collection holds one record per text with free-form metadata, every user together; it
has no threads, no owners that an engine enforces, no messages. Each record becomes a message
of the user and thread its metadata names (``user_key`` / ``thread_key``, or the defaults),
in the collection's own order, page by page. The collection is only read.
"""

from __future__ import annotations

from typing import Any

from chromadb.api.models.Collection import Collection

from tela_memory.errors import InvalidArgumentError
from tela_memory.messages import Message, Role
from tela_memory.stores.base import MessageStore

_ROLES = {r.value for r in Role}


def import_collection(
    collection: Collection,
    store: MessageStore,
    *,
    user_key: str = "user_id",
    thread_key: str = "thread_id",
    role_key: str = "role",
    user_id: str | None = None,
    thread_id: str = "chroma-import",
    page: int = 1000,
) -> int:
    """Append every record of ``collection`` to ``store``; return how many.

    Args:
        collection: the Chroma collection to read (its documents and metadata).
        store: where the messages go.
        user_key: metadata key naming a record's user (``user_id`` when a record has none).
        thread_key: metadata key naming its thread (``thread_id`` when it has none).
        role_key: metadata key naming its role (``user`` when absent or unknown).
        user_id: the user of records without ``user_key``; without it such a record raises
            ``InvalidArgumentError`` (nothing is guessed about who owns a turn).
        thread_id: the thread of records without ``thread_key``.
        page: records read per call.
    """
    done, offset = 0, 0
    while True:
        got = collection.get(limit=page, offset=offset, include=["documents", "metadatas"])
        ids = list(got["ids"])
        if not ids:
            return done
        docs: list[Any] = list(got["documents"] or [])
        metas: list[Any] = list(got["metadatas"] or [])
        docs += [None] * (len(ids) - len(docs))
        metas += [None] * (len(ids) - len(metas))
        for rid, text, meta in zip(ids, docs, metas, strict=True):
            data: dict[str, Any] = dict(meta or {})
            owner = data.pop(user_key, None)
            owner = owner if isinstance(owner, str) and owner else user_id
            if owner is None:
                raise InvalidArgumentError(
                    f"record {rid!r} of {collection.name!r} names no user in {user_key!r}; "
                    "pass user_id= for such records"
                )
            thread = data.pop(thread_key, None)
            role = data.pop(role_key, None)
            kept = {k: v for k, v in data.items() if isinstance(v, str | int | float | bool)}
            store.append(
                str(thread) if isinstance(thread, str) and thread else thread_id,
                Message(
                    role=Role(role) if role in _ROLES else Role.USER,
                    content=text or "",
                    metadata={**kept, "chroma_id": rid},
                ),
                user_id=owner,
            )
            done += 1
        offset += len(ids)


__all__ = ["import_collection"]
