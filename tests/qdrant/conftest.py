"""Where the Qdrant tests run: qdrant-client's local mode and Qdrant Edge, in process.

No Qdrant server binary runs on the project's machines. The tests here use qdrant-client's
local mode (``:memory:``, ``path=``, an injected local client) and Qdrant Edge; the same tests
against a real server live in ``test_qdrant_live_server.py``, which is collected only when
``TELA_QDRANT_URL`` is set (for example ``http://127.0.0.1:6333``): without it, that module is
not collected at all, rather than passing on a local stand-in.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient

collect_ignore = [] if os.environ.get("TELA_QDRANT_URL") else ["test_qdrant_live_server.py"]


@pytest.fixture
def qdrant_target() -> Iterator[dict[str, Any]]:
    """Keyword arguments for ``QdrantIndex``: an injected local-mode client, its own collection."""
    client = QdrantClient(location=":memory:")
    yield {"client": client, "collection": f"tela-test-{uuid.uuid4().hex[:12]}"}
    client.close()
