"""``TelaMemory``: a LlamaIndex memory for chat engines and agents, backed by a Tela store.

Pass it as ``memory=`` to ``SimpleChatEngine``, ``CondensePlusContextChatEngine``,
``FunctionAgent`` or ``AgentWorkflow``. Every message is kept in the store; ``get`` returns a
view that fits ``token_limit``: the thread's leading system messages (byte-stable between
turns, so provider prompt caches keep hitting), optional memory blocks (recall, summaries,
facts) as one system message after them, then the newest turns, a tool call never separated
from its results. However the history arrived (``put``, ``set``, ``chat_history=``), the view
never exceeds the budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.memory.types import BaseMemory
from llama_index.core.utils import get_tokenizer

from tela_memory.context import ContextEngine, ContextPolicy
from tela_memory.errors import (
    InvalidMessageError,
    ScopeError,
    TelaMemoryError,
    UnsupportedOperation,
)
from tela_memory.ids import new_id
from tela_memory.messages import Message
from tela_memory.recall.index import Index
from tela_memory.stores.base import MessageStore
from tela_memory.stores.scoped import UserStore
from tela_memory_llamaindex._scope import check_scope
from tela_memory_llamaindex.chat_store import TelaChatStore
from tela_memory_llamaindex.convert import from_core, to_core
from tela_memory_llamaindex.window import CountCache, Counter, fit, pinned_prefix

DEFAULT_TOKEN_LIMIT = 8_000
_FIRST_READ = 64


def default_counter() -> Counter:
    """OpenAI-style counting with tiktoken's ``cl100k_base`` (bundled with llama-index-core)."""
    from tela_memory.tokens import TiktokenCounter

    get_tokenizer()  # points tiktoken at llama-index-core's bundled encodings when offline
    return TiktokenCounter(encoding="cl100k_base")


