"""Memory blocks for ``llama_index.core.memory.Memory`` (and :class:`TelaMemory`).

* :class:`TelaRecallBlock` searches the recall index for the latest user message, each call
  with a fresh filter (user and, optionally, session): filters never pile up between calls.
* :class:`TelaEpisodicBlock` shows the context engine's progressive summaries of the user's
  other threads, and keeps one progressive summary per session of ``Memory`` (what it flushes).
* :class:`TelaFactsBlock` shows the facts stored for a user.

Every block is built for one user (``user_id=``, or a ``store.for_user(...)`` view as
``store=``); without one it raises ``ScopeError``. Only the recall block has an operator's
``all_users=True`` (a search across users, which a ``TelaMemory`` refuses to carry).

Summaries and facts are stored as messages in two threads in the user's own namespace
(``tela-episodes`` and ``tela-facts``, tagged ``tela:internal``), so another user can neither
read nor pre-create them, they live in the same store as the history and ``erase_user``
removes them with everything else. Records that version 0.1 wrote under the user's
``tela-facts:<user>`` / ``tela-episodes:<user>`` threads are still read (oldest first), never
written again. Each block has a ``priority`` and an ``atruncate`` that drops whole entries,
least relevant first, until the requested number of tokens is saved.

Sessions are identified by **thread id**, the id the messages are stored under:
:class:`~tela_memory_llamaindex.memory.TelaMemory` passes ``thread_id`` (its chat store's
``key_prefix`` + ``session_id``); LlamaIndex's ``Memory`` passes only ``session_id``, which is
then the thread id (the recall block writes flushed messages to that thread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.llms import LLM
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.utils import get_tokenizer

from tela_memory.context.engine import summary_of
from tela_memory.errors import ScopeError
from tela_memory.messages import Message, TextBlock
from tela_memory.recall.index import Index
from tela_memory.recall.types import SearchFilter
from tela_memory.stores.base import MessageStore
from tela_memory.stores.scoped import UserStore
from tela_memory_llamaindex._scope import bind_user, check_scope
from tela_memory_llamaindex.chat_store import INTERNAL_TAG
from tela_memory_llamaindex.convert import to_core

_SEP = "\n"
_MAX_ID = 200
FLUSH_THREAD = "llamaindex-memory"
"""The user's thread for flushed messages that carry no session id."""


def _count(tokenizer: Callable[[str], list[Any]], text: str) -> int:
    return len(tokenizer(text)) if text else 0


def _drop_lines(
    content: str, tokens_to_truncate: int, tokenizer: Callable[[str], list[Any]], *, oldest: bool
) -> str | None:
    """Drop whole lines (from the end, or from the start if ``oldest``) to save tokens."""
    lines = [line for line in content.split(_SEP) if line]
    target = _count(tokenizer, content) - tokens_to_truncate
    while lines and _count(tokenizer, _SEP.join(lines)) > target:
        lines.pop(0 if oldest else -1)
    return _SEP.join(lines) or None


def current_thread(block_kwargs: dict[str, Any]) -> str | None:
    """The thread of the current session from a block call's keyword arguments.

    ``thread_id`` when given (``TelaMemory`` passes it), else ``session_id`` (LlamaIndex's
    ``Memory``, whose session id is the thread its flushed messages go to).
    """
    found = block_kwargs.get("thread_id") or block_kwargs.get("session_id")
    return str(found) if found else None


def _thread_of_message(message: ChatMessage) -> str | None:
    """The thread a flushed message belongs to: the ``session_id`` that ``Memory`` (or
    ``aput(..., session_id=...)``) sets on it. Its other ``additional_kwargs`` are the
    message's own and never pick a thread."""
    found = message.additional_kwargs.get("session_id")
    return str(found) if found else None


def _latest_user_text(messages: Sequence[ChatMessage] | None) -> str:
    for m in reversed(messages or []):
        if m.role == "user" and m.content:
            return m.content
    return ""


