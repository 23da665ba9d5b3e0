"""A process killed mid-stream leaves its partial reply in the store, marked incomplete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from openai_test_server import OpenAITestServer

from tela_memory import Role
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.sqlite import SQLiteStore

CHILD = textwrap.dedent(
    """
    import sys
    from tela_memory.models import OpenAICompatible
    from tela_memory.session import FlushPolicy, Session
    from tela_memory.stores.sqlite import SQLiteStore

    db, base_url, thread = sys.argv[1:4]
    model = OpenAICompatible("words:5000:0.002", base_url=base_url)
    session = Session(SQLiteStore(db), model, thread_id=thread,
                      flush=FlushPolicy(interval=0.02, max_chunks=25), user_id="local")
    for n, chunk in enumerate(session.stream("count to five thousand"), 1):
        print(n, flush=True)
    print("finished", flush=True)
    """
)


def test_killed_process_leaves_a_marked_partial_reply(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    with OpenAITestServer() as server:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), server.base_url, "t-crash"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            assert line.strip() != "finished", "the child finished before it was killed"
            seen = int(line)
            if seen >= 200:
                break
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    with SQLiteStore(db) as store:
        user, reply = store.read("t-crash", user_id="local")
        assert user.role is Role.USER
        assert reply.role is Role.ASSISTANT
        assert reply.metadata["incomplete"] is True
        assert reply.metadata["status"] == "streaming"
        words = reply.text.split()
        # a prefix of what the model sent, in order, with at least the first batches in it
        assert words == [f"w{i}" for i in range(len(words))]
        assert 25 <= len(words) < 5000
        assert reply.metadata["chunks"] == len(words) + 1  # + the empty role chunk

        # the conversation goes on after the restart; the partial reply stays in history
        from session_doubles import ScriptedModel, text_reply

        again = Session(
            store,
            ScriptedModel(text_reply("resumed")),
            thread_id="t-crash",
            flush=FlushPolicy(),
            user_id="local",
        )
        assert again.send("are you there?").text == "resumed"
        assert [m.role for m in again.history()] == [Role.USER, Role.ASSISTANT] * 2
