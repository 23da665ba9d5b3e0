"""Where the Qdrant tests run: qdrant-client's local mode, or the server at ``QDRANT_URL``.

No Qdrant server binary runs on the project's machines, so the "server" tests run on an
injected local-mode client by default; set ``QDRANT_URL`` (for example
``http://127.0.0.1:6333``) to run the very same tests against a real server. An unreachable
``QDRANT_URL`` fails them (``BackendUnavailable``), it never skips them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient


@pytest.fixture
def qdrant_target() -> Iterator[dict[str, Any]]:
    """Keyword arguments for ``QdrantIndex``: a server URL if given, else a local client."""
    url = os.environ.get("QDRANT_URL")
    collection = f"tela-test-{uuid.uuid4().hex[:12]}"
    if url:
        yield {"url": url, "collection": collection, "api_key": os.environ.get("QDRANT_API_KEY")}
        client = QdrantClient(url=url, api_key=os.environ.get("QDRANT_API_KEY"))
        if client.collection_exists(collection):
            client.delete_collection(collection)
        client.close()
    else:
        client = QdrantClient(location=":memory:")
        yield {"client": client, "collection": collection}
        client.close()
