"""Lexical side of the Qdrant index: sparse term-frequency vectors, IDF applied by Qdrant.

Words are lower-cased ``\\w+`` runs (Unicode), function words dropped (the core's stopword
list, the same as the embedded SQLite index). Each word is hashed to a 32-bit sparse index.
Document values are BM25's saturated term frequency with length normalisation; the collection's
sparse vector is configured with ``Modifier.IDF`` so the engine multiplies each query term by
its inverse document frequency over the stored points, which makes the dot product BM25.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from functools import lru_cache

from qdrant_client import models

from tela_memory.recall.sqlite_index import STOPWORDS

_WORD = re.compile(r"\w+", re.UNICODE)

#: BM25 term-frequency saturation.
K1 = 1.2
#: BM25 length normalisation.
B = 0.75
#: Assumed average length of a turn in words (Qdrant keeps no corpus length statistics).
AVG_LEN = 24.0


def words(text: str) -> list[str]:
    """Lower-cased words of a text, stopwords dropped (all words when only stopwords)."""
    found = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in found if w not in STOPWORDS]
    return kept or found


@lru_cache(maxsize=65536)
def term_id(word: str) -> int:
    """Stable 32-bit sparse index of a word."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=4).digest(), "little")


def _vector(weights: dict[int, float]) -> models.SparseVector:
    ordered = sorted(weights)
    return models.SparseVector(indices=ordered, values=[weights[i] for i in ordered])


def document_vector(text: str) -> models.SparseVector | None:
    """BM25 term weights of a document (``None`` when it has no words)."""
    ws = words(text)
    if not ws:
        return None
    norm = K1 * (1.0 - B + B * len(ws) / AVG_LEN)
    weights: dict[int, float] = {}
    for word, tf in Counter(ws).items():
        weights[term_id(word)] = weights.get(term_id(word), 0.0) + tf * (K1 + 1.0) / (tf + norm)
    return _vector(weights)


def query_vector(text: str) -> models.SparseVector | None:
    """Query terms, weight 1 each (``None`` when the query has no words)."""
    ws = words(text)
    if not ws:
        return None
    return _vector(dict.fromkeys((term_id(w) for w in ws), 1.0))


__all__ = ["AVG_LEN", "K1", "B", "document_vector", "query_vector", "term_id", "words"]
