"""Formats quickstart: one conversation to OpenAI, Anthropic, ShareGPT and back, with the loss
report, then imported into a store and exported losslessly with its branches.

Store I/O acts for one user (``store.for_user("ann")``): imports write Ann's threads and
``load_conversation`` reads only hers. Runs offline on a temporary SQLite file.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tela_memory import ImageBlock, Message, TextBlock, ThinkingBlock, ToolCallBlock, open_store
from tela_memory.formats import Conversation, read_text, to_anthropic, to_openai_chat, write_text
from tela_memory.formats.store_io import import_conversations, load_conversation

PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def main() -> None:
    call = ToolCallBlock(id="call_1", name="get_weather", arguments={"city": "Lisbon"})
    messages = [
        Message.system("You are a travel assistant."),
        Message.user(
            [
                TextBlock(text="Where was this taken, and what's the weather?"),
                ImageBlock(data=PIXEL, mime_type="image/png"),
            ]
        ),
        Message.assistant(
            [ThinkingBlock(text="Looks like Lisbon.", signature="sig-123")], tool_calls=[call]
        ),
        Message.tool("call_1", '{"forecast": "sunny", "high_c": 24}'),
        Message.assistant("That's Lisbon: sunny, 24 °C."),
    ]
    conv = Conversation.linear(messages, id="trip", title="Lisbon")

    print("OpenAI Chat Completions messages:")
    print(json.dumps(to_openai_chat(messages), indent=1)[:400], "...")
    system, anthropic_messages = to_anthropic(messages)
    print(f"\nAnthropic: system={system!r}, {len(anthropic_messages)} messages")

    for fmt in ("openai", "anthropic", "gemini", "sharegpt", "markdown"):
        text, losses = write_text([conv], fmt)
        back = read_text(text, fmt).conversations[0]
        print(
            f"{fmt:10} {len(text):5} chars, read back {len(back.messages)} messages; "
            f"lost: {losses.counts() or 'nothing'}"
        )

    with tempfile.TemporaryDirectory() as tmp, open_store(f"sqlite:///{Path(tmp)}/f.db") as db:
        store = db.for_user("ann")
        import_conversations(store, [conv])
        store.fork("trip", messages[1].id, name="no-tools")
        store.append("trip", Message.assistant("I can't tell from one pixel."), branch="no-tools")
        stored = load_conversation(store, "trip")
        text, losses = write_text([stored], "tela")
        again = read_text(text).conversations[0]
        print(
            f"\nlossless JSON: branches {sorted(again.branches)}, "
            f"{len(again.messages)} messages, lost: {losses.counts() or 'nothing'}"
        )
        assert [m.content for m in again.path()] == [m.content for m in messages]


if __name__ == "__main__":
    main()
