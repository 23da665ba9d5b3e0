"""The ``Embedder`` protocol: text in, unit-length float32 vectors out, in batches."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from tela_memory.recall.errors import EmbeddingMismatchError

Vectors = npt.NDArray[np.float32]
"""A 2-D float32 array, one row per text."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    ``model_id`` names the model (and anything that changes its vectors, such as a prefix);
    caches and indexes key on it. ``dimension`` is the vector length.
    """

    @property
    def model_id(self) -> str:
        """Stable name of the model."""
        ...

    @property
    def dimension(self) -> int:
        """Vector length."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents: an array of shape ``(len(texts), dimension)``."""
        ...

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Async twin of :meth:`embed`."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """Embed one search query: shape ``(dimension,)``."""
        ...

    async def aembed_query(self, text: str) -> Vectors:
        """Async twin of :meth:`embed_query`."""
        ...


class BaseEmbedder(ABC):
    """Helper base: implement :meth:`_embed` (and ``model_id`` / ``dimension``); the rest
    (normalisation, shape checks, async twins, query embedding) comes from here."""

    #: Texts per call to the model.
    batch_size: int = 64

    @property
    @abstractmethod
    def model_id(self) -> str:
        """Stable name of the model."""

    @property
    @abstractmethod
    def dimension(self) -> int:
        """Vector length."""

    @abstractmethod
    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        """Embed one batch of texts (any array-like of shape ``(n, dimension)``)."""

    def _embed_query(self, text: str) -> npt.ArrayLike:
        return self._embed([text])

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Embed documents: unit-length rows of shape ``(len(texts), dimension)``."""
        items = list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        chunks = [
            self._checked(
                self._embed(items[i : i + self.batch_size]), len(items[i : i + self.batch_size])
            )
            for i in range(0, len(items), self.batch_size)
        ]
        out: Vectors = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        return out

    def embed_query(self, text: str) -> Vectors:
        """Embed one query: a unit-length vector of shape ``(dimension,)``."""
        out: Vectors = self._checked(self._embed_query(text), 1)[0]
        return out

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        """Async twin of :meth:`embed` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed, texts)

    async def aembed_query(self, text: str) -> Vectors:
        """Async twin of :meth:`embed_query` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_query, text)

    def _checked(self, raw: npt.ArrayLike, n: int) -> Vectors:
        return normalize(raw, n=n, dimension=self.dimension, model_id=self.model_id)


def normalize(
    raw: npt.ArrayLike, *, n: int | None = None, dimension: int, model_id: str = "?"
) -> Vectors:
    """Make a float32 ``(n, dimension)`` array of unit rows; raise on a wrong shape."""
    arr = np.asarray(raw, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != dimension or (n is not None and arr.shape[0] != n):
        raise EmbeddingMismatchError(
            f"embedder {model_id!r} returned shape {arr.shape}, expected ({n}, {dimension})"
        )
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = np.ascontiguousarray(arr / norms, dtype=np.float32)
    return out


__all__ = ["BaseEmbedder", "Embedder", "Vectors", "normalize"]
