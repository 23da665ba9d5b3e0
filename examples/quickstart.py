"""Quickstart: store a conversation with a tool call and an image, fork it, print both branches.

Everything goes through ``store.for_user("alice")``: threads live in their user's namespace,
so Alice's thread ids are hers (another user's thread of the same id is a different one).

Runs on the embedded default (a SQLite file under ~/.local/share/tela-memory), no server,
no network. Set TELA_MEMORY_URL to use another store (e.g. ``sqlite:///chat.db``).
"""

from __future__ import annotations

import os
import uuid

from tela_memory import ImageBlock, Message, TextBlock, ToolCallBlock, open_store

PIXEL = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def main() -> None:
    thread = f"quickstart-{uuid.uuid4().hex[:8]}"
    with open_store(os.environ.get("TELA_MEMORY_URL")) as backend:
        store = backend.for_user("alice")  # the acting user of every call below
        stored = store.append(
            thread,
            [
                Message.system("You are a helpful travel assistant."),
                Message.user(
                    [
                        TextBlock(text="What's the weather where this photo was taken?"),
                        ImageBlock(data=PIXEL, mime_type="image/png", width=1, height=1),
                    ]
                ),
                Message.assistant(
                    "Let me check.",
                    tool_calls=[
                        ToolCallBlock(id="call_1", name="weather", arguments={"city": "Lisbon"})
                    ],
                ),
                Message.tool("call_1", "Lisbon: 21°C, sunny"),
                Message.assistant("It's 21°C and sunny in Lisbon."),
            ],
        )
        # Fork right after the tool result and take the conversation elsewhere.
        store.fork(thread, stored[3].id, name="shorter")
        store.append(thread, Message.assistant("21°C, sunny."), branch="shorter")
        store.append(thread, Message.user("Thanks! And tomorrow?"))

        for branch in store.branches(thread):
            print(f"== branch {branch.name}{' (default)' if branch.is_default else ''}")
            for m in store.read(thread, branch=branch.name):
                extras = [b.type for b in m.content if b.type not in ("text", "tool_result")]
                print(f"  {m.role.value:>9}: {m.text or '-'}{'  ' + str(extras) if extras else ''}")
        shared = store.read(thread, branch="shorter")[:4] == store.read(thread)[:4]
        print(f"shared ancestors (not copied): {shared}; stored in {backend!r}")
        bob = backend.for_user("bob")
        print(f"bob sees alice's thread: {bob.read(thread) != []}")  # False: not his thread


if __name__ == "__main__":
    main()
