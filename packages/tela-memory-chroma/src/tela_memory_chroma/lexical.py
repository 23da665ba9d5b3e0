"""The lexical side: Chroma finds the turns holding each query word, IDF ranks them here.

Each record carries its distinct words, lower-cased ``\\w+`` runs stemmed by the English
Snowball stemmer (as the embedded index's Porter tokenizer does), as a metadata array ``w``.
For each query word (stopwords dropped unless nothing else is left, at most
:data:`MAX_TERMS`), one request ``get(where={"$and": [filter..., {"w": {"$contains": word}}]},
include=[])`` returns the ids of the user's turns holding it, under the filter: an exact word
match on Chroma's metadata index. Chroma returns no text score, so a turn scores the sum of
the inverse document frequencies (BM25's, over the user's collection) of the query words it
holds.

Measured on LoCoMo dev (turn recall_any@10, lexical only): this IDF-weighted word match 0.710
(0.655 with words not stemmed); full BM25 over the same candidates (term frequency and length
from a stored word document, not stemmed) 0.626, at four times the latency, since Chroma's
embedded engine reads a record's whole metadata to return its document; the count of matched
words alone 0.581. Chroma's full-text ``where_document={"$contains": ...}`` finds the same
turns, but on the embedded engine its index is one table for every collection, so its cost
grows with the whole database (59 ms against 4 ms per search at 20,000 turns over 100 users).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from py_rust_stemmers import SnowballStemmer  # type: ignore[import-untyped]

from tela_memory.recall.fts import query_terms

_WORD = re.compile(r"\w+", re.UNICODE)

#: Query words looked up per search (the first ones; longer queries are documents).
MAX_TERMS = 64


_STEMMER = SnowballStemmer("english")


def stems(found: list[str]) -> list[str]:
    """English (Snowball) stems of lower-cased words, as the embedded index's Porter tokenizer
    makes them: "meetings" and "meeting" are one word."""
    return [str(w) for w in _STEMMER.stem_words(found)]


def words(text: str) -> list[str]:
    """The distinct stemmed words of a text, sorted (a record's ``w`` array)."""
    return sorted(set(stems([w.lower() for w in _WORD.findall(text)])))


def terms(query: str) -> list[str]:
    """The distinct stemmed query words looked up (stopwords dropped unless nothing else is
    left)."""
    return list(dict.fromkeys(stems(query_terms(query))))[:MAX_TERMS]


def holds(word: str) -> dict[str, Any]:
    """A ``where`` condition: the record holds this word."""
    return {"w": {"$contains": word}}


def contains(found: Sequence[str]) -> dict[str, Any]:
    """A ``where_document`` matching a padded word document holding any of these words
    (Chroma's full-text side; the benchmark's floor)."""
    parts: list[dict[str, Any]] = [{"$contains": f" {w} "} for w in found]
    return parts[0] if len(parts) == 1 else {"$or": parts}


def document(text: str) -> str:
    """A text's words, lower-cased, space-separated and padded (for ``$contains``)."""
    found = [w.lower() for w in _WORD.findall(text)]
    return f" {' '.join(found)} " if found else ""


def idf_scores(holders: Mapping[str, Sequence[str]], total: int) -> dict[str, float]:
    """Score of each record: the sum of BM25's IDF of the query words it holds
    (``holders``: word -> ids of the records holding it; ``total``: the collection's size)."""
    scores: dict[str, float] = {}
    for ids in holders.values():
        if not ids:
            continue
        df = len(ids)
        n = max(total, df)
        idf = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        for mid in ids:
            scores[mid] = scores.get(mid, 0.0) + idf
    return scores


__all__ = ["MAX_TERMS", "contains", "document", "holds", "idf_scores", "terms", "words"]
