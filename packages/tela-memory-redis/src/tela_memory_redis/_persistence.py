"""What a Redis server's own files keep after an erasure, for the receipt.

Deleting keys removes them from memory, but the server's persistence files keep what was
written before: the append-only file (AOF) replays every erased write until it is rewritten,
and an RDB snapshot holds the keys as they were when it was taken. With
``RedisStore(compact_on_erase=True)`` an erasure asks the server to rewrite both
(``BGREWRITEAOF``, ``BGSAVE SCHEDULE``; they run in the background, and the old files are
replaced when they finish); without it, the receipt's ``traces_left`` says which files still
hold the data. Replicas rewrite their own files on their own schedule, and backups copied off
the server are out of reach: both are said in ``docs/redis.md``.
"""

from __future__ import annotations

from typing import Any

from tela_memory.errors import TelaMemoryError
from tela_memory_redis._driver import Cmd, Op, text

Traces = tuple[tuple[str, ...], tuple[str, ...]]  # (done, left), as in a Scrub

_HINT = "rewrite it (BGREWRITEAOF / BGSAVE) or use RedisStore(compact_on_erase=True)"
_AOF_LEFT = f"redis: the append-only file still holds the erased writes; {_HINT}"
_RDB_LEFT = f"redis: RDB snapshots taken before the erasure still hold the data; {_HINT}"
_UNKNOWN = (
    "redis: the server refused INFO/CONFIG, so whether its AOF or RDB files still hold the "
    "erased data is unknown; ask its operator to rewrite them"
)
_CLUSTER = (
    "redis cluster: each node's AOF and RDB files keep the erased data until the node "
    "rewrites them (BGREWRITEAOF / BGSAVE on every node)"
)


def _config_value(reply: Any, name: str) -> str:
    """``CONFIG GET name``'s value, from the flat ``[name, value]`` list or a dict."""
    if isinstance(reply, dict):
        value = reply.get(name, reply.get(name.encode(), ""))
        return text(value)
    items = [text(x) for x in reply or ()]
    return dict(zip(items[::2], items[1::2], strict=False)).get(name, "")


def persistence_traces(*, compact: bool, cluster: bool) -> Op[Traces]:
    """Read the server's persistence settings; with ``compact``, start the rewrites."""
    if cluster:
        return (), (_CLUSTER,)
    try:
        info = yield Cmd(("INFO", "persistence"), "persistence after erasure")
        save = _config_value((yield Cmd(("CONFIG", "GET", "save"), "persistence")), "save")
    except TelaMemoryError:  # managed services rename or disable CONFIG
        return (), (_UNKNOWN,)
    aof = str(info.get("aof_enabled", "0")) == "1"
    rdb = bool(save.strip()) or int(info.get("rdb_saves", 0) or 0) > 0
    done: list[str] = []
    left: list[str] = []
    if aof:
        if compact:
            yield Cmd(("BGREWRITEAOF",), "rewriting the append-only file")
            done.append("redis: append-only file rewrite started (BGREWRITEAOF)")
        else:
            left.append(_AOF_LEFT)
    if rdb:
        if compact:
            yield Cmd(("BGSAVE", "SCHEDULE"), "rewriting the snapshot")
            done.append("redis: snapshot rewrite scheduled (BGSAVE SCHEDULE)")
        else:
            left.append(_RDB_LEFT)
    return tuple(done), tuple(left)
