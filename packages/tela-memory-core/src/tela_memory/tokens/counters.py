"""Concrete counters: exact tiktoken, Hugging Face ``tokenizers``, and an approximation.

None of them does I/O in its constructor: encodings and tokenizer files load on first use.

Offline use of tiktoken: tiktoken downloads its encodings on first use and caches them in
``TIKTOKEN_CACHE_DIR`` (or a temp dir). Where there is no network, point ``TIKTOKEN_CACHE_DIR``
at a folder holding the ``o200k_base`` / ``cl100k_base`` files (see ``docs/context.md``). When
an encoding cannot be had at all, :class:`TiktokenCounter` warns once
(:class:`TokenizerUnavailableWarning`) and counts with :class:`ApproxCounter` instead.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

from tela_memory.errors import InvalidMessageError, MissingDependency
from tela_memory.tokens.base import BaseCounter
from tela_memory.tokens.models import Family, model_info


class TokenizerUnavailableWarning(UserWarning):
    """An exact tokenizer could not be loaded; counts are approximate from now on."""


class ApproxCounter(BaseCounter):
    """A fast tokenizer-free estimate.

    Rule: ASCII text costs ``ceil(chars / 4)`` tokens (the usual English average, slightly
    high for BPE tokenizers on prose), and every non-ASCII character costs one token (CJK and
    emoji are about one token or more per character). ``ratio`` scales the result up (e.g.
    ``1.1`` for a 10% safety margin when the real tokenizer is unknown).
    """

    def __init__(self, family: Family | str = Family.GENERIC, *, ratio: float = 1.0) -> None:
        super().__init__(family)
        if ratio <= 0:
            raise InvalidMessageError(f"ratio must be > 0, got {ratio}")
        self._ratio = ratio

    @property
    def id(self) -> str:
        """``approx:<family>:<ratio>``."""
        return f"approx:{self.family.value}:{self._ratio}"

    def count_text(self, text: str) -> int:
        """Estimated tokens of ``text``."""
        if not text:
            return 0
        if text.isascii():
            base = math.ceil(len(text) / 4)
        else:
            wide = sum(1 for ch in text if ord(ch) > 127)
            base = math.ceil((len(text) - wide) / 4) + wide
        return base if self._ratio == 1.0 else math.ceil(base * self._ratio - 1e-9)


_warned: set[str] = set()
_warn_lock = threading.Lock()


def _warn_once(key: str, message: str) -> None:
    with _warn_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, TokenizerUnavailableWarning, stacklevel=4)


class TiktokenCounter(BaseCounter):
    """Exact OpenAI counting with tiktoken (``o200k_base`` / ``cl100k_base``).

    Args:
        model: a model name (``gpt-4o`` -> o200k_base, ``gpt-4`` -> cl100k_base); picks the
            encoding and the provider family.
        encoding: an encoding name, overriding the one the model implies.
        family: the provider family for overhead and media (default: the model's, else OpenAI).

    If the encoding cannot be loaded (no network and no ``TIKTOKEN_CACHE_DIR``), the counter
    warns once per process and encoding, and counts with :class:`ApproxCounter`; ``id`` and
    ``exact`` then say so.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        encoding: str | None = None,
        family: Family | str | None = None,
    ) -> None:
        info = model_info(model) if model is not None else None
        if encoding is None:
            encoding = info.encoding if info is not None else "o200k_base"
            if encoding is None:
                raise InvalidMessageError(
                    f"model {model!r} has no tiktoken encoding; use counter_for_model() or "
                    "pass encoding= explicitly"
                )
        fam = family if family is not None else (info.family if info else Family.OPENAI)
        super().__init__(fam)
        self.model = model
        self.encoding_name = encoding
        self._encode: Callable[[str], int] | None = None
        self._fallback: ApproxCounter | None = None
        self._lock = threading.Lock()

    def _load(self) -> Callable[[str], int]:
        with self._lock:
            if self._encode is not None:
                return self._encode
            try:
                import tiktoken

                enc = tiktoken.get_encoding(self.encoding_name)
                encode_ordinary = enc.encode_ordinary

                def count(text: str) -> int:
                    return len(encode_ordinary(text))

                self._encode = count
            except Exception as exc:  # network, cache, unknown encoding: all fall back
                self._fallback = ApproxCounter(self.family)
                self._encode = self._fallback.count_text
                _warn_once(
                    self.encoding_name,
                    f"tiktoken encoding {self.encoding_name!r} is unavailable ({exc}); counting "
                    "tokens approximately. Set TIKTOKEN_CACHE_DIR to a folder holding the "
                    "encoding for exact counts offline.",
                )
            return self._encode

    @property
    def exact(self) -> bool:
        """Whether counts come from the real encoding (loads it if needed)."""
        self._load()
        return self._fallback is None

    @property
    def id(self) -> str:
        """``tiktoken:<encoding>:<family>``, or ``approx-fallback:...`` after a fallback."""
        self._load()
        kind = "tiktoken" if self._fallback is None else "approx-fallback"
        return f"{kind}:{self.encoding_name}:{self.family.value}"

    def count_text(self, text: str) -> int:
        """Exact tokens of ``text`` (special tokens are counted as ordinary text)."""
        if not text:
            return 0
        encode = self._encode or self._load()
        return encode(text)


class HFTokenizerCounter(BaseCounter):
    """Counting with a Hugging Face ``tokenizers`` tokenizer file (``tokenizer.json``).

    Needs the optional dependency: ``pip install "tela-memory-core[tokenizers]"``. The file is
    read on first use, never from a hub.
    """

    def __init__(self, path: str | PathLike[str], *, family: Family | str = Family.GENERIC) -> None:
        super().__init__(family)
        self.path = Path(path)
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                try:
                    from tokenizers import Tokenizer
                except ImportError as exc:
                    raise MissingDependency("tokenizers", "tokenizers") from exc
                if not self.path.is_file():
                    raise InvalidMessageError(f"tokenizer file {str(self.path)!r} does not exist")
                try:
                    self._tokenizer = Tokenizer.from_file(str(self.path))
                except Exception as exc:
                    raise InvalidMessageError(
                        f"{str(self.path)!r} is not a valid tokenizers file: {exc}"
                    ) from exc
            return self._tokenizer

    @property
    def id(self) -> str:
        """``hf:<file name>:<family>``."""
        return f"hf:{self.path.name}:{self.family.value}"

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` without special tokens."""
        if not text:
            return 0
        return len(self._load().encode(text, add_special_tokens=False).ids)


def counter_for_model(model: str) -> BaseCounter:
    """The best offline counter for a model name.

    OpenAI models get :class:`TiktokenCounter` with their encoding. Models without a public
    tokenizer (Claude, Gemini, open-weight families) get :class:`ApproxCounter` for their
    family with a 10% safety margin. Unknown names raise ``UnknownModelError``.
    """
    info = model_info(model)
    if info.encoding is not None:
        return TiktokenCounter(model)
    return ApproxCounter(info.family, ratio=1.1)


__all__ = [
    "ApproxCounter",
    "HFTokenizerCounter",
    "TiktokenCounter",
    "TokenizerUnavailableWarning",
    "counter_for_model",
]
