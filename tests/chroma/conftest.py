"""Where the Chroma tests run: the real engine in process, in a folder, and as a server.

``chromadb`` ships the whole engine (Rust bindings) and its server CLI, so nothing here is a
stand-in: the in-process tests use ``EphemeralClient`` / ``PersistentClient``, and the
``chroma_server`` fixture starts ``chroma run`` from the same installation on a free loopback
port for the ``HttpClient`` path. A server that does not start fails its tests (never a skip).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import chromadb
import pytest

from tela_memory_chroma.client import settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _chroma_cli() -> Path:
    cli = Path(sys.executable).parent / "chroma"
    if not cli.exists():
        raise RuntimeError(f"the chroma CLI is not installed beside {sys.executable}")
    return cli


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``chroma run`` on a free loopback port, data in a temporary folder; yields its URL."""
    folder = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = (folder / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            str(_chroma_cli()),
            "run",
            "--path",
            str(folder / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"chroma run exited with {proc.returncode}: "
                    + (folder / "server.log").read_text(errors="replace")[-2000:]
                )
            try:
                chromadb.HttpClient(host="127.0.0.1", port=port, settings=settings()).heartbeat()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
