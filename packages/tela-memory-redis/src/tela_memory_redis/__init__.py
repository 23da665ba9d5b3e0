"""Tela Memory on Redis: message store (plain data structures), vector index (Redis Query
Engine through redisvl) and a cache tier.

``RedisIndex`` (and redisvl) is imported on first access only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tela_memory_redis.store import RedisStore

if TYPE_CHECKING:
    from tela_memory_redis.index import RedisIndex


def __getattr__(name: str) -> Any:
    if name == "RedisIndex":
        from tela_memory_redis.index import RedisIndex

        return RedisIndex
    raise AttributeError(f"module 'tela_memory_redis' has no attribute {name!r}")


__all__ = ["RedisIndex", "RedisStore"]
