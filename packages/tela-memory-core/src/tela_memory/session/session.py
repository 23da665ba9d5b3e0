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
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Self, TypeVar

from pydantic import JsonValue

from tela_memory.errors import NotFoundError, ScopeError, TelaMemoryError
from tela_memory.ids import new_id
from tela_memory.messages import ContentBlock, Message
from tela_memory.models import ChatChunk, ChatModel, ChatResult, ModelError, ToolSpec
from tela_memory.session.context import ContextPlanner, ContextPolicyLike, SessionContext
from tela_memory.session.lock import Concurrency, turn_lock
from tela_memory.session.shared import acquire_store, release_store, store_key
from tela_memory.session.writer import FlushPolicy, ReplyWriter, Write, marked_partial
from tela_memory.stores import BranchInfo, MessageStore

log = logging.getLogger("tela_memory.session")

Content = str | Sequence[ContentBlock] | Message | Sequence[Message] | None

T = TypeVar("T")

_FINAL_ATTEMPTS = 3
_RETRY_DELAYS = (0.05, 0.25)


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
        lock_timeout: seconds a waiting turn waits before raising ``SessionBusyError``.
        options: model parameters sent on every turn (``temperature`` ...).

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
        lock_timeout: float | None = None,
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
        self.lock_timeout = lock_timeout
        self.options = dict(options or {})
        self._lock = turn_lock((store_key(self.store), self.user_id), self.thread_id)
        self._closed = False

    @property
    def policy(self) -> ContextPolicyLike | None:
        """The context policy (``None``: the whole branch is sent)."""
        return self._planner.policy

    @property
    def branch(self) -> str | None:
        """The branch turns go to (``None``: the thread's default branch)."""
        return self._branch

    # -- locking ----------------------------------------------------------------------------

    @contextmanager
    def _turn(self) -> Iterator[None]:
        self._lock.acquire(self.concurrency, self.lock_timeout)
        try:
            yield
        finally:
            self._lock.release()

    @asynccontextmanager
    async def _aturn(self) -> AsyncIterator[None]:
        await self._lock.aacquire(self.concurrency, self.lock_timeout)
        try:
            yield
        finally:
            self._lock.release()

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

    def _begin(self, content: Content) -> SessionContext:
        if self._planner.uses_engine:  # the engine reads the store itself, O(window)
            self._append(self._new_messages(content, self._read_branch(last=1)))
            return self._planner.build(self.thread_id, self._branch, None, _query(content))
        history = self._read_branch()
        history += self._append(self._new_messages(content, history))
        return self._planner.build(self.thread_id, self._branch, history)

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
            except TelaMemoryError:
                if attempt == _FINAL_ATTEMPTS - 1:
                    raise
                time.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
                write = Write("update" if writer.created else "append", write.message)
            else:
                writer.written(stored)
                return stored
        raise AssertionError("unreachable")  # pragma: no cover

    def _final_after_error(self, writer: ReplyWriter, write: Write, error: BaseException) -> None:
        if not (writer.created or writer.assembler.chunks):
            return  # nothing arrived: there is no partial reply to keep
        try:
            stored = self._final(writer, write)
        except TelaMemoryError as exc:
            error.add_note(f"the partial reply could not be stored: {exc}")
            return
        if isinstance(error, ModelError):
            error.partial = stored

    def send(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> Message:
        """Append ``content`` (a user turn; ``None`` to continue after tool results), call the
        model and append its reply; return the reply as stored.

        Raises:
            ModelError: the model failed (``InvalidToolCallError`` / ``EmptyReplyError`` for
                unusable replies, which are stored marked incomplete, see ``error.partial``).
            SessionBusyError: another turn on this thread is running (``concurrency``).
        """
        with self._turn():
            context = self._begin(content)
            chosen, opts = self._model_args(tools, options)
            try:
                result = self.model.generate(context.messages, tools=chosen, **opts)
            except ModelError as exc:
                marked = marked_partial(exc)
                if marked is not None:
                    try:
                        exc.partial = self._append([marked])[0]
                    except TelaMemoryError as store_exc:  # keep the provider's error
                        exc.add_note(f"the partial reply could not be stored: {store_exc}")
                raise
            except Exception as exc:
                raise _as_model_error(exc) from exc
            reply = result.message.model_copy(
                update={"metadata": self._reply_metadata(result), "id": result.message.id}
            )
            return self._append([reply])[0]

    def stream(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> Iterator[ChatChunk]:
        """Like :meth:`send`, yielding the reply's chunks while it is persisted as it grows.

        Closing the iterator early stores the reply so far with ``status="stopped"``; a model
        error stores it with ``status="error"`` and raises :class:`ModelError`.
        """
        with self._turn():
            context = self._begin(content)
            chosen, opts = self._model_args(tools, options)
            writer = ReplyWriter(self.flush, metadata=self._model_meta())
            source = iter(self.model.stream(context.messages, tools=chosen, **opts))
            try:
                while True:
                    try:
                        chunk = next(source)
                    except StopIteration:
                        break
                    except Exception as exc:
                        error = _as_model_error(exc)
                        self._final_after_error(writer, writer.interrupted("error", exc), error)
                        if error is exc:
                            raise
                        raise error from exc
                    except BaseException as exc:
                        self._final_after_error(writer, writer.interrupted("stopped", exc), exc)
                        raise
                    if writer.add(chunk):
                        self._flush_now(writer, writer.progress())
                    try:
                        yield chunk
                    except BaseException as exc:  # consumer closed us or threw in
                        self._final_after_error(writer, writer.interrupted("stopped"), exc)
                        raise
                write, problem = writer.finished()
                stored = self._final(writer, write)
                if problem is not None:
                    problem.partial = stored
                    raise problem
            finally:
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
        return await self._mine.aappend(self.thread_id, messages, branch=self._branch)

    async def _abegin(self, content: Content) -> SessionContext:
        if self._planner.uses_engine:
            recent = await self._aread_branch(last=1)
            await self._aappend(self._new_messages(content, recent))
            return await self._planner.abuild(self.thread_id, self._branch, None, _query(content))
        history = await self._aread_branch()
        history += await self._aappend(self._new_messages(content, history))
        return await self._planner.abuild(self.thread_id, self._branch, history)

    async def _ado(self, write: Write) -> Message:
        if write.op == "append":
            return (await self._aappend([write.message]))[0]
        return await self._mine.aupdate_message(write.message)

    async def _aflush_now(self, writer: ReplyWriter, write: Write) -> None:
        try:
            writer.written(await self._ado(write))
        except TelaMemoryError as exc:
            log.warning("could not persist the growing reply %s: %s", writer.message_id, exc)
            writer.failed(exc)

    async def _afinal(self, writer: ReplyWriter, write: Write) -> Message:
        for attempt in range(_FINAL_ATTEMPTS):
            try:
                stored = await self._ado(write)
            except TelaMemoryError:
                if attempt == _FINAL_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(_RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)])
                write = Write("update" if writer.created else "append", write.message)
            else:
                writer.written(stored)
                return stored
        raise AssertionError("unreachable")  # pragma: no cover

    async def _afinal_after_error(
        self, writer: ReplyWriter, write: Write, error: BaseException
    ) -> None:
        if not (writer.created or writer.assembler.chunks):
            return
        try:
            # shielded: under a cancelled task (a client that went away) the write must still
            # happen; anyio-style cancel scopes would otherwise cancel every await here
            stored = await _shielded(self._afinal(writer, write))
        except TelaMemoryError as exc:
            error.add_note(f"the partial reply could not be stored: {exc}")
            return
        if isinstance(error, ModelError):
            error.partial = stored

    async def asend(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> Message:
        """Async twin of :meth:`send`."""
        async with self._aturn():
            context = await self._abegin(content)
            chosen, opts = self._model_args(tools, options)
            try:
                result = await self.model.agenerate(context.messages, tools=chosen, **opts)
            except ModelError as exc:
                marked = marked_partial(exc)
                if marked is not None:
                    try:
                        exc.partial = (await self._aappend([marked]))[0]
                    except TelaMemoryError as store_exc:
                        exc.add_note(f"the partial reply could not be stored: {store_exc}")
                raise
            except Exception as exc:
                raise _as_model_error(exc) from exc
            reply = result.message.model_copy(update={"metadata": self._reply_metadata(result)})
            return (await self._aappend([reply]))[0]

    async def astream(
        self, content: Content = None, *, tools: Sequence[ToolSpec] | None = None, **options: Any
    ) -> AsyncIterator[ChatChunk]:
        """Async twin of :meth:`stream` (close it with ``contextlib.aclosing`` when you stop
        early, so the partial reply is marked at once rather than when it is collected)."""
        async with self._aturn():
            context = await self._abegin(content)
            chosen, opts = self._model_args(tools, options)
            writer = ReplyWriter(self.flush, metadata=self._model_meta())
            source = self.model.astream(context.messages, tools=chosen, **opts)
            iterator = aiter(source)
            try:
                while True:
                    try:
                        chunk = await anext(iterator)
                    except StopAsyncIteration:
                        break
                    except Exception as exc:
                        error = _as_model_error(exc)
                        await self._afinal_after_error(
                            writer, writer.interrupted("error", exc), error
                        )
                        if error is exc:
                            raise
                        raise error from exc
                    except BaseException as exc:  # cancelled
                        await self._afinal_after_error(
                            writer, writer.interrupted("stopped", exc), exc
                        )
                        raise
                    if writer.add(chunk):
                        await self._aflush_now(writer, writer.progress())
                    try:
                        yield chunk
                    except BaseException as exc:
                        await self._afinal_after_error(writer, writer.interrupted("stopped"), exc)
                        raise
                write, problem = writer.finished()
                stored = await _shielded(self._afinal(writer, write))
                if problem is not None:
                    problem.partial = stored
                    raise problem
            finally:
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

    def close(self) -> None:
        """Release the store if this session took it by URL (the last user closes it)."""
        if self._closed:
            return
        self._closed = True
        if self._url is not None:
            store = release_store(self._url)
            if store is not None:
                store.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close`."""
        if self._closed:
            return
        self._closed = True
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
