"""Property tests: however a reply is cut into chunks and whenever it is flushed, the stored
reply equals the reply the model produced."""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from session_doubles import ScriptedModel

from tela_memory.models import ChatChunk, ChunkAssembler, ToolCallDelta, Usage
from tela_memory.session import FlushPolicy, Session
from tela_memory.stores.memory import InMemoryStore
from tela_memory.stores.sqlite import SQLiteStore

# values a store can keep: 64-bit integers, text without lone surrogates (both are refused
# by Message validation; what a stream does with them is not this file's property)
_text = st.characters(exclude_categories=("Cs",))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(_text, max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(_text, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


@st.composite
def replies(draw: st.DrawFn) -> tuple[str, str, dict[str, object], list[ChatChunk]]:
    reasoning = draw(st.text(_text, max_size=40))
    text = draw(st.text(_text, min_size=1, max_size=80))
    args = draw(st.dictionaries(st.text(_text, max_size=6), json_values, max_size=4))
    raw = json.dumps(args)
    chunks = [ChatChunk(reasoning=r) for r in _cut(reasoning, draw(st.lists(st.integers(0, 99))))]
    chunks += [ChatChunk(text=t) for t in _cut(text, draw(st.lists(st.integers(0, 99))))]
    chunks.append(ChatChunk(tool_calls=(ToolCallDelta(0, id="c1", name="f"),)))
    chunks += [
        ChatChunk(tool_calls=(ToolCallDelta(0, arguments=a),))
        for a in _cut(raw, draw(st.lists(st.integers(0, 99))))
    ]
    chunks.append(ChatChunk(finish_reason="tool_calls", usage=Usage(1, 2)))
    return reasoning, text, args, chunks


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies(), st.integers(1, 6), st.integers(1, 50))
def test_stored_reply_equals_the_assembled_reply(reply, max_chunks: int, max_chars: int) -> None:
    reasoning, text, args, chunks = reply
    store = SQLiteStore(":memory:")
    flush = FlushPolicy(interval=3600, max_chunks=max_chunks, max_chars=max_chars)
    session = Session(store, ScriptedModel(list(chunks)), flush=flush, user_id="local")
    streamed = list(session.stream("go"))
    assert streamed == chunks
    stored = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    assert stored.text == text
    assert stored.tool_calls[0].arguments == args
    thinking = [b for b in stored.content if b.type == "thinking"]
    assert (thinking[0].text if thinking else "") == reasoning
    assert stored.metadata["incomplete"] is False
    assert len(store.read(session.thread_id, user_id=session.user_id)) == 2
    store.close()


@settings(max_examples=60, deadline=None)
@given(replies(), st.integers(0, 30))
def test_a_stopped_stream_stores_exactly_what_was_yielded(reply, stop_after: int) -> None:
    _, _, _, chunks = reply
    store = InMemoryStore()
    session = Session(
        store, ScriptedModel(list(chunks)), flush=FlushPolicy(max_chunks=3), user_id="local"
    )
    stream = session.stream("go")
    taken = []
    for chunk in stream:
        taken.append(chunk)
        if len(taken) > stop_after:
            break
    stream.close()
    stored = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
    expected = ChunkAssembler()
    for chunk in taken:
        expected.add(chunk)
    assert stored.text == expected.text
    stopped_early = len(taken) > stop_after  # the loop broke before the stream ended
    assert stored.metadata["incomplete"] is stopped_early
    assert stored.metadata["status"] == ("stopped" if stopped_early else "complete")
