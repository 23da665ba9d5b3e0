"""Token costs of media blocks by provider rules.

Rules (published by the providers; sizes unknown to Tela Memory are costed at the worst case,
so a budget is never exceeded because an image had no width and height):

* OpenAI images: ``detail="low"`` costs 85. Otherwise (``high`` / ``auto``) the image is
  scaled to fit 2048x2048, then its shortest side to 768; it costs ``85 + 170 * tiles`` with
  512-pixel tiles. Unknown size: 1,445 (the 768x2048 worst case, 8 tiles).
* Anthropic images: scaled so the long edge is at most 1,568 px, then ``ceil(w * h / 750)``,
  capped at 1,600. Unknown size: 1,600.
* Gemini images: 258 if both sides are at most 384 px, else 258 per 768x768 tile. Unknown: 1,032.
* Documents: extracted ``text`` is counted as text; otherwise ``pages`` times a per-page cost
  (OpenAI 1,000, Anthropic 2,300, Gemini 258, generic 2,300); with neither, one page at 3,000.
* Audio: tokens per second (OpenAI 10, Gemini 32, others 25); without a duration, the
  transcript is counted as text, else 1,500.
"""

from __future__ import annotations

import math

from tela_memory.messages import AudioBlock, ImageBlock
from tela_memory.tokens.models import Family

OPENAI_LOW = 85
OPENAI_TILE = 170
OPENAI_UNKNOWN = OPENAI_LOW + OPENAI_TILE * 8
ANTHROPIC_MAX = 1_600
GEMINI_TILE = 258
GEMINI_UNKNOWN = GEMINI_TILE * 4
PAGE_COST: dict[Family, int] = {
    Family.OPENAI: 1_000,
    Family.ANTHROPIC: 2_300,
    Family.GEMINI: 258,
    Family.GENERIC: 2_300,
}
UNKNOWN_DOCUMENT = 3_000
AUDIO_PER_SECOND: dict[Family, float] = {
    Family.OPENAI: 10.0,
    Family.ANTHROPIC: 25.0,
    Family.GEMINI: 32.0,
    Family.GENERIC: 25.0,
}
UNKNOWN_AUDIO = 1_500


def openai_image_tokens(width: int | None, height: int | None, detail: str | None) -> int:
    """OpenAI's tile rule for one image."""
    if detail == "low":
        return OPENAI_LOW
    if not width or not height:
        return OPENAI_UNKNOWN
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return OPENAI_LOW + OPENAI_TILE * tiles


def anthropic_image_tokens(width: int | None, height: int | None) -> int:
    """Anthropic's ``width * height / 750`` rule (after its resize to a 1,568 px long edge)."""
    if not width or not height:
        return ANTHROPIC_MAX
    w, h = float(width), float(height)
    if max(w, h) > 1568:
        scale = 1568 / max(w, h)
        w, h = w * scale, h * scale
    return min(ANTHROPIC_MAX, max(1, math.ceil(w * h / 750)))


def gemini_image_tokens(width: int | None, height: int | None) -> int:
    """Gemini's rule: 258 for small images, else 258 per 768x768 tile."""
    if not width or not height:
        return GEMINI_UNKNOWN
    if width <= 384 and height <= 384:
        return GEMINI_TILE
    return GEMINI_TILE * math.ceil(width / 768) * math.ceil(height / 768)


def image_tokens(block: ImageBlock, family: Family) -> int:
    """The cost of an image block for a provider family (generic uses OpenAI's rule)."""
    if family is Family.ANTHROPIC:
        return anthropic_image_tokens(block.width, block.height)
    if family is Family.GEMINI:
        return gemini_image_tokens(block.width, block.height)
    return openai_image_tokens(block.width, block.height, block.detail)


def audio_seconds_tokens(block: AudioBlock, family: Family) -> int | None:
    """The cost of an audio block from its duration, or ``None`` when it has none."""
    if block.duration_s is None:
        return None
    return max(1, math.ceil(block.duration_s * AUDIO_PER_SECOND[family]))


__all__ = [
    "PAGE_COST",
    "UNKNOWN_AUDIO",
    "UNKNOWN_DOCUMENT",
    "anthropic_image_tokens",
    "audio_seconds_tokens",
    "gemini_image_tokens",
    "image_tokens",
    "openai_image_tokens",
]
