"""What Tela Memory knows about model names: provider family, tiktoken encoding, context window.

Lookups match the longest known prefix of the (lower-cased) model name, after stripping a
provider prefix such as ``openai/`` or ``anthropic:``. An unknown name raises
:class:`UnknownModelError`; pass the value explicitly (``window=``, ``encoding=``) or register
it with :func:`register_model` to use a model Tela Memory does not know.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tela_memory.errors import InvalidMessageError


class UnknownModelError(InvalidMessageError):
    """A model name is not in Tela Memory's tables; the message says how to provide it."""


class Family(StrEnum):
    """Provider families: they differ in per-message overhead and media costs."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"
    GENERIC = "generic"


@dataclass(frozen=True)
class ModelInfo:
    """Facts about one model family prefix."""

    family: Family
    window: int
    encoding: str | None = None  # tiktoken encoding for exact counting, None if not tiktoken


_O200K = "o200k_base"
_CL100K = "cl100k_base"

# prefix -> info; the longest matching prefix wins.
_MODELS: dict[str, ModelInfo] = {
    # OpenAI
    "gpt-5": ModelInfo(Family.OPENAI, 400_000, _O200K),
    "gpt-4.1": ModelInfo(Family.OPENAI, 1_047_576, _O200K),
    "gpt-4.5": ModelInfo(Family.OPENAI, 128_000, _O200K),
    "gpt-4o": ModelInfo(Family.OPENAI, 128_000, _O200K),
    "chatgpt-4o": ModelInfo(Family.OPENAI, 128_000, _O200K),
    "gpt-oss": ModelInfo(Family.OPENAI, 131_072, _O200K),
    "o1": ModelInfo(Family.OPENAI, 200_000, _O200K),
    "o3": ModelInfo(Family.OPENAI, 200_000, _O200K),
    "o4": ModelInfo(Family.OPENAI, 200_000, _O200K),
    "gpt-4-turbo": ModelInfo(Family.OPENAI, 128_000, _CL100K),
    "gpt-4-1106": ModelInfo(Family.OPENAI, 128_000, _CL100K),
    "gpt-4-0125": ModelInfo(Family.OPENAI, 128_000, _CL100K),
    "gpt-4-32k": ModelInfo(Family.OPENAI, 32_768, _CL100K),
    "gpt-4": ModelInfo(Family.OPENAI, 8_192, _CL100K),
    "gpt-3.5-turbo": ModelInfo(Family.OPENAI, 16_385, _CL100K),
    # Anthropic (no public offline tokenizer: counted approximately)
    "claude": ModelInfo(Family.ANTHROPIC, 200_000),
    # Google
    "gemini-1.5-pro": ModelInfo(Family.GEMINI, 2_097_152),
    "gemini-1.5": ModelInfo(Family.GEMINI, 1_048_576),
    "gemini-2": ModelInfo(Family.GEMINI, 1_048_576),
    "gemini": ModelInfo(Family.GEMINI, 1_048_576),
    # Open-weight families commonly served behind OpenAI-compatible APIs
    "llama-3": ModelInfo(Family.GENERIC, 131_072),
    "llama3": ModelInfo(Family.GENERIC, 131_072),
    "mistral-large": ModelInfo(Family.GENERIC, 131_072),
    "mistral": ModelInfo(Family.GENERIC, 32_768),
    "qwen": ModelInfo(Family.GENERIC, 131_072),
    "deepseek": ModelInfo(Family.GENERIC, 131_072),
}


def _normalise(model: str) -> str:
    name = model.strip().lower()
    for sep in ("/", ":"):
        if sep in name:
            head, _, tail = name.partition(sep)
            if head in {"openai", "anthropic", "google", "gemini", "meta", "azure", "bedrock"}:
                name = tail
    return name


def model_info(model: str) -> ModelInfo:
    """The family, window and encoding of ``model`` (longest known prefix).

    Raises:
        UnknownModelError: the name matches no known prefix.
    """
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(f"model must be a non-empty string, got {model!r}")
    name = _normalise(model)
    best = max((p for p in _MODELS if name.startswith(p)), key=len, default=None)
    if best is None:
        raise UnknownModelError(
            f"unknown model {model!r}: pass window= / encoding= explicitly or call "
            "tela_memory.tokens.register_model(prefix, family=..., window=...) first"
        )
    return _MODELS[best]


def register_model(
    prefix: str, *, family: Family | str, window: int, encoding: str | None = None
) -> None:
    """Teach Tela Memory a model prefix (overrides a built-in entry with the same prefix)."""
    if window <= 0:
        raise InvalidMessageError(f"window must be > 0, got {window}")
    if not prefix.strip():
        raise InvalidMessageError("prefix must be non-empty")
    _MODELS[prefix.strip().lower()] = ModelInfo(Family(family), window, encoding)


def context_window(model: str) -> int:
    """The context window, in tokens, of a known model."""
    return model_info(model).window


__all__ = [
    "Family",
    "ModelInfo",
    "UnknownModelError",
    "context_window",
    "model_info",
    "register_model",
]
