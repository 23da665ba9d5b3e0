"""What codecs exchange: ``Conversation`` (a message tree with named branches), the loss report
and ``FormatError`` (bad input, naming the line or JSON path of the problem)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import JsonValue

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import Message, value_problem

DEFAULT_BRANCH = "main"


class FormatError(InvalidMessageError):
    """Input that a codec cannot read; ``where`` is the line (``line 12``) or JSON path
    (``$[3].mapping.abc``) of the problem."""

    def __init__(self, message: str, where: str | None = None) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.reason = message


@dataclass(frozen=True)
class Loss:
    """One thing a format could not hold: ``kind`` (e.g. ``"image"``), where, and detail."""

    kind: str
    where: str
    detail: str = ""


@dataclass
class LossReport:
    """Everything dropped or approximated while converting; never silently empty-handed."""

    losses: list[Loss] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, where: str, detail: str = "") -> None:
        """Record one loss."""
        self.losses.append(Loss(kind, where, detail))

    def note(self, text: str) -> None:
        """Record a format-wide remark once (e.g. "timestamps are not kept")."""
        if text not in self.notes:
            self.notes.append(text)

    def counts(self) -> dict[str, int]:
        """How many losses of each kind."""
        return dict(Counter(loss.kind for loss in self.losses))

    def __bool__(self) -> bool:
        return bool(self.losses)

    def __len__(self) -> int:
        return len(self.losses)

    def summary(self, limit: int = 5) -> str:
        """A short human-readable summary (kinds with counts and the first examples)."""
        if not self.losses and not self.notes:
            return "nothing lost"
        lines = [f"{kind}: {n}" for kind, n in sorted(self.counts().items())]
        lines += [f"  e.g. {x.where}: {x.detail or x.kind}" for x in self.losses[:limit]]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_json(self) -> dict[str, JsonValue]:
        """The report as a JSON-ready dict."""
        return {
            "counts": dict(self.counts()),
            "losses": [{"kind": x.kind, "where": x.where, "detail": x.detail} for x in self.losses],
            "notes": list(self.notes),
        }


@dataclass
class Conversation:
    """One conversation: its messages (parents before children) and named branch heads.

    A linear conversation has one branch, ``main``, ending at its last message. Message
    ``parent_id`` links form the tree; ``branches`` maps each branch name to its head id.
    """

    messages: list[Message]
    id: str | None = None
    branches: dict[str, str] = field(default_factory=dict)
    default_branch: str = DEFAULT_BRANCH
    user_id: str | None = None
    title: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, JsonValue] = field(default_factory=dict)
    created_at: datetime | None = None

    @classmethod
    def linear(cls, messages: Iterable[Message], **fields: object) -> Conversation:
        """A one-branch conversation: each message's parent is the one before it."""
        chained: list[Message] = []
        parent: str | None = None
        for m in messages:
            chained.append(
                m if m.parent_id == parent else m.model_copy(update={"parent_id": parent})
            )
            parent = m.id
        conv = cls(messages=chained, **fields)  # type: ignore[arg-type]
        if chained:
            conv.branches = {conv.default_branch: chained[-1].id}
        return conv

    def path(self, branch: str | None = None) -> list[Message]:
        """The messages of a branch, root first (the default branch when ``None``)."""
        name = branch or self.default_branch
        if not self.messages:
            return []
        head = self.branches.get(name)
        if head is None:
            raise FormatError(f"conversation {self.id!r} has no branch {name!r}")
        by_id = {m.id: m for m in self.messages}
        out: list[Message] = []
        seen: set[str] = set()
        cur: str | None = head
        while cur is not None:
            if cur in seen:
                raise FormatError(f"conversation {self.id!r}: parent links form a cycle at {cur!r}")
            seen.add(cur)
            msg = by_id.get(cur)
            if msg is None:
                raise FormatError(f"conversation {self.id!r}: message {cur!r} is missing")
            out.append(msg)
            cur = msg.parent_id
        out.reverse()
        return out

    def validate(self, where: str = "$") -> Conversation:
        """Check ids are unique, parents exist and come first, heads exist, and the
        conversation's own fields can be stored (no lone surrogate, 64-bit integers); return
        self."""
        fields = {
            "id": self.id,
            "user_id": self.user_id,
            "title": self.title,
            "tags": self.tags,
            "metadata": self.metadata,
            "branches": self.branches,
            "default_branch": self.default_branch,
        }
        for name in ("id", "user_id", "title"):
            if fields[name] is not None and not isinstance(fields[name], str):
                raise FormatError(f"{name} must be a string or null", where)
        if not isinstance(self.default_branch, str):
            raise FormatError("default_branch must be a string", where)
        if not all(isinstance(t, str) for t in self.tags):
            raise FormatError("tags must be strings", where)
        if not isinstance(self.metadata, dict) or not isinstance(self.branches, dict):
            raise FormatError("metadata and branches must be objects", where)
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.branches.items()):
            raise FormatError("branches must map names to message ids (strings)", where)
        if not all(isinstance(m, Message) for m in self.messages):
            raise FormatError("messages must be Message objects", where)
        problem = value_problem(fields, where)
        if problem is not None:
            raise FormatError(problem)
        seen: set[str] = set()
        for i, m in enumerate(self.messages):
            if m.id in seen:
                raise FormatError(f"duplicate message id {m.id!r}", f"{where}.messages[{i}]")
            if m.parent_id is not None and m.parent_id not in seen:
                raise FormatError(
                    f"message {m.id!r} names parent {m.parent_id!r}, which does not come "
                    "before it (missing, or the parent links form a cycle)",
                    f"{where}.messages[{i}]",
                )
            seen.add(m.id)
        if self.messages and not self.branches:
            self.branches = {self.default_branch: self.messages[-1].id}
        for name, head in self.branches.items():
            if head not in seen:
                raise FormatError(f"branch {name!r} points at unknown message {head!r}", where)
        if self.messages and self.default_branch not in self.branches:
            raise FormatError(f"default branch {self.default_branch!r} is not defined", where)
        return self

    def lossy_path(self, report: LossReport, where: str) -> list[Message]:
        """The default branch, recording the other branches as lost (for one-path formats)."""
        others = [b for b in self.branches if b != self.default_branch]
        if others:
            report.add(
                "branch", where, f"only branch {self.default_branch!r} kept; dropped {others}"
            )
        return self.path()


def conversation_label(conv: Conversation, index: int) -> str:
    """How losses name a conversation: its id, or its position."""
    return f"conversation {conv.id!r}" if conv.id else f"conversation #{index}"


def reject_duplicate_ids(convs: Sequence[Conversation]) -> None:
    """Raise ``FormatError`` when two conversations of one owner share an id, or two
    conversations share a message id (threads are per user; message ids are global)."""
    conv_ids: set[tuple[str | None, str]] = set()
    msg_ids: set[str] = set()
    for i, c in enumerate(convs):
        if c.id is not None:
            if (c.user_id, c.id) in conv_ids:
                raise FormatError(f"duplicate conversation id {c.id!r}", f"$[{i}]")
            conv_ids.add((c.user_id, c.id))
        for j, m in enumerate(c.messages):
            if m.id in msg_ids:
                raise FormatError(f"duplicate message id {m.id!r}", f"$[{i}].messages[{j}]")
            msg_ids.add(m.id)


__all__ = [
    "DEFAULT_BRANCH",
    "Conversation",
    "FormatError",
    "Loss",
    "LossReport",
    "conversation_label",
    "reject_duplicate_ids",
]
