"""Tools for ownership tests: a victim with markers in every field, and a leak scanner.

Every backend and adapter package tests its read paths the same way: seed a victim, act as
another user (and as users with hostile ids), and assert that no marker reaches the caller,
an error message or a model's input; then pair it with a control in which the victim sees her
own markers through the same path, so that an empty result cannot pass vacuously::

    victim = seed_victim(store.for_user("ada"))
    assert leaks(bob_history.messages, victim.markers) == []
    assert leaks(ada_history.messages, victim.markers) != []      # the control
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from tela_memory.messages import Message, ThinkingBlock, ToolCallBlock
from tela_memory.stores.scoped import UserStore

HOSTILE_USER_IDS: tuple[str, ...] = (
    "ada' OR '1'='1",
    "*",
    "%",
    "ada*",
    "{ada}",
    "ada:x",
    "@user_id:{ada}",
    "ada OR bob",
    '"ada"',
    "ada\\",
    "../ada",
    "ADA",
    " ada",
    "ada ",
    "x" * 200,
    "日本語",
)
"""User ids that must be treated as opaque: none of them may see ``"ada"``'s data."""

INVALID_USER_IDS: tuple[str, ...] = ("", "ada\x00", "ada\n", "\ud800", "x" * 201)
"""User ids every store refuses with ``InvalidMessageError``."""


@dataclasses.dataclass(frozen=True)
class Victim:
    """What :func:`seed_victim` stored: ids and the unique marker strings in each field."""

    user_id: str
    thread_ids: tuple[str, ...]
    message_ids: tuple[str, ...]
    branch: str
    markers: tuple[str, ...]


def _marker(field: str, tag: str) -> str:
    return f"MARK{field}{tag}"


def seed_victim(
    victim: UserStore, *, thread_ids: Iterable[str] = ("A1", "shared-1"), tag: str | None = None
) -> Victim:
    """Store threads for ``victim.user_id`` with a unique marker in every field a user's data
    can take: text, metadata, tool-call arguments and results, thinking, thread title, tags
    and metadata, and a named branch. Thread ids are plain ones another user may also pick."""
    tag = tag or uuid.uuid4().hex[:10]
    mk = {f: _marker(f, tag) for f in ("TEXT", "META", "ARGS", "RESULT", "THINK", "TITLE")}
    mk |= {f: _marker(f, tag) for f in ("TAG", "TMETA", "BRANCH", "REPLY")}
    threads: list[str] = []
    ids: list[str] = []
    for tid in thread_ids:
        call = ToolCallBlock(id=f"call-{tag}", name="lookup", arguments={"q": mk["ARGS"]})
        stored = victim.append(
            tid,
            [
                Message.user(f"my card PIN is {mk['TEXT']}", metadata={"note": mk["META"]}),
                Message.assistant(content=[ThinkingBlock(text=f"thinking {mk['THINK']}"), call]),
                Message.tool(call.id, mk["RESULT"]),
                Message.assistant(f"noted {mk['REPLY']}"),
            ],
        )
        victim.update_thread(tid, title=mk["TITLE"], tags=[mk["TAG"]], metadata={"t": mk["TMETA"]})
        victim.fork(tid, stored[1].id, name=mk["BRANCH"])
        threads.append(tid)
        ids.extend(m.id for m in stored)
    return Victim(
        user_id=victim.user_id,
        thread_ids=tuple(threads),
        message_ids=tuple(ids),
        branch=mk["BRANCH"],
        markers=tuple(mk.values()),
    )


def _texts(obj: Any, seen: set[int], depth: int = 0) -> Iterable[str]:
    if depth > 40 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield obj
        return
    if isinstance(obj, bytes | bytearray):
        yield bytes(obj).decode("utf-8", "replace")
        return
    if isinstance(obj, BaseException):
        yield str(obj)
        yield repr(obj)
        yield from (str(note) for note in getattr(obj, "__notes__", ()))
        for linked in (obj.__cause__, obj.__context__):
            if linked is not None:
                yield from _texts(linked, seen, depth + 1)
        return
    if isinstance(obj, BaseModel):
        yield obj.model_dump_json(fallback=repr)
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _texts(k, seen, depth + 1)
            yield from _texts(v, seen, depth + 1)
        return
    if isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            yield from _texts(item, seen, depth + 1)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _texts(getattr(obj, f.name), seen, depth + 1)
        return
    yield repr(obj)
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        yield from _texts(attrs, seen, depth + 1)


def leaks(obj: Any, markers: Iterable[str]) -> list[str]:
    """The markers found anywhere in ``obj``: strings, exceptions (with causes and notes),
    pydantic models, containers, dataclasses and the attributes of framework objects
    (LangChain and LlamaIndex messages, documents, nodes)."""
    wanted = tuple(markers)
    found: set[str] = set()
    for text in _texts(obj, set()):
        found.update(m for m in wanted if m in text)
    return sorted(found)


__all__ = ["HOSTILE_USER_IDS", "INVALID_USER_IDS", "Victim", "leaks", "seed_victim"]
