"""The context engine on hand-made histories: rules, bad input, parts, incremental cost."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from context_roles import check_roles
from context_threads import check

from tela_memory import Message, Role, TelaMemoryError, ToolCallBlock
from tela_memory.context import (
    BrokenHistoryError,
    Budget,
    BudgetError,
    Context,
    ContextPolicy,
    Decision,
    ExtractiveSummarizer,
    Importance,
    LLMSummarizer,
    PinnedPrefix,
    Pressure,
    PressureEvent,
    PressureLevel,
    Reason,
    Recall,
    RecentWindow,
    Summary,
    TaskKind,
    classify_task,
    truncate_message,
)
from tela_memory.tokens import ApproxCounter, TiktokenCounter, UnknownModelError

COUNTER = ApproxCounter("openai")


def turns(n: int, words: int = 40, start: int = 0) -> list[Message]:
    out: list[Message] = []
    for i in range(start, start + n):
        out.append(Message.user(f"question {i}: " + "lorem ipsum dolor " * (words // 3)))
        out.append(Message.assistant(f"answer {i}. " + "sit amet consectetur " * (words // 3)))
    return out


def summary_text(ctx: Context) -> str:
    return next(m.text for m in ctx.messages if m.metadata.get("tela.kind") == "summary")


def tool_turn(i: int, result_words: int = 30) -> list[Message]:
    call = ToolCallBlock(id=f"call-{i}", name="search", arguments={"q": f"item {i}"})
    return [
        Message.user(f"look up item {i}"),
        Message.assistant("", tool_calls=[call]),
        Message.tool(f"call-{i}", "found " + "data " * result_words),
        Message.assistant(f"item {i} is here."),
    ]


# -- budget sizing --------------------------------------------------------------------------


def test_budget_sizes() -> None:
    assert Budget.fixed(8000).resolve() == 8000
    assert Budget.for_model("gpt-4o", fraction=0.5).resolve() == 64_000
    assert Budget.for_model("my-model", window=10_000, fraction=0.5).resolve() == 5_000
    assert Budget.for_model("gpt-4", fraction=1.0, reserve_output=1_000).resolve() == 7_192
    dynamic = Budget.dynamic("gpt-4o")
    assert dynamic.resolve(query="What is the capital of France?") == int(128_000 * 0.3)
    assert dynamic.resolve(query="Explain step by step why the proof works") == int(128_000 * 0.9)
    assert dynamic.resolve(query="fix this:\n```py\nprint(1\n```") == int(128_000 * 0.7)
    assert dynamic.resolve(query="tell me a story about the sea") == int(128_000 * 0.5)
    assert dynamic.resolve(task="qa") == int(128_000 * 0.3)
    custom = Budget.dynamic("gpt-4o", fractions={"qa": 0.1})
    assert custom.resolve(task=TaskKind.QA) == 12_800


def test_classify_task_rule() -> None:
    assert classify_task(None) is TaskKind.CHAT
    assert classify_task("who wrote it") is TaskKind.QA
    assert classify_task("word " * 200) is TaskKind.REASONING
    assert classify_task("there is a bug in my function") is TaskKind.CODE


@pytest.mark.parametrize(
    "make",
    [
        lambda: Budget.fixed(0),
        lambda: Budget(tokens=-5),
        lambda: Budget.for_model("gpt-4o", fraction=1.5),
        lambda: Budget.for_model("gpt-4o", fraction=0.01, reserve_output=10_000).resolve(),
        lambda: Budget.dynamic("gpt-4o", fractions={"qa": 0}),
        lambda: Budget().resolve(),
        lambda: ContextPolicy(budget="lots"),  # type: ignore[arg-type]
        lambda: ContextPolicy(budget=True),
        lambda: RecentWindow(low_water=0),
        lambda: Summary(share=1.0),
        lambda: Pressure(warn=0.9, compress=0.5),
        lambda: PinnedPrefix(first_turns=-1),
        lambda: Importance(overflow=0.5),
    ],
)
def test_bad_budget_settings_raise_budget_error(make: object) -> None:
    with pytest.raises(BudgetError):
        make()  # type: ignore[operator]


def test_unknown_model_in_a_budget() -> None:
    with pytest.raises(UnknownModelError, match="unknown model"):
        Budget.for_model("mystery-llm")
    assert isinstance(UnknownModelError("x"), TelaMemoryError)


# -- the basic shape ------------------------------------------------------------------------


def test_small_history_is_sent_whole_with_a_report() -> None:
    history = [Message.system("be brief"), *turns(3)]
    ctx = ContextPolicy(10_000, counter=COUNTER).build(history)
    assert ctx.messages == history
    assert ctx.tokens == COUNTER.count_messages(history)
    assert ctx.report.tokens_in == ctx.tokens
    assert ctx.report.ids(Decision.PINNED) == [m.id for m in history[:3]]
    assert ctx.report.ids(Decision.KEPT) == [m.id for m in history[3:]]
    assert ctx.report.stable_prefix_messages == 3
    assert 0 < ctx.report.budget_used < 1


def test_long_history_keeps_pinned_prefix_and_recent_window() -> None:
    history = [Message.system("be brief"), *turns(200)]
    policy = ContextPolicy(2_000, counter=COUNTER, pinned=PinnedPrefix(first_turns=1))
    ctx = policy.build(history)
    check(ctx, history, 2_000, policy.cached)
    assert ctx.messages[:3] == history[:3]
    assert ctx.messages[-1] == history[-1]
    assert len(ctx.report.folded) > 300
    assert ctx.report.folded_as is Decision.DROPPED
    assert ctx.report.summary_covers == len(ctx.report.folded)


def test_default_counter_comes_from_the_budget_model() -> None:
    policy = ContextPolicy(Budget.for_model("gpt-4", fraction=0.5))
    assert isinstance(policy.counter, TiktokenCounter)
    assert policy.counter.encoding_name == "cl100k_base"


# -- bad input ------------------------------------------------------------------------------


def test_a_message_larger_than_the_budget_is_truncated_not_dropped() -> None:
    huge = Message.user("start " + "filler text " * 3_000 + " the end")
    history = [Message.system("sys"), *turns(2), huge]
    policy = ContextPolicy(500, counter=COUNTER, pinned=PinnedPrefix(first_turns=0))
    ctx = policy.build(history)
    check(ctx, history, 500, policy.cached)
    sent = ctx.messages[-1]
    assert sent.id == huge.id
    assert sent.text.startswith("start ")
    assert sent.text.endswith(" the end")
    assert "tokens cut by tela-memory" in sent.text
    assert sent.metadata["tela.truncated"] == COUNTER.count_message(huge)
    assert ctx.report.ids(Decision.TRUNCATED) == [huge.id]
    assert ctx.tokens <= 500


def test_truncation_replaces_media_when_text_is_not_enough() -> None:
    from tela_memory import ImageBlock, TextBlock

    msg = Message.user([TextBlock(text="see"), ImageBlock(url="https://e.org/x.png")])
    cut = truncate_message(msg, 60, COUNTER)
    assert cut is not None
    assert "image omitted" in cut.text
    assert COUNTER.count_message(cut) <= 60
    call = Message.assistant(
        "", tool_calls=[ToolCallBlock(id="c", name="n", arguments={"a": "x" * 900})]
    )
    assert truncate_message(call, 50, COUNTER) is None


def test_a_budget_smaller_than_the_system_prompt_is_a_clear_error() -> None:
    history = [Message.system("rules " * 500), *turns(1)]
    with pytest.raises(BudgetError, match="pinned system messages need"):
        ContextPolicy(100, counter=COUNTER).build(history)


def test_pinned_first_turns_are_released_when_the_budget_cannot_hold_them() -> None:
    history = [Message.system("sys"), *turns(1, words=600), *turns(3, start=1)]
    policy = ContextPolicy(400, counter=COUNTER, pinned=PinnedPrefix(first_turns=1))
    ctx = policy.build(history)
    check(ctx, history, 400, policy.cached)
    assert any("released" in note for note in ctx.report.notes)
    assert ctx.report.ids(Decision.PINNED) == [history[0].id]


def test_broken_tool_pairs_are_dropped_or_raise() -> None:
    orphan = Message.tool("nobody", "a result without a call")
    unanswered = Message.assistant(
        "", tool_calls=[ToolCallBlock(id="a", name="f"), ToolCallBlock(id="b", name="f")]
    )
    partial = Message.tool("a", "only one of two results")
    history = [Message.user("hi"), orphan, unanswered, partial, *turns(1)]
    policy = ContextPolicy(5_000, counter=COUNTER)
    ctx = policy.build(history)
    check(ctx, history, 5_000, policy.cached)
    dropped = {r.id: r.reason for r in ctx.report.messages if r.decision is Decision.DROPPED}
    assert dropped == {
        orphan.id: Reason.BROKEN_TOOL_PAIR,
        unanswered.id: Reason.BROKEN_TOOL_PAIR,
        partial.id: Reason.BROKEN_TOOL_PAIR,
    }
    with pytest.raises(BrokenHistoryError, match="broken tool pair"):
        ContextPolicy(5_000, counter=COUNTER, on_broken="raise").build(history)


def test_pending_tool_calls_wait_for_their_results() -> None:
    call = Message.assistant("", tool_calls=[ToolCallBlock(id="x", name="f")])
    history = [*turns(2), Message.user("do it"), call]
    builder = ContextPolicy(5_000, counter=COUNTER).builder()
    ctx = builder.build(history)
    assert call.id not in {m.id for m in ctx.messages}
    assert ctx.report.ids(Decision.PENDING) == [call.id]
    history.append(Message.tool("x", "done"))
    ctx = builder.build(history)
    assert [m.id for m in ctx.messages[-2:]] == [call.id, history[-1].id]


def test_parallel_calls_and_thinking_stay_together() -> None:
    from tela_memory import ThinkingBlock

    think = Message(role=Role.ASSISTANT, content=[ThinkingBlock(text="plan", signature="s")])
    calls = Message.assistant(
        "", tool_calls=[ToolCallBlock(id="p1", name="f"), ToolCallBlock(id="p2", name="g")]
    )
    history = [
        *turns(30),
        Message.user("go"),
        think,
        calls,
        Message.tool("p2", "two " * 50),
        Message.tool("p1", "one " * 50),
        Message.assistant("done"),
    ]
    for budget in range(250, 1200, 50):
        policy = ContextPolicy(budget, counter=COUNTER, pinned=PinnedPrefix(first_turns=0))
        ctx = policy.build(history)
        check(ctx, history, budget, policy.cached)
        ids = [m.id for m in ctx.messages]
        group = [think.id, calls.id, history[-3].id, history[-2].id]
        assert all(i in ids for i in group) or not any(i in ids for i in group)


# -- importance -----------------------------------------------------------------------------


def test_importance_keeps_pinned_and_relevant_middle_turns() -> None:
    history = turns(40)
    pinned = Message.user("remember: my account number is 4417", metadata={"tela.pin": True})
    history.insert(10, pinned)
    # a whole middle turn on the query's subject (a question goes with its answer)
    relevant = Message.user("where does the zebra migration happen each year?")
    answer = Message.assistant("the zebra migration happens in the serengeti every year")
    history[21:21] = [relevant, answer]
    policy = ContextPolicy(
        1_500,
        counter=COUNTER,
        pinned=PinnedPrefix(first_turns=0),
        importance=Importance(overflow=10.0),
    )
    ctx = policy.build(history, query="where does the zebra migration happen?")
    check(ctx, history, 1_500, policy.cached)
    ids = {m.id for m in ctx.messages}
    assert pinned.id in ids
    assert relevant.id in ids
    assert answer.id in ids
    assert history[15].id not in ids
    assert any(r.reason is Reason.IMPORTANCE for r in ctx.report.messages)


def test_importance_rewards_turns_quoted_later() -> None:
    from tela_memory.context.importance import references
    from tela_memory.context.units import group

    quoted = Message.assistant("the deployment key rotates every ninety days on the first monday")
    later = Message.user("you said the deployment key rotates every ninety days, why?")
    units = group([quoted, Message.user("unrelated words here now"), later], COUNTER.count_message)
    assert references(units) == [1, 0, 0]


# -- summaries ------------------------------------------------------------------------------


class Recorder:
    """A plain callable chat model that records what it was asked to summarise."""

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []

    def __call__(self, messages: list[Message]) -> str:
        self.calls.append(messages)
        return f"summary v{len(self.calls)}: " + messages[-1].text[-200:]


def test_spans_are_summarised_once_and_progressively() -> None:
    recorder = Recorder()
    seen: list[list[str]] = []

    class Spy(LLMSummarizer):
        def summarize(self, previous, messages, *, max_tokens, counter):  # type: ignore[no-untyped-def]
            seen.append([m.id for m in messages])
            return super().summarize(previous, messages, max_tokens=max_tokens, counter=counter)

    policy = ContextPolicy(1_200, counter=COUNTER, summary=Summary(Spy(recorder), share=0.2))
    builder = policy.builder()
    history: list[Message] = [Message.system("sys")]
    for i in range(60):
        history.extend(turns(1, start=i))
        ctx = builder.build(history)
        check(ctx, history, 1_200, policy.cached)
    flat = [i for span in seen for i in span]
    assert len(seen) >= 3
    assert len(flat) == len(set(flat)), "a message was summarised twice"
    assert ctx.report.summary_covers == len(flat)
    assert f"summary v{len(recorder.calls)}" in summary_text(ctx)
    assert "Existing summary:\nsummary v" in recorder.calls[-1][-1].text  # builds on the last


def test_extractive_summary_keeps_informative_sentences_within_its_cap() -> None:
    history = [
        *turns(5),
        Message.user("My flight to Lisbon leaves on March 3rd at 9am. Can you book a hotel?"),
        Message.assistant("Booked Hotel Avenida in Lisbon for March 3rd to March 6th."),
        *turns(60, start=10),
    ]
    policy = ContextPolicy(1_500, counter=COUNTER, summary=Summary(share=0.15))
    ctx = policy.build(history)
    check(ctx, history, 1_500, policy.cached)
    text = summary_text(ctx)
    assert "Lisbon" in text
    assert COUNTER.count_text(text) <= int(0.15 * 1_500)
    out = ExtractiveSummarizer(per_span=2).summarize(
        "- user: old line", history[:4], max_tokens=30, counter=COUNTER
    )
    assert COUNTER.count_text(out) <= 30


async def test_async_llm_summariser_needs_abuild() -> None:
    async def model(messages: list[Message]) -> str:
        return "async summary of " + str(len(messages)) + " messages"

    policy = ContextPolicy(800, counter=COUNTER, summary=Summary(LLMSummarizer(model)))
    history = turns(40)
    with pytest.raises(TelaMemoryError, match="abuild"):
        policy.build(history)
    ctx = await policy.abuild(history)
    check(ctx, history, 800, policy.cached)
    assert "async summary of 2 messages" in summary_text(ctx)


def test_llm_summariser_must_return_text() -> None:
    policy = ContextPolicy(800, counter=COUNTER, summary=Summary(LLMSummarizer(lambda m: 42)))  # type: ignore[arg-type,return-value]
    with pytest.raises(TelaMemoryError, match="expected str"):
        policy.build(turns(40))
    with pytest.raises(TelaMemoryError):
        LLMSummarizer("not callable")  # type: ignore[arg-type]


# -- recall ---------------------------------------------------------------------------------


class KeywordRecaller:
    """Finds messages of a fixed history containing a query word (a real, tiny recaller)."""

    def __init__(self, history: Sequence[Message]) -> None:
        self.history = history
        self.asked: list[tuple[str, str | None, int]] = []

    def recall(self, query: str, thread: str | None, budget: int) -> list[Message]:
        self.asked.append((query, thread, budget))
        words = {w.strip("?.,").lower() for w in query.split() if len(w) > 4}
        return [m for m in self.history if words & set(m.text.lower().split())]


def test_recall_slot_fills_its_share_after_the_summary() -> None:
    history = turns(100)
    needle = Message.user("the password hint is periwinkle")
    history.insert(20, needle)
    history.insert(21, Message.assistant("noted"))
    recaller = KeywordRecaller(history)
    policy = ContextPolicy(2_000, counter=COUNTER, recall=Recall(recaller, share=0.2))
    ctx = policy.build(history, query="what was the periwinkle hint?")
    check(ctx, history, 2_000, policy.cached)
    assert recaller.asked[0][2] == 400
    assert ctx.report.ids(Decision.RECALLED) == [needle.id]
    assert ctx.report.recall_budget == 400
    no_query = policy.build(history)
    assert not no_query.report.ids(Decision.RECALLED)


def test_recalled_messages_already_in_the_window_are_not_repeated() -> None:
    history = turns(5)
    recaller = KeywordRecaller(history)
    policy = ContextPolicy(20_000, counter=COUNTER, recall=Recall(recaller))
    ctx = policy.build(history, query="question lorem")
    assert len({m.id for m in ctx.messages}) == len(ctx.messages)
    assert not ctx.report.ids(Decision.RECALLED)


def test_recall_sends_an_answer_only_with_its_question_in_turn_order() -> None:
    history = turns(100)
    # the answer matches the query, its question does not: alone it would answer nothing
    history[20:20] = [
        Message.user("what colour was the door?"),
        Message.assistant("the door was periwinkle"),
    ]
    # both halves match: recalled together, question first
    question = Message.user("is periwinkle a shade of blue?")
    answer = Message.assistant("periwinkle is a pale blue")
    history[40:40] = [question, answer]
    recaller = KeywordRecaller(history)
    policy = ContextPolicy(2_000, counter=COUNTER, recall=Recall(recaller, share=0.2))
    ctx = policy.build(history, query="what about periwinkle?")
    check(ctx, history, 2_000, policy.cached)
    check_roles(ctx, history)
    assert ctx.report.ids(Decision.RECALLED) == [question.id, answer.id]
    unpaired = [r.id for r in ctx.report.messages if r.reason is Reason.UNPAIRED]
    assert unpaired == [history[21].id]


# -- role order -----------------------------------------------------------------------------


def test_a_budget_sweep_over_a_long_thread_keeps_questions_with_their_answers() -> None:
    """The issue's sweep: budgets that used to give ``[system, q0, a0, a98, q99, a99]``."""
    history = [Message.system("You are helpful."), *turns(100, words=30)]
    for pinned in (PinnedPrefix(), PinnedPrefix(first_turns=0)):
        for budget in range(60, 3_000, 40):
            policy = ContextPolicy(budget, counter=COUNTER, pinned=pinned)
            try:
                ctx = policy.build(history)
            except BudgetError:
                assert budget < 200
                continue
            check(ctx, history, budget, policy.cached)
            check_roles(ctx, history)
            if ctx.report.ids(Decision.PINNED)[1:]:  # q0 pinned: a0 goes with it
                assert history[2].id in ctx.report.ids(Decision.PINNED)


