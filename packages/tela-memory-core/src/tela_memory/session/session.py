"""``Session``: a conversation that persists itself, over any chat model and any store.

Each turn appends the user message, builds the context from the branch, calls the model and
appends the reply with its usage. Streamed replies are persisted as they grow (see
:mod:`tela_memory.session.writer`); a reply that does not finish stays in the store marked
``metadata["incomplete"] = True`` with what had arrived. Nothing lives only in memory: a new
``Session`` on the same thread id continues where the last one stopped, even after a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Self, TypeVar

from pydantic import JsonValue

from tela_memory.errors import ConflictError, NotFoundError, ScopeError, TelaMemoryError
from tela_memory.ids import new_id
from tela_memory.messages import ContentBlock, Message, Role
from tela_memory.models import ChatChunk, ChatModel, ChatResult, ModelError, ToolSpec
from tela_memory.session.context import ContextPlanner, ContextPolicyLike, SessionContext
from tela_memory.session.lock import (
    DEFAULT_LOCK_TIMEOUT,
    Claim,
    Concurrency,
    check_timeout,
    turn_lock,
)
from tela_memory.session.shared import acquire_store, release_store, store_key
from tela_memory.session.writer import FlushPolicy, ReplyWriter, Status, Write, marked_partial
from tela_memory.stores import BranchInfo, MessageStore

log = logging.getLogger("tela_memory.session")

Content = str | Sequence[ContentBlock] | Message | Sequence[Message] | None

T = TypeVar("T")

FAILED_KEY = "failed"
"""Metadata key marking a user message whose model call failed with no reply kept."""

_FINAL_ATTEMPTS = 3
_RETRY_DELAYS = (0.05, 0.25)


@dataclass(slots=True)
class _Open:
    """A stream not finished yet: its hold on the turn, and its write in flight (async)."""

    claim: Claim
    pending: asyncio.Future[None] | None = None


def _query(content: Content) -> str | None:
    """The text of a user turn, for policies that recall by query."""
    if isinstance(content, str):
        return content
    if isinstance(content, Message):
        return content.text or None
    return None


def _as_model_error(exc: BaseException) -> TelaMemoryError:
    if isinstance(exc, TelaMemoryError):
        return exc
    return ModelError(f"the chat model failed: {type(exc).__name__}: {exc}", provider_error=exc)


async def _settled(coro: Coroutine[Any, Any, T]) -> T:
    """Await a store write; if the task is cancelled meanwhile, let the write end first (the
    store works in a thread and would finish anyway), then raise the cancellation. So a
    cancelled turn never releases its lock with one of its writes still running."""
    future = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait([future])
        raise


async def _shielded(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end even if the awaiting task is being cancelled."""
    return await asyncio.shield(asyncio.ensure_future(coro))


