"""The search / context helpers behind the CLI, on a non-SQLite store and without the engine."""

from __future__ import annotations

import pytest

from tela_memory.cli._history import _fallback, context_view, search_history
from tela_memory.errors import ScopeError, TelaMemoryError
from tela_memory.messages import Message, Role, ToolCallBlock
from tela_memory.stores.memory import InMemoryStore
from tela_memory.tokens import ApproxCounter


def history() -> list[Message]:
    msgs = [Message.system("You are terse.")]
    for i in range(30):
        msgs.append(Message.user(f"question {i} about topic {i % 5}"))
        if i % 4 == 0:
            call = ToolCallBlock(id=f"c{i}", name="lookup", arguments={"i": i})
            msgs.append(Message.assistant("checking", tool_calls=[call]))
            msgs.append(Message.tool(f"c{i}", f"result {i}"))
        msgs.append(Message.assistant(f"answer {i} " + "words " * (i % 7)))
    return msgs


def test_fallback_context_keeps_budget_prefix_and_tool_pairs() -> None:
    counter = ApproxCounter()
    msgs = history()
    total = counter.count_messages(msgs)
    for budget in (60, 150, 400, 10_000):
        view = _fallback(msgs, budget, counter, total)
        assert view.tokens_sent <= budget
        assert view.sent[0].role is Role.SYSTEM
        calls = {c.id for m in view.sent for c in m.tool_calls}
        results = {r.tool_call_id for m in view.sent for r in m.tool_results}
        assert calls == results  # never a call without its result, or the reverse
        assert view.sent[1:] == msgs[len(msgs) - len(view.sent) + 1 :]  # newest whole turns
        assert len(view.sent) + len(view.dropped) == len(msgs)


def test_search_and_context_on_an_in_memory_store() -> None:
    with InMemoryStore() as store:
        store.append(
            "a", [Message.user("my bike is a blue Gazelle"), Message.assistant("nice")], user_id="u"
        )
        store.append("b", history(), user_id="u")
        store.append("c", [Message.user("my bike is red")], user_id="someone-else")
        found = search_history(store, "bike", user_id="u", k=5)
        # the bike turn first; its reply may follow (the embedded index gives each turn its
        # parent's words at a lower weight); never the other user's red bike
        assert found.hits[0][1].text == "my bike is a blue Gazelle"
        assert {m.thread_id for _, m in found.hits} == {"a"}
        assert "in-memory" in found.method
        view = context_view(
            store.for_user("u"),
            "b",
            200,
            counter=ApproxCounter(),
            recall=True,
            query="which bike do I have?",
        )
        assert view.tokens_sent <= 200
        recalled = [i for i, (d, _) in view.decisions.items() if d == "recalled"]
        assert any("Gazelle" in store.get(i, user_id="u").text for i in recalled)


def test_search_and_context_need_the_acting_user() -> None:
    with InMemoryStore() as store:
        store.append("a", [Message.user("my bike is a blue Gazelle")], user_id="u")
        with pytest.raises(ScopeError, match="user_id="):
            search_history(store, "bike")
        with pytest.raises(ScopeError, match="user_id="):
            context_view(store, "a", 200, counter=ApproxCounter())
        # another user's thread of that id is not there for "v": the same as a missing one
        with pytest.raises(TelaMemoryError, match="'a' has no messages"):
            context_view(store, "a", 200, user_id="v", counter=ApproxCounter())
        assert search_history(store, "bike", user_id="v").hits == []
        assert search_history(store.for_user("u"), "bike").hits  # the control
