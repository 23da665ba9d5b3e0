"""Bad input, detection, provider exports and imports into a real SQLite store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tela_memory.errors import ConflictError, TelaMemoryError, UnsupportedOperation
from tela_memory.formats import (
    Conversation,
    FormatError,
    aread_file,
    awrite_file,
    detect_format,
    read_file,
    read_text,
    write_file,
    write_text,
)
from tela_memory.formats.store_io import (
    ImportAborted,
    aimport_conversations,
    aload_conversation,
    import_conversations,
    load_conversation,
)
from tela_memory.messages import (
    ImageBlock,
    Message,
    Role,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from tela_memory.stores.sqlite import SQLiteStore

DATA = Path(__file__).parents[2] / ".." / "shared" / "data" / "chats"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "t.db") as s:
        yield s


def sharegpt(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"c{i}",
            "conversations": [
                {"from": "human", "value": f"hi {i}"},
                {"from": "gpt", "value": f"hello {i}"},
            ],
        }
        for i in range(n)
    ]


# -- bad input ------------------------------------------------------------------------------


def test_truncated_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    text = json.dumps(sharegpt(3), indent=2)
    path.write_text(text[: len(text) // 2])
    with pytest.raises(FormatError, match=r"truncated JSON") as info:
        read_file(path, "sharegpt")
    assert info.value.where is not None
    assert "line" in info.value.where
    assert "column" in info.value.where


def test_wrong_format_flag_says_what_the_file_looks_like(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(sharegpt(2)))
    with pytest.raises(FormatError, match=r"looks like 'sharegpt'.*--format sharegpt"):
        read_file(path, "anthropic")
    with pytest.raises(FormatError, match=r"unknown format 'nope'; known: .*sharegpt"):
        read_file(path, "nope")


def test_huge_file_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as fh:
        fh.truncate(200 * 1024 * 1024)  # 200 MB, sparse: costs no disk
    start = time.perf_counter()
    with pytest.raises(FormatError, match=r"209\.7 MB, more than the 100 MB limit"):
        read_file(path, "sharegpt")
    assert time.perf_counter() - start < 1.0  # refused from the size, not after reading it


def test_max_size_can_be_raised(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps(sharegpt(2)))
    with pytest.raises(FormatError, match="limit"):
        read_file(path, max_bytes=10)
    assert len(read_file(path, max_bytes=None).conversations) == 2


def test_invalid_utf8_names_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(b'[{"id": "a",\n "conversations": [{"from": "human", "value": "caf\xe9"}]}]')
    with pytest.raises(FormatError, match=r"invalid UTF-8 at byte \d+ \(byte 0xe9\)") as info:
        read_file(path)
    assert "line 2" in str(info.value.where)


def test_invalid_utf8_in_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    path.write_bytes((good + "\n" + good + "\n").encode() + b'{"messages": "\xff"}\n')
    with pytest.raises(FormatError, match="invalid UTF-8") as info:
        read_file(path)
    assert info.value.where == "t.jsonl line 3"


def test_duplicate_conversation_ids() -> None:
    data = sharegpt(3)
    data[2]["id"] = "c0"
    with pytest.raises(FormatError, match="duplicate conversation id 'c0'") as info:
        read_text(json.dumps(data))
    assert info.value.where == "$[2]"
    result = read_text(json.dumps(data), continue_on_error=True)
    assert [c.id for c in result.conversations] == ["c0", "c1"]
    assert [e.where for e in result.skipped] == ["$[2]"]


def test_duplicate_message_ids_in_our_json() -> None:
    m = Message.user("hi")
    conv = Conversation.linear([m, Message.assistant("yo")], id="a")
    text, _ = write_text([conv], "tela")
    doc = json.loads(text)
    doc["conversations"][0]["messages"][1]["id"] = m.id
    with pytest.raises(FormatError, match="duplicate message id") as info:
        read_text(json.dumps(doc))
    assert info.value.where == "$.conversations[0].messages[1]"


def test_parent_cycle_in_our_json() -> None:
    a, b = Message.user("a"), Message.assistant("b")
    conv = Conversation.linear([a, b], id="x")
    doc = json.loads(write_text([conv], "tela")[0])
    doc["conversations"][0]["messages"][0]["parent_id"] = b.id
    with pytest.raises(FormatError, match="does not come before it"):
        read_text(json.dumps(doc))


def chatgpt_node(
    nid: str,
    parent: str | None,
    children: list[str],
    role: str | None,
    text: str = "",
    **extra: Any,
) -> dict[str, Any]:
    message = None
    if role is not None:
        message = {
            "id": nid,
            "author": {"role": role},
            "create_time": 1_700_000_000 + len(nid),
            "content": {"content_type": "text", "parts": [text]},
            **extra,
        }
    return {"id": nid, "message": message, "parent": parent, "children": children}


def chatgpt_export() -> list[dict[str, Any]]:
    mapping = {
        "root": chatgpt_node("root", None, ["sys"], None),
        "sys": chatgpt_node("sys", "root", ["u1"], "system", ""),
        "u1": chatgpt_node("u1", "sys", ["a1", "a1b"], "user", "Name a colour"),
        "a1": chatgpt_node("a1", "u1", ["u2"], "assistant", "Red"),
        "a1b": chatgpt_node("a1b", "u1", [], "assistant", "Blue (regenerated)"),
        "u2": chatgpt_node("u2", "a1", ["call"], "user", "Run code"),
        "call": chatgpt_node("call", "u2", ["out"], "assistant", "print(1)", recipient="python"),
        "out": chatgpt_node("out", "call", ["a3"], "tool", "1"),
        "a3": chatgpt_node("a3", "out", [], "assistant", "It printed 1"),
    }
    mapping["out"]["message"]["author"]["name"] = "python"
    return [
        {
            "title": "Colours",
            "create_time": 1_700_000_000,
            "mapping": mapping,
            "current_node": "a3",
            "conversation_id": "conv-1",
        }
    ]


def test_chatgpt_export_tree_becomes_branches() -> None:
    text = json.dumps(chatgpt_export())
    assert detect_format(text) == "chatgpt"
    result = read_text(text)
    (conv,) = result.conversations
    assert conv.id == "conv-1"
    assert conv.title == "Colours"
    assert [m.text for m in conv.path()] == [
        "Name a colour",
        "Red",
        "Run code",
        "",
        "1",
        "It printed 1",
    ]
    assert [m.role for m in conv.path()][3:5] == [Role.ASSISTANT, Role.TOOL]
    assert conv.path()[3].tool_calls[0].name == "python"
    assert set(conv.branches) == {"main", "alt-1"}
    assert [m.text for m in conv.path("alt-1")] == ["Name a colour", "Blue (regenerated)"]


def test_chatgpt_export_with_a_cycle_is_refused() -> None:
    data = chatgpt_export()
    mapping = data[0]["mapping"]
    mapping["u1"]["parent"] = "a3"  # u1 -> ... -> a3 -> u1
    with pytest.raises(FormatError, match="cycle") as info:
        read_text(json.dumps(data))
    assert str(info.value.where).startswith("$[0].mapping.")


def test_chatgpt_export_is_import_only() -> None:
    (conv,) = read_text(json.dumps(chatgpt_export())).conversations
    with pytest.raises(UnsupportedOperation, match="import-only"):
        write_text([conv], "chatgpt")


def test_claude_export() -> None:
    data = [
        {
            "uuid": "c-1",
            "name": "Trip",
            "created_at": "2025-03-01T10:00:00Z",
            "chat_messages": [
                {
                    "uuid": "m1",
                    "sender": "human",
                    "text": "Plan a trip",
                    "created_at": "2025-03-01T10:00:00Z",
                    "attachments": [
                        {
                            "file_name": "notes.txt",
                            "file_type": "text/plain",
                            "extracted_content": "Lisbon in May",
                        }
                    ],
                },
                {
                    "uuid": "m2",
                    "sender": "assistant",
                    "created_at": "2025-03-01T10:00:05Z",
                    "content": [
                        {"type": "text", "text": "Lisbon it is."},
                        {"type": "tool_use", "name": "web_search", "input": {"q": "x"}},
                    ],
                },
            ],
        }
    ]
    text = json.dumps(data)
    assert detect_format(text) == "claude-export"
    (conv,) = read_text(text).conversations
    user, assistant = conv.path()
    assert user.id == "m1"
    assert user.content[1].type == "document"
    assert assistant.content[1].type == "opaque"  # server tool use kept as it came
    assert assistant.created_at.second == 5


def test_unknown_speaker_names_its_path() -> None:
    data = sharegpt(2)
    data[1]["conversations"][1]["from"] = "robot"
    with pytest.raises(FormatError, match="unknown speaker 'robot'") as info:
        read_text(json.dumps(data))
    assert info.value.where == "$[1].conversations[1].from"


def test_bad_jsonl_line_is_skipped_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    line = json.dumps({"messages": [{"role": "user", "content": "hi"}]})
    path.write_text(f"{line}\n{{not json\n{line}\n")
    with pytest.raises(FormatError) as info:
        read_file(path, "jsonl-conversations")
    assert str(info.value.where).startswith("input line 2")
    result = read_file(path, "jsonl-conversations", continue_on_error=True)
    assert len(result.conversations) == 2
    assert len(result.skipped) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[{"role": "user", "content": "hi"}]', "openai"),
        (
            '{"messages": [{"role": "user", "content": [{"type": "tool_result", '
            '"tool_use_id": "x", "content": "1"}]}]}',
            "anthropic",
        ),
        (
            '[{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]',
            "openai-responses",
        ),
        ('{"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}', "gemini"),
        ("<|im_start|>user\nhi<|im_end|>\n", "chatml"),
        ("### User\n\nhi\n", "markdown"),
        ("User: hi\n\nAssistant: hello\n", "text"),
        ('[{"from": "human", "value": "hi"}]', "sharegpt"),
    ],
)
def test_detection(text: str, expected: str) -> None:
    assert detect_format(text) == expected
    (conv,) = read_text(text).conversations
    assert conv.messages


def test_undetectable_input() -> None:
    with pytest.raises(FormatError, match="cannot detect"):
        detect_format("just some words\n")


# -- into a real store ---------------------------------------------------------------------


def test_import_then_load_keeps_branches(store: SQLiteStore) -> None:
    (conv,) = read_text(json.dumps(chatgpt_export())).conversations
    report = import_conversations(store, [conv], user_id="ann")
    assert report.threads == ["conv-1"]
    back = load_conversation(store, "conv-1", user_id="ann")
    assert set(back.branches) == {"main", "alt-1"}
    for name in conv.branches:
        assert [m.id for m in back.path(name)] == [m.id for m in conv.path(name)]
        assert [m.content for m in back.path(name)] == [m.content for m in conv.path(name)]
    assert store.get_thread("conv-1", user_id="ann").title == "Colours"


def test_import_is_all_or_nothing(store: SQLiteStore) -> None:
    convs = read_text(json.dumps(sharegpt(3))).conversations
    other = read_text(json.dumps(sharegpt(3))).conversations  # same ids, new message ids
    import_conversations(store, other[2:], user_id="ann")  # c2 exists with other messages
    with pytest.raises(ImportAborted, match=r"'c2' not imported.*nothing was imported") as info:
        import_conversations(store, convs, user_id="ann")
    assert isinstance(info.value.cause, ConflictError)
    assert [t.id for t in store.list_threads("ann").threads] == ["c2"]


def test_import_continue_on_error_keeps_the_rest(store: SQLiteStore) -> None:
    convs = read_text(json.dumps(sharegpt(3))).conversations
    other = read_text(json.dumps(sharegpt(3))).conversations
    import_conversations(store, other[1:2], user_id="ann")
    report = import_conversations(store, convs, user_id="ann", continue_on_error=True)
    assert report.threads == ["c0", "c2"]
    assert report.skipped[0][0] == "c1"
    assert "already exists" in report.skipped[0][1]


def test_rich_conversation_survives_store_and_our_json(store: SQLiteStore) -> None:
    call = ToolCallBlock(id="c1", name="weather", arguments={"city": "Oslo"})
    msgs = [
        Message.system("sys"),
        Message.user([TextBlock(text="look"), ImageBlock(data="AAAA", mime_type="image/png")]),
        Message.assistant([ThinkingBlock(text="t", signature="sig")], tool_calls=[call]),
        Message.tool("c1", "snow"),
        Message.assistant("It snows."),
    ]
    import_conversations(store, [Conversation.linear(msgs, id="rich")], user_id="ann")
    text, report = write_text([load_conversation(store.for_user("ann"), "rich")], "tela")
    assert not report
    (back,) = read_text(text).conversations
    assert [m.content for m in back.path()] == [m.content for m in msgs]


def test_sharegpt_sample_reads_and_writes_back_identically() -> None:
    path = DATA / "sharegpt-sample.json"
    result = read_file(path)
    assert result.format == "sharegpt"
    assert len(result.conversations) == 500
    text, _ = write_text(result.conversations, "sharegpt")
    assert json.loads(text) == json.loads(path.read_text())


def test_errors_are_tela_memory_errors() -> None:
    with pytest.raises(TelaMemoryError):
        read_text("{", "tela")


def test_half_written_thread_is_removed(store: SQLiteStore) -> None:
    main = [Message.user("q"), Message.assistant("a")]
    conv = Conversation.linear(main, id="half")
    orphan = Message.tool("no-such-call", "result", parent_id=main[0].id)
    conv.messages.append(orphan)
    conv.branches["alt"] = orphan.id
    with pytest.raises(ImportAborted, match="orphan tool result"):
        import_conversations(store, [conv], user_id="ann")
    assert store.list_threads("ann").threads == ()


def test_existing_message_ids_leave_the_other_thread_alone(store: SQLiteStore) -> None:
    msgs = [Message.user("q"), Message.assistant("a")]
    import_conversations(store, [Conversation.linear(msgs, id="first")], user_id="ann")
    again = Conversation.linear(msgs, id="second")  # same message ids, another thread
    with pytest.raises(ImportAborted) as info:
        import_conversations(store, [again], user_id="ann")
    assert isinstance(info.value.cause, ConflictError)
    assert [t.id for t in store.list_threads("ann").threads] == ["first"]
    assert [m.text for m in store.read("first", user_id="ann")] == ["q", "a"]


async def test_async_twins_match_the_sync_ones(tmp_path: Path, store: SQLiteStore) -> None:
    convs = read_text(json.dumps(sharegpt(3))).conversations
    path = tmp_path / "out.json"
    report = await awrite_file(path, convs, "sharegpt")
    assert report.counts() == write_file(tmp_path / "sync.json", convs, "sharegpt").counts()
    assert path.read_text() == (tmp_path / "sync.json").read_text()
    result = await aread_file(path)
    assert [c.id for c in result.conversations] == ["c0", "c1", "c2"]
    imported = await aimport_conversations(store, result.conversations, user_id="ann")
    assert imported.threads == ["c0", "c1", "c2"]
    loaded = await aload_conversation(store, "c1", user_id="ann")
    assert [m.text for m in loaded.path()] == ["hi 1", "hello 1"]
