"""Stores shared by the sessions of a process: one store (one connection) per URL.

``Session(store="sqlite:///chat.db", ...)`` takes the store from here; every session on the
same URL uses the same object, and it is closed when the last of them closes.
"""

from __future__ import annotations

import threading

from tela_memory.stores import MessageStore, open_store

_lock = threading.Lock()
_stores: dict[str, tuple[MessageStore, int]] = {}


def acquire_store(url: str) -> MessageStore:
    """The process-wide store of ``url`` (opened lazily, no I/O here); counts one user."""
    with _lock:
        entry = _stores.get(url)
        if entry is None:
            store = open_store(url)
            _stores[url] = (store, 1)
            return store
        store, users = entry
        _stores[url] = (store, users + 1)
        return store


def release_store(url: str) -> MessageStore | None:
    """Drop one user of ``url``; return the store when it was the last (the caller closes it)."""
    with _lock:
        entry = _stores.get(url)
        if entry is None:
            return None
        store, users = entry
        if users <= 1:
            del _stores[url]
            return store
        _stores[url] = (store, users - 1)
        return None


def store_key(store: MessageStore) -> object:
    """What identifies a store's data for locking: its file when it has one, else the object."""
    path = getattr(store, "path", None)
    return str(path) if path else id(store)


__all__ = ["acquire_store", "release_store", "store_key"]
