"""Conversation formats, both directions, with a report of what a format could not hold.

Codecs: ``tela`` (our lossless JSON, with branches), ``openai`` (Chat Completions messages),
``openai-responses`` (Responses input items), ``anthropic`` (Messages), ``gemini`` (contents),
``chatml``, ``sharegpt``, ``jsonl`` (one message per line), ``jsonl-conversations`` (one
conversation per line), ``markdown``, ``text``; import only: ``chatgpt`` (``conversations.json``
of a ChatGPT export, node trees become branches) and ``claude-export``.

Example::

    from tela_memory.formats import read_file, write_text

    result = read_file("conversations.json")          # format detected
    text, losses = write_text(result.conversations, "sharegpt")
    print(losses.summary())                           # what ShareGPT could not hold
"""

from tela_memory.formats._codec import Codec
from tela_memory.formats._io import DEFAULT_MAX_BYTES
from tela_memory.formats._model import (
    DEFAULT_BRANCH,
    Conversation,
    FormatError,
    Loss,
    LossReport,
)
from tela_memory.formats.anthropic import from_anthropic, to_anthropic
from tela_memory.formats.gemini import from_gemini, to_gemini
from tela_memory.formats.openai_chat import from_openai_chat, to_openai_chat
from tela_memory.formats.openai_responses import from_responses, to_responses
from tela_memory.formats.registry import (
    ALIASES,
    CODECS,
    ReadResult,
    aread_file,
    awrite_file,
    detect_format,
    get_codec,
    read_file,
    read_text,
    write_file,
    write_text,
)

__all__ = [
    "ALIASES",
    "CODECS",
    "DEFAULT_BRANCH",
    "DEFAULT_MAX_BYTES",
    "Codec",
    "Conversation",
    "FormatError",
    "Loss",
    "LossReport",
    "ReadResult",
    "aread_file",
    "awrite_file",
    "detect_format",
    "from_anthropic",
    "from_gemini",
    "from_openai_chat",
    "from_responses",
    "get_codec",
    "read_file",
    "read_text",
    "to_anthropic",
    "to_gemini",
    "to_openai_chat",
    "to_responses",
    "write_file",
    "write_text",
]
