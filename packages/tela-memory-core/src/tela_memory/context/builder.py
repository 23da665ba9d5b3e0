"""``ContextBuilder``: the incremental state machine behind every context build.

One builder follows one conversation. Each build ingests only the messages it has not seen
(O(new)), folds the oldest part of the window into the summary when the window overflows
(cutting back to ``low_water`` so the next turns append without touching the prefix), selects
what fits, and assembles ``pinned + summary + recalled + window``. The first build of a long
history walks backwards from the newest message and counts only what it keeps (O(window)).

Role order (what Anthropic, Gemini and OpenAI all accept): the messages after the system ones
start with a user turn; an answer is sent only with its question (a user message and its
replies are folded, dropped and recalled together, the newest turn excepted, whose middle
replies may go); two assistant messages are never put side by side unless they were so in
the history. Replies before the first user message answer nothing and are not sent
(``unpaired``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tela_memory.context import importance as imp
from tela_memory.context.budget import TaskKind
from tela_memory.context.errors import BrokenHistoryError, BudgetError
from tela_memory.context.policy import ContextPolicy
from tela_memory.context.report import (
    Context,
    ContextReport,
    Decision,
    IdView,
    MessageReport,
    PressureEvent,
    PressureLevel,
    Reason,
    prefix_hash,
)
from tela_memory.context.state import SummaryState
from tela_memory.context.summarize import AsyncSummarizer, Summarizer, fit_text
from tela_memory.context.truncate import fit_units
from tela_memory.context.units import Grouper, Unit, find_cut, group
from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message, Role

_SYSTEMS = (Role.SYSTEM, Role.DEVELOPER)
_LEVELS = list(PressureLevel)


@dataclass
class _Plan:
    budget: int
    query: str | None
    span: list[Message] = field(default_factory=list)
    folded: bool = False
    notes: list[str] = field(default_factory=list)
    tokens_in: int = 0
    ratio: float = 0.0
    level: PressureLevel = PressureLevel.OK
    summary_changed: bool = False


@dataclass
class _Selection:
    kept: list[Unit]
    dropped: list[tuple[Unit, Reason]]
    truncated: dict[str, int]
    use_summary: bool
    recall_budget: int
    tokens: int


class ContextBuilder:
    """Builds contexts for one growing conversation (not thread-safe; one per thread).

    ``build(messages)`` accepts the whole history each time; when it extends the history of
    the previous call (same first id, same id at the previous end), only the new messages are
    processed. Anything else (an edit, another branch) starts over.
    """

    def __init__(self, policy: ContextPolicy, *, thread_id: str | None = None) -> None:
        self.policy = policy
        self.thread_id = thread_id
        self._count = policy.cached.count_message
        self.reset()

    # -- state ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything but the summary's persisted form (call after editing history)."""
        self._n = 0
        self._first_id: str | None = None
        self._last_id: str | None = None
        self._grouper = Grouper(self._count)
        self._pinned: list[Unit] = []
        self._pinned_open = True
        self._preamble: list[Unit] = []
        self._turns = 0
        self._region: deque[Unit] = deque()
        self._region_tokens = 0
        self._summary: SummaryState | None = None
        self._level = PressureLevel.OK
        self._prefix_key: tuple[str, ...] = ()
        self._prefix_hash = prefix_hash([])

    @property
    def summary(self) -> SummaryState | None:
        """The running summary, if any span was folded."""
        return self._summary

    def load_summary(self, state: SummaryState | None) -> None:
        """Start from a persisted summary (before the first build)."""
        self._summary = state
        if state is not None and state.text:
            self._render_summary(state)

    # -- ingest -----------------------------------------------------------------------------

    def _pins(self, unit: Unit) -> bool:
        cfg = self.policy.pinned
        if unit.has_user:
            if self._turns < cfg.first_turns:
                self._turns += 1
                return True
            return False
        if self._turns == 0:
            if unit.first_role in _SYSTEMS and all(r in _SYSTEMS for r in self._roles(unit)):
                return cfg.system or cfg.first_turns > 0
            return cfg.first_turns > 0
        return True  # a reply inside a pinned turn

    @staticmethod
    def _roles(unit: Unit) -> list[Role]:
        return [m.role for m in unit.messages]

    def _route(self, unit: Unit) -> None:
        if unit.broken and self.policy.on_broken == "raise":
            raise BrokenHistoryError(
                f"broken tool pair in history at message(s) {unit.ids}: a tool call without "
                "all its results, or a result without its call"
            )
        if unit.turn == 0 and not unit.is_free:  # before the first question: sent never
            self._preamble.append(unit)
            return
        if self._pinned_open and self._pins(unit):
            self._pinned.append(unit)
            return
        self._pinned_open = False
        self._region.append(unit)
        if not unit.broken:
            self._region_tokens += unit.tokens

    def _feed(self, messages: Sequence[Message]) -> None:
        for unit in self._grouper.feed(messages):
            self._route(unit)

    def _pinned_tokens(self) -> int:
        return sum(u.tokens for u in self._pinned if not u.broken)

    def _room(self, budget: int) -> int:
        """Room for the window when every reserve is held (fold decisions use this)."""
        pol = self.policy
        room = budget - pol.cached.reply_priming - self._pinned_tokens()
        if pol.summary is not None:
            room -= int(pol.summary.share * budget)
        if pol.recall is not None:
            room -= int(pol.recall.share * budget)
        return room

    def _overflow(self) -> float:
        return self.policy.importance.overflow if self.policy.importance else 1.0

    def _refill(self, budget: int) -> float:
        """What the window is cut back to when it overflows."""
        return self.policy.window.low_water * self._overflow() * self._room(budget)

    def _check_pinned(self, budget: int, plan: _Plan) -> None:
        priming = self.policy.cached.reply_priming
        system = sum(u.tokens for u in self._pinned if not u.broken and u.first_role in _SYSTEMS)
        if priming + system > budget:
            raise BudgetError(
                f"the pinned system messages need {priming + system} tokens but the budget "
                f"is {budget}: raise the budget or shorten the system prompt"
            )
        if self._room(budget) <= 0 and any(u.first_role not in _SYSTEMS for u in self._pinned):
            self._release(plan, "pinned first turns released: the budget cannot hold them")

    def _release(self, plan: _Plan, note: str) -> None:
        keep = [u for u in self._pinned if u.first_role in _SYSTEMS and not u.has_user]
        cut = len(keep)
        for i, u in enumerate(self._pinned):  # system units before the first turn only
            if u.first_role not in _SYSTEMS:
                cut = i
                break
        released = self._pinned[cut:]
        self._pinned = self._pinned[:cut]
        self._pinned_open = False
        for u in reversed(released):
            self._region.appendleft(u)
            if not u.broken:
                self._region_tokens += u.tokens
        plan.notes.append(note)

    def _ingest_cold(self, messages: Sequence[Message], plan: _Plan) -> None:
        n, i = len(messages), 0
        while i < n and self._pinned_open:
            self._feed(messages[i : i + 1])
            i += 1
        self._check_pinned(plan.budget, plan)
        if i >= n:
            return
        in_region = sum(len(u.messages) for u in self._region) + len(self._grouper._open)
        region_start = i - in_region
        start = region_start
        summary = self._summary
        if summary is not None:
            at = next(
                (k for k in range(n - 1, region_start - 1, -1) if messages[k].id == summary.upto),
                None,
            )
            if at is None:
                plan.notes.append("stored summary discarded: its last message is not in history")
                self._summary = None
            else:
                start = at + 1
        keep_from = next(
            (k for k in range(n - 1, start - 1, -1) if messages[k].role is Role.USER), None
        )
        target = int(self._overflow() * self._room(plan.budget))  # cold: fill the room
        cut = find_cut(messages, start=start, target=target, count=self._count, keep_from=keep_from)
        if keep_from is not None:  # a question goes with its answers: cut before a user turn
            while cut < keep_from and messages[cut].role is not Role.USER:
                cut += 1
        if cut > region_start:
            plan.span = list(messages[start:cut])
            plan.folded = cut > start
            self._region.clear()
            self._region_tokens = 0
            old = self._grouper
            self._grouper = Grouper(self._count, seq=old.seq, turn=old.turn)
            self._feed(messages[cut:])
        else:
            self._feed(messages[i:])

    def _ingest(self, messages: Sequence[Message], plan: _Plan) -> None:
        n = len(messages)
        extends = (
            self._n > 0
            and n >= self._n
            and messages[0].id == self._first_id
            and messages[self._n - 1].id == self._last_id
        )
        if not extends:
            saved = self._summary
            self.reset()
            self.load_summary(saved)
            if n:
                self._ingest_cold(messages, plan)
        else:
            new = messages[self._n :]
            if self._pinned_open:
                for k in range(len(new)):
                    self._feed(new[k : k + 1])
            else:
                self._feed(new)
            self._check_pinned(plan.budget, plan)
        self._n = n
        self._first_id = messages[0].id if n else None
        self._last_id = messages[-1].id if n else None

    # -- fold -------------------------------------------------------------------------------

    def _protected_index(self) -> int:
        """Index in the region of the first protected unit (the newest user turn)."""
        for k in range(len(self._region) - 1, -1, -1):
            if self._region[k].has_user:
                return k
        return max(0, len(self._region) - 1)

    def _plan(
        self, messages: Sequence[Message], query: str | None, task: TaskKind | str | None
    ) -> _Plan:
        budget = self.policy.resolve_budget(query=query, task=task)
        plan = _Plan(budget=budget, query=query)
        self._ingest(messages, plan)
        room = self._room(budget)
        summary_tokens = self._summary.tokens if self._summary else 0
        demand = (
            self.policy.cached.reply_priming
            + self._pinned_tokens()
            + summary_tokens
            + self._region_tokens
        )
        plan.tokens_in = demand
        plan.ratio = demand / budget
        if self._region_tokens > self._overflow() * room:
            target = self._refill(budget)
            limit = self._protected_index()
            k = 0
            while k < limit and (self._region_tokens > target or not self._region[0].has_user):
                # past the target, the rest of a folded question's turn goes with it
                unit = self._region.popleft()
                plan.span.extend(unit.messages)
                if not unit.broken:
                    self._region_tokens -= unit.tokens
                k += 1
            plan.folded = plan.folded or k > 0
        pressure = self.policy.pressure
        if pressure is not None:
            plan.level = PressureLevel.OVERFLOW if plan.folded else pressure.level(plan.ratio)
        return plan

    def _summary_cap(self, budget: int) -> tuple[int, int]:
        cfg = self.policy.summary
        assert cfg is not None
        cap = int(cfg.share * budget)
        frame = self._count(Message(role=cfg.role, content=cfg.prefix, id="tela-summary"))
        return cap, cap - frame

    def _render_summary(self, state: SummaryState) -> None:
        cfg = self.policy.summary
        if cfg is None or not state.text:
            state.message, state.tokens = None, 0
            return
        digest = hashlib.sha256(state.text.encode()).hexdigest()[:16]
        state.message = Message(
            id=f"tela-summary-{digest}",
            role=cfg.role,
            content=cfg.prefix + state.text,
            created_at=state.at,
            metadata={"tela.kind": "summary"},
        )
        state.tokens = self._count(state.message)

    def _commit_fold(self, plan: _Plan, text: str | None) -> None:
        if not plan.span:
            return
        prev = self._summary
        covers = (prev.covers if prev else 0) + len(plan.span)
        if text is None:  # no summariser: the boundary still moves (nothing to summarise)
            self._summary = SummaryState(
                text=prev.text if prev else "",
                upto=plan.span[-1].id,
                covers=covers,
                at=prev.at if prev else datetime.now(UTC),
                message=prev.message if prev else None,
                tokens=prev.tokens if prev else 0,
            )
            return
        upto = plan.span[-1].id
        if prev is not None and prev.text == text:  # nothing new worth keeping: same bytes
            self._summary = SummaryState(text, upto, covers, prev.at, prev.message, prev.tokens)
            return
        state = SummaryState(text=text, upto=upto, covers=covers, at=datetime.now(UTC))
        self._render_summary(state)
        cap, _ = self._summary_cap(plan.budget)
        while state.message is not None and state.tokens > cap and state.text:
            over = state.tokens - cap
            size = self.policy.cached.count_text(state.text)
            state.text = fit_text(state.text, size - over - 1, self.policy.cached)
            self._render_summary(state)
        plan.summary_changed = prev is None or prev.text != state.text
        self._summary = state

    def _summarize_args(self, plan: _Plan) -> dict[str, Any]:
        _, max_tokens = self._summary_cap(plan.budget)
        return {"max_tokens": max(1, max_tokens), "counter": self.policy.cached}

    # -- select -----------------------------------------------------------------------------

    def _sendable(self) -> tuple[list[Unit], list[Unit]]:
        """The units that may be sent, and the answers among them whose question is not."""
        units = [u for u in self._region if not u.broken]
        tail, pending = self._grouper.tail()
        if tail is not None and not pending:
            units.append(tail)  # a held thinking-only assistant message, sent as is
        asked = {u.turn for u in self._pinned if u.has_user}
        asked.update(u.turn for u in units if u.has_user)
        kept: list[Unit] = []
        orphans: list[Unit] = []
        for u in units:
            (kept if u.is_free or u.has_user or u.turn in asked else orphans).append(u)
        return kept, orphans

    @staticmethod
    def _groups(kept: list[Unit], protected: set[int], newest: int | None) -> list[list[Unit]]:
        """What may be dropped, as wholes: an older question with all its replies, a system
        unit, or one unit of the newest turn; in order of the history."""
        groups: list[list[Unit]] = []
        by_turn: dict[int, list[Unit]] = {}
        for u in kept:
            if id(u) in protected:
                continue
            if u.is_free or u.turn == newest:
                groups.append([u])
                continue
            group = by_turn.get(u.turn)
            if group is None:
                group = by_turn[u.turn] = []
                groups.append(group)
            group.append(u)
        return groups

    def _adjacent(self, before: Unit, after: Unit) -> bool:
        """Whether nothing but system messages stood between two units in the history."""
        if after.seq == before.seq + 1:
            return True
        between = [u for u in self._region if before.seq < u.seq < after.seq]
        return len(between) == after.seq - before.seq - 1 and all(u.is_free for u in between)

    def _order_roles(
        self, kept: list[Unit], protected: set[int], dropped: list[tuple[Unit, Reason]]
    ) -> list[Unit]:
        """Leave out replies that would put two assistant messages side by side that were
        apart in the history (the earlier one goes, unless it is protected)."""
        if not kept or kept[-1].seq - kept[0].seq + 1 == len(kept):
            return kept  # no gap (seqs are increasing): every neighbour was one in the history
        out: list[Unit] = []
        last = -1  # index in ``out`` of the newest unit that is not a system one
        for u in kept:
            keep = True
            while u.first_role is Role.ASSISTANT and last >= 0:
                prev = out[last]
                if prev.messages[-1].role is not Role.ASSISTANT or self._adjacent(prev, u):
                    break
                if id(prev) in protected:
                    keep = False
                    break
                del out[last]
                dropped.append((prev, Reason.ROLE_ORDER))
                last = next((k for k in range(last - 1, -1, -1) if not out[k].is_free), -1)
            if keep:
                out.append(u)
                if not u.is_free:
                    last = len(out) - 1
            else:
                dropped.append((u, Reason.ROLE_ORDER))
        return out

    def _select(self, plan: _Plan) -> _Selection:
        pol = self.policy
        budget = plan.budget
        priming = pol.cached.reply_priming
        summary = self._summary
        s_tokens = summary.tokens if summary and summary.message is not None else 0
        recall_budget = int(pol.recall.share * budget) if pol.recall and plan.query else 0
        use_summary = s_tokens > 0
        sendable, orphans = self._sendable()
        last_user = next((u for u in reversed(sendable) if u.has_user), None)
        protected = {id(u) for u in (sendable[-1:] + ([last_user] if last_user else []))}
        p_tokens = sum(u.tokens for u in sendable if id(u) in protected)

        def room() -> int:
            return budget - priming - self._pinned_tokens() - s_tokens - recall_budget

        if p_tokens > room() and recall_budget:
            recall_budget = 0
            plan.notes.append("recall slot released: the newest turn needs the room")
        if p_tokens > room() and use_summary:
            use_summary, s_tokens = False, 0
            plan.notes.append("summary left out: the newest turn needs the room")
        if p_tokens > room() and any(u.first_role not in _SYSTEMS for u in self._pinned):
            self._release(plan, "pinned first turns released: the newest turn needs the room")
            sendable, orphans = self._sendable()
        kept = list(sendable)
        total = sum(u.tokens for u in kept)
        dropped: list[tuple[Unit, Reason]] = [(u, Reason.UNPAIRED) for u in orphans]
        if total > room():
            newest = last_user.turn if last_user is not None else None
            candidates = self._groups(kept, protected, newest)
            if pol.importance is not None:
                scored = imp.scores(kept, pol.importance, plan.query)
                by_unit = {id(u): s for u, s in zip(kept, scored, strict=True)}
                best = {id(g): max(by_unit[id(u)] for u in g) for g in candidates}
                candidates.sort(key=lambda g: best[id(g)])
                reason = Reason.IMPORTANCE
            else:
                reason = Reason.BUDGET
            gone: set[int] = set()
            for group in candidates:
                if total <= room():
                    break
                for u in group:
                    gone.add(id(u))
                    total -= u.tokens
                    dropped.append((u, reason))
            kept = [u for u in kept if id(u) not in gone]
        n = len(dropped)
        kept = self._order_roles(kept, protected, dropped)
        total -= sum(u.tokens for u, _ in dropped[n:])
        truncated: dict[str, int] = {}
        if total > room():
            kept, total = fit_units(kept, total, room(), pol.cached, truncated)
        return _Selection(kept, dropped, truncated, use_summary, recall_budget, total)

    # -- recall -----------------------------------------------------------------------------

    def _fit_recalled(
        self, found: Sequence[Message], sel: _Selection, reports: list[MessageReport]
    ) -> list[Message]:
        """Recalled turns that fit the slot: each reply with the question it follows in the
        recalled run of its thread (a reply without one is ``unpaired``), whole tool pairs,
        nothing already in the context; sent in time order, a question with its replies."""
        present = {m.id for u in self._pinned for m in u.messages}
        present.update(m.id for u in sel.kept for m in u.messages)
        runs: list[list[Unit]] = []
        run: list[Unit] | None = None
        thread: tuple[str | None, str | None] | None = None
        for unit in group([m for m in found if isinstance(m, Message)], self._count):
            key = (unit.messages[0].user_id, unit.messages[0].thread_id)
            if key != thread:
                run, thread = None, key
            reason: Reason | None = None
            if unit.broken:
                reason = Reason.BROKEN_TOOL_PAIR
            elif any(i in present for i in unit.ids):
                reason = Reason.DUPLICATE
            elif unit.has_user:
                run = [unit]
                runs.append(run)
            elif run is not None and not (
                unit.first_role is Role.ASSISTANT
                and run[-1].messages[-1].role is Role.ASSISTANT
                and not unit.is_free
            ):
                run.append(unit)
            elif unit.is_free:
                runs.append([unit])
            else:
                reason = Reason.UNPAIRED
            present.update(unit.ids)
            if reason is not None:
                run = None  # what follows it has lost its question
                for m in unit.messages:
                    reports.append(MessageReport(m.id, Decision.DROPPED, 0, reason))
        left = sel.recall_budget
        chosen: list[list[Unit]] = []
        for run in runs:
            taken: list[Unit] = []
            for unit in run:
                if unit.tokens > left:
                    break
                taken.append(unit)
                left -= unit.tokens
            if taken:
                chosen.append(taken)
        chosen.sort(key=lambda r: r[0].messages[0].created_at)
        out: list[Message] = []
        for taken in chosen:
            for unit in taken:
                for m in unit.messages:
                    reports.append(MessageReport(m.id, Decision.RECALLED, self._count(m)))
                    out.append(m)
        return out

    # -- assemble ---------------------------------------------------------------------------

    def _finish(self, plan: _Plan, sel: _Selection, recalled_in: Sequence[Message]) -> Context:
        pol = self.policy
        reports: list[MessageReport] = []
        pinned_msgs: list[Message] = []
        for u in self._pinned:
            for m in u.messages:
                if u.broken:
                    reports.append(
                        MessageReport(m.id, Decision.DROPPED, 0, Reason.BROKEN_TOOL_PAIR)
                    )
                else:
                    pinned_msgs.append(m)
                    reports.append(MessageReport(m.id, Decision.PINNED, self._count(m)))
        prefix = list(pinned_msgs)
        summary = self._summary
        if sel.use_summary and summary is not None and summary.message is not None:
            prefix.append(summary.message)
            reports.append(MessageReport(summary.message.id, Decision.SUMMARY, summary.tokens))
        fold_decision = Decision.SUMMARISED if pol.summary is not None else Decision.DROPPED
        folded = IdView(plan.span)
        recalled = self._fit_recalled(recalled_in, sel, reports)
        kept_seqs = {u.seq for u in sel.kept}
        dropped = {u.seq: r for u, r in sel.dropped}
        window: list[Message] = []
        for u in sel.kept:
            for m in u.messages:
                window.append(m)
                if m.id in sel.truncated:
                    reports.append(
                        MessageReport(m.id, Decision.TRUNCATED, self._count(m), Reason.TOO_LARGE)
                    )
                else:
                    reports.append(MessageReport(m.id, Decision.KEPT, self._count(m)))
        for u in self._region:
            if u.seq in kept_seqs:
                continue
            reason = Reason.BROKEN_TOOL_PAIR if u.broken else dropped.get(u.seq, Reason.BUDGET)
            for m in u.messages:
                tokens = 0 if u.broken else self._count(m)
                reports.append(MessageReport(m.id, Decision.DROPPED, tokens, reason))
        for u in self._preamble:
            for m in u.messages:
                reports.append(MessageReport(m.id, Decision.DROPPED, 0, Reason.UNPAIRED))
        tail, pending = self._grouper.tail()
        if tail is not None and pending:
            for m in tail.messages:
                reports.append(MessageReport(m.id, Decision.PENDING, 0, Reason.AWAITING_RESULTS))
        elif tail is not None and tail.seq not in kept_seqs:
            reason = dropped.get(tail.seq, Reason.BUDGET)
            for m in tail.messages:
                reports.append(MessageReport(m.id, Decision.DROPPED, self._count(m), reason))
        messages = [*prefix, *recalled, *window]
        if recalled and not window:
            # The newest user turn is itself pinned (a young thread): recalled turns go before
            # it, so that the request still ends with the user's question.
            cut = max((i for i, m in enumerate(prefix) if m.role is Role.USER), default=0)
            messages = [*prefix[:cut], *recalled, *prefix[cut:]]
        tokens_out = pol.cached.count_messages(messages)
        if tokens_out > plan.budget:
            raise TelaMemoryError(  # pragma: no cover - an internal invariant
                f"internal error: built {tokens_out} tokens for a budget of {plan.budget}"
            )
        key = tuple(m.id for m in prefix)
        if key != self._prefix_key:
            self._prefix_key = key
            self._prefix_hash = prefix_hash(prefix)
        report = ContextReport(
            budget=plan.budget,
            tokens_out=tokens_out,
            tokens_in=plan.tokens_in,
            messages=reports,
            folded=folded,
            folded_as=fold_decision,
            summary_covers=summary.covers if summary else 0,
            summary_changed=plan.summary_changed,
            summary_upto=summary.upto if summary else None,
            stable_prefix_messages=len(prefix),
            stable_prefix_tokens=sum(self._count(m) for m in prefix),
            stable_prefix_hash=self._prefix_hash,
            pressure=plan.level,
            pressure_ratio=plan.ratio,
            recall_budget=sel.recall_budget,
            notes=plan.notes,
        )
        self._emit(plan)
        return Context(messages=messages, report=report)

    def _emit(self, plan: _Plan) -> None:
        pressure = self.policy.pressure
        if pressure is None:
            return
        if _LEVELS.index(plan.level) > _LEVELS.index(self._level):
            event = PressureEvent(
                level=plan.level,
                ratio=plan.ratio,
                budget=plan.budget,
                tokens=plan.tokens_in,
                thread_id=self.thread_id,
            )
            for callback in pressure.callbacks:
                callback(event)
        summary = self._summary.tokens if self._summary else 0
        after = (
            self.policy.cached.reply_priming + self._pinned_tokens() + summary + self._region_tokens
        )
        self._level = plan.level if not plan.folded else pressure.level(after / plan.budget)

    # -- public -----------------------------------------------------------------------------

    def _summarizer(self) -> Summarizer | AsyncSummarizer | None:
        return self.policy.summary.summarizer if self.policy.summary else None

    def build(
        self,
        messages: Sequence[Message],
        *,
        query: str | None = None,
        task: TaskKind | str | None = None,
    ) -> Context:
        """The context for this history (see the class docstring for incrementality)."""
        plan = self._plan(messages, query, task)
        text: str | None = None
        summarizer = self._summarizer()
        if plan.span and summarizer is not None:
            if not isinstance(summarizer, Summarizer):
                raise TelaMemoryError("this summarizer is async only: use abuild()")
            previous = self._summary.text if self._summary else None
            text = summarizer.summarize(previous, plan.span, **self._summarize_args(plan))
        self._commit_fold(plan, text)
        sel = self._select(plan)
        found: list[Message] = []
        if (pol_recall := self.policy.recall) and plan.query and sel.recall_budget > 0:
            found = pol_recall.recaller.recall(plan.query, self.thread_id, sel.recall_budget)
        return self._finish(plan, sel, found)

    async def abuild(
        self,
        messages: Sequence[Message],
        *,
        query: str | None = None,
        task: TaskKind | str | None = None,
    ) -> Context:
        """Async twin of :meth:`build` (awaits async summarisers and recallers)."""
        plan = self._plan(messages, query, task)
        text: str | None = None
        summarizer = self._summarizer()
        if plan.span and summarizer is not None:
            previous = self._summary.text if self._summary else None
            args = self._summarize_args(plan)
            if isinstance(summarizer, AsyncSummarizer):
                text = await summarizer.asummarize(previous, plan.span, **args)
            else:
                text = summarizer.summarize(previous, plan.span, **args)
        self._commit_fold(plan, text)
        sel = self._select(plan)
        found: list[Message] = []
        if (pol_recall := self.policy.recall) and plan.query and sel.recall_budget > 0:
            recaller: Any = pol_recall.recaller
            if hasattr(recaller, "arecall"):
                found = await recaller.arecall(plan.query, self.thread_id, sel.recall_budget)
            else:
                found = recaller.recall(plan.query, self.thread_id, sel.recall_budget)
        return self._finish(plan, sel, found)


__all__ = ["ContextBuilder", "SummaryState"]
