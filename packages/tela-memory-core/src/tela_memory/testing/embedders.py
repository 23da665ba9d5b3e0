"""A small deterministic offline embedder for tests: hashed bag of words and character trigrams.

Texts sharing words get close vectors, so "dense" tests behave sensibly without a model, the
network or torch. Not a semantic model: synonyms are strangers to it.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import numpy.typing as npt

from tela_memory.recall.embedder import BaseEmbedder

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder(BaseEmbedder):
    """Feature hashing of lower-cased words (weight 1) and their character trigrams (0.3).

    Args:
        dimension: vector length.
        seed: changes the hashing, hence the ``model_id`` (to test model mismatches).
    """

    def __init__(self, dimension: int = 64, *, seed: int = 0) -> None:
        self._dimension = dimension
        self._seed = seed
        self.calls = 0
        self.texts_embedded = 0

    @property
    def model_id(self) -> str:
        """``hash-bow-<dimension>`` (plus ``-s<seed>`` when seeded)."""
        suffix = f"-s{self._seed}" if self._seed else ""
        return f"hash-bow-{self._dimension}{suffix}"

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                self._add(out[row], word, 1.0)
                padded = f"#{word}#"
                for i in range(len(padded) - 2):
                    self._add(out[row], padded[i : i + 3], 0.3)
        return out

    def _add(self, vec: npt.NDArray[np.float32], feature: str, weight: float) -> None:
        digest = hashlib.blake2b(
            feature.encode(), digest_size=8, salt=self._seed.to_bytes(8, "little")
        ).digest()
        value = int.from_bytes(digest, "little")
        sign = 1.0 if value & 1 else -1.0
        vec[(value >> 1) % self._dimension] += sign * weight


__all__ = ["HashEmbedder"]
