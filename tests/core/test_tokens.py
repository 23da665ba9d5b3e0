"""Token counters: exact, Hugging Face, approximate; overhead, media, tools, cache, fallback."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import tiktoken

from tela_memory import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    MissingDependency,
    TelaMemoryError,
    TextBlock,
    ToolCallBlock,
)
from tela_memory.tokens import (
    ApproxCounter,
    CachedCounter,
    Family,
    HFTokenizerCounter,
    TiktokenCounter,
    TokenizerUnavailableWarning,
    UnknownModelError,
    anthropic_image_tokens,
    context_window,
    counter_for_model,
    gemini_image_tokens,
    model_info,
    openai_image_tokens,
    register_model,
    tool_call_wire,
)

TEXT = "Tela Memory keeps conversations within budget: naïve café, 東京, emoji 🎉."


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
    ],
)
def test_tiktoken_picks_the_encoding_from_the_model_and_counts_exactly(
    model: str, encoding: str
) -> None:
    counter = TiktokenCounter(model)
    assert counter.encoding_name == encoding
    expected = len(tiktoken.get_encoding(encoding).encode_ordinary(TEXT))
    assert counter.count_text(TEXT) == expected
    assert counter.exact
    assert counter.id == f"tiktoken:{encoding}:openai"


def test_openai_message_framing_matches_the_cookbook_rule() -> None:
    counter = TiktokenCounter("gpt-4o")
    enc = tiktoken.get_encoding("o200k_base")
    msg = Message.user("What is the capital of France?", name="alice")
    expected = (
        3 + len(enc.encode("user")) + len(enc.encode(msg.text)) + 1 + len(enc.encode("alice"))
    )
    assert counter.count_message(msg) == expected
    assert counter.count_messages([msg, msg]) == 2 * expected + 3


def test_special_token_text_is_counted_as_ordinary_text() -> None:
    counter = TiktokenCounter("gpt-4o")
    assert counter.count_text("<|endoftext|>") > 1


def test_unknown_models_raise_a_clear_error_and_can_be_registered() -> None:
    with pytest.raises(UnknownModelError, match="unknown model 'zeta-9'"):
        model_info("zeta-9")
    with pytest.raises(UnknownModelError):
        counter_for_model("")
    register_model("zeta-", family="generic", window=32_000)
    assert context_window("zeta-9") == 32_000
    assert isinstance(counter_for_model("zeta-9"), ApproxCounter)
    with pytest.raises(TelaMemoryError):
        register_model("bad", family="generic", window=0)


def test_counter_for_model_uses_approximation_with_a_margin_where_no_tokenizer_exists() -> None:
    claude = counter_for_model("claude-sonnet-4-5")
    assert isinstance(claude, ApproxCounter)
    assert claude.family is Family.ANTHROPIC
    assert claude.count_text("a" * 400) == 110  # 100 tokens + 10% margin
    assert isinstance(counter_for_model("gpt-4o"), TiktokenCounter)
    assert context_window("claude-3-5-haiku") == 200_000
    assert context_window("gpt-4o") == 128_000


def test_approx_counter_rule() -> None:
    counter = ApproxCounter()
    assert counter.count_text("") == 0
    assert counter.count_text("abcdefgh") == 2
    assert counter.count_text("abcdefghi") == 3
    assert counter.count_text("東京都") == 3
    assert ApproxCounter(ratio=2.0).count_text("abcdefgh") == 4
    with pytest.raises(TelaMemoryError):
        ApproxCounter(ratio=0)


@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1024, 1024, "high", 765),
        (1024, 1024, "low", 85),
        (2048, 4096, "high", 1105),
        (512, 512, "auto", 255),
        (None, None, "high", 1445),
        (None, None, "low", 85),
    ],
)
def test_openai_image_tiles(
    width: int | None, height: int | None, detail: str, tokens: int
) -> None:
    assert openai_image_tokens(width, height, detail) == tokens


def test_anthropic_and_gemini_image_rules() -> None:
    assert anthropic_image_tokens(1000, 1000) == 1334
    assert anthropic_image_tokens(200, 200) == 54
    assert anthropic_image_tokens(3000, 3000) == 1600
    assert anthropic_image_tokens(None, 100) == 1600
    assert gemini_image_tokens(300, 300) == 258
    assert gemini_image_tokens(1000, 1000) == 1032


def test_media_blocks_are_costed_by_family() -> None:
    image = ImageBlock(url="https://example.org/a.png", width=1000, height=1000)
    msg = Message.user([TextBlock(text="look"), image])
    openai, anthropic = ApproxCounter("openai"), ApproxCounter("anthropic")
    base = openai.count_message(Message.user("look"))
    assert openai.count_message(msg) - base == 765
    base_a = anthropic.count_message(Message.user("look"))
    assert anthropic.count_message(msg) - base_a == 1334


def test_documents_and_audio() -> None:
    counter = ApproxCounter("anthropic")
    assert counter.count_block(DocumentBlock(text="x" * 40)) == 10
    assert counter.count_block(DocumentBlock(url="https://e.org/a.pdf", pages=3)) == 6900
    assert counter.count_block(DocumentBlock(ref="file-1")) == 3000
    assert ApproxCounter("openai").count_block(AudioBlock(ref="a", duration_s=12)) == 120
    assert counter.count_block(AudioBlock(ref="a", transcript="y" * 20)) == 5
    assert counter.count_block(AudioBlock(ref="a")) == 1500


def test_tool_calls_and_results_are_counted_as_sent() -> None:
    counter = TiktokenCounter("gpt-4o")
    call = ToolCallBlock(id="call_1", name="get_weather", arguments={"city": "Paris", "days": 3})
    assert counter.count_block(call) == counter.count_text(tool_call_wire(call))
    assert '"arguments"' not in tool_call_wire(call)  # arguments travel as a JSON string
    assert '{"city":"Paris","days":3}' in tool_call_wire(call)
    # counted as the model reads function.arguments: the decoded string, not its escaped form
    sent = {"function": {"arguments": '{"city":"Paris","days":3}'}}
    assert tool_call_wire(call).endswith(sent["function"]["arguments"])
    assert "\\" not in tool_call_wire(call)
    bigger = call.model_copy(update={"arguments": {"city": "Paris " * 50, "days": 3}})
    assert counter.count_block(bigger) > counter.count_block(call) + 40
    result = Message.tool("call_1", "sunny, 21 degrees")
    expected = counter.count_text("call_1") + counter.count_text("sunny, 21 degrees")
    assert counter.count_message(result) == 3 + counter.count_text("tool") + expected


def test_cache_counts_each_message_once_and_recounts_edits() -> None:
    cached = CachedCounter(TiktokenCounter("gpt-4o"))
    msg = Message.user("hello there, how are you today?")
    first = cached.count_message(msg)
    assert cached.count_message(msg) == first
    assert (cached.misses, cached.hits) == (1, 1)
    edited = msg.model_copy(update={"content": Message.user("a much longer text " * 20).content})
    assert cached.count_message(edited) > first
    assert cached.misses == 2
    cached.invalidate(msg.id)
    cached.count_message(edited)
    assert cached.misses == 3
    cached.invalidate()
    assert len(cached) == 0


def test_cache_is_bounded_and_keyed_per_counter() -> None:
    small = CachedCounter(ApproxCounter(), maxsize=2)
    msgs = [Message.user(f"message {i}") for i in range(3)]
    for m in msgs:
        small.count_message(m)
    assert len(small) == 2
    other = CachedCounter(TiktokenCounter("gpt-4"))
    assert other.id != small.id
    with pytest.raises(TelaMemoryError):
        CachedCounter(ApproxCounter(), maxsize=0)


def test_unavailable_encoding_falls_back_with_exactly_one_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = TiktokenCounter(encoding="tela_test_missing_encoding")
        b = TiktokenCounter(encoding="tela_test_missing_encoding")
        counts = [a.count_text("abcdefgh"), b.count_text("abcdefgh"), a.count_text("abcd")]
    assert counts == [2, 2, 1]
    relevant = [w for w in caught if issubclass(w.category, TokenizerUnavailableWarning)]
    assert len(relevant) == 1
    assert "TIKTOKEN_CACHE_DIR" in str(relevant[0].message)
    assert not a.exact
    assert a.id.startswith("approx-fallback:")


def test_offline_without_a_cache_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, socket_disabled: None
) -> None:
    import tiktoken.registry

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})  # nothing loaded in-process
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        counter = TiktokenCounter(encoding="p50k_base")
        assert counter.count_text("abcdefgh") == 2
    assert not counter.exact
    assert any(issubclass(w.category, TokenizerUnavailableWarning) for w in caught)


def test_no_io_in_constructors() -> None:
    counter = TiktokenCounter(encoding="tela_test_never_loaded")
    assert counter._encode is None
    hf = HFTokenizerCounter("/nonexistent/tokenizer.json")
    assert hf._tokenizer is None


def _tokenizer_file(tmp_path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["[UNK]"])
    tok.train_from_iterator(["hello world", "tela memory keeps context"], trainer)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    return path


def test_hf_tokenizer_counter_counts_with_the_file(tmp_path: Path) -> None:
    counter = HFTokenizerCounter(_tokenizer_file(tmp_path))
    assert counter.count_text("hello world") == 2
    assert counter.count_text("tela memory keeps unknown words") == 5
    assert counter.id == "hf:tokenizer.json:generic"
    assert counter.count_message(Message.user("hello world")) == 5 + 1 + 2


def test_hf_tokenizer_bad_files(tmp_path: Path) -> None:
    with pytest.raises(TelaMemoryError, match="does not exist"):
        HFTokenizerCounter(tmp_path / "missing.json").count_text("x")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TelaMemoryError, match="not a valid tokenizers file"):
        HFTokenizerCounter(bad).count_text("x")


def test_hf_tokenizer_missing_dependency(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "tokenizers", None)
    with pytest.raises(MissingDependency) as err:
        HFTokenizerCounter(tmp_path / "t.json").count_text("x")
    assert err.value.extra == "tokenizers"
    assert 'pip install "tela-memory[tokenizers]"' in str(err.value)
