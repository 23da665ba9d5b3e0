"""Provider payloads as they come from real APIs, and the text formats' error positions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tela_memory.formats import (
    FormatError,
    from_anthropic,
    from_gemini,
    from_responses,
    read_file,
    read_text,
    to_anthropic,
    to_responses,
    write_text,
)
from tela_memory.messages import OpaqueBlock, Role, ThinkingBlock, ToolCallBlock


def test_responses_output_items_form_one_assistant_turn() -> None:
    items = [
        {"role": "user", "content": "weather in Paris?"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "need the weather tool"}],
            "encrypted_content": "gAAAA-opaque",
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "content": [{"type": "output_text", "text": "Checking."}],
        },
        {
            "type": "function_call",
            "call_id": "call_9",
            "name": "weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "web_search_call", "id": "ws_1", "status": "completed"},
        {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ]
    msgs = from_responses(items)
    assert [m.role for m in msgs] == [Role.USER, Role.ASSISTANT, Role.TOOL, Role.ASSISTANT]
    turn = msgs[1]
    assert [b.type for b in turn.content] == ["thinking", "text", "tool_call", "opaque"]
    thinking = turn.content[0]
    assert isinstance(thinking, ThinkingBlock)
    assert thinking.signature == "gAAAA-opaque"
    back = to_responses(msgs)
    assert {"type": "web_search_call", "id": "ws_1", "status": "completed"} in back
    assert from_responses(back)[1].content == turn.content


def test_anthropic_server_tool_blocks_survive() -> None:
    server = {
        "type": "server_tool_use",
        "id": "srv_1",
        "name": "web_search",
        "input": {"query": "x"},
    }
    result = {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []}
    messages = [
        {"role": "user", "content": "search"},
        {"role": "assistant", "content": [server, result, {"type": "text", "text": "found"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": True},
                {"type": "text", "text": "and now?"},
            ],
        },
    ]
    msgs = from_anthropic(messages, system="be brief")
    assert [m.role for m in msgs] == [
        Role.SYSTEM,
        Role.USER,
        Role.ASSISTANT,
        Role.ASSISTANT,
        Role.TOOL,
        Role.USER,
    ]
    assert isinstance(msgs[2].content[0], OpaqueBlock)
    assert msgs[4].tool_results[0].is_error
    system, out = to_anthropic(msgs)
    assert system == [{"type": "text", "text": "be brief"}]
    assert out[1]["content"][:2] == [server, result]
    assert out[3]["content"][0]["type"] == "tool_result"


def test_gemini_camel_case_and_responses_matched_by_name() -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "be kind"}]},
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "hi"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "thinking...", "thought": True, "thoughtSignature": "sig"},
                    {"functionCall": {"name": "lookup", "args": {"q": 1}}},
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "lookup", "response": {"result": "42"}}}],
            },
        ],
    }
    msgs = from_gemini(body["contents"], body["systemInstruction"])
    assert [m.role for m in msgs] == [Role.SYSTEM, Role.USER, Role.ASSISTANT, Role.TOOL]
    assert msgs[1].content[1].type == "image"
    call = msgs[2].content[1]
    assert isinstance(call, ToolCallBlock)
    assert msgs[3].tool_results[0].tool_call_id == call.id
    assert msgs[3].tool_results[0].text == "42"
    with pytest.raises(FormatError, match="answers no earlier call") as info:
        from_gemini([{"role": "user", "parts": [{"functionResponse": {"name": "x"}}]}])
    assert info.value.where == "$.contents[0].parts[0]"


def test_chatml_unterminated_turn_names_its_line() -> None:
    text = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello\nthere\n"
    with pytest.raises(FormatError, match="unterminated turn") as info:
        read_text(text, "chatml")
    assert info.value.where == "line 3"  # where the open turn starts


def test_markdown_text_before_first_heading() -> None:
    with pytest.raises(FormatError, match="before the first") as info:
        read_text("# Title\n\nstray words\n\n### User\n\nhi\n", "markdown")
    assert info.value.where is not None


def test_text_tool_line_needs_its_call_id() -> None:
    with pytest.raises(FormatError, match="call id") as info:
        read_text("User: hi\n\nTool: 42\n", "text")
    assert info.value.where == "line 3"


def test_several_conversations_in_text_formats() -> None:
    convs = read_text(
        json.dumps(
            [
                {"id": "a", "conversations": [{"from": "human", "value": "one"}]},
                {
                    "id": "b",
                    "conversations": [
                        {"from": "human", "value": "two"},
                        {"from": "gpt", "value": "three"},
                    ],
                },
            ]
        )
    ).conversations
    for fmt in (
        "markdown",
        "text",
        "chatml",
        "openai",
        "anthropic",
        "gemini",
        "openai-responses",
        "jsonl-conversations",
    ):
        text, _ = write_text(convs, fmt)
        back = read_text(text, fmt).conversations
        assert [[m.text for m in c.messages] for c in back] == [["one"], ["two", "three"]], fmt
        if fmt not in ("chatml",):
            assert [c.id for c in back] == ["a", "b"], fmt


def test_jsonl_is_streamed_without_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    line = json.dumps(
        {
            "messages": [
                {"role": "user", "content": "x" * 200},
                {"role": "assistant", "content": "y" * 200},
            ]
        }
    )
    path.write_text("\n".join([line] * 5000) + "\n")
    assert path.stat().st_size > 2_000_000
    result = read_file(path, max_bytes=1_000_000)  # a whole-document limit: not applied
    assert result.format == "jsonl-conversations"
    assert len(result.conversations) == 5000
    with pytest.raises(FormatError, match="limit"):
        read_file(path, "openai", max_bytes=1_000_000)


def test_message_lines_group_by_thread(tmp_path: Path) -> None:
    convs = read_text(
        json.dumps(
            [
                {
                    "id": "a",
                    "conversations": [
                        {"from": "human", "value": "1"},
                        {"from": "gpt", "value": "2"},
                    ],
                },
                {"id": "b", "conversations": [{"from": "human", "value": "3"}]},
            ]
        )
    ).conversations
    text, report = write_text(convs, "jsonl")
    assert not report
    assert len(text.splitlines()) == 3
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    back = read_file(path).conversations
    assert [(c.id, [m.text for m in c.path()]) for c in back] == [("a", ["1", "2"]), ("b", ["3"])]


def test_sharegpt_images_llama_factory_layout() -> None:
    data = [
        {
            "conversations": [
                {"from": "human", "value": "<image>What is in this picture? And <image>?"},
                {"from": "gpt", "value": "A cat, then a dog."},
            ],
            "images": ["imgs/cat.jpg", "https://example.com/dog.png"],
        }
    ]
    (conv,) = read_text(json.dumps(data), "sharegpt").conversations
    user = conv.messages[0]
    assert [b.type for b in user.content] == ["image", "text", "image", "text"]
    assert user.content[0].ref == "imgs/cat.jpg"
    assert user.content[2].url == "https://example.com/dog.png"
    text, report = write_text([conv], "sharegpt")
    assert not report
    assert json.loads(text)[0]["images"] == data[0]["images"]
    assert json.loads(text)[0]["conversations"][0]["value"] == data[0]["conversations"][0]["value"]
    data[0]["images"].append("extra.jpg")
    with pytest.raises(FormatError, match="have no <image> token") as info:
        read_text(json.dumps(data), "sharegpt")
    assert info.value.where == "$[0].images"
    data[0]["images"] = ["only-one.jpg"]
    with pytest.raises(FormatError, match="more <image> tokens") as info:
        read_text(json.dumps(data), "sharegpt")
    assert info.value.where == "$[0].conversations[0].value"
