"""``TelaContextMiddleware``: the context engine in front of every model call of an agent.

For ``langchain.agents.create_agent``. Before each model call the middleware

1. persists the messages of the agent state that the store does not hold yet (the turn so
   far: the user's input, earlier model replies, tool results) to the thread, and
2. replaces the request's messages by the context engine's view of the whole stored thread:
   pinned prefix, summary of what left the window, recalled turns, recent window, within the
   budget, tool calls never separated from their results, a byte-stable prefix.

After the agent finishes, the final reply is persisted too.

The middleware acts for one user per run: threads live in that user's namespace, so every
user's ``thread_id="1"`` is their own. The acting user is, in this order of trust: the
constructor's ``user_id`` (a middleware built for one user), else the run's
``context=`` (``runtime.context.user_id``, an attribute or a mapping key, as LangGraph's docs
put it), else ``config={"configurable": {"user_id": ...}}``. A run that names no user raises
``ScopeError``; it never falls back to every user. A run whose context or config names a
different user than the constructor raises ``ScopeError`` too. The agent state itself is never
rewritten (unlike ``SummarizationMiddleware``, which replaces the state's messages by a
summary): the store keeps everything, the model sees the view.

Broken tool pairs: a tool result whose call is not in the thread is rejected when persisted
(``InvalidMessageError``, nothing of that batch is stored); a call whose results never came
(an interrupted run) is stored, and the engine leaves it out of the view (``on_broken``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage, HumanMessage

from tela_memory.context.engine import ContextEngine
from tela_memory.context.parts import Summary
from tela_memory.context.policy import ContextPolicy
from tela_memory.context.report import Context
from tela_memory.errors import ScopeError, TelaMemoryError
from tela_memory.messages import Message
from tela_memory.stores import MessageStore, UserStore, open_store
from tela_memory.stores._common import check_id
from tela_memory_langchain._optional import require
from tela_memory_langchain.convert import langchain_id, messages_to_core, messages_to_langchain

require("langchain")

from langchain.agents.middleware import (  # noqa: E402
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
)
from langgraph.config import get_config  # noqa: E402
from langgraph.runtime import Runtime  # noqa: E402

if TYPE_CHECKING:
    from tela_memory.recall import Index


class TelaContextMiddleware(AgentMiddleware):
    """Apply a Tela context policy before each model call and persist every turn.

    Args:
        store: a message store or a store URL (``None``: the embedded default file).
        policy: the :class:`~tela_memory.context.policy.ContextPolicy`, or a token budget
            (then: pinned prefix, recent window and an extractive summary of what leaves it).
        thread_id: a fixed thread; by default the run's ``configurable.thread_id``.
        user_id: a fixed acting user. Without it, each run names its user in
            ``context=`` (``runtime.context.user_id``) or ``configurable.user_id``; a run
            that names none raises ``ScopeError``.
        index: an optional recall index; persisted messages are indexed as they are stored.

    The budget covers the conversation; the agent's own system prompt is sent in front of it.
    """

    def __init__(
        self,
        store: MessageStore | str | None = None,
        *,
        policy: ContextPolicy | int = 8000,
        thread_id: str | None = None,
        user_id: str | None = None,
        index: Index | None = None,
    ) -> None:
        super().__init__()
        self._store_arg = store
        self._store: MessageStore | None = store if isinstance(store, MessageStore) else None
        self.policy = (
            policy
            if isinstance(policy, ContextPolicy)
            else ContextPolicy(policy, summary=Summary())
        )
        self.thread_id = thread_id
        self.user_id = check_id("user_id", user_id) if user_id is not None else None
        self.index = index
        self._engine: ContextEngine | None = None
        self._last: dict[tuple[str, str], Context] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Middleware name shown in graphs and traces."""
        return "TelaContextMiddleware"

    @property
    def store(self) -> MessageStore:
        """The message store (opened on first use when given as a URL)."""
        if self._store is None:
            self._store = open_store(self._store_arg if isinstance(self._store_arg, str) else None)
        return self._store

    @property
    def engine(self) -> ContextEngine:
        """The context engine (one incremental builder per user and thread; summaries persisted
        in the thread's metadata)."""
        with self._lock:
            if self._engine is None:
                self._engine = ContextEngine(self.store, self.policy)
            return self._engine

    def last_context(self, thread_id: str, *, user_id: str | None = None) -> Context | None:
        """The last view built for a user's thread (messages sent and the engine's report).

        ``user_id`` defaults to the constructor's; with neither, ``ScopeError``.
        """
        user = user_id if user_id is not None else self.user_id
        if user is None:
            raise ScopeError("last_context needs the user: pass user_id=...")
        return self._last.get((user, thread_id))

    # -- helpers ----------------------------------------------------------------------------

    def _user(self, runtime: Runtime[Any] | None) -> str:
        """The acting user of this run (see the class docstring); never "every user"."""
        named = _run_user(runtime)
        if self.user_id is not None:
            if named is not None and named != self.user_id:
                raise ScopeError(
                    "TelaContextMiddleware was built for one user and this run names another "
                    "in its context or config; build one middleware per user, or none with "
                    "user_id= and let each run name its user"
                )
            return self.user_id
        if named is None:
            raise ScopeError(
                "TelaContextMiddleware needs the acting user: run the agent with "
                "context={'user_id': ...} (or a context_schema with a user_id field), or "
                "config={'configurable': {'user_id': ...}}, or pass user_id= to the middleware"
            )
        return check_id("user_id", named)

    def _thread_id(self) -> str:
        if self.thread_id is not None:
            return self.thread_id
        try:
            configurable = get_config().get("configurable") or {}
        except RuntimeError:
            configurable = {}
        thread = configurable.get("thread_id")
        if not thread:
            raise TelaMemoryError(
                "TelaContextMiddleware needs a thread: pass thread_id=... or run the agent with "
                "config={'configurable': {'thread_id': ...}}"
            )
        return str(thread)

    @staticmethod
    def _ensure_ids(messages: Sequence[BaseMessage]) -> None:
        for m in messages:  # as SummarizationMiddleware does: every state message gets an id
            if m.id is None:
                m.id = str(uuid.uuid4())

    @staticmethod
    def _new(messages: Sequence[BaseMessage], tail: Sequence[Message]) -> list[BaseMessage] | None:
        """The state messages after the newest one found in ``tail`` (the newest stored
        messages); ``None`` when none of them is there (look further back)."""
        known = {m.id for m in tail} | {langchain_id(m) for m in tail}
        for i in range(len(messages) - 1, -1, -1):
            if messages[i].id in known:
                return list(messages[i + 1 :])
        return None

    @staticmethod
    def _sizes(n: int) -> list[int]:
        """How many stored messages to read, growing, to find where the state's new part
        starts: a turn costs O(new messages), never O(history)."""
        sizes, k = [], 8
        while k < n:
            sizes.append(k)
            k *= 4
        return [*sizes, n]

    @staticmethod
    def _query(messages: Sequence[BaseMessage]) -> str | None:
        for m in reversed(messages):
            if isinstance(m, HumanMessage):
                return m.text or None
        return None

    def _view(self, request: ModelRequest, ctx: Context) -> ModelRequest:
        view: list[Any] = messages_to_langchain(ctx.messages)
        return request.override(messages=view)

    # -- sync -------------------------------------------------------------------------------

    def _persist(self, user: UserStore, thread_id: str, messages: Sequence[BaseMessage]) -> None:
        if not messages:
            return
        self._ensure_ids(messages)
        new: list[BaseMessage] | None = None
        for k in self._sizes(len(messages)):
            tail = user.read(thread_id, last=k)
            new = self._new(messages, tail)
            if new is not None or len(tail) < k:
                break
        new = list(messages) if new is None else new
        if new:
            stored = user.append(thread_id, messages_to_core(new))
            if self.index is not None:
                self.index.upsert(stored)

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse],
    ) -> ModelResponse:
        """Persist the turn so far, then call the model with the engine's view."""
        user, thread_id = self._user(request.runtime), self._thread_id()
        self._persist(self.store.for_user(user), thread_id, request.messages)
        ctx = self.engine.build(thread_id, user_id=user, query=self._query(request.messages))
        self._last[(user, thread_id)] = ctx
        return handler(self._view(request, ctx))

    def after_agent(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Persist the final reply (and anything else the store does not hold yet)."""
        user = self.store.for_user(self._user(runtime))
        self._persist(user, self._thread_id(), state["messages"])
        return None

    # -- async ------------------------------------------------------------------------------

    async def _apersist(
        self, user: UserStore, thread_id: str, messages: Sequence[BaseMessage]
    ) -> None:
        if not messages:
            return
        self._ensure_ids(messages)
        new: list[BaseMessage] | None = None
        for k in self._sizes(len(messages)):
            tail = await user.aread(thread_id, last=k)
            new = self._new(messages, tail)
            if new is not None or len(tail) < k:
                break
        new = list(messages) if new is None else new
        if new:
            stored = await user.aappend(thread_id, messages_to_core(new))
            if self.index is not None:
                await self.index.aupsert(stored)

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse]],
    ) -> ModelResponse:
        """Async twin of :meth:`wrap_model_call`."""
        user, thread_id = self._user(request.runtime), self._thread_id()
        await self._apersist(self.store.for_user(user), thread_id, request.messages)
        query = self._query(request.messages)
        ctx = await self.engine.abuild(thread_id, user_id=user, query=query)
        self._last[(user, thread_id)] = ctx
        return await handler(self._view(request, ctx))

    async def aafter_agent(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        """Async twin of :meth:`after_agent`."""
        user = self.store.for_user(self._user(runtime))
        await self._apersist(user, self._thread_id(), state["messages"])
        return None

    def close(self) -> None:
        """Forget the engine's state; close the store if this middleware opened it from a URL."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._store is not None and not isinstance(self._store_arg, MessageStore):
            self._store.close()
            self._store = None


def _run_user(runtime: Runtime[Any] | None) -> str | None:
    """The user a run names: ``runtime.context.user_id`` (attribute or key), else
    ``configurable.user_id``; both given and different is a ``ScopeError``."""
    context = getattr(runtime, "context", None)
    if isinstance(context, Mapping):
        from_context = context.get("user_id")
    else:
        from_context = getattr(context, "user_id", None)
    try:
        configurable = get_config().get("configurable") or {}
    except RuntimeError:
        configurable = {}
    from_config = configurable.get("user_id")
    if from_context is not None and from_config is not None and from_context != from_config:
        raise ScopeError(
            "the run names two different users (context user_id and configurable user_id); pass one"
        )
    found = from_context if from_context is not None else from_config
    if found is not None and not isinstance(found, str):
        raise ScopeError(f"user_id must be a string, got a {type(found).__name__}")
    return found


__all__ = ["TelaContextMiddleware"]
