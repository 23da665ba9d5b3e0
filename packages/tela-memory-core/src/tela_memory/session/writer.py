"""Persist a streamed reply as it grows: the decisions, without the I/O.

:class:`ReplyWriter` owns the :class:`~tela_memory.models.ChunkAssembler` of one reply and says
when to write (first chunk, then by time / size, then at the end) and what: the reply so far
with ``metadata["incomplete"] = True`` until it is finalised. A process that dies mid-stream
therefore leaves a message already marked incomplete. The session does the writes, sync or
async, through :meth:`MessageStore.append` (first write) and ``update_message`` (later ones).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from tela_memory.messages import Message
from tela_memory.models import (
    ChatChunk,
    ChunkAssembler,
    EmptyReplyError,
    InvalidToolCallError,
    ModelError,
)

Status = Literal["streaming", "complete", "stopped", "error", "empty", "invalid_tool_calls"]


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When a growing reply is written: after ``interval`` seconds, ``max_chunks`` chunks or
    ``max_chars`` characters since the last write, whichever comes first.

    The first chunk is always written at once (the message exists from then on).
    """

    interval: float = 0.25
    max_chunks: int = 128
    max_chars: int = 4096


@dataclass(frozen=True, slots=True)
class Write:
    """One pending write: ``append`` the first time, ``update`` afterwards."""

    op: Literal["append", "update"]
    message: Message


class ReplyWriter:
    """Tracks one streamed reply and what has been written of it."""

    def __init__(
        self,
        policy: FlushPolicy,
        *,
        metadata: dict[str, JsonValue] | None = None,
    ) -> None:
        self.policy = policy
        self.assembler = ChunkAssembler()
        self._base = dict(metadata or {})
        self._created = False
        self._last_write = time.monotonic()
        self._chunks_since = 0
        self._chars_since = 0
        self.stored: Message | None = None
        self.write_errors: list[BaseException] = []
        self.final = False  # a final write (complete, stopped, error ...) is stored

    @property
    def message_id(self) -> str:
        """Id of the reply message (stable from the first chunk on)."""
        return self.assembler.message_id

    @property
    def created(self) -> bool:
        """True once the reply exists in the store."""
        return self._created

    def add(self, chunk: ChatChunk) -> bool:
        """Take a chunk; return True when a write is due now."""
        self.assembler.add(chunk)
        self._chunks_since += 1
        self._chars_since += len(chunk.text) + len(chunk.reasoning)
        self._chars_since += sum(len(d.arguments) for d in chunk.tool_calls)
        if not self._created and not self.write_errors:
            return True  # the first chunk creates the message at once
        p = self.policy
        return (
            self._chunks_since >= p.max_chunks
            or self._chars_since >= p.max_chars
            or time.monotonic() - self._last_write >= p.interval
        )

    def _metadata(self, status: Status, extra: dict[str, JsonValue]) -> dict[str, JsonValue]:
        meta: dict[str, JsonValue] = {
            **self._base,
            **self.assembler.finish_metadata(),
            "status": status,
            "incomplete": status != "complete",
            "chunks": self.assembler.chunks,
        }
        meta.update(extra)
        return meta

    def _write(self, message: Message) -> Write:
        return Write("update" if self._created else "append", message)

    def progress(self) -> Write:
        """The write that brings the stored reply up to date (still incomplete)."""
        return self._write(self.assembler.snapshot(self._metadata("streaming", {})))

    def interrupted(self, status: Status, error: BaseException | None = None) -> Write:
        """The final write of a reply that did not finish (consumer stopped, model failed)."""
        extra: dict[str, JsonValue] = {}
        if error is not None:
            extra["error"] = f"{type(error).__name__}: {error}"[:2000]
        return self._write(self.assembler.snapshot(self._metadata(status, extra)))

    def finished(self) -> tuple[Write, ModelError | None]:
        """The final write of a reply that ended; with the error to raise if it is unusable."""
        try:
            result = self.assembler.result(self._metadata("complete", {}))
        except InvalidToolCallError as exc:
            partial = exc.partial or self.assembler.snapshot()
            meta = {**partial.metadata, **self._metadata("invalid_tool_calls", {})}
            meta["error"] = str(exc)
            return self._write(partial.model_copy(update={"metadata": meta})), exc
        except EmptyReplyError as exc:
            meta = self._metadata("empty", {"error": str(exc)})
            return self._write(self.assembler.snapshot(meta)), exc
        return self._write(result.message), None

    def written(self, stored: Message, *, final: bool = False) -> None:
        """Record a successful write (``final``: the last one; nothing is written after it)."""
        self.final = final
        self._created = True
        self.stored = stored
        self._last_write = time.monotonic()
        self._chunks_since = 0
        self._chars_since = 0

    def failed(self, exc: BaseException) -> None:
        """Record a failed intermediate write (retried at the next flush)."""
        self.write_errors.append(exc)
        self._last_write = time.monotonic()
        self._chunks_since = 0
        self._chars_since = 0


def marked_partial(error: ModelError) -> Message | None:
    """The partial reply a failed non-streamed call carries, marked incomplete with the
    status and the error; ``None`` when the error carries none."""
    partial = error.partial
    if partial is None:
        return None
    meta = dict(partial.metadata)
    if isinstance(error, EmptyReplyError):
        meta["status"] = "empty"
    elif isinstance(error, InvalidToolCallError):
        meta["status"] = "invalid_tool_calls"
    else:
        meta["status"] = "error"
    meta["incomplete"] = True
    meta["error"] = str(error)[:2000]
    return partial.model_copy(update={"metadata": meta})


__all__ = ["FlushPolicy", "ReplyWriter", "Status", "Write", "marked_partial"]
