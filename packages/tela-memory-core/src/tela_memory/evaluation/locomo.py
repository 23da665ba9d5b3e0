"""The LoCoMo data set (Maharana et al., 2024): loading and importing into a store.

Each conversation becomes one user's threads: one thread per session, session dates as message
times (a second apart within a session), the turn id (``D3:7``) in message metadata. Image
turns keep their caption as alt text. Speaker A writes as ``user``, speaker B as
``assistant``; both keep their names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tela_memory.errors import InvalidMessageError
from tela_memory.messages import ImageBlock, Message, Role, TextBlock
from tela_memory.stores.base import MessageStore

_TURN_ID = re.compile(r"D\d+:\d+")
_SESSION = re.compile(r"^session_(\d+)$")


@dataclass(frozen=True)
class Question:
    """One category 1-4 question with its evidence turn ids (malformed ids dropped)."""

    sample_id: str
    qa_index: int
    question: str
    category: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Conversation:
    """One conversation: its sessions as lists of messages, and its questions."""

    sample_id: str
    sessions: dict[int, list[Message]]
    questions: tuple[Question, ...]

    @property
    def user_id(self) -> str:
        """The user the conversation is imported as."""
        return f"locomo:{self.sample_id}"

    def thread_id(self, session: int) -> str:
        """The thread of a session."""
        return f"locomo:{self.sample_id}:s{session}"


def parse_date(text: str) -> datetime:
    """``"1:56 pm on 8 May, 2023"`` -> an aware UTC datetime."""
    try:
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidMessageError(f"unreadable LoCoMo session date {text!r}") from exc


def session_of(turn_id: str) -> str:
    """``"D3:7"`` -> ``"D3"``."""
    return turn_id.split(":", 1)[0]


def load(path: str | Path, *, categories: tuple[int, ...] = (1, 2, 3, 4)) -> list[Conversation]:
    """Read ``locomo*.json``; keep questions of ``categories`` that name existing turns."""
    try:
        raw: list[dict[str, Any]] = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidMessageError(f"cannot read LoCoMo file {path}: {exc}") from exc
    if not isinstance(raw, list):
        raise InvalidMessageError(f"{path}: expected a list of conversations")
    return [_conversation(item, categories) for item in raw]


def _conversation(item: dict[str, Any], categories: tuple[int, ...]) -> Conversation:
    try:
        sample_id = str(item["sample_id"])
        conv = item["conversation"]
        speaker_a = conv["speaker_a"]
    except (KeyError, TypeError) as exc:
        raise InvalidMessageError(f"not a LoCoMo conversation: missing {exc}") from exc
    sessions: dict[int, list[Message]] = {}
    turn_ids: set[str] = set()
    for key, turns in conv.items():
        match = _SESSION.match(key)
        if not match or not isinstance(turns, list):
            continue
        number = int(match.group(1))
        start = parse_date(conv[f"{key}_date_time"])
        messages = []
        for i, turn in enumerate(turns):
            blocks: list[Any] = [TextBlock(text=turn.get("text", ""))]
            urls = turn.get("img_url") or []
            if isinstance(urls, str):
                urls = [urls]
            if turn.get("blip_caption") and urls:
                blocks.append(ImageBlock(url=urls[0], alt_text=turn["blip_caption"]))
            messages.append(
                Message(
                    role=Role.USER if turn["speaker"] == speaker_a else Role.ASSISTANT,
                    name=turn["speaker"],
                    content=blocks,
                    created_at=start + timedelta(seconds=i),
                    metadata={"dia_id": turn["dia_id"], "locomo": sample_id},
                )
            )
            turn_ids.add(turn["dia_id"])
        sessions[number] = messages
    questions = []
    for index, qa in enumerate(item.get("qa", [])):
        if qa.get("category") not in categories:
            continue
        evidence: list[str] = []
        for ev in qa.get("evidence", []):
            evidence.extend(e for e in _TURN_ID.findall(str(ev)) if e in turn_ids)
        if not evidence:
            continue
        questions.append(
            Question(
                sample_id,
                index,
                qa["question"],
                int(qa["category"]),
                tuple(dict.fromkeys(evidence)),
            )
        )
    return Conversation(sample_id, dict(sorted(sessions.items())), tuple(questions))


def import_conversation(store: MessageStore, conversation: Conversation) -> int:
    """Append every session of a conversation as a thread of its user; return turn count."""
    count = 0
    for number, messages in conversation.sessions.items():
        stored = store.append(
            conversation.thread_id(number), messages, user_id=conversation.user_id
        )
        count += len(stored)
    return count


__all__ = ["Conversation", "Question", "import_conversation", "load", "parse_date", "session_of"]
