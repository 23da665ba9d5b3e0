"""The running summary's state and its persisted form (thread metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from tela_memory.messages import Message


@dataclass
class SummaryState:
    """The running summary: its text, the last message it covers, and how many it covers."""

    text: str
    upto: str
    covers: int
    at: datetime
    message: Message | None = None
    tokens: int = 0

    def to_json(self) -> dict[str, JsonValue]:
        """The persisted form (thread metadata)."""
        return {
            "version": 1,
            "text": self.text,
            "upto": self.upto,
            "covers": self.covers,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Any) -> SummaryState | None:
        """Read the persisted form; ``None`` if it is missing or not understood."""
        if not isinstance(data, dict) or data.get("version") != 1:
            return None
        try:
            return cls(
                text=str(data["text"]),
                upto=str(data["upto"]),
                covers=int(data["covers"]),
                at=datetime.fromisoformat(str(data["at"])),
            )
        except (KeyError, TypeError, ValueError):
            return None


__all__ = ["SummaryState"]
