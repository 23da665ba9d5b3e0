"""Conversation history in PostgreSQL: append, fork, read a window, follow the change feed,
the async twins, erase the user.

Needs a PostgreSQL server; by default the local one at 127.0.0.1:5432 (user ``postgres``,
database ``test``). Set TELA_PG_URL to use another (``postgresql://user:pw@host:5432/db``).
The tables go into the PostgreSQL schema ``tela_example`` (created on first use); the user is
erased at the end, so a run leaves nothing of its data behind.
"""

from __future__ import annotations

import asyncio
import os
import uuid

from tela_memory import Message, ToolCallBlock
from tela_memory_postgres import PostgresStore

URL = os.environ.get("TELA_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def main() -> None:
    user = f"alice-{uuid.uuid4().hex[:8]}"
    with PostgresStore(URL, schema="tela_example") as store:  # or open_store(URL)
        alice = store.for_user(user)  # every call below acts for this user
        start = store.changes().cursor  # a follower's position: everything after this
        turns = alice.append(
            "trip-42",
            [
                Message.system("You are a travel assistant."),
                Message.user("Weather in Lisbon?"),
                Message.assistant(
                    tool_calls=[
                        ToolCallBlock(id="c1", name="weather", arguments={"city": "Lisbon"})
                    ]
                ),
                Message.tool("c1", "21°C, sunny"),
                Message.assistant("21°C and sunny."),
            ],
        )
        alice.fork("trip-42", turns[3].id, name="terse")  # one row: the ancestors are shared
        alice.append("trip-42", Message.assistant("Sunny."), branch="terse")
        print("main: ", [m.text for m in alice.read("trip-42")][-2:])
        print("terse:", [m.text for m in alice.read("trip-42", branch="terse")][-2:])
        print("newest 2:", [m.text for m in alice.read("trip-42", last=2)])
        print("bob sees:", store.read("trip-42", user_id="bob"))  # his own (empty) thread

        batch = store.changes(start)  # what an indexer following the store would see
        mine = [(c.kind, c.message_id == turns[0].id) for c in batch.changes if c.user_id == user]
        print(f"feed: {len(mine)} events, first is the system prompt: {mine[0]}")

        async def later_turn() -> int:
            await alice.aappend("trip-42", Message.user("And tomorrow?"))
            return len(await alice.aread("trip-42"))

        print("after an async append:", asyncio.run(later_turn()), "messages on main")
        receipt = store.erase_user(user)
        print(f"erased: {receipt.threads} thread, {receipt.messages} messages")
        print("what PostgreSQL keeps:", receipt.traces_left[0][:60] + "...")


if __name__ == "__main__":
    main()
