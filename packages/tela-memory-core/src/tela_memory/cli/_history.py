"""What ``search``, ``context`` and ``demo`` use from recall and the context engine.

Both act for one user (a ``UserStore``, or a store with ``user_id=``): search looks only in
that user's threads, ``context`` builds one of that user's threads and recalls only from the
same user's other threads.

Recall: the embedded index (``tela_memory.recall.SQLiteIndex``) kept in step with a SQLite
store by ``StoreIndexer``; other stores are indexed into an in-memory index per call.
Context: ``tela_memory.context`` when it provides an engine; until then a plain, clearly
labelled fallback (pinned system prefix + the newest whole turns that fit).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from tela_memory.errors import NotFoundError, TelaMemoryError
from tela_memory.formats.store_io import StoreLike, as_user, load_conversation, user_thread_ids
from tela_memory.messages import Message, Role
from tela_memory.stores.base import MessageStore
from tela_memory.stores.scoped import UserStore
from tela_memory.stores.sqlite import SQLiteStore


@dataclass
class SearchResult:
    """Hits as ``(score, message)`` and how they were found."""

    hits: list[tuple[float, Message]]
    method: str


def _user_messages(user: UserStore, threads: list[str] | None) -> list[Message]:
    out: list[Message] = []
    for tid in threads or user_thread_ids(user):
        try:
            out.extend(load_conversation(user, tid).messages)
        except NotFoundError:  # a thread the user does not have: nothing to index
            continue
    return out


def search_history(
    store: StoreLike,
    query: str,
    *,
    user_id: str | None = None,
    k: int = 5,
    threads: list[str] | None = None,
) -> SearchResult:
    """Search the acting user's history with the recall index (lexical BM25 offline).

    Args:
        store: a ``UserStore``, or a backend store with ``user_id=``.
        query: what to look for.
        user_id: the acting user (with a backend store).
        k: how many hits.
        threads: only these of the user's threads.
    """
    user = as_user(store, user_id)
    flt: dict[str, Any] = {"user_id": user.user_id}
    if threads:
        flt["thread_ids"] = tuple(threads)
    ranker = _recaller()
    where = (
        "the SQLite FTS5 index following the store"
        if isinstance(user.store, SQLiteStore)
        else "a temporary in-memory index"
    )
    with _open_index(user, threads or []) as index:
        hits = _run(ranker, index, query, flt, k)
    method = f"recall: {'hybrid ranking (Recaller)' if ranker else 'BM25'} over {where}"
    return SearchResult([(h.score, h.message) for h in hits], method)


def _recaller() -> Any | None:
    """``tela_memory.recall.recaller.Recaller`` when this install has it."""
    try:
        module = importlib.import_module("tela_memory.recall.recaller")
    except ImportError:
        return None
    return getattr(module, "Recaller", None)


def _run(ranker: Any | None, index: Any, query: str, flt: dict[str, Any], k: int) -> list[Any]:
    if ranker is None:
        return list(index.search(query, filter=flt, k=k, mode="lexical"))
    rest = {key: v for key, v in flt.items() if key != "user_id"}
    return list(ranker(index).search(query, user_id=flt["user_id"], filter=rest or None, k=k))


@dataclass
class ContextView:
    """What would be sent for a budget, and why."""

    sent: list[Message]
    dropped: list[Message]
    tokens_total: int
    tokens_sent: int
    budget: int
    method: str
    history: int = 0
    """How many messages the branch holds."""
    notes: list[str] = field(default_factory=list)
    decisions: dict[str, tuple[str, str]] = field(default_factory=dict)
    """message id -> (decision, reason) for every message of the history."""

    @property
    def saved(self) -> float:
        """Share of the history's tokens not sent."""
        return 1 - self.tokens_sent / self.tokens_total if self.tokens_total else 0.0

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "method": self.method,
            "budget": self.budget,
            "history": self.history,
            "tokens_total": self.tokens_total,
            "tokens_sent": self.tokens_sent,
            "saved": round(self.saved, 4),
            "sent": [m.id for m in self.sent],
            "dropped": [m.id for m in self.dropped],
            "notes": self.notes,
            "decisions": {k: {"decision": d, "reason": r} for k, (d, r) in self.decisions.items()},
        }


def _policy_class() -> Any | None:
    """``tela_memory.context.ContextPolicy`` when this install has the context engine."""
    try:
        module = importlib.import_module("tela_memory.context")
    except ImportError:
        return None
    return getattr(module, "ContextPolicy", None)


class _OtherThreads:
    """The context engine's recall slot, filled by ``Recaller`` from a user's other threads."""

    def __init__(self, ranker: Any, user: str, threads: list[str]) -> None:
        self._ranker = ranker
        self._user = user
        self._threads = tuple(threads)

    def recall(self, query: str, thread: str | None, budget: int) -> list[Message]:
        result = self._ranker.recall(
            query, user_id=self._user, budget=budget, filter={"thread_ids": self._threads}
        )
        return list(result.messages)


