"""Test setup shared by every package: exact token counting offline.

tiktoken downloads its encodings on first use; unit tests run without network, so point
``TIKTOKEN_CACHE_DIR`` at the cl100k / o200k files that llama-index-core ships (a dev
dependency), unless CI already exported one.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path


def _tiktoken_cache() -> str | None:
    for key in ("purelib", "platlib"):
        candidate = Path(sysconfig.get_paths()[key]) / "llama_index/core/_static/tiktoken_cache"
        if candidate.is_dir():
            return str(candidate)
    return None


if not os.environ.get("TIKTOKEN_CACHE_DIR"):
    found = _tiktoken_cache()
    if found:
        os.environ["TIKTOKEN_CACHE_DIR"] = found