class Session:
    """A persistent conversation with a chat model.

    Args:
        store: a :class:`MessageStore`, or a store URL (sessions of one process share one
            store per URL); ``None`` is the embedded default SQLite file.
        model: the chat model (:class:`~tela_memory.models.ChatModel`).
        thread_id: the conversation to continue; a new id when ``None``.
        user_id: the user this session acts for: the thread lives in their namespace and
            nothing of another user's is ever read or sent to the model (required).
        branch: branch to talk on; the thread's default branch when ``None``.
        policy: context policy choosing what is sent; the whole branch when ``None``.
        system: system prompt stored as the first message of a new thread.
        tools: tools offered to the model on every turn.
        flush: when a streamed reply is written while it grows.
        concurrency: ``"wait"`` (a second turn on the thread waits for the first) or
            ``"fail"`` (it raises :class:`SessionBusyError`).
        lock_timeout: seconds a waiting turn waits before raising ``SessionBusyError``
            (default 300; always finite: a turn never waits forever).
        options: model parameters sent on every turn (``temperature`` ...).

    Failures and retries: when the model call fails and no partial reply is kept, the user
    message stays in the branch, marked ``metadata["failed"] = {"error", "attempts"}``. A turn
    whose user message equals the unanswered user message at the branch head (same content
    and name), failed or left by an interrupted turn, is a retry: that message is reused, not
    appended again, so the model sees it once; the mark is removed once a reply is stored.
    A failure that kept a partial reply (``status="error"``) has answered the turn: the next
    send is a new turn (``fork(at=user_message)`` retries without the partial reply).

    Interruptions: a ``KeyboardInterrupt`` or a task cancellation anywhere in a turn releases
    the thread's turn lock and stores a streamed reply so far as ``status="stopped"``.
    :meth:`close` / :meth:`aclose` stop the streams still open (abandoned without
    ``aclosing``): their replies are stored ``status="stopped"`` with every chunk that arrived.

    No I/O happens in the constructor.
    """

    def __init__(
        self,
        store: MessageStore | str | None,
        model: ChatModel,
        *,
        user_id: str,
        thread_id: str | None = None,
        branch: str | None = None,
        policy: ContextPolicyLike | None = None,
        system: str | None = None,
        tools: Sequence[ToolSpec] = (),
        flush: FlushPolicy | None = None,
        concurrency: Concurrency = "wait",
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        options: dict[str, Any] | None = None,
    ) -> None:
        if store is None or isinstance(store, str):
            self._url: str | None = store or "sqlite://"
            self.store: MessageStore = acquire_store(self._url)
        else:
            self._url = None
            self.store = store
        self.model = model
        self.thread_id = thread_id or new_id()
        if not isinstance(user_id, str):
            raise ScopeError(
                "Session needs the user it acts for: Session(store, model, user_id=...)"
            )
        self.user_id = user_id
        self._mine = self.store.for_user(user_id)
        self._branch = branch
        self._planner = ContextPlanner(self.store, policy, user_id=user_id)
        self.system = system
        self.tools = list(tools)
        self.flush = flush or FlushPolicy()
        self.concurrency: Concurrency = concurrency
        self.lock_timeout = check_timeout(lock_timeout)
        self.options = dict(options or {})
        self._lock = turn_lock((store_key(self.store), self.user_id), self.thread_id)
        self._closed = False
        self._streams: dict[ReplyWriter, _Open] = {}  # streams not finished yet

    @property
    def policy(self) -> ContextPolicyLike | None:
        """The context policy (``None``: the whole branch is sent)."""
        return self._planner.policy

    @property
    def branch(self) -> str | None:
        """The branch turns go to (``None``: the thread's default branch)."""
        return self._branch

    # -- locking ----------------------------------------------------------------------------

    def _turn(self) -> AbstractContextManager[Claim]:
        return self._lock.hold(self.concurrency, self.lock_timeout)

    def _aturn(self) -> AbstractAsyncContextManager[Claim]:
        return self._lock.ahold(self.concurrency, self.lock_timeout)

    # -- shared, I/O free -------------------------------------------------------------------

    def _new_messages(self, content: Content, history: list[Message]) -> list[Message]:
        if content is None:
            turn: list[Message] = []
        elif isinstance(content, Message):
            turn = [content]
        elif isinstance(content, str):
            turn = [Message.user(content)]
        elif all(isinstance(c, Message) for c in content):
            turn = [c for c in content if isinstance(c, Message)]
        else:
            turn = [Message.user(content)]  # type: ignore[arg-type]
        if not history and self.system:
            turn.insert(0, Message.system(self.system))
        return turn

    @staticmethod
    def _retried(turn: list[Message], history: list[Message]) -> Message | None:
        """The unanswered user message at the head that ``turn`` repeats (a retry), if any."""
        if len(turn) != 1 or not history:
            return None
        new, head = turn[0], history[-1]
        if new.role is Role.USER and head.role is Role.USER and head.id == new.id:
            return head  # the very message, sent again
        if (
            new.role is Role.USER
            and head.role is Role.USER
            and (head.content, head.name) == (new.content, new.name)
        ):
            return head
        return None

    @staticmethod
    def _failure_marked(user: Message, error: BaseException) -> Message:
        prior = user.metadata.get(FAILED_KEY)
        attempts = prior.get("attempts", 0) if isinstance(prior, dict) else 0
        mark: dict[str, JsonValue] = {
            "error": f"{type(error).__name__}: {error}"[:2000],
            "attempts": (attempts if isinstance(attempts, int) else 0) + 1,
        }
        return user.model_copy(update={"metadata": {**user.metadata, FAILED_KEY: mark}})

    @staticmethod
    def _failure_cleared(user: Message) -> Message | None:
        if FAILED_KEY not in user.metadata:
            return None
        meta = {k: v for k, v in user.metadata.items() if k != FAILED_KEY}
        return user.model_copy(update={"metadata": meta})

    def _reply_metadata(self, result: ChatResult) -> dict[str, JsonValue]:
        meta: dict[str, JsonValue] = dict(result.message.metadata)
        if result.usage is not None:
            meta["usage"] = result.usage.to_json()
        if result.finish_reason:
            meta["finish_reason"] = result.finish_reason
        model = result.model or self.model.model_name
        if model:
            meta["model"] = model
        meta.update({"status": "complete", "incomplete": False})
        return meta

    def _model_args(self, tools: Sequence[ToolSpec] | None, options: dict[str, Any]) -> Any:
        chosen = list(tools) if tools is not None else self.tools
        return (chosen or None), {**self.options, **options}

    # -- sync -------------------------------------------------------------------------------

    def _read_branch(self, last: int | None = None) -> list[Message]:
        try:
            return self._mine.read(self.thread_id, branch=self._branch, last=last)
        except NotFoundError:
            try:
                self._mine.get_thread(self.thread_id)
            except NotFoundError:
                return []  # a new thread: the first append creates it on this branch
            raise

    def _append(self, messages: list[Message]) -> list[Message]:
        if not messages:
            return []
        return self._mine.append(self.thread_id, messages, branch=self._branch)

    def _begin(self, content: Content) -> tuple[SessionContext, Message | None]:
        """Store the user turn (or reuse the failed one it retries); build the context.

        Returns the context and the turn's user message (``None`` without one)."""
        engine = self._planner.uses_engine  # the engine reads the store itself, O(window)
        history = self._read_branch(last=1 if engine else None)
        turn = self._new_messages(content, history)
        user = self._retried(turn, history)
        if user is None:
            stored = self._append(turn)
            history += stored
            user = stored[-1] if stored and stored[-1].role is Role.USER else None
        if engine:
            return self._planner.build(self.thread_id, self._branch, None, _query(content)), user
        return self._planner.build(self.thread_id, self._branch, history), user

    def _mark_failed(self, user: Message | None, error: BaseException) -> None:
        """Mark the unanswered user message of a failed model call (a retry reuses it)."""
        if user is None:
            return
        try:
            self._mine.update_message(self._failure_marked(user, error))
        except TelaMemoryError as exc:
            error.add_note(f"the failed turn could not be marked: {exc}")

    def _answered(self, user: Message | None) -> None:
        cleared = None if user is None else self._failure_cleared(user)
        if cleared is not None:
            try:
                self._mine.update_message(cleared)
            except TelaMemoryError as exc:  # the reply is stored; the stale mark is harmless
                log.warning("could not clear the failure mark of %s: %s", cleared.id, exc)

    def _do(self, write: Write) -> Message:
        if write.op == "append":
            return self._append([write.message])[0]
        return self._mine.update_message(write.message)

    def _flush_now(self, writer: ReplyWriter, write: Write) -> None:
        try:
            writer.written(self._do(write))
        except TelaMemoryError as exc:
            log.warning("could not persist the growing reply %s: %s", writer.message_id, exc)
            writer.failed(exc)

    def _final(self, writer: ReplyWriter, write: Write) -> Message:
        for attempt in range(_FINAL_ATTEMPTS):
            try:
                stored = self._do(write)
            except ConflictError:
                if write.op != "append" or attempt == _FINAL_ATTEMPTS - 1:
                    raise
                # our own append landed but was not recorded (an interrupt between the two)
                write = Write("update", write.message)
                continue
            except TelaMemoryError:
                if attempt == _FINAL_ATTEMPTS - 1:
                    raise
                time.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
                write = Write("update" if writer.created else "append", write.message)
            else:
                writer.written(stored, final=True)
                return stored
        raise AssertionError("unreachable")  # pragma: no cover

    def _final_after_error(self, writer: ReplyWriter, write: Write, error: BaseException) -> None:
        if writer.final or not (writer.created or writer.assembler.chunks):
            return  # already final, or nothing arrived: there is no partial reply to keep
        try:
            stored = self._final(writer, write)
        except TelaMemoryError as exc:
            error.add_note(f"the partial reply could not be stored: {exc}")
            return
        if isinstance(error, ModelError):
            error.partial = stored

    def _generate(
        self, context: SessionContext, user: Message | None, chosen: Any, opts: dict[str, Any]
    ) -> ChatResult:
        """The model call of :meth:`send`; a failure keeps a partial reply or marks the turn.
        (Its own function: a nested ``try:`` line in the turn's ``with`` body is, on CPython
        3.11, outside the ``with``'s cleanup, so an interrupt there would skip it.)"""
        try:
            return self.model.generate(context.messages, tools=chosen, **opts)
        except ModelError as exc:
            marked = marked_partial(exc)
            kept = False
            if marked is not None:
                try:
                    exc.partial = self._append([marked])[0]
                    kept = True
                except TelaMemoryError as store_exc:  # keep the provider's error
                    exc.add_note(f"the partial reply could not be stored: {store_exc}")
            if not kept:
                self._mark_failed(user, exc)
            raise
        except Exception as exc:
            error = _as_model_error(exc)
            self._mark_failed(user, error)
            raise error from exc

    def send(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> Message:
        """Append ``content`` (a user turn; ``None`` to continue after tool results), call the
        model and append its reply; return the reply as stored.

        When the model fails before anything of a reply is kept, the user message stays,
        marked ``metadata["failed"]``; sending the same content again retries that turn.

        Raises:
            ModelError: the model failed (``InvalidToolCallError`` / ``EmptyReplyError`` for
                unusable replies, which are stored marked incomplete, see ``error.partial``).
            SessionBusyError: another turn on this thread is running (``concurrency``), or
                the running one did not end within ``lock_timeout``.
        """
        with self._turn():
            context, user = self._begin(content)
            chosen, opts = self._model_args(tools, options)
            result = self._generate(context, user, chosen, opts)
            reply = result.message.model_copy(
                update={"metadata": self._reply_metadata(result), "id": result.message.id}
            )
            stored = self._append([reply])[0]
            self._answered(user)
            return stored

    def _pull(
        self, source: Iterator[ChatChunk], writer: ReplyWriter, user: Message | None
    ) -> ChatChunk | None:
        """The model's next chunk (``None`` at the end); a model error is stored and raised."""
        try:
            return next(source)
        except StopIteration:
            return None
        except Exception as exc:
            error = _as_model_error(exc)
            self._final_after_error(writer, writer.interrupted("error", exc), error)
            if not writer.created:
                self._mark_failed(user, error)
            if error is exc:
                raise
            raise error from exc

    def stream(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> Iterator[ChatChunk]:
        """Like :meth:`send`, yielding the reply's chunks while it is persisted as it grows.

        Closing the iterator early (or an interrupt such as ``KeyboardInterrupt``) stores the
        reply so far with ``status="stopped"``; a model error stores it with
        ``status="error"`` and raises :class:`ModelError`; closing the session stops it.
        """
        with self._turn() as claim:
            context, user = self._begin(content)
            chosen, opts = self._model_args(tools, options)
            writer = ReplyWriter(self.flush, metadata=self._model_meta())
            source: Iterator[ChatChunk] | None = None
            try:
                self._streams[writer] = _Open(claim)
                source = iter(self.model.stream(context.messages, tools=chosen, **opts))
                while not writer.final:  # final already: the session was closed under us
                    # no nested try in this body: on CPython 3.11 a nested ``try:`` line is not
                    # covered by the handler below, so an interrupt there would skip it
                    chunk = self._pull(source, writer, user)
                    if chunk is None:
                        break
                    if writer.add(chunk):
                        self._flush_now(writer, writer.progress())
                    yield chunk
                else:
                    return
                write, problem = writer.finished()
                stored = self._final(writer, write)
                if problem is not None:
                    problem.partial = stored
                    raise problem
                self._answered(user)
            except BaseException as exc:  # consumer closed us, threw in, KeyboardInterrupt ...
                self._final_after_error(writer, writer.interrupted("stopped"), exc)
                raise
            finally:
                self._streams.pop(writer, None)
                close = getattr(source, "close", None)
                if close is not None:
                    close()

    def _model_meta(self) -> dict[str, JsonValue]:
        name = self.model.model_name
        return {"model": name} if name else {}

    def add(self, messages: Message | Sequence[Message]) -> list[Message]:
        """Append messages (tool results, notes ...) to the branch without calling the model."""
        items = [messages] if isinstance(messages, Message) else list(messages)
        with self._turn():
            return self._append(items)

    def add_tool_result(
        self, tool_call_id: str, content: str | list[Any], *, is_error: bool = False
    ) -> Message:
        """Append the result of a tool call; then :meth:`send` with no content continues."""
        return self.add(Message.tool(tool_call_id, content, is_error=is_error))[0]

    def history(self, *, last: int | None = None) -> list[Message]:
        """The messages of the current branch, oldest first."""
        return self._read_branch(last)

    def context(self) -> SessionContext:
        """What the next turn would send now (without a new user message), with its report."""
        history = None if self._planner.uses_engine else self._read_branch()
        return self._planner.build(self.thread_id, self._branch, history)

    def fork(self, at: str | Message | None = None, *, name: str | None = None) -> BranchInfo:
        """Start a branch whose head is ``at`` (default: the current head) and switch to it.

        The next turn is appended after ``at``; the old branch keeps its messages.
        """
        with self._turn():
            at_id = self._fork_point(at, self.history(last=1))
            info = self._mine.fork(self.thread_id, at_id, name=name)
        self._branch = info.name
        return info

    def _fork_point(self, at: str | Message | None, head: list[Message]) -> str:
        if isinstance(at, Message):
            return at.id
        if at is not None:
            return at
        if not head:
            raise NotFoundError(f"thread {self.thread_id!r} has no message to fork at")
        return head[-1].id

    def switch(self, branch: str) -> None:
        """Make later turns use ``branch``; ``NotFoundError`` if the thread has no such branch."""
        self._check_branch(branch, self._mine.branches(self.thread_id))
        self._branch = branch

    def _check_branch(self, branch: str, known: list[BranchInfo]) -> None:
        if branch not in {b.name for b in known}:
            names = ", ".join(b.name for b in known) or "none"
            raise NotFoundError(
                f"thread {self.thread_id!r} has no branch {branch!r} (branches: {names})"
            )

    def branches(self) -> list[BranchInfo]:
        """The thread's branches."""
        return self._mine.branches(self.thread_id)

    # -- async ------------------------------------------------------------------------------

    async def _aread_branch(self, last: int | None = None) -> list[Message]:
        try:
            return await self._mine.aread(self.thread_id, branch=self._branch, last=last)
        except NotFoundError:
            try:
                await self._mine.aget_thread(self.thread_id)
            except NotFoundError:
                return []
            raise

    async def _aappend(self, messages: list[Message]) -> list[Message]:
        if not messages:
            return []
        return await _settled(self._mine.aappend(self.thread_id, messages, branch=self._branch))

    async def _abegin(self, content: Content) -> tuple[SessionContext, Message | None]:
        engine = self._planner.uses_engine
        history = await self._aread_branch(last=1 if engine else None)
        turn = self._new_messages(content, history)
        user = self._retried(turn, history)
        if user is None:
            stored = await self._aappend(turn)
            history += stored
            user = stored[-1] if stored and stored[-1].role is Role.USER else None
        if engine:
            query = _query(content)
            return await self._planner.abuild(self.thread_id, self._branch, None, query), user
        return await self._planner.abuild(self.thread_id, self._branch, history), user

    async def _amark_failed(self, user: Message | None, error: BaseException) -> None:
        if user is None:
            return
        try:
            await _shielded(self._mine.aupdate_message(self._failure_marked(user, error)))
        except TelaMemoryError as exc:
            error.add_note(f"the failed turn could not be marked: {exc}")

    async def _aanswered(self, user: Message | None) -> None:
        cleared = None if user is None else self._failure_cleared(user)
        if cleared is not None:
            try:
                await _shielded(self._mine.aupdate_message(cleared))
            except TelaMemoryError as exc:
                log.warning("could not clear the failure mark of %s: %s", cleared.id, exc)

    async def _ado(self, write: Write) -> Message:
        if write.op == "append":
            return (await self._aappend([write.message]))[0]
        return await _settled(self._mine.aupdate_message(write.message))

    async def _aflush_write(self, writer: ReplyWriter, write: Write) -> None:
        try:
            writer.written(await self._ado(write))
        except TelaMemoryError as exc:
            log.warning("could not persist the growing reply %s: %s", writer.message_id, exc)
            writer.failed(exc)

    async def _aflush_now(self, writer: ReplyWriter, write: Write, state: _Open) -> None:
        # the write runs to its end even if the task is cancelled meanwhile (the store works
        # in a thread anyway); the final write waits for it, so the two never race
        state.pending = asyncio.ensure_future(self._aflush_write(writer, write))
        await asyncio.shield(state.pending)

    async def _afinal(self, writer: ReplyWriter, write: Write) -> Message:
        for attempt in range(_FINAL_ATTEMPTS):
            try:
                stored = await self._ado(write)
            except ConflictError:
                if write.op != "append" or attempt == _FINAL_ATTEMPTS - 1:
                    raise
                # our own append landed but was not recorded (an interrupt between the two)
                write = Write("update", write.message)
                continue
            except TelaMemoryError:
                if attempt == _FINAL_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
                write = Write("update" if writer.created else "append", write.message)
            else:
                writer.written(stored, final=True)
                return stored
        raise AssertionError("unreachable")  # pragma: no cover

    async def _afinal_after(
        self, writer: ReplyWriter, status: Status, state: _Open | None, error: BaseException | None
    ) -> Message | None:
        """Wait for the write in flight, then store the interrupted reply (if any)."""
        pending = None if state is None else state.pending
        if pending is not None:
            await asyncio.wait([pending])  # its own errors are handled inside it
        if writer.final or not (writer.created or writer.assembler.chunks):
            return None
        return await self._afinal(writer, writer.interrupted(status, error))

    async def _afinal_after_error(
        self,
        writer: ReplyWriter,
        status: Status,
        error: BaseException,
        state: _Open | None,
        cause: BaseException | None = None,
    ) -> None:
        try:
            # shielded: under a cancelled task (a client that went away) the write must still
            # happen; anyio-style cancel scopes would otherwise cancel every await here
            stored = await _shielded(self._afinal_after(writer, status, state, cause))
        except TelaMemoryError as exc:
            error.add_note(f"the partial reply could not be stored: {exc}")
            return
        if isinstance(error, ModelError) and stored is not None:
            error.partial = stored

    async def _agenerate(
        self, context: SessionContext, user: Message | None, chosen: Any, opts: dict[str, Any]
    ) -> ChatResult:
        """Async twin of :meth:`_generate`."""
        try:
            return await self.model.agenerate(context.messages, tools=chosen, **opts)
        except ModelError as exc:
            marked = marked_partial(exc)
            kept = False
            if marked is not None:
                try:
                    exc.partial = (await self._aappend([marked]))[0]
                    kept = True
                except TelaMemoryError as store_exc:
                    exc.add_note(f"the partial reply could not be stored: {store_exc}")
            if not kept:
                await self._amark_failed(user, exc)
            raise
        except Exception as exc:
            error = _as_model_error(exc)
            await self._amark_failed(user, error)
            raise error from exc

    async def asend(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> Message:
        """Async twin of :meth:`send`."""
        async with self._aturn():
            context, user = await self._abegin(content)
            chosen, opts = self._model_args(tools, options)
            result = await self._agenerate(context, user, chosen, opts)
            reply = result.message.model_copy(update={"metadata": self._reply_metadata(result)})
            stored = (await self._aappend([reply]))[0]
            await self._aanswered(user)
            return stored

    async def _apull(
        self,
        iterator: AsyncIterator[ChatChunk],
        writer: ReplyWriter,
        user: Message | None,
        state: _Open,
    ) -> ChatChunk | None:
        """Async twin of :meth:`_pull`."""
        try:
            return await anext(iterator)
        except StopAsyncIteration:
            return None
        except Exception as exc:
            error = _as_model_error(exc)
            await self._afinal_after_error(writer, "error", error, state, exc)
            if not writer.created:
                await self._amark_failed(user, error)
            if error is exc:
                raise
            raise error from exc

    async def astream(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> AsyncIterator[ChatChunk]:
        """Async twin of :meth:`stream`. A cancelled task stores the reply so far with
        ``status="stopped"``. Close it with ``contextlib.aclosing`` when you stop early, so the
        partial reply is marked at once; otherwise it is marked when it is collected or when
        the session closes, whichever comes first."""
        async with self._aturn() as claim:
            context, user = await self._abegin(content)
            chosen, opts = self._model_args(tools, options)
            writer = ReplyWriter(self.flush, metadata=self._model_meta())
            state = _Open(claim)
            source: AsyncIterator[ChatChunk] | None = None
            try:
                self._streams[writer] = state
                source = self.model.astream(context.messages, tools=chosen, **opts)
                iterator = aiter(source)
                while not writer.final:  # final already: the session was closed under us
                    chunk = await self._apull(iterator, writer, user, state)  # no nested try
                    if chunk is None:
                        break
                    if writer.add(chunk):
                        await self._aflush_now(writer, writer.progress(), state)
                    yield chunk
                else:
                    return
                write, problem = writer.finished()
                stored = await _shielded(self._afinal(writer, write))
                if problem is not None:
                    problem.partial = stored
                    raise problem
                await self._aanswered(user)
            except BaseException as exc:  # cancelled, closed, thrown into, interrupted ...
                await self._afinal_after_error(writer, "stopped", exc, state)
                raise
            finally:
                self._streams.pop(writer, None)
                aclose = getattr(source, "aclose", None)
                if aclose is not None:
                    await _shielded(aclose())

    async def aadd(self, messages: Message | Sequence[Message]) -> list[Message]:
        """Async twin of :meth:`add`."""
        items = [messages] if isinstance(messages, Message) else list(messages)
        async with self._aturn():
            return await self._aappend(items)

    async def aadd_tool_result(
        self, tool_call_id: str, content: str | list[Any], *, is_error: bool = False
    ) -> Message:
        """Async twin of :meth:`add_tool_result`."""
        return (await self.aadd(Message.tool(tool_call_id, content, is_error=is_error)))[0]

    async def ahistory(self, *, last: int | None = None) -> list[Message]:
        """Async twin of :meth:`history`."""
        return await self._aread_branch(last)

    async def acontext(self) -> SessionContext:
        """Async twin of :meth:`context`."""
        history = None if self._planner.uses_engine else await self._aread_branch()
        return await self._planner.abuild(self.thread_id, self._branch, history)

    async def afork(
        self, at: str | Message | None = None, *, name: str | None = None
    ) -> BranchInfo:
        """Async twin of :meth:`fork`."""
        async with self._aturn():
            at_id = self._fork_point(at, await self.ahistory(last=1))
            info = await self._mine.afork(self.thread_id, at_id, name=name)
        self._branch = info.name
        return info

    async def aswitch(self, branch: str) -> None:
        """Async twin of :meth:`switch`."""
        self._check_branch(branch, await self._mine.abranches(self.thread_id))
        self._branch = branch

    async def abranches(self) -> list[BranchInfo]:
        """Async twin of :meth:`branches`."""
        return await self._mine.abranches(self.thread_id)

    # -- lifecycle --------------------------------------------------------------------------

    def _stop_streams(self) -> None:
        """Finalise the streams still open (abandoned without ``aclosing``, or not consumed
        to the end): the reply so far is stored ``status="stopped"`` and the turn released."""
        for writer, state in list(self._streams.items()):
            try:
                if not writer.final and (writer.created or writer.assembler.chunks):
                    self._final(writer, writer.interrupted("stopped"))
            except TelaMemoryError as exc:
                log.warning("could not store the stopped reply %s: %s", writer.message_id, exc)
            finally:
                writer.final = True  # the stream writes nothing more, even if resumed
                self._streams.pop(writer, None)
                self._lock.release(state.claim)

    async def _astop_streams(self) -> None:
        for writer, state in list(self._streams.items()):
            try:
                await _shielded(self._afinal_after(writer, "stopped", state, None))
            except TelaMemoryError as exc:
                log.warning("could not store the stopped reply %s: %s", writer.message_id, exc)
            finally:
                writer.final = True
                self._streams.pop(writer, None)
                self._lock.release(state.claim)

    def close(self) -> None:
        """Stop the streams still open (their replies stored ``status="stopped"`` with every
        chunk that arrived), then release the store if this session took it by URL (the last
        user closes it)."""
        if self._closed:
            return
        self._closed = True
        self._stop_streams()
        if self._url is not None:
            store = release_store(self._url)
            if store is not None:
                store.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        if self._closed:
            return
        self._closed = True
        await self._astop_streams()
        if self._url is not None:
            store = release_store(self._url)
            if store is not None:
                await store.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Session(thread_id={self.thread_id!r}, branch={self._branch!r})"


__all__ = ["Content", "Session"]
