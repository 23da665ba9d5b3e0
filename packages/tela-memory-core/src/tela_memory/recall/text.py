"""What of a message is searchable: text, tool results, captions, transcripts, documents."""

from __future__ import annotations

import json

from tela_memory.messages import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    TextBlock,
    ToolCallBlock,
    ToolResultBlock,
)


def extract_text(message: Message) -> str:
    """The searchable text of a message, block by block, joined by newlines.

    Text blocks and tool results give their text, images their ``alt_text``, audio its
    transcript, documents their title and extracted text, tool calls ``name(arguments)``.
    Thinking blocks (private reasoning), opaque blocks and media bytes are left out.
    """
    parts: list[str] = []
    for block in message.content:
        if isinstance(block, TextBlock):
            parts.append(block.text)
        elif isinstance(block, ToolResultBlock):
            parts.append(block.text)
            if not isinstance(block.content, str):
                parts.extend(
                    b.alt_text for b in block.content if isinstance(b, ImageBlock) and b.alt_text
                )
        elif isinstance(block, ImageBlock):
            if block.alt_text:
                parts.append(block.alt_text)
        elif isinstance(block, AudioBlock):
            if block.transcript:
                parts.append(block.transcript)
        elif isinstance(block, DocumentBlock):
            parts.extend(p for p in (block.title, block.text) if p)
        elif isinstance(block, ToolCallBlock):
            args = json.dumps(block.arguments, ensure_ascii=False, sort_keys=True)
            parts.append(f"{block.name}({args})")
    return "\n".join(p for p in parts if p.strip())


__all__ = ["extract_text"]
