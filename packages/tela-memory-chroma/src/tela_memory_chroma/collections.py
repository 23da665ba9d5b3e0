"""The collections of one index: one per user, and one catalog holding the embedding model.

A user's turns live in the collection ``<name>-u-<40 hex>`` (a hash of the user id, so any
user id, quotes and ``$`` included, makes a valid collection name), marked with the index's
name and the user id in its metadata. Isolation is the engine's: a search for one user opens
that user's collection only, and erasing the user deletes it. The catalog ``<name>-index``
holds no records; its metadata records the schema version and the embedding model and
dimension that built the index, checked before every write and dense search.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from tela_memory.errors import InvalidArgumentError, SchemaError

#: 2: stemmed words (version 1 kept them unstemmed, so its words no longer match queries).
SCHEMA_VERSION = 2

#: An index name: what Chroma allows in a collection name, short enough for the suffixes.
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,398}[A-Za-z0-9]$")
_USER_SUFFIX = re.compile(r"-u-[0-9a-f]{40}$")

#: Every collection is cosine HNSW; no embedding function (the index embeds).
CONFIGURATION: dict[str, Any] = {"hnsw": {"space": "cosine"}}


@dataclass(frozen=True, slots=True)
class Model:
    """What built the index's vectors: ``dimension`` 0 when it was built without vectors."""

    model_id: str | None
    dimension: int


def check_name(name: str) -> str:
    """An index name, validated (2-400 characters of ``A-Z a-z 0-9 . _ -``)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError(
            f"invalid Chroma index name {name!r}: use 2-400 characters of A-Z a-z 0-9 . _ -, "
            "starting and ending with a letter or digit"
        )
    return name


def user_collection(name: str, user_id: str) -> str:
    """The collection name of a user's turns."""
    digest = hashlib.blake2b(user_id.encode("utf-8", "surrogatepass"), digest_size=20)
    return f"{name}-u-{digest.hexdigest()}"


def catalog_collection(name: str) -> str:
    """The collection name of the index's catalog."""
    return f"{name}-index"


def user_metadata(name: str, user_id: str) -> dict[str, Any]:
    """Metadata marking a user's collection."""
    return {"tela_index": name, "tela_user": user_id, "tela_schema": SCHEMA_VERSION}


def catalog_metadata(name: str, model: Model) -> dict[str, Any]:
    """Metadata of the catalog collection."""
    meta: dict[str, Any] = {
        "tela_index": name,
        "tela_schema": SCHEMA_VERSION,
        "tela_dimension": model.dimension,
    }
    if model.model_id is not None:
        meta["tela_model_id"] = model.model_id
    return meta


def read_catalog(collection: str, metadata: dict[str, Any] | None) -> Model:
    """The model a catalog records; ``SchemaError`` for a collection tela-memory did not make."""
    meta = metadata or {}
    version = meta.get("tela_schema")
    if not isinstance(version, int) or not isinstance(meta.get("tela_dimension"), int):
        raise SchemaError(
            f"Chroma collection {collection!r} was not made by tela-memory; pick another index name"
        )
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"Chroma collection {collection!r} has tela-memory schema {version}, newer than "
            f"this version's {SCHEMA_VERSION}: upgrade tela-memory-chroma"
        )
    if version < SCHEMA_VERSION:
        raise SchemaError(
            f"Chroma collection {collection!r} has tela-memory schema {version}, whose words "
            "are not stemmed as this version searches them: drop() the index and index again"
        )
    model_id = meta.get("tela_model_id")
    return Model(model_id if isinstance(model_id, str) else None, int(meta["tela_dimension"]))


def owner(name: str, collection: str, metadata: dict[str, Any] | None) -> str | None:
    """The user a collection of this index belongs to; ``None`` for any other collection."""
    if not collection.startswith(f"{name}-u-") or not _USER_SUFFIX.search(collection):
        return None
    meta = metadata or {}
    user = meta.get("tela_user")
    if meta.get("tela_index") != name or not isinstance(user, str):
        return None
    if user_collection(name, user) != collection:
        return None
    return user


def check_owner(name: str, collection: str, user_id: str, metadata: dict[str, Any] | None) -> None:
    """Refuse a user collection whose marks are not this index's and this user's."""
    if owner(name, collection, metadata) != user_id:
        raise SchemaError(
            f"Chroma collection {collection!r} is not this index's collection of user "
            f"{user_id!r} (it was not made by tela-memory); pick another index name"
        )


__all__ = [
    "CONFIGURATION",
    "SCHEMA_VERSION",
    "Model",
    "catalog_collection",
    "catalog_metadata",
    "check_name",
    "check_owner",
    "owner",
    "read_catalog",
    "user_collection",
    "user_metadata",
]
