"""Token counting: exact (tiktoken, Hugging Face ``tokenizers``) or approximate, with
per-provider message overhead, media costs, and a per-message cache.

Example:
    >>> from tela_memory.tokens import counter_for_model
    >>> counter = counter_for_model("gpt-4o")  # tiktoken o200k_base, OpenAI framing
"""

from tela_memory.tokens.base import OVERHEAD, BaseCounter, Overhead, TokenCounter, tool_call_wire
from tela_memory.tokens.cache import CachedCounter, fingerprint
from tela_memory.tokens.counters import (
    ApproxCounter,
    HFTokenizerCounter,
    TiktokenCounter,
    TokenizerUnavailableWarning,
    counter_for_model,
)
from tela_memory.tokens.media import (
    anthropic_image_tokens,
    gemini_image_tokens,
    image_tokens,
    openai_image_tokens,
)
from tela_memory.tokens.models import (
    Family,
    ModelInfo,
    UnknownModelError,
    context_window,
    model_info,
    register_model,
)

__all__ = [
    "OVERHEAD",
    "ApproxCounter",
    "BaseCounter",
    "CachedCounter",
    "Family",
    "HFTokenizerCounter",
    "ModelInfo",
    "Overhead",
    "TiktokenCounter",
    "TokenCounter",
    "TokenizerUnavailableWarning",
    "UnknownModelError",
    "anthropic_image_tokens",
    "context_window",
    "counter_for_model",
    "fingerprint",
    "gemini_image_tokens",
    "image_tokens",
    "model_info",
    "openai_image_tokens",
    "register_model",
    "tool_call_wire",
]