def _bind_store(who: str, data: dict[str, Any], *, required: bool) -> UserStore | None:
    """Turn ``store=`` / ``user_id=`` of a block's arguments into the acting user's view
    (a ``UserStore`` given as ``store=`` names the user). Rewrites ``data`` in place so
    that the model holds the backend and the user id."""
    store, user_id = data.get("store"), data.get("user_id")
    if isinstance(store, UserStore) or (isinstance(store, MessageStore) and user_id is not None):
        backend, user = bind_user(who, store, user_id)
        data["store"], data["user_id"] = backend, user.user_id
        return user
    if required:
        check_scope(who, user_id, False, cross_user=False)
    return None


class TelaRecallBlock(BaseMemoryBlock[str]):
    """Relevant earlier messages of one user from the recall index, one line each, best first.

    Attributes:
        index: a Tela recall ``Index`` (for example ``SQLiteIndex.for_store(store)``).
        user_id: the user whose messages are searched (required; a ``UserStore`` given as
            ``store=`` names it too).
        all_users: an operator's search across every user's messages instead of one user's
            (never with ``user_id``; a ``TelaMemory`` refuses such a block, and it cannot
            store flushed messages: they would have no owner).
        session_scope: ``"user"`` searches all of the user's threads, ``"session"`` only the
            current session's thread, ``"others"`` all but the current one.
        k: how many messages.
        store: where messages flushed from ``Memory``'s short-term queue are written (in the
            user's namespace, and then indexed); without it flushed messages are only indexed
            if already stored.

    Raises:
        ScopeError: neither ``user_id`` nor ``all_users=True``, or both.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "recall"
    description: str | None = "earlier messages relevant to the latest user message"
    priority: int = 2
    index: Index = Field(exclude=True)
    user_id: str | None = None
    all_users: bool = False
    session_scope: str = Field(default="user", pattern="^(user|session|others)$")
    k: int = Field(default=5, ge=1, le=100)
    store: MessageStore | None = Field(default=None, exclude=True)
    tokenizer_fn: Callable[[str], list[Any]] = Field(default_factory=get_tokenizer, exclude=True)
    _user: UserStore | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        user = _bind_store("TelaRecallBlock", data, required=False)
        check_scope(
            "TelaRecallBlock", data.get("user_id"), bool(data.get("all_users")), cross_user=True
        )
        super().__init__(**data)
        self._user = user

    def search_filter(self, session_id: str | None) -> SearchFilter:
        """The filter one search uses: built fresh on every call, always for the block's
        user (or, with ``all_users=True``, for every user).

        Args:
            session_id: the current session's thread id (see :func:`current_thread`).

        Raises:
            ScopeError: the block's user was unset after it was built.
        """
        check_scope("TelaRecallBlock", self.user_id, self.all_users, cross_user=True)
        fields: dict[str, Any] = {"user_id": self.user_id}
        if self.session_scope == "session" and session_id:
            fields["thread_ids"] = (session_id,)
        return SearchFilter(**fields)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        query = _latest_user_text(messages)
        if not query.strip():
            return ""
        session_id = current_thread(block_kwargs)
        flt = self.search_filter(session_id)
        hits = await self.index.asearch(
            query, filter=flt, k=min(1000, self.k + len(messages or []))
        )
        shown = {m.content for m in messages or [] if m.content}
        lines: list[str] = []
        for hit in hits:
            if self.session_scope == "others" and hit.message.thread_id == session_id:
                continue
            if hit.text in shown:
                continue  # already in the conversation the model sees
            when = hit.message.created_at.strftime("%Y-%m-%d")
            lines.append(f"[{when}] {hit.message.role.value}: {' '.join(hit.text.split())}")
            if len(lines) == self.k:
                break
        return _SEP.join(lines)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        """Store (when a store is set) and index messages flushed from short-term memory.

        Each message goes to its session's thread in the block's user's namespace
        (``Memory`` marks flushed messages with its ``session_id``); a message without one
        goes to the user's thread ``llamaindex-memory``.

        Raises:
            ScopeError: the block was built with ``all_users=True``: flushed messages would
                have no owner.
        """
        if self.store is None or not messages:
            return
        if self._user is None:
            raise ScopeError(
                "TelaRecallBlock(all_users=True) cannot store flushed messages: they need an "
                "owner; build the block with user_id= to store them"
            )
        by_thread: dict[str, list[Message]] = {}
        for message in messages:
            thread = _thread_of_message(message) or FLUSH_THREAD
            by_thread.setdefault(thread, []).append(to_core(message))
        for thread, core in by_thread.items():
            stored = await self._user.aappend(thread, core)
            await self.index.aupsert(stored)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the least relevant lines until ``tokens_to_truncate`` tokens are saved."""
        return _drop_lines(content, tokens_to_truncate, self.tokenizer_fn, oldest=False)