class TelaMemory(BaseMemory):
    """Chat memory whose full history lives in a Tela Memory store.

    Build it with :meth:`from_defaults`, for one user: ``session_id`` is the thread (chat
    store key) in that user's namespace. Every read and write, the context engine's view and
    the memory blocks act for that user only.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    session_id: str = Field(default_factory=new_id, description="the thread / chat store key")
    token_limit: int = Field(default=DEFAULT_TOKEN_LIMIT, gt=0, description="budget of get()")
    blocks_token_ratio: float = Field(
        default=0.3, ge=0, le=1, description="largest share of the budget memory blocks may take"
    )
    memory_blocks: list[BaseMemoryBlock] = Field(  # type: ignore[type-arg]
        default_factory=list, exclude=True, description="not serialised: re-attach on restore"
    )
    store_url: str | None = Field(
        default=None, description="URL that reopens the store (used when restored from a dict)"
    )
    user_id: str = Field(description="the user this memory acts for (owner of the thread)")
    key_prefix: str = Field(default="", description="the chat store's key prefix")
    tokenizer_fn: Callable[[str], list[Any]] = Field(default_factory=get_tokenizer, exclude=True)
    _chat: TelaChatStore = PrivateAttr()
    _cache: CountCache = PrivateAttr()
    _index: Index | None = PrivateAttr(default=None)
    _engine: ContextEngine | None = PrivateAttr(default=None)
    _prefix: dict[str, list[Message]] = PrivateAttr(default_factory=dict)
    _read_size: dict[str, int] = PrivateAttr(default_factory=dict)
    _seen_edits: dict[str, int] = PrivateAttr(default_factory=dict)

    @classmethod
    def class_name(cls) -> str:
        """Name used by LlamaIndex serialisation."""
        return "TelaMemory"

    @classmethod
    def from_defaults(
        cls,
        store: MessageStore | UserStore | TelaChatStore | str | None = None,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        token_limit: int = DEFAULT_TOKEN_LIMIT,
        chat_history: Sequence[ChatMessage] | None = None,
        memory_blocks: Sequence[BaseMemoryBlock[Any]] = (),
        counter: Counter | None = None,
        index: Index | None = None,
        policy: ContextPolicy | None = None,
        **kwargs: Any,
    ) -> TelaMemory:
        """Create a memory.

        Args:
            store: a ``MessageStore``, a user's view of one (``store.for_user("ana")``), a
                ``TelaChatStore`` (whose user this memory then acts for), a store URL, or
                ``None`` for the embedded default SQLite file.
            session_id: the thread to use, in the user's namespace (a new one when ``None``).
            user_id: the user this memory acts for (required unless ``store`` already names
                one: a ``UserStore`` or a ``TelaChatStore``).
            token_limit: the most tokens ``get`` returns.
            chat_history: messages to set as the history (kept, then fitted on ``get``).
            memory_blocks: blocks whose content is added as a system message.
            counter: token counter (a ``tela_memory.tokens`` counter; tiktoken by default).
            index: a recall index every stored message is added to (so that a
                :class:`~tela_memory_llamaindex.blocks.TelaRecallBlock` can find it later).
            policy: a context-engine policy (``tela_memory.context.ContextPolicy``: pinned
                first turns, progressive summary, importance ...) that builds the view; the
                result is still cut to ``token_limit``. Without it, a pinned system prefix
                and the newest turns that fit.

        Raises:
            ScopeError: no user (``user_id`` missing and ``store`` names none), a user that
                differs from the chat store's, or a Tela memory block built for another user
                (or for every user): a memory never shows one user another's data.
        """
        if isinstance(store, TelaChatStore):
            if user_id is not None and user_id != store.user_id:
                raise ScopeError(
                    "TelaMemory got a chat store that acts for another user than user_id=; "
                    "pass one of them"
                )
            chat = store
        else:
            chat = TelaChatStore(store, user_id=user_id)
        _check_blocks(chat.user_id, memory_blocks)
        memory = cls(
            session_id=session_id or new_id(),
            token_limit=token_limit,
            memory_blocks=list(memory_blocks),
            store_url=_url_of(chat.store, store),
            user_id=chat.user_id,
            key_prefix=chat.key_prefix,
            **kwargs,
        )
        memory._chat = chat
        memory._cache = CountCache(counter or default_counter())
        memory._index = index
        if policy is not None:
            memory._engine = ContextEngine(memory.store, policy)
        if chat_history is not None:
            memory.set(list(chat_history))
        return memory

    @classmethod
    def from_dict(cls, data: dict[str, Any], **kwargs: Any) -> TelaMemory:
        """Restore a memory serialised with ``to_dict`` (e.g. an agent ``Context``).

        The store is reopened from ``store_url``; memory blocks, the recall index, the policy
        and the counter are not serialised: pass them again as keyword arguments.

        Raises:
            TelaMemoryError: the memory was built on a store object that has no URL (an
                in-memory store): there is nothing to reopen.
        """
        values = {k: v for k, v in data.items() if k != "class_name"}
        url = values.pop("store_url", None)
        user_id = kwargs.pop("user_id", None) or values.pop("user_id", None)
        values.pop("user_id", None)
        check_scope("TelaMemory.from_dict", user_id, False, cross_user=False)
        if not isinstance(url, str):
            raise TelaMemoryError(
                "this TelaMemory was built on a store that cannot be reopened from a URL "
                "(an in-memory store); use a SQLite file or a server store to restore it"
            )
        chat = TelaChatStore(url, user_id=user_id, key_prefix=values.pop("key_prefix", ""))
        return cls.from_defaults(chat, **{**values, **kwargs})

    # -- accessors --------------------------------------------------------------------------

    @property
    def chat_store(self) -> TelaChatStore:
        """The chat store holding the history."""
        return self._chat

    @property
    def store(self) -> MessageStore:
        """The underlying message store (shared by every user)."""
        return self._chat.store

    @property
    def user_store(self) -> UserStore:
        """The acting user's view of the store, which every read and write goes through."""
        return self._chat.user_store

    @property
    def thread_id(self) -> str:
        """The thread id of this memory."""
        return self._chat.thread_id(self.session_id)

    # -- writing ----------------------------------------------------------------------------

    def put(self, message: ChatMessage) -> None:
        """Store one message (appended, O(1))."""
        self.put_messages([message])

    async def aput(self, message: ChatMessage) -> None:
        """Async twin of :meth:`put`."""
        await self.aput_messages([message])

    def put_messages(self, messages: list[ChatMessage]) -> None:
        """Store several messages in one append."""
        if messages:
            core = [to_core(m) for m in messages]
            stored = self.user_store.append(self.thread_id, core)
            if self._index is not None:
                self._index.upsert(stored)

    async def aput_messages(self, messages: list[ChatMessage]) -> None:
        """Async twin of :meth:`put_messages`."""
        if messages:
            core = [to_core(m) for m in messages]
            stored = await self.user_store.aappend(self.thread_id, core)
            if self._index is not None:
                await self._index.aupsert(stored)

    def set(self, messages: list[ChatMessage]) -> None:
        """Make the history equal ``messages`` (an unchanged prefix stays as stored)."""
        self._forget()
        self._chat.set_messages(self.session_id, messages)
        self._seen_edits[self.thread_id] = self._chat.edit_count(self.session_id)
        if messages and not pinned_prefix([to_core(messages[0])]):
            self._prefix[self.thread_id] = []  # no pinned prefix: nothing to read back for it
        if self._index is not None:
            self._index.upsert(self.user_store.read(self.thread_id))

    async def aset(self, messages: list[ChatMessage]) -> None:
        """Async twin of :meth:`set`."""
        await asyncio.to_thread(self.set, messages)

    def reset(self) -> None:
        """Delete the thread."""
        self._forget()
        self.user_store.delete_thread(self.thread_id)

    async def areset(self) -> None:
        """Async twin of :meth:`reset`."""
        self._forget()
        await self.user_store.adelete_thread(self.thread_id)

    def _sync_edits(self) -> None:
        """Drop caches if the thread was rewritten through the chat store since last time."""
        edits = self._chat.edit_count(self.session_id)
        if self._seen_edits.get(self.thread_id, 0) != edits:
            self._forget()
            self._seen_edits[self.thread_id] = edits

    def _forget(self) -> None:
        """Drop cached state about the thread (after it was rewritten or deleted)."""
        self._prefix.pop(self.thread_id, None)
        self._read_size.pop(self.thread_id, None)
        if self._engine is not None:
            self._engine.forget(self.thread_id, user_id=self.user_store.user_id)

    # -- reading ----------------------------------------------------------------------------

    def get_all(self) -> list[ChatMessage]:
        """The whole history."""
        return [from_core(m) for m in self.user_store.read(self.thread_id)]

    async def aget_all(self) -> list[ChatMessage]:
        """Async twin of :meth:`get_all`."""
        return [from_core(m) for m in await self.user_store.aread(self.thread_id)]

    def get(
        self, input: str | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """The view to send: fits ``token_limit - initial_token_count`` tokens.

        Memory blocks are async in LlamaIndex; with blocks, use :meth:`aget` (chat engines'
        ``achat`` and agents do).
        """
        if self.memory_blocks:
            raise UnsupportedOperation(
                "TelaMemory with memory_blocks has no sync get(); use aget() (achat / agents)"
            )
        budget = self._budget(initial_token_count)
        prefix, window = self._select(budget, input)
        return [from_core(m) for m in (*prefix, *window)]

    async def aget(
        self, input: str | None = None, initial_token_count: int = 0, **kwargs: Any
    ) -> list[ChatMessage]:
        """Async twin of :meth:`get`, with memory blocks."""
        budget = self._budget(initial_token_count)
        prefix, recent = await self._aselect(budget, input)
        if not self.memory_blocks:
            return [from_core(m) for m in (*prefix, *recent)]
        history = [from_core(m) for m in (*prefix, *recent)]
        if input:
            history.append(ChatMessage(role="user", content=input))
        block_text = await self._blocks_text(history, budget, **kwargs)
        if not block_text:
            return history[: len(prefix) + len(recent)]
        memory_msg = to_core(ChatMessage(role="system", content=block_text))
        prefix, window = await self._aselect(budget - self._cache.count(memory_msg), input)
        return [
            *(from_core(m) for m in prefix),
            from_core(memory_msg),
            *(from_core(m) for m in window),
        ]

    @property
    def engine(self) -> ContextEngine | None:
        """The context engine building the view (``None`` without a ``policy``)."""
        return self._engine

    def _select(self, budget: int, query: str | None) -> tuple[list[Message], list[Message]]:
        if self._engine is None:
            return self._window(budget)
        self._sync_edits()
        ctx = self._engine.build(
            self.thread_id, user_id=self.user_store.user_id, query=query or None
        )
        return self._fit_context(ctx.messages, budget)

    async def _aselect(self, budget: int, query: str | None) -> tuple[list[Message], list[Message]]:
        if self._engine is None:
            return await asyncio.to_thread(self._window, budget)
        self._sync_edits()
        ctx = await self._engine.abuild(
            self.thread_id, user_id=self.user_store.user_id, query=query or None
        )
        return self._fit_context(ctx.messages, budget)

    def _fit_context(
        self, messages: list[Message], budget: int
    ) -> tuple[list[Message], list[Message]]:
        """The engine's view, cut further (oldest turns first) if this call has less room."""
        prefix = pinned_prefix(messages)
        kept, window, _used, _complete = fit(prefix, messages[len(prefix) :], budget, self._cache)
        return kept, window

    def _budget(self, initial_token_count: int) -> int:
        if initial_token_count < 0:
            raise InvalidMessageError(
                f"initial_token_count must be >= 0, got {initial_token_count}"
            )
        priming = int(getattr(self._cache.counter, "reply_priming", 0))
        return max(0, self.token_limit - initial_token_count - priming)

    def _window(self, budget: int) -> tuple[list[Message], list[Message]]:
        """Read only as far back as the budget needs (O(window)); the prefix is cached."""
        thread = self.thread_id
        self._sync_edits()
        size = self._read_size.get(thread, _FIRST_READ)
        while True:
            newest = self.user_store.read(thread, last=size)
            whole = len(newest) < size
            if whole:
                prefix = pinned_prefix(newest)
                self._prefix[thread] = prefix
            else:
                cached = self._prefix.get(thread)
                prefix = cached if cached is not None else self._read_prefix(thread)
            pinned = {m.id for m in prefix}
            recent = [m for m in newest if m.id not in pinned]
            kept, window, _used, complete = fit(prefix, recent, budget, self._cache)
            if whole or not complete:
                self._read_size[thread] = max(_FIRST_READ, size if not whole else len(newest) + 1)
                return kept, window
            size *= 4

    def _read_prefix(self, thread: str) -> list[Message]:
        prefix = pinned_prefix(self.user_store.read(thread))
        self._prefix[thread] = prefix
        return prefix

    async def _blocks_text(self, history: list[ChatMessage], budget: int, **kwargs: Any) -> str:
        """Content of the memory blocks, truncated (lowest priority first) to their share."""
        _check_blocks(self.user_store.user_id, self.memory_blocks)  # blocks added later too
        share = int(budget * self.blocks_token_ratio)
        contents: dict[str, str] = {}
        # blocks get LlamaIndex's session_id and the thread it is stored under (with the chat
        # store's key_prefix): Tela blocks scope recall and summaries by the thread id, inside
        # the user they were built for (checked to be this memory's user)
        block_kwargs = {**kwargs, "session_id": self.session_id, "thread_id": self.thread_id}
        for block in sorted(self.memory_blocks, key=lambda b: -b.priority):
            got = await block.aget(history, **block_kwargs)
            if isinstance(got, str) and got:
                contents[block.name] = got
            elif isinstance(got, list) and got:
                contents[block.name] = "\n".join(
                    str(getattr(x, "text", None) or getattr(x, "content", "") or "") for x in got
                )
        over = self._count_text(_render(contents)) - share
        for block in sorted(self.memory_blocks, key=lambda b: b.priority):
            if over <= 0:
                break
            if block.name not in contents or block.priority == 0:
                continue
            cut = await block.atruncate(contents[block.name], over)
            if cut:
                contents[block.name] = cut
            else:
                del contents[block.name]
            over = self._count_text(_render(contents)) - share
        # hard budget: drop whole blocks, priority 0 ("never truncate") only as a last resort
        for block in sorted(self.memory_blocks, key=lambda b: (b.priority == 0, b.priority)):
            if over <= 0:
                break
            contents.pop(block.name, None)
            over = self._count_text(_render(contents)) - share
        return _render(contents)

    def _count_text(self, text: str) -> int:
        if not text:
            return 0
        return self._cache.counter.count_message(Message.system(text))


def _check_blocks(user_id: str, blocks: Sequence[BaseMemoryBlock[Any]]) -> None:
    """Refuse a Tela block that acts for another user (or every user) than the memory."""
    for block in blocks:
        if getattr(block, "all_users", False):
            raise ScopeError(
                f"memory block {block.name!r} searches every user's messages (all_users=True); "
                "a TelaMemory acts for one user: build the block with the memory's user_id"
            )
        owner = getattr(block, "user_id", None)
        if isinstance(owner, str) and owner != user_id:
            raise ScopeError(
                f"memory block {block.name!r} acts for another user than this TelaMemory: "
                "build it with the memory's user_id"
            )


def _url_of(store: MessageStore, given: object = None) -> str | None:
    """A URL that reopens ``store`` (SQLite files, server stores); ``None`` for one that
    lives in memory and cannot be reopened."""
    path = getattr(store, "path", None)
    if path is not None:
        return f"sqlite:///{path}"
    url = getattr(store, "url", None)
    if isinstance(url, str):
        return url
    if isinstance(given, str) and not given.startswith("sqlite") and "memory" not in given:
        return given
    return None


def _render(contents: dict[str, str]) -> str:
    if not contents:
        return ""
    parts = [f"<{name}>\n{text}\n</{name}>" for name, text in contents.items()]
    return "<memory>\n" + "\n".join(parts) + "\n</memory>"


__all__ = ["DEFAULT_TOKEN_LIMIT", "TelaMemory", "default_counter"]