def test_incremental_builds_fold_whole_turns() -> None:
    history = [Message.system("You are helpful.")]
    for i in range(60):
        history += turns(1, words=5 + (i * 7) % 40, start=i)
    for options in ({}, {"summary": Summary()}, {"importance": Importance()}):
        builder = ContextPolicy(900, counter=COUNTER, **options).builder()
        for n in range(1, len(history) + 1):
            ctx = builder.build(history[:n])
            check(ctx, history[:n], 900, builder.policy.cached)
            check_roles(ctx, history[:n])


def test_replies_before_the_first_question_are_not_sent() -> None:
    greeting = Message.assistant("Hello! How can I help?")
    history = [Message.system("You are helpful."), greeting, *turns(3)]
    for first_turns in (0, 1):
        ctx = ContextPolicy(
            5_000, counter=COUNTER, pinned=PinnedPrefix(first_turns=first_turns)
        ).build(history)
        check_roles(ctx, history)
        assert greeting.id not in {m.id for m in ctx.messages}
        assert [m.role for m in ctx.messages[:2]] == [Role.SYSTEM, Role.USER]
        report = next(r for r in ctx.report.messages if r.id == greeting.id)
        assert (report.decision, report.reason) == (Decision.DROPPED, Reason.UNPAIRED)


def test_a_dropped_middle_reply_does_not_join_two_assistant_messages() -> None:
    call = ToolCallBlock(id="call-1", name="search", arguments={"q": "x"})
    history = [
        Message.user("find it"),
        Message.assistant("let me look " + "first " * 30),
        Message.assistant([], tool_calls=[call]),
        Message.tool("call-1", "result " * 400),
        Message.assistant("found it"),
    ]
    # importance drops the large tool pair and would keep the short reply (like the query)
    policy = ContextPolicy(300, counter=COUNTER, importance=Importance())
    ctx = policy.build(history, query="let me look first")
    check(ctx, history, 300, policy.cached)
    check_roles(ctx, history)
    assert [m.id for m in ctx.messages] == [history[0].id, history[-1].id]
    reasons = {r.id: r.reason for r in ctx.report.messages}
    assert reasons[history[1].id] is Reason.ROLE_ORDER