class _StoredRecords(BaseMemoryBlock[str]):
    """A block whose records are messages in one internal thread of the user's namespace."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: MessageStore = Field(exclude=True)
    user_id: str
    llm: LLM | None = Field(default=None, exclude=True)
    max_entries: int = Field(default=20, ge=1)
    tokenizer_fn: Callable[[str], list[Any]] = Field(default_factory=get_tokenizer, exclude=True)
    kind: str = "record"
    _user: UserStore = PrivateAttr()
    _legacy: bool | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        if data.pop("all_users", False):
            check_scope(type(self).__name__, data.get("user_id"), True, cross_user=False)
        user = _bind_store(type(self).__name__, data, required=True)
        super().__init__(**data)
        self._user = user if user is not None else self.store.for_user(self.user_id)

    @property
    def user_store(self) -> UserStore:
        """The block's user's view of the store (every read and write goes through it)."""
        return self._user

    @property
    def thread_id(self) -> str:
        """The internal thread holding this block's records (in the user's namespace)."""
        return f"tela-{self.kind}s"

    @property
    def legacy_thread_id(self) -> str:
        """Where version 0.1 kept this block's records (read, never written)."""
        return f"tela-{self.kind}s:{self._user.user_id}"

    async def records(self) -> list[Message]:
        """The stored records, oldest first (at most ``max_entries``)."""
        current = await self._user.aread(self.thread_id, last=self.max_entries)
        if self._legacy is False or len(current) >= self.max_entries:
            return current
        if len(self.legacy_thread_id) > _MAX_ID:  # too long an id for 0.1 to have written
            self._legacy = False
            return current
        older = await self._user.aread(self.legacy_thread_id, last=self.max_entries)
        self._legacy = bool(older)  # nothing is ever written there again: once empty, done
        return [*older, *current][-self.max_entries :]

    async def _add(self, text: str, **metadata: Any) -> Message:
        msg = Message.system(text, metadata={"tela_kind": self.kind, **metadata})
        first = not await self._user.aread(self.thread_id, last=1)
        (stored,) = await self._user.aappend(self.thread_id, msg)
        if first:
            await self._user.aupdate_thread(self.thread_id, tags=[INTERNAL_TAG])
        return stored

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the oldest entries until ``tokens_to_truncate`` tokens are saved."""
        return _drop_lines(content, tokens_to_truncate, self.tokenizer_fn, oldest=True)


class TelaEpisodicBlock(_StoredRecords):
    """Progressive per-session summaries: earlier sessions first, then the current one.

    When ``Memory`` flushes old messages of a session, the session's summary is extended with
    them: by ``llm`` when given, else by keeping the user's questions (extractive).
    """

    name: str = "episodes"
    description: str | None = "summaries of earlier conversations"
    priority: int = 3
    kind: str = "episode"

    async def summary(self, session_id: str) -> Message | None:
        """The latest summary of one session.

        Args:
            session_id: the session's thread id (``TelaMemory.thread_id``; for LlamaIndex's
                ``Memory``, its ``session_id``).
        """
        for rec in reversed(await self.records()):
            if rec.metadata.get("session_id") == session_id:
                return rec
        return None

    async def set_summary(self, session_id: str, text: str) -> Message:
        """Store ``text`` as the session's summary (replacing the previous one).

        Args:
            session_id: the session's thread id, as in :meth:`summary`.
            text: the new summary.
        """
        old = await self.summary(session_id)
        if old is not None:
            new = old.model_copy(update={"content": [TextBlock(text=text)]})
            return await self._user.aupdate_message(new)
        return await self._add(text, session_id=session_id)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        session_id = current_thread(block_kwargs)
        lines = await self.engine_summaries(exclude=session_id)
        recs = await self.records()
        recs.sort(key=lambda r: r.metadata.get("session_id") == session_id)  # current last
        lines.extend(" ".join(r.text.split()) for r in recs if r.text)
        return _SEP.join(lines)

    async def engine_summaries(self, *, exclude: str | None = None) -> list[str]:
        """The context engine's progressive summaries of the user's recent threads (those
        whose dropped turns it summarised), oldest first, one line each."""
        page = await self._user.alist_threads(limit=self.max_entries)
        lines: list[str] = []
        for info in reversed(page.threads):
            if info.id == exclude or INTERNAL_TAG in info.tags:
                continue
            state = summary_of(dict(info.metadata), info.default_branch)
            if state is not None and state.text.strip():
                label = info.title or info.id
                lines.append(f"[{label}] " + " ".join(state.text.split()))
        return lines

    async def _aput(self, messages: list[ChatMessage]) -> None:
        if not messages:
            return
        by_thread: dict[str, list[ChatMessage]] = {}
        for message in messages:
            by_thread.setdefault(_thread_of_message(message) or "default", []).append(message)
        for session, batch in by_thread.items():
            old = await self.summary(session)
            previous = old.text if old is not None else ""
            await self.set_summary(session, await self._summarise(previous, batch))

    async def _summarise(self, previous: str, messages: list[ChatMessage]) -> str:
        turns = _SEP.join(f"{m.role.value}: {m.content or ''}" for m in messages)
        if self.llm is not None:
            prompt = (
                "Extend the summary of a conversation with the new turns. Keep names, numbers "
                "and decisions; at most five sentences.\n"
                f"Summary so far: {previous or '(none)'}\nNew turns:\n{turns}\nNew summary:"
            )
            return (await self.llm.acomplete(prompt)).text.strip()
        asked = "; ".join(m.content or "" for m in messages if m.role == "user" and m.content)
        if not asked:
            return previous
        return f"{previous}; {asked}" if previous else f"User asked: {asked}"


class TelaFactsBlock(_StoredRecords):
    """Facts about the user, one per line, newest last.

    Add facts with :meth:`add_fact`; with ``llm`` set, facts are also extracted from
    messages flushed out of short-term memory.
    """

    name: str = "facts"
    description: str | None = "what is known about the user"
    priority: int = 1
    kind: str = "fact"

    async def add_fact(self, text: str) -> Message | None:
        """Store a fact (ignored when the same fact is already stored)."""
        fact = " ".join(text.split())
        if not fact or fact in {r.text for r in await self.records()}:
            return None
        return await self._add(fact)

    async def _aget(self, messages: list[ChatMessage] | None = None, **block_kwargs: Any) -> str:
        return _SEP.join(f"- {r.text}" for r in await self.records() if r.text)

    async def _aput(self, messages: list[ChatMessage]) -> None:
        if self.llm is None or not messages:
            return
        turns = _SEP.join(f"{m.role.value}: {m.content or ''}" for m in messages)
        prompt = (
            "List durable facts about the user stated in these turns, one per line, no "
            f"bullets; answer NONE if there are none.\n{turns}\nFacts:"
        )
        reply = (await self.llm.acomplete(prompt)).text
        for line in reply.splitlines():
            line = line.strip(" -*\t")
            if line and line.upper() != "NONE":
                await self.add_fact(line)

    async def atruncate(self, content: str, tokens_to_truncate: int) -> str | None:
        """Drop the oldest facts until ``tokens_to_truncate`` tokens are saved."""
        return _drop_lines(content, tokens_to_truncate, self.tokenizer_fn, oldest=True)


__all__ = ["TelaEpisodicBlock", "TelaFactsBlock", "TelaRecallBlock"]