def context_view(
    store: StoreLike,
    thread_id: str,
    budget: int,
    *,
    user_id: str | None = None,
    branch: str | None = None,
    model: str = "gpt-4o",
    counter: Any | None = None,
    recall: bool = False,
    query: str | None = None,
) -> ContextView:
    """The messages of a thread that fit ``budget`` tokens, with what was dropped.

    Args:
        store: a ``UserStore``, or a backend store with ``user_id=``.
        thread_id: the thread, in the acting user's namespace.
        budget: tokens.
        user_id: the acting user (with a backend store).
        branch: the branch (default: the thread's default).
        model: picks the token counter.
        counter: a ``tela_memory.tokens`` counter, overriding ``model``'s.
        recall: give the context a recall slot filled from the user's other threads.
        query: what to recall for (default: the newest user message).

    A thread the user does not have (another user's looks the same) has no messages:
    ``TelaMemoryError``.
    """
    from tela_memory.tokens import counter_for_model

    if budget <= 0:
        raise TelaMemoryError(f"the budget must be a positive number of tokens, got {budget}")
    user = as_user(store, user_id)
    history = user.read(thread_id, branch=branch)
    if not history:
        raise TelaMemoryError(f"thread {thread_id!r} has no messages")
    counter = counter if counter is not None else counter_for_model(model)
    total = counter.count_messages(history)
    policy_class = _policy_class()
    if policy_class is None:
        return _fallback(history, budget, counter, total)
    from tela_memory.context import Recall, Summary

    with ExitStack() as stack:
        slot = None
        method = "context engine: pinned prefix + summary of the dropped span + recent window"
        ranker = _recaller() if recall else None
        if recall and ranker is None:
            raise TelaMemoryError("recall is not available in this install")
        if ranker is not None:
            others = [t for t in user_thread_ids(user) if t != thread_id]
            index = stack.enter_context(_open_index(user, others))
            slot = Recall(recaller=_OtherThreads(ranker(index), user.user_id, others), share=0.2)
            method += " + recall from the user's other threads"
            if query is None:
                query = next((m.text for m in reversed(history) if m.role is Role.USER), None)
        policy = policy_class(budget=budget, counter=counter, summary=Summary(), recall=slot)
        ctx = policy.build(history, query=query)
    rep = ctx.report
    decisions = {r.id: (str(r.decision), str(r.reason)) for r in rep.messages}
    decisions.update({i: (str(rep.folded_as), "window") for i in rep.folded})
    sent_ids = {m.id for m in ctx.messages}
    return ContextView(
        sent=list(ctx.messages),
        dropped=[m for m in history if m.id not in sent_ids],
        tokens_total=total,
        tokens_sent=int(rep.tokens_out),
        budget=budget,
        history=len(history),
        method=method,
        notes=list(rep.notes),
        decisions=decisions,
    )


@contextmanager
def _open_index(user: UserStore, threads: list[str]) -> Iterator[Any]:
    """The recall index for a store, up to date (SQLite: in the same file, incremental).

    The embedded index follows the whole file; every search filters on the acting user.
    Other stores get a temporary index of this user's messages only."""
    from tela_memory.recall import SQLiteIndex

    store: MessageStore = user.store
    if isinstance(store, SQLiteStore):
        from tela_memory.recall.indexer import StoreIndexer

        index = SQLiteIndex.for_store(store)
        try:
            StoreIndexer(store, index).sync()
            yield index
        finally:
            index.close()
    else:
        with SQLiteIndex(":memory:") as index:
            index.upsert(_user_messages(user, threads))
            yield index


def _turns(messages: list[Message]) -> list[list[Message]]:
    """Runs that start at a user message: a turn keeps its tool calls with their results."""
    turns: list[list[Message]] = []
    for m in messages:
        if m.role is Role.USER or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    return turns


def _fallback(history: list[Message], budget: int, counter: Any, total: int) -> ContextView:
    prefix: list[Message] = []
    for m in history:
        if m.role not in (Role.SYSTEM, Role.DEVELOPER):
            break
        prefix.append(m)
    used = counter.count_messages(prefix) if prefix else 0
    if used > budget:
        raise TelaMemoryError(f"the system prompt alone ({used} tokens) exceeds the budget")
    kept: list[list[Message]] = []
    for turn in reversed(_turns(history[len(prefix) :])):
        cost = counter.count_messages(turn)
        if used + cost > budget:
            break
        kept.append(turn)
        used += cost
    sent = prefix + [m for t in reversed(kept) for m in t]
    sent_ids = {m.id for m in sent}
    return ContextView(
        sent=sent,
        dropped=[m for m in history if m.id not in sent_ids],
        tokens_total=total,
        tokens_sent=counter.count_messages(sent),
        budget=budget,
        history=len(history),
        method="fallback: system prefix + newest whole turns",
        notes=["the context engine (tela_memory.context) is not installed yet"],
    )


__all__ = ["ContextView", "SearchResult", "context_view", "search_history"]
