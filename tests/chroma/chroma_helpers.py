"""Helpers of the Chroma tests."""

from __future__ import annotations

import uuid


def unique_name() -> str:
    """An index name of its own for one test (ephemeral clients of a process share data)."""
    return f"t{uuid.uuid4().hex[:12]}"
