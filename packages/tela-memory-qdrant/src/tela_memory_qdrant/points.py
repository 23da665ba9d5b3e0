"""Points and hits: how a message becomes a Qdrant point and a scored point a ``Hit``.

Shared by :class:`~tela_memory_qdrant.QdrantIndex` and
:class:`~tela_memory_qdrant.QdrantEdgeIndex`, so both store and return the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qdrant_client import models

from tela_memory.errors import SchemaError
from tela_memory.messages import Message
from tela_memory.recall.index import Document
from tela_memory.recall.types import Hit
from tela_memory.stores.base import DEFAULT_USER
from tela_memory_qdrant import sparse
from tela_memory_qdrant.payload import payload, point_id

DENSE = "dense"
"""Name of the dense (embedder) vector."""
LEXICAL = "lexical"
"""Name of the sparse (BM25) vector."""


@dataclass(frozen=True, slots=True)
class Schema:
    """What a collection (or shard) holds: its dense vectors' size and model, if any."""

    dimension: int | None
    model_id: str | None


def read_schema(collection: str, info: Any) -> Schema:
    """The schema of a collection tela-memory made; ``SchemaError`` for any other."""
    params = info.config.params
    vectors = params.vectors
    sparse_cfg = params.sparse_vectors or {}
    if LEXICAL not in sparse_cfg or (vectors and not isinstance(vectors, dict)):
        raise SchemaError(
            f"Qdrant collection {collection!r} was not made by tela-memory (it needs a sparse "
            f"vector {LEXICAL!r} and named vectors); pick another collection name"
        )
    meta = getattr(info.config, "metadata", None) or {}
    dense = (vectors or {}).get(DENSE)
    return Schema(
        dimension=None if dense is None else int(dense.size),
        model_id=meta.get("tela_model_id") if dense is not None else None,
    )


def to_point(doc: Document) -> models.PointStruct:
    """One point per message: dense and sparse vectors, the payload."""
    vector: dict[str, Any] = {}
    if doc.vector is not None:
        vector[DENSE] = doc.vector.tolist()
    sv = sparse.document_vector(doc.text)
    if sv is not None:
        vector[LEXICAL] = sv
    return models.PointStruct(
        id=point_id(doc.message.id), vector=vector, payload=payload(doc.message, doc.text)
    )


def hit(
    data: dict[str, Any] | None,
    *,
    score: float,
    lexical_score: float | None = None,
    dense_score: float | None = None,
) -> Hit:
    """A ``Hit`` from a point's payload (``message`` and ``text``)."""
    data = data or {}
    return Hit(
        message=Message.model_validate_json(data["message"]),
        text=data["text"],
        score=score,
        lexical_score=lexical_score,
        dense_score=dense_score,
    )


OWNERLESS = models.Filter(
    must=[models.IsEmptyCondition(is_empty=models.PayloadField(key="user_id"))]
)
"""Points written without a user (by tela-memory before threads were namespaced per user)."""


def owned(data: dict[str, Any]) -> dict[str, Any]:
    """The payload update that gives an ownerless point its owner,
    :data:`~tela_memory.stores.base.DEFAULT_USER` (the store's migration gives ownerless
    threads to it): in the payload key and in the stored message."""
    message = Message.model_validate_json(data["message"])
    fixed = message.model_copy(update={"user_id": message.user_id or DEFAULT_USER})
    return {"user_id": fixed.user_id, "message": fixed.model_dump_json(exclude_none=True)}


def ts_range(**bounds: int) -> models.FieldCondition:
    """A condition on the creation time (microseconds)."""
    return models.FieldCondition(key="ts", range=models.Range(**bounds))


def order_key(row: dict[str, Any]) -> tuple[int, str]:
    """Time order of payload rows, ties broken by message id."""
    return int(row["ts"]), str(row["id"])


__all__ = [
    "DENSE",
    "LEXICAL",
    "OWNERLESS",
    "Schema",
    "hit",
    "order_key",
    "owned",
    "read_schema",
    "to_point",
    "ts_range",
]
