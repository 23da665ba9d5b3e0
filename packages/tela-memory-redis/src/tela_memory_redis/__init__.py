"""Tela Memory on Redis: message store (plain data structures), vector index (Redis Query
Engine through redisvl) and a cache tier."""

from tela_memory_redis.store import RedisStore

__all__ = ["RedisStore"]
