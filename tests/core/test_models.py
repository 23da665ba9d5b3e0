"""Chat model protocol pieces: role map, OpenAI wire format, chunk assembly, SSE decoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tela_memory import ImageBlock, InvalidMessageError, Message, Role, TextBlock, ToolCallBlock
from tela_memory.messages import DocumentBlock, ThinkingBlock
from tela_memory.models import (
    ChatChunk,
    ChunkAssembler,
    EmptyReplyError,
    InvalidToolCallError,
    ModelError,
    ProviderFamily,
    ToolCallDelta,
    ToolSpec,
    Usage,
    family_for,
    role_map,
)
from tela_memory.models.openai_wire import (
    SSEDecoder,
    completion_as_chunk,
    parse_stream_event,
    to_openai_messages,
)


@pytest.mark.parametrize(
    ("family", "expected"),
    [
        ("openai", ("system", "developer", "user", "assistant", "tool")),
        ("openai_compatible", ("system", "system", "user", "assistant", "tool")),
        ("anthropic", (None, None, "user", "assistant", "user")),
        ("gemini", (None, None, "user", "model", "user")),
    ],
)
def test_role_map_per_family(family: str, expected: tuple[str | None, ...]) -> None:
    rules = role_map(family)
    roles = (Role.SYSTEM, Role.DEVELOPER, Role.USER, Role.ASSISTANT, Role.TOOL)
    assert tuple(rules.wire_role(r) for r in roles) == expected


def test_unknown_family_fails_clearly() -> None:
    with pytest.raises(InvalidMessageError, match="unknown provider family 'cohere'"):
        role_map("cohere")


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("ChatAnthropic", ProviderFamily.ANTHROPIC),
        ("ChatGoogleGenerativeAI", ProviderFamily.GEMINI),
        ("ChatOpenAI", ProviderFamily.OPENAI),
        ("AzureChatOpenAI", ProviderFamily.OPENAI),
        ("ChatOllama", ProviderFamily.OPENAI_COMPATIBLE),
        (None, ProviderFamily.OPENAI_COMPATIBLE),
    ],
)
def test_family_for_guesses_from_names(name: str | None, family: ProviderFamily) -> None:
    assert family_for(name) is family


def _conversation() -> list[Message]:
    return [
        Message.system("You are terse."),
        Message(role=Role.DEVELOPER, content="Answer in French."),
        Message.user(
            [TextBlock(text="What is this?"), ImageBlock(data="aGk=", mime_type="image/jpeg")]
        ),
        Message(
            role=Role.ASSISTANT,
            content=[
                ThinkingBlock(text="hidden"),
                TextBlock(text="Let me look."),
                ToolCallBlock(id="c1", name="lookup", arguments={"q": "cat"}),
            ],
        ),
        Message.tool("c1", [TextBlock(text="a cat"), ImageBlock(url="https://x/cat.png")]),
        Message.user([DocumentBlock(text="notes", title="N")]),
    ]


def test_openai_wire_messages_compatible_family() -> None:
    wire = to_openai_messages(_conversation(), "openai_compatible")
    assert [m["role"] for m in wire] == [
        "system",
        "system",
        "user",
        "assistant",
        "tool",
        "user",
        "user",
    ]
    assert wire[2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64,aGk="},
    }
    assert wire[3]["content"] == "Let me look."  # thinking is not sent back
    assert wire[3]["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "lookup", "arguments": '{"q": "cat"}'},
        }
    ]
    assert wire[4] == {"role": "tool", "tool_call_id": "c1", "content": "a cat"}
    # an image inside a tool result follows as a user message (tool turns hold text only)
    assert wire[5]["content"] == [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]
    assert wire[6]["content"] == "N\n\nnotes"


def test_openai_family_keeps_the_developer_role() -> None:
    wire = to_openai_messages(_conversation()[:2], ProviderFamily.OPENAI)
    assert [m["role"] for m in wire] == ["system", "developer"]


def test_assistant_with_only_tool_calls_has_null_content() -> None:
    msg = Message.assistant(tool_calls=[ToolCallBlock(id="c", name="f")])
    assert to_openai_messages([msg])[0]["content"] is None


def test_stream_event_parsing() -> None:
    chunk = parse_stream_event(
        {
            "model": "m",
            "choices": [
                {
                    "delta": {
                        "content": "Hi",
                        "reasoning": "hmm",
                        "tool_calls": [
                            {"index": 1, "id": "c", "function": {"name": "f", "arguments": "{"}}
                        ],
                    },
                    "finish_reason": None,
                }
            ],
        }
    )
    assert chunk == ChatChunk(
        text="Hi", reasoning="hmm", tool_calls=(ToolCallDelta(1, "c", "f", "{"),), model="m"
    )
    usage = parse_stream_event(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "total_tokens": 7,
                "completion_tokens_details": {"reasoning_tokens": 2},
                "prompt_tokens_details": {"cached_tokens": 1},
            },
        }
    )
    assert usage.usage == Usage(3, 4, 7, reasoning_tokens=2, cached_tokens=1)
    assert usage.is_empty


def test_error_event_raises_model_error_with_body() -> None:
    with pytest.raises(ModelError, match="rate limited") as info:
        parse_stream_event({"error": {"message": "rate limited", "code": 429}})
    assert json.loads(info.value.body or "")["code"] == 429


def test_completion_without_choices_fails_clearly() -> None:
    with pytest.raises(ModelError, match="no choices"):
        completion_as_chunk({"choices": []})


def test_assembler_builds_blocks_in_order_and_usage() -> None:
    asm = ChunkAssembler(message_id="m1")
    for chunk in [
        ChatChunk(reasoning="think "),
        ChatChunk(reasoning="more", reasoning_signature="sig"),
        ChatChunk(text="Hello "),
        ChatChunk(tool_calls=(ToolCallDelta(1, id="b", name="g", arguments='{"y"'),)),
        ChatChunk(tool_calls=(ToolCallDelta(0, id="a", name="f", arguments="{}"),)),
        ChatChunk(text="world", tool_calls=(ToolCallDelta(1, arguments=": 2}"),)),
        ChatChunk(usage=Usage(10, 5), finish_reason="tool_calls", model="m"),
    ]:
        asm.add(chunk)
    result = asm.result()
    msg = result.message
    assert msg.id == "m1"
    assert msg.content == [
        ThinkingBlock(text="think more", signature="sig"),
        TextBlock(text="Hello world"),
        ToolCallBlock(id="a", name="f", arguments={}),
        ToolCallBlock(id="b", name="g", arguments={"y": 2}),
    ]
    assert result.usage == Usage(10, 5)
    assert msg.metadata == {
        "usage": {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15},
        "finish_reason": "tool_calls",
        "model": "m",
    }


def test_snapshot_keeps_unfinished_tool_calls_in_metadata() -> None:
    asm = ChunkAssembler()
    asm.add(ChatChunk(tool_calls=(ToolCallDelta(0, id="c", name="f", arguments='{"a": '),)))
    snap = asm.snapshot({"status": "streaming"})
    assert snap.tool_calls == []
    assert snap.metadata["partial_tool_calls"][0]["arguments"] == '{"a": '
    assert snap.metadata["status"] == "streaming"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ('{"a": ', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('"text"', "must be a JSON object, got str"),
    ],
)
def test_invalid_tool_arguments(args: str, problem: str) -> None:
    asm = ChunkAssembler()
    asm.add(ChatChunk(text="ok", tool_calls=(ToolCallDelta(0, id="c", name="f", arguments=args),)))
    with pytest.raises(InvalidToolCallError, match=problem) as info:
        asm.result()
    assert info.value.partial is not None
    assert info.value.partial.text == "ok"
    assert info.value.invalid_tool_calls[0]["arguments"] == args


def test_tool_call_without_a_name_is_invalid() -> None:
    asm = ChunkAssembler()
    asm.add(ChatChunk(tool_calls=(ToolCallDelta(0, id="c", arguments="{}"),)))
    with pytest.raises(InvalidToolCallError, match="no name"):
        asm.result()


def test_tool_call_without_id_gets_one() -> None:
    asm = ChunkAssembler()
    asm.add(ChatChunk(tool_calls=(ToolCallDelta(0, name="f"),)))
    call = asm.result().message.tool_calls[0]
    assert call.id.startswith("call_")
    assert call.arguments == {}


def test_empty_reply_raises() -> None:
    asm = ChunkAssembler()
    asm.add(ChatChunk(finish_reason="length"))
    with pytest.raises(EmptyReplyError, match="length"):
        asm.result()


def test_usage_adds_up_and_serialises() -> None:
    total = Usage(1, 2, reasoning_tokens=1) + Usage(3, 4, cached_tokens=2)
    assert total == Usage(4, 6, None, reasoning_tokens=1, cached_tokens=2)
    assert total.to_json() == {
        "input_tokens": 4,
        "output_tokens": 6,
        "total_tokens": 10,
        "reasoning_tokens": 1,
        "cached_tokens": 2,
    }


def test_tool_spec_in_openai_shape() -> None:
    spec = ToolSpec("f", "does f", {"type": "object", "properties": {"x": {"type": "integer"}}})
    assert spec.to_openai()["function"]["parameters"]["properties"]["x"] == {"type": "integer"}


@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), max_size=6))
def test_sse_decoder_gets_every_event(events: list[dict[str, int]]) -> None:
    raw = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ": ping\n\ndata: [DONE]\n\n"
    decoder = SSEDecoder()
    out = []
    for line in raw.split("\n"):
        payload = decoder.feed(line)
        if payload is not None:
            out.append(payload)
    assert out == events
    assert decoder.done


def test_sse_decoder_joins_multi_line_data_and_flushes_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed('data: {"a":') is None
    assert decoder.feed("data: 1}") is None
    assert decoder.close() == {"a": 1}


def test_sse_decoder_rejects_garbage() -> None:
    decoder = SSEDecoder()
    decoder.feed("data: not json")
    with pytest.raises(ModelError, match="not JSON"):
        decoder.feed("")


@pytest.mark.parametrize(
    "payload",
    [
        {"choices": ["not an object"]},
        {"choices": 3},
        {"choices": [{"delta": {"tool_calls": [{"index": "a"}]}, "message": {"content": 5}}]},
        {"choices": [{"delta": {"content": 5}, "message": {"content": ["parts"]}}]},
        {"choices": [{"delta": {}, "message": {}}], "usage": {"prompt_tokens": "many"}},
    ],
)
def test_payloads_of_the_wrong_shape_are_model_errors(payload: dict[str, object]) -> None:
    for parse in (parse_stream_event, completion_as_chunk):
        with pytest.raises(ModelError, match="unexpected shape") as info:
            parse(payload)
        assert info.value.body is not None
