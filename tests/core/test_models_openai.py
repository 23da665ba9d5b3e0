"""The built-in OpenAI-compatible client against a real HTTP server on loopback."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai_test_server import USAGE, OpenAITestServer

from tela_memory import Message, Role, TextBlock, ThinkingBlock, ToolCallBlock
from tela_memory.models import (
    ChatModel,
    EmptyReplyError,
    InvalidToolCallError,
    ModelError,
    OpenAICompatible,
    ProviderFamily,
    ToolSpec,
    Usage,
)
from tela_memory.session import Session
from tela_memory.stores.sqlite import SQLiteStore

WEATHER = ToolSpec("weather", "Weather in a city", {"type": "object"})


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        yield srv


def model(server: OpenAITestServer, name: str, **kw: object) -> OpenAICompatible:
    return OpenAICompatible(name, base_url=server.base_url, api_key="sk-test", **kw)  # type: ignore[arg-type]


def test_is_a_chat_model_and_makes_no_connection_in_constructor() -> None:
    m = OpenAICompatible("x", base_url="http://127.0.0.1:9/v1")  # nothing listens on port 9
    assert isinstance(m, ChatModel)
    assert m.family is ProviderFamily.OPENAI_COMPATIBLE
    assert OpenAICompatible("gpt-4o").family is ProviderFamily.OPENAI
    with pytest.raises(ModelError, match="failed") as info:
        m.generate([Message.user("hi")])
    assert isinstance(info.value.provider_error, httpx.ConnectError)


def test_generate(server: OpenAITestServer) -> None:
    with model(server, "echo", temperature=0.2) as m:
        result = m.generate([Message.system("sys"), Message.user("hello there")])
    assert result.message.text == "hello there"
    assert result.usage == Usage(11, 7, 18)
    assert result.finish_reason == "stop"
    request = server.requests[-1]
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["body"]["temperature"] == 0.2
    assert "stream" not in request["body"]
    assert request["body"]["messages"][0] == {"role": "system", "content": "sys"}


def test_stream_text_and_usage(server: OpenAITestServer) -> None:
    m = model(server, "echo")
    chunks = list(m.stream([Message.user("one two three")]))
    assert "".join(c.text for c in chunks) == "one two three"
    assert chunks[-1].usage == Usage(11, 7, 18)
    body = server.requests[-1]["body"]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    m.close()


def test_stream_without_usage_option(server: OpenAITestServer) -> None:
    chunks = list(model(server, "echo", stream_usage=False).stream([Message.user("a")]))
    assert all(c.usage is None for c in chunks)
    assert "stream_options" not in server.requests[-1]["body"]


def test_reasoning_stream(server: OpenAITestServer) -> None:
    result = model(server, "reasoning").generate([Message.user("?")])
    assert result.message.content == [
        ThinkingBlock(text="Let me think."),
        TextBlock(text="Answer: 42"),
    ]


def test_tool_calls_streamed_and_sent(server: OpenAITestServer) -> None:
    m = model(server, "tools")
    chunks = list(m.stream([Message.user("weather?")], tools=[WEATHER]))
    assert [c.tool_calls[0].arguments for c in chunks if c.tool_calls][1:] == [
        '{"city": ',
        '"Paris"}',
    ]
    assert server.requests[-1]["body"]["tools"] == [WEATHER.to_openai()]
    result = m.generate([Message.user("weather?")], tools=[WEATHER])
    assert result.message.tool_calls == [
        ToolCallBlock(id="call_1", name="weather", arguments={"city": "Paris"})
    ]


def test_invalid_tool_json_from_server(server: OpenAITestServer) -> None:
    with pytest.raises(InvalidToolCallError, match="not valid JSON"):
        model(server, "bad-tools").generate([Message.user("x")])


def test_empty_reply_from_server(server: OpenAITestServer) -> None:
    with pytest.raises(EmptyReplyError):
        model(server, "empty").generate([Message.user("x")])


@pytest.mark.parametrize("streaming", [True, False])
def test_http_error_carries_status_and_body(server: OpenAITestServer, streaming: bool) -> None:
    m = model(server, "http500")
    call = (
        (lambda: list(m.stream([Message.user("x")])))
        if streaming
        else (lambda: m.generate([Message.user("x")]))
    )
    with pytest.raises(ModelError, match="HTTP 500") as info:
        call()
    assert info.value.status == 500
    assert "the model is on fire" in (info.value.body or "")


def test_connection_cut_mid_stream(server: OpenAITestServer) -> None:
    got: list[str] = []

    def consume() -> None:
        got.extend(chunk.text for chunk in model(server, "drop").stream([Message.user("x")]))

    with pytest.raises(ModelError, match="failed") as info:
        consume()
    assert "".join(got) == "one two "
    assert isinstance(info.value.provider_error, httpx.RemoteProtocolError)


def test_stream_ending_without_finish(server: OpenAITestServer) -> None:
    with pytest.raises(ModelError, match="ended before the model finished"):
        list(model(server, "truncated").stream([Message.user("x")]))


def test_error_event_mid_stream(server: OpenAITestServer) -> None:
    with pytest.raises(ModelError, match="overloaded"):
        list(model(server, "error-event").stream([Message.user("x")]))


def test_injected_client_is_used_and_not_closed(server: OpenAITestServer) -> None:
    with httpx.Client() as client:
        m = model(server, "echo", client=client)
        assert m.generate([Message.user("a b")]).message.text == "a b"
        m.close()
        assert not client.is_closed


async def test_async_generate_and_stream(server: OpenAITestServer) -> None:
    m = model(server, "echo")
    result = await m.agenerate([Message.user("async works")])
    assert result.message.text == "async works"
    chunks = [c async for c in m.astream([Message.user("x y")])]
    assert "".join(c.text for c in chunks) == "x y"
    assert chunks[-1].usage == Usage(**{"input_tokens": 11, "output_tokens": 7, "total_tokens": 18})
    assert USAGE["total_tokens"] == 18
    await m.aclose()


async def test_async_errors(server: OpenAITestServer) -> None:
    async with model(server, "drop") as m:
        with pytest.raises(ModelError):
            async for _ in m.astream([Message.user("x")]):
                pass
    with pytest.raises(ModelError, match="HTTP 500"):
        await model(server, "http500").agenerate([Message.user("x")])
    with pytest.raises(ModelError, match="ended before"):
        async for _ in model(server, "truncated").astream([Message.user("x")]):
            pass


def test_session_over_http_persists_a_dropped_stream(
    server: OpenAITestServer, tmp_path: Path
) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        session = Session(store, model(server, "drop"), user_id="local")
        with pytest.raises(ModelError) as info:
            list(session.stream("x"))
        reply = store.read(session.thread_id, last=1, user_id=session.user_id)[0]
        assert reply.text == "one two "
        assert reply.metadata["status"] == "error"
        assert info.value.partial == reply
        session.model = model(server, "echo")
        assert session.send("back again").text == "back again"
        assert [m.role for m in session.history()] == [
            Role.USER,
            Role.ASSISTANT,
            Role.USER,
            Role.ASSISTANT,
        ]


def test_missing_httpx_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['httpx'] = None\n"
        "from tela_memory.models import OpenAICompatible\n"
        "from tela_memory import Message, MissingDependency\n"
        "try:\n"
        "    OpenAICompatible('m', base_url='http://127.0.0.1:9/v1').generate([Message.user('x')])\n"
        "except MissingDependency as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install "tela-memory[openai]"' in out.stdout