# -- pressure -------------------------------------------------------------------------------


def test_pressure_callbacks_fire_as_the_history_fills() -> None:
    events: list[PressureEvent] = []
    policy = ContextPolicy(
        3_000,
        counter=COUNTER,
        pressure=Pressure(warn=0.5, compress=0.8, callbacks=[events.append]),
    )
    builder = policy.builder(thread_id="t1")
    history: list[Message] = []
    for i in range(60):
        history.extend(turns(1, start=i))
        builder.build(history)
        if events and events[-1].level is PressureLevel.OVERFLOW:
            break
    levels = [e.level for e in events]
    assert levels[:3] == [PressureLevel.WARN, PressureLevel.COMPRESS, PressureLevel.OVERFLOW]
    assert events[0].thread_id == "t1"
    assert 0.5 <= events[0].ratio < 0.8


# -- incremental cost -----------------------------------------------------------------------


def test_a_new_turn_counts_only_the_new_messages() -> None:
    policy = ContextPolicy(4_000, counter=TiktokenCounter("gpt-4o"), summary=Summary())
    builder = policy.builder()
    history = turns(1_500)
    builder.build(history)
    before = policy.cached.misses
    history.append(Message.user("one more question"))
    ctx = builder.build(history)
    assert policy.cached.misses - before <= 2  # the new message (and a new summary, if any)
    assert ctx.messages[-1].id == history[-1].id


def test_a_cold_build_counts_about_the_window_not_the_history() -> None:
    policy = ContextPolicy(4_000, counter=TiktokenCounter("gpt-4o"))
    history = turns(3_000)
    ctx = policy.build(history)
    assert policy.cached.misses < 3 * len(ctx.messages) + 20
    assert len(history) == 6_000


def test_an_edited_history_starts_over() -> None:
    policy = ContextPolicy(4_000, counter=COUNTER)
    builder = policy.builder()
    history = turns(10)
    builder.build(history)
    edited = [*history[:5], Message.user("a different branch")]
    ctx = builder.build(edited)
    assert [m.id for m in ctx.messages] == [m.id for m in edited]
