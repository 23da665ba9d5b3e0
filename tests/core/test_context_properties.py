"""Property tests: every invariant of the context engine over random threads."""

from __future__ import annotations

from context_roles import check_roles
from context_threads import check, texts, threads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory import Message, Role
from tela_memory.context import (
    BudgetError,
    ContextPolicy,
    Importance,
    PinnedPrefix,
    RecentWindow,
    Summary,
    prefix_hash,
    truncate_message,
)
from tela_memory.tokens import ApproxCounter, TiktokenCounter

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _system_cost(history: list[Message], counter: ApproxCounter | TiktokenCounter) -> int:
    head = []
    for m in history:
        if m.role is not Role.SYSTEM:
            break
        head.append(m)
    return counter.count_messages(head)


policies = st.fixed_dictionaries(
    {
        "first_turns": st.integers(0, 2),
        "summary": st.booleans(),
        "importance": st.booleans(),
        "low_water": st.sampled_from([0.5, 0.7, 1.0]),
    }
)


def _policy(budget: int, opts: dict[str, object], counter: object) -> ContextPolicy:
    return ContextPolicy(
        budget,
        counter=counter,  # type: ignore[arg-type]
        pinned=PinnedPrefix(first_turns=int(opts["first_turns"])),  # type: ignore[call-overload]
        window=RecentWindow(low_water=float(opts["low_water"])),  # type: ignore[arg-type]
        summary=Summary() if opts["summary"] else None,
        importance=Importance() if opts["importance"] else None,
    )


@SETTINGS
@given(
    history=threads(),
    budget=st.integers(60, 4000),
    opts=policies,
    query=st.one_of(st.none(), texts(12)),
)
def test_one_shot_build_keeps_every_invariant(
    history: list[Message], budget: int, opts: dict[str, object], query: str | None
) -> None:
    counter = ApproxCounter("openai")
    policy = _policy(budget, opts, counter)
    try:
        ctx = policy.build(history, query=query)
    except BudgetError:
        # allowed only when the budget cannot hold the system prompt plus a minimal turn
        assert budget < _system_cost(history, counter) + 700
        return
    check(ctx, history, budget, policy.cached)
    check_roles(ctx, history)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=threads(max_turns=40), opts=policies, step=st.integers(37, 181))
def test_a_budget_sweep_keeps_roles_valid_and_pairs_whole(
    history: list[Message], opts: dict[str, object], step: int
) -> None:
    """Every budget from tiny to roomy over one random thread: within budget, tool pairs
    whole, a user turn first, every answer with its question, no assistant after an
    assistant that the history did not have (also once the pinned first turn is released)."""
    counter = ApproxCounter("anthropic")
    for budget in range(60, 6000, step):
        policy = _policy(budget, opts, counter)
        try:
            ctx = policy.build(history)
        except BudgetError:
            assert budget < _system_cost(history, counter) + 700
            continue
        check(ctx, history, budget, policy.cached)
        check_roles(ctx, history)


@SETTINGS
@given(history=threads(max_turns=30), budget=st.integers(300, 3000), opts=policies)
def test_incremental_builds_keep_invariants_and_a_stable_prefix(
    history: list[Message], budget: int, opts: dict[str, object]
) -> None:
    counter = ApproxCounter("anthropic")
    policy = _policy(budget, opts, counter)
    builder = policy.builder()
    previous = None
    for n in range(1, len(history) + 1):
        try:
            ctx = builder.build(history[:n])
        except BudgetError:
            assert budget < _system_cost(history, counter) + 700
            return
        check(ctx, history[:n], budget, policy.cached)
        check_roles(ctx, history[:n])
        report = ctx.report
        assert report.stable_prefix_hash == prefix_hash(
            ctx.messages[: report.stable_prefix_messages]
        )
        if (
            previous is not None
            and not report.summary_changed
            and not report.notes
            and not previous.report.notes
            and previous.report.stable_prefix_messages == report.stable_prefix_messages
        ):
            # the cache-stable prefix is byte-identical to the previous turn's
            assert report.stable_prefix_hash == previous.report.stable_prefix_hash
        previous = ctx


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=threads(max_turns=15), budget=st.integers(200, 3000))
def test_invariants_hold_with_exact_tiktoken_counts(history: list[Message], budget: int) -> None:
    counter = TiktokenCounter("gpt-4o")
    policy = ContextPolicy(budget, counter=counter, summary=Summary())
    try:
        ctx = policy.build(history)
    except BudgetError:
        assert budget < _system_cost(history, counter) + 700
        return
    assert counter.exact
    check(ctx, history, budget, policy.cached)
    check_roles(ctx, history)


@SETTINGS
@given(history=threads(max_turns=20, broken=False), budget=st.integers(400, 3000))
def test_the_pinned_prefix_stays_once_the_first_turn_is_complete(
    history: list[Message], budget: int
) -> None:
    policy = ContextPolicy(budget, counter=ApproxCounter(), pinned=PinnedPrefix(first_turns=1))
    builder = policy.builder()
    pinned_before: list[str] | None = None
    for n in range(1, len(history) + 1):
        try:
            ctx = builder.build(history[:n])
        except BudgetError:
            return
        if ctx.report.notes:
            return  # released because the budget could not hold it (documented rule)
        pinned = [r.id for r in ctx.report.messages if r.decision.value == "pinned"]
        users = sum(1 for m in history[:n] if m.role is Role.USER)
        if pinned_before is not None and users >= 2:
            assert pinned == pinned_before
        if users >= 2:
            pinned_before = pinned


@SETTINGS
@given(
    words=st.integers(1, 3_000),
    room=st.integers(20, 2_000),
    exact=st.booleans(),
)
def test_truncation_fits_the_room_and_keeps_both_ends(words: int, room: int, exact: bool) -> None:
    counter = TiktokenCounter("gpt-4o") if exact else ApproxCounter()
    text = "start " + " ".join(f"w{i}" for i in range(words)) + " finish"
    msg = Message.user(text)
    cut = truncate_message(msg, room, counter)
    if counter.count_message(msg) <= room:
        assert cut is msg
        return
    assert cut is not None
    assert cut.id == msg.id
    assert counter.count_message(cut) <= room
    if counter.count_message(cut) > 40:  # room for more than the marker
        assert cut.text.startswith("start")
        assert cut.text.endswith("finish")
