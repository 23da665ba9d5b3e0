"""``StoreConformance``: the behaviour every ``MessageStore`` backend must show.

Subclass it in a backend's tests and provide a ``store`` fixture that yields an empty store::

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self):
            with MyStore(...) as s:
                yield s

Capability flags let a backend say what it cannot do; the suite then checks that it says so
clearly instead of skipping silently.

``ChangeFeedConformance`` holds the cases of the change feed (``changes`` / ``achanges``);
a backend with a feed adds it to its test class beside ``StoreConformance``. Its cases only
look at events of users they create, so a store shared with other tests is fine.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tela_memory.errors import ConflictError, InvalidMessageError, NotFoundError
from tela_memory.messages import (
    AudioBlock,
    DocumentBlock,
    ImageBlock,
    Message,
    OpaqueBlock,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from tela_memory.stores.base import MessageStore
from tela_memory.stores.changes import Change, ChangeFeedGapError

U = "suite-user"
"""The acting user of the suite's single-user tests."""


def _tid() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _turns(n: int, *, user: str | None = None) -> list[Message]:
    return [
        Message.user(f"question {i}", user_id=user)
        if i % 2 == 0
        else Message.assistant(f"answer {i}")
        for i in range(n)
    ]


class StoreConformance:
    """Shared tests for message stores. Override the ``store`` fixture."""

    #: several threads of one process may append to one thread at the same time
    supports_concurrent_writers: bool = True

    @pytest.fixture
    def store(self) -> MessageStore:
        raise NotImplementedError("a StoreConformance subclass must provide a `store` fixture")

    # -- append and read --------------------------------------------------------------------

    def test_append_binds_and_reads_in_order(self, store: MessageStore) -> None:
        tid = _tid()
        stored = store.append(tid, _turns(6), user_id=U)
        assert [m.thread_id for m in stored] == [tid] * 6
        assert [m.user_id for m in stored] == [U] * 6
        assert stored[0].parent_id is None
        assert [m.parent_id for m in stored[1:]] == [m.id for m in stored[:-1]]
        assert store.read(tid, user_id=U) == stored

    def test_appends_chain_across_calls(self, store: MessageStore) -> None:
        tid = _tid()
        first = store.append(tid, Message.user("a"), user_id=U)
        second = store.append(tid, [Message.assistant("b"), Message.user("c")], user_id=U)
        assert second[0].parent_id == first[0].id
        assert [m.text for m in store.read(tid, user_id=U)] == ["a", "b", "c"]

    def test_read_window_since_and_before(self, store: MessageStore) -> None:
        tid = _tid()
        old = datetime(2020, 1, 1, tzinfo=UTC)
        msgs = [Message.user(f"m{i}", created_at=old + timedelta(days=i)) for i in range(10)]
        stored = store.append(tid, msgs, user_id=U)
        assert [m.text for m in store.read(tid, last=3, user_id=U)] == ["m7", "m8", "m9"]
        assert store.read(tid, last=0, user_id=U) == []
        assert [m.text for m in store.read(tid, since=old + timedelta(days=8), user_id=U)] == [
            "m8",
            "m9",
        ]
        assert [m.text for m in store.read(tid, before=stored[4].id, user_id=U)] == [
            "m0",
            "m1",
            "m2",
            "m3",
        ]
        assert [m.text for m in store.read(tid, before=stored[4].id, last=2, user_id=U)] == [
            "m2",
            "m3",
        ]
        assert store.read(tid, before=stored[0].id, user_id=U) == []

    def test_unknown_thread_reads_empty_and_unknown_branch_fails(self, store: MessageStore) -> None:
        assert store.read(_tid(), user_id=U) == []
        tid = _tid()
        store.append(tid, Message.user("x"), user_id=U)
        with pytest.raises(NotFoundError):
            store.read(tid, branch="nope", user_id=U)

    def test_get_and_missing(self, store: MessageStore) -> None:
        tid = _tid()
        (m,) = store.append(tid, Message.user("hello"), user_id=U)
        assert store.get(m.id, user_id=U) == m
        with pytest.raises(NotFoundError):
            store.get(str(uuid.uuid4()), user_id=U)

    def test_every_block_type_round_trips(self, store: MessageStore) -> None:
        tid = _tid()
        call = ToolCallBlock(id="call_1", name="lookup", arguments={"q": "x", "n": [1, 2.5, None]})
        msgs = [
            Message.system("You are terse."),
            Message.user(
                [
                    TextBlock(text="what is this?"),
                    ImageBlock(data="aGVsbG8=", mime_type="image/png", width=64, height=32),
                    ImageBlock(url="https://example.com/a.jpg", detail="low", alt_text="a cat"),
                    AudioBlock(ref="file_123", mime_type="audio/wav", transcript="hi"),
                    DocumentBlock(text="page one", title="doc.pdf", pages=1),
                ],
                name="alice",
                metadata={"source": "test", "nested": {"k": [1, "two", True, None]}},
            ),
            Message.assistant(
                [ThinkingBlock(text="hmm", signature="sig==opaque"), TextBlock(text="checking")],
                tool_calls=[call],
            ),
            Message.tool("call_1", [TextBlock(text="found")], is_error=False),
            Message.assistant([OpaqueBlock(source="test", data={"type": "citation", "x": 1})]),
        ]
        stored = store.append(tid, msgs, user_id=U)
        assert store.read(tid, user_id=U) == stored
        for original, back in zip(msgs, store.read(tid, user_id=U), strict=True):
            assert back.content == original.content
            assert back.metadata == original.metadata
            assert back.created_at == original.created_at

    def test_unicode_and_large_messages(self, store: MessageStore) -> None:
        tid = _tid()
        texts = [
            "héllo wörld",
            "日本語のテキスト",
            "emoji 🧠🔥",
            "rtl مرحبا",
            "nul\x00byte",
            "x" * 2_000_000,
        ]
        store.append(tid, [Message.user(t) for t in texts], user_id=U)
        assert [m.text for m in store.read(tid, user_id=U)] == texts

    def test_update_message_keeps_place(self, store: MessageStore) -> None:
        tid = _tid()
        stored = store.append(tid, [Message.user("q"), Message.assistant("partial")], user_id=U)
        changed = stored[1].model_copy(
            update={"content": [TextBlock(text="complete")], "metadata": {"done": True}}
        )
        store.update_message(changed, user_id=U)
        back = store.read(tid, user_id=U)
        assert [m.text for m in back] == ["q", "complete"]
        assert back[1].metadata == {"done": True}
        assert back[1].parent_id == stored[0].id
        with pytest.raises(NotFoundError):
            store.update_message(Message.user("ghost"), user_id=U)

    # -- atomicity and validation ---------------------------------------------------------

    def test_duplicate_id_rejects_whole_batch(self, store: MessageStore) -> None:
        tid = _tid()
        (first,) = store.append(tid, Message.user("one"), user_id=U)
        with pytest.raises(ConflictError):
            store.append(
                tid, [Message.assistant("two"), Message.user("dup", id=first.id)], user_id=U
            )
        assert [m.text for m in store.read(tid, user_id=U)] == ["one"]

    def test_orphan_tool_result_rejected_and_nothing_written(self, store: MessageStore) -> None:
        tid = _tid()
        store.append(tid, Message.user("hi"), user_id=U)
        with pytest.raises(InvalidMessageError):
            store.append(tid, [Message.assistant("ok"), Message.tool("missing", "r")], user_id=U)
        assert [m.text for m in store.read(tid, user_id=U)] == ["hi"]
        call = ToolCallBlock(id="c9", name="f")
        store.append(tid, Message.assistant("", tool_calls=[call]), user_id=U)
        store.append(tid, Message.tool("c9", "result"), user_id=U)  # the call is in history: fine
        assert store.read(tid, user_id=U)[-1].tool_results[0].tool_call_id == "c9"

    def test_user_mismatch_rejected(self, store: MessageStore) -> None:
        tid = _tid()
        store.append(tid, Message.user("a"), user_id="alice")
        with pytest.raises(InvalidMessageError) as refused:
            store.append(tid, Message.user("b", user_id="mallory"), user_id="alice")
        with pytest.raises(InvalidMessageError):
            store.append(tid, Message.user("c", thread_id="another-thread"), user_id="alice")
        assert [m.text for m in store.read(tid, user_id="alice")] == ["a"]
        # the same thread id is another thread for another user: nothing of alice's shows
        store.append(tid, Message.user("b"), user_id="mallory")
        assert [m.text for m in store.read(tid, user_id="mallory")] == ["b"]
        assert "alice" not in str(refused.value).replace("as 'alice'", "")

    def test_bad_ids_rejected(self, store: MessageStore) -> None:
        with pytest.raises(InvalidMessageError):
            store.append("", Message.user("x"), user_id=U)
        with pytest.raises(InvalidMessageError):
            store.append("bad\nid", Message.user("x"), user_id=U)
        with pytest.raises(InvalidMessageError):
            store.read(_tid(), last=-1, user_id=U)

    # -- branches ---------------------------------------------------------------------------

    def test_fork_shares_ancestors(self, store: MessageStore) -> None:
        tid = _tid()
        stored = store.append(tid, _turns(6), user_id=U)
        info = store.fork(tid, stored[2].id, name="alt", user_id=U)
        assert info.head_id == stored[2].id
        store.append(tid, Message.assistant("alt reply"), branch="alt", user_id=U)
        store.append(tid, Message.user("main continues"), user_id=U)
        main = store.read(tid, user_id=U)
        alt = store.read(tid, branch="alt", user_id=U)
        assert [m.id for m in alt[:3]] == [m.id for m in stored[:3]]
        assert alt[-1].text == "alt reply"
        assert alt[-1].parent_id == stored[2].id
        assert len(main) == 7
        assert main[-1].text == "main continues"
        names = [b.name for b in store.branches(tid, user_id=U)]
        assert names[0] == "main"
        assert set(names) == {"main", "alt"}

    def test_fork_errors(self, store: MessageStore) -> None:
        tid, other = _tid(), _tid()
        (m,) = store.append(tid, Message.user("x"), user_id=U)
        (o,) = store.append(other, Message.user("y"), user_id=U)
        store.fork(tid, m.id, name="b1", user_id=U)
        with pytest.raises(ConflictError):
            store.fork(tid, m.id, name="b1", user_id=U)
        with pytest.raises(NotFoundError):
            store.fork(tid, o.id, name="b2", user_id=U)
        with pytest.raises(NotFoundError):
            store.append(tid, Message.user("z"), branch="never-forked", user_id=U)

    def test_default_branch_switch_and_delete(self, store: MessageStore) -> None:
        tid = _tid()
        stored = store.append(tid, _turns(4), user_id=U)
        store.fork(tid, stored[1].id, name="alt", user_id=U)
        own = store.append(
            tid, [Message.user("alt 1"), Message.assistant("alt 2")], branch="alt", user_id=U
        )
        with pytest.raises(ConflictError):
            store.delete_branch(tid, "main", user_id=U)
        store.set_default_branch(tid, "alt", user_id=U)
        assert store.read(tid, user_id=U)[-1].text == "alt 2"
        assert store.branches(tid, user_id=U)[0].name == "alt"
        store.set_default_branch(tid, "main", user_id=U)
        assert store.delete_branch(tid, "alt", user_id=U) == 2
        assert [m.id for m in store.read(tid, user_id=U)] == [m.id for m in stored]
        for m in own:
            with pytest.raises(NotFoundError):
                store.get(m.id, user_id=U)
        with pytest.raises(NotFoundError):
            store.set_default_branch(tid, "alt", user_id=U)

    def test_delete_branch_keeps_what_others_reach(self, store: MessageStore) -> None:
        tid = _tid()
        stored = store.append(tid, _turns(3), user_id=U)
        store.fork(tid, stored[2].id, name="same-head", user_id=U)
        assert store.delete_branch(tid, "same-head", user_id=U) == 0
        store.fork(tid, stored[0].id, name="a", user_id=U)
        store.append(tid, Message.assistant("a1"), branch="a", user_id=U)
        store.fork(tid, store.read(tid, branch="a", user_id=U)[-1].id, name="b", user_id=U)
        store.append(tid, Message.user("b1"), branch="b", user_id=U)
        assert store.delete_branch(tid, "a", user_id=U) == 0  # its only message is an ancestor of b
        assert [m.text for m in store.read(tid, branch="b", user_id=U)] == [
            "question 0",
            "a1",
            "b1",
        ]

    # -- threads ----------------------------------------------------------------------------

    def test_thread_metadata(self, store: MessageStore) -> None:
        tid = _tid()
        store.append(tid, _turns(3), user_id=U)
        info = store.update_thread(
            tid, title="Trip", tags=["travel", "2026"], metadata={"k": 1}, user_id=U
        )
        assert (info.title, info.tags, info.metadata) == ("Trip", ("travel", "2026"), {"k": 1})
        info = store.update_thread(tid, title="Trip to Lisbon", user_id=U)
        assert info.tags == ("travel", "2026")
        assert info.message_count == 3
        assert info.user_id == U
        with pytest.raises(InvalidMessageError):
            store.update_thread(tid, metadata={"bad": object()}, user_id=U)  # type: ignore[dict-item]
        with pytest.raises(NotFoundError):
            store.update_thread(_tid(), title="x", user_id=U)
        with pytest.raises(NotFoundError):
            store.get_thread(_tid(), user_id=U)

    def test_list_threads_pages(self, store: MessageStore) -> None:
        user = f"u-{uuid.uuid4().hex[:8]}"
        ids = []
        for _ in range(7):
            tid = _tid()
            store.append(tid, Message.user("hi"), user_id=user)
            ids.append(tid)
        store.append(_tid(), Message.user("other"), user_id="someone-else")
        seen: list[str] = []
        cursor = None
        while True:
            page = store.list_threads(user, limit=3, cursor=cursor)
            seen.extend(t.id for t in page.threads)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids)
        assert len(seen) == len(set(seen))
        store.append(ids[0], Message.assistant("recent"), user_id=user)
        assert store.list_threads(user, limit=1).threads[0].id == ids[0]

    def test_delete_thread(self, store: MessageStore) -> None:
        tid = _tid()
        stored = store.append(tid, _turns(5), user_id=U)
        assert store.delete_thread(tid, user_id=U) == 5
        assert store.read(tid, user_id=U) == []
        with pytest.raises(NotFoundError):
            store.get(stored[0].id, user_id=U)
        assert store.delete_thread(tid, user_id=U) == 0

    # -- privacy and retention ------------------------------------------------------------

    def test_erase_user_removes_only_that_user(self, store: MessageStore) -> None:
        alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
        a1, a2, b1 = _tid(), _tid(), _tid()
        store.append(a1, _turns(4), user_id=alice)
        store.append(a2, _turns(2), user_id=alice)
        store.append(b1, _turns(3), user_id=bob)
        receipt = store.erase_user(alice)
        assert (receipt.threads, receipt.messages) == (2, 6)
        assert store.read(a1, user_id=alice) == []
        assert store.read(a2, user_id=alice) == []
        assert store.list_threads(alice).threads == ()
        assert len(store.read(b1, user_id=bob)) == 3

    def test_retention_by_count(self, store: MessageStore) -> None:
        tid = _tid()
        store.append(tid, _turns(10), user_id=U)
        report = store.apply_retention(max_messages=4)
        assert report.messages >= 6
        kept = store.read(tid, user_id=U)
        assert [m.text for m in kept] == ["question 6", "answer 7", "question 8", "answer 9"]
        assert kept[0].parent_id is None

    def test_retention_by_age(self, store: MessageStore) -> None:
        old, new = _tid(), _tid()
        long_ago = datetime.now(UTC) - timedelta(days=400)
        store.append(old, [Message.user("ancient", created_at=long_ago)], user_id=U)
        store.append(
            new, [Message.user("old", created_at=long_ago), Message.user("fresh")], user_id=U
        )
        report = store.apply_retention(max_age=timedelta(days=30))
        assert report.messages >= 2
        assert store.read(old, user_id=U) == []
        assert [m.text for m in store.read(new, user_id=U)] == ["fresh"]
        with pytest.raises(NotFoundError):
            store.get_thread(old, user_id=U)

    # -- ownership: threads live in their user's namespace -----------------------------------

    def test_same_thread_id_is_two_threads(self, store: MessageStore) -> None:
        tid = _tid()
        ada = store.append(
            tid, [Message.user("ada secret"), Message.assistant("ok")], user_id="ada"
        )
        store.append(tid, Message.user("bob hello"), user_id="bob")
        assert [m.text for m in store.read(tid, user_id="ada")] == ["ada secret", "ok"]
        assert [m.text for m in store.read(tid, user_id="bob")] == ["bob hello"]
        assert store.get_thread(tid, user_id="bob").message_count == 1
        assert store.get_thread(tid, user_id="ada").user_id == "ada"
        assert store.get(ada[0].id, user_id="ada").text == "ada secret"
        assert store.delete_thread(tid, user_id="bob") == 1
        assert [m.text for m in store.read(tid, user_id="ada")] == ["ada secret", "ok"]

    def test_foreign_thread_looks_missing(self, store: MessageStore) -> None:
        tid, missing = _tid(), _tid()
        # the owner is named with letters that are not hex digits: ids never contain it
        quill = store.append(tid, _turns(4), user_id="quill")
        store.update_thread(tid, user_id="quill", title="quill-title", tags=["quill-tag"])
        store.fork(tid, quill[1].id, user_id="quill", name="quill-branch")
        for who in ("bob", "quill' OR '1'='1", "*", "%", "quill ", "QUILL"):
            assert store.read(tid, user_id=who) == []
            assert store.branches(tid, user_id=who) == []
            assert store.list_threads(who).threads == ()
            for target in (tid, missing):
                with pytest.raises(NotFoundError) as foreign:
                    store.get_thread(target, user_id=who)
                assert "quill" not in str(foreign.value).replace(target, "")
                with pytest.raises(NotFoundError):
                    store.read(target, user_id=who, branch="quill-branch")
                with pytest.raises(NotFoundError):
                    store.update_thread(target, user_id=who, title="x")
                with pytest.raises(NotFoundError):
                    store.set_default_branch(target, "quill-branch", user_id=who)
                with pytest.raises(NotFoundError):
                    store.delete_branch(target, "quill-branch", user_id=who)
            for m in quill:
                with pytest.raises(NotFoundError) as got:
                    store.get(m.id, user_id=who)
                assert "quill" not in str(got.value)
                with pytest.raises(NotFoundError):
                    store.fork(tid, m.id, user_id=who)
                with pytest.raises(NotFoundError):
                    store.update_message(m.model_copy(update={"user_id": None}), user_id=who)
            assert store.delete_thread(tid, user_id=who) == 0
        # the control: quill still sees everything of hers, untouched
        assert [m.id for m in store.read(tid, user_id="quill")] == [m.id for m in quill]
        assert store.get_thread(tid, user_id="quill").title == "quill-title"
        assert {b.name for b in store.branches(tid, user_id="quill")} == {"main", "quill-branch"}

    def test_duplicate_message_id_names_no_owner(self, store: MessageStore) -> None:
        (m,) = store.append(_tid(), Message.user("x"), user_id="quill")
        with pytest.raises(ConflictError) as dup:
            store.append(_tid(), Message.user("y", id=m.id), user_id="bob")
        assert "quill" not in str(dup.value)

    @pytest.mark.parametrize("bad", ["", "a\x00b", "a\nb", "\ud800", "x" * 201])
    def test_bad_user_ids_rejected(self, store: MessageStore, bad: str) -> None:
        with pytest.raises(InvalidMessageError):
            store.append(_tid(), Message.user("x"), user_id=bad)
        with pytest.raises(InvalidMessageError):
            store.for_user(bad)

    def test_user_view_binds_the_user(self, store: MessageStore) -> None:
        tid = _tid()
        ada, bob = store.for_user("ada"), store.for_user("bob")
        stored = ada.append(tid, _turns(2))
        assert bob.read(tid) == []
        assert ada.read(tid) == stored
        assert [t.id for t in ada.list_threads().threads if t.id == tid] == [tid]

    # -- concurrency and async --------------------------------------------------------------

    def test_concurrent_writers_lose_nothing(self, store: MessageStore) -> None:
        if not self.supports_concurrent_writers:
            pytest.fail("declare why concurrent writers are unsupported and test the error")
        tid = _tid()
        store.append(tid, Message.system("start"), user_id=U)
        errors: list[BaseException] = []

        def writer(w: int) -> None:
            try:
                for i in range(20):
                    store.append(
                        tid, [Message.user(f"w{w}-{i}"), Message.assistant(f"r{w}-{i}")], user_id=U
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        chain = store.read(tid, user_id=U)
        assert len(chain) == 1 + 6 * 20 * 2
        for parent, child in itertools.pairwise(chain):
            assert child.parent_id == parent.id
        for i in range(1, len(chain), 2):  # each pair stays together, in order
            assert chain[i].text.replace("w", "r") == chain[i + 1].text
        for w in range(6):
            mine = [m.text for m in chain if m.text.startswith(f"w{w}-")]
            assert mine == [f"w{w}-{i}" for i in range(20)]

    @pytest.mark.asyncio
    async def test_async_twins(self, store: MessageStore) -> None:
        tid = _tid()
        stored = await store.aappend(tid, _turns(4), user_id=U)
        assert await store.aread(tid, user_id=U) == stored
        assert await store.aget(stored[0].id, user_id=U) == stored[0]
        await store.afork(tid, stored[1].id, name="alt", user_id=U)
        assert len(await store.abranches(tid, user_id=U)) == 2
        page = await store.alist_threads(U)
        assert [t.id for t in page.threads] == [tid]
        results = await asyncio.gather(
            *(store.aappend(tid, Message.user(f"c{i}"), user_id=U) for i in range(5))
        )
        assert len(results) == 5
        assert len(await store.aread(tid, user_id=U)) == 9
        assert (await store.aerase_user(U)).messages == 9

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        texts=st.lists(st.text(min_size=0, max_size=40), min_size=1, max_size=30),
        cuts=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=30),
        window=st.integers(min_value=1, max_value=40),
    )
    def test_any_batching_reads_back_the_same(
        self, store: MessageStore, texts: list[str], cuts: list[int], window: int
    ) -> None:
        tid = _tid()
        pos = 0
        for cut in cuts:
            if pos >= len(texts):
                break
            store.append(tid, [Message.user(t) for t in texts[pos : pos + cut]], user_id=U)
            pos += cut
        if pos < len(texts):
            store.append(tid, [Message.user(t) for t in texts[pos:]], user_id=U)
        assert [m.text for m in store.read(tid, user_id=U)] == texts
        assert [m.text for m in store.read(tid, last=window, user_id=U)] == texts[-window:]


def _uid(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _tail(store: MessageStore) -> str:
    """A cursor at the current end of the feed."""
    batch = store.changes(limit=10_000)
    while batch.more:
        batch = store.changes(batch.cursor, limit=10_000)
    return batch.cursor


def _after(store: MessageStore, cursor: str, users: set[str]) -> list[Change]:
    """Every event of ``users`` after ``cursor``."""
    out: list[Change] = []
    while True:
        batch = store.changes(cursor, limit=10_000)
        out.extend(c for c in batch.changes if c.user_id in users)
        cursor = batch.cursor
        if not batch.more:
            return out


def _summary(events: list[Change]) -> list[tuple[str, str | None, str | None]]:
    return [(c.kind, c.thread_id, c.message_id) for c in events]


class ChangeFeedConformance:
    """Shared tests of the change feed. Combine with :class:`StoreConformance` (same
    ``store`` fixture)."""

    def test_feed_records_every_kind_of_write_in_order(self, store: MessageStore) -> None:
        start = _tail(store)
        user, tid = _uid("feed"), _tid()
        stored = store.append(tid, _turns(3), user_id=user)
        store.update_message(stored[1].model_copy(update={"name": "edited"}), user_id=user)
        store.fork(tid, stored[0].id, name="alt", user_id=user)
        (side,) = store.append(tid, Message.user("side"), branch="alt", user_id=user)
        assert store.delete_branch(tid, "alt", user_id=user) == 1
        other = _tid()
        store.append(other, _turns(2), user_id=user)
        store.delete_thread(other, user_id=user)
        events = _after(store, start, {user})
        ids = [m.id for m in stored]
        assert _summary(events[:7]) == [
            ("append", tid, ids[0]),
            ("append", tid, ids[1]),
            ("append", tid, ids[2]),
            ("update", tid, ids[1]),
            ("append", tid, side.id),
            ("delete", tid, side.id),
            ("append", other, events[6].message_id),
        ]
        assert _summary(events[7:]) == [
            ("append", other, events[7].message_id),
            ("thread_deleted", other, None),
        ]
        assert {c.user_id for c in events} == {user}
        times = [c.at for c in events]
        assert times == sorted(times)
        assert all(t.tzinfo is not None for t in times)

    def test_pages_resume_from_their_cursor(self, store: MessageStore) -> None:
        start = _tail(store)
        user = _uid("pages")
        for _ in range(3):
            store.append(_tid(), _turns(3), user_id=user)
        whole = _after(store, start, {user})
        assert len(whole) == 9
        paged: list[Change] = []
        cursor = start
        rounds = 0
        while True:
            batch = store.changes(cursor, limit=2)
            assert len(batch.changes) <= 2
            paged.extend(c for c in batch.changes if c.user_id == user)
            cursor = batch.cursor
            rounds += 1
            if not batch.more:
                break
        assert paged == whole
        assert rounds >= 5
        # nothing new: the same cursor again, and no events
        again = store.changes(cursor)
        assert (again.changes, again.more) == ([], False)
        assert store.changes(again.cursor).changes == []
        # a cursor stays valid after later writes and sees only those
        store.append(_tid(), Message.user("later"), user_id=user)
        later = _after(store, cursor, {user})
        assert [c.kind for c in later] == ["append"]

    def test_a_foreign_or_garbage_cursor_is_a_gap(self, store: MessageStore) -> None:
        store.append(_tid(), _turns(2), user_id=_uid("gap"))
        good = _tail(store)
        for bad in ("", "garbage", "0", "::", "mem:x:1", "sqlite:1", good + "999999999"):
            with pytest.raises(ChangeFeedGapError):
                store.changes(bad)
        assert store.changes(good).changes == []

    @pytest.mark.parametrize("limit", [0, -1, 10_001])
    def test_limit_out_of_range_is_refused(self, store: MessageStore, limit: int) -> None:
        with pytest.raises(InvalidMessageError) as caught:
            store.changes(limit=limit)
        assert isinstance(caught.value, ValueError)

    def test_erasure_leaves_one_event_of_the_user(self, store: MessageStore) -> None:
        user, bystander = _uid("erased"), _uid("kept")
        a, b = _tid(), _tid()
        stored = store.append(a, _turns(3), user_id=user)
        store.update_message(stored[0], user_id=user)
        store.append(b, _turns(2), user_id=user)
        store.delete_thread(b, user_id=user)
        kept = store.append(_tid(), _turns(2), user_id=bystander)
        mark = _tail(store)
        store.erase_user(user)
        everything = self._from_start(store, user)
        assert _summary(everything) == [("user_erased", None, None)]
        assert [c.kind for c in _after(store, mark, {user})] == ["user_erased"]
        theirs = self._from_start(store, bystander)
        assert [c.message_id for c in theirs] == [m.id for m in kept]

    @staticmethod
    def _from_start(store: MessageStore, user: str) -> list[Change]:
        out: list[Change] = []
        batch = store.changes(None, limit=10_000)
        while True:
            out.extend(c for c in batch.changes if c.user_id == user)
            if not batch.more:
                return out
            batch = store.changes(batch.cursor, limit=10_000)

    def test_retention_records_each_removed_message(self, store: MessageStore) -> None:
        user = _uid("retention")
        tid, old = _tid(), _tid()
        stored = store.append(tid, _turns(6), user_id=user)
        long_ago = datetime.now(UTC) - timedelta(days=4000)
        (ancient,) = store.append(old, Message.user("ancient", created_at=long_ago), user_id=user)
        start = _tail(store)
        store.apply_retention(max_age=timedelta(days=3650), max_messages=2)
        events = _after(store, start, {user})
        deleted = {(c.thread_id, c.message_id) for c in events if c.kind == "delete"}
        assert deleted == {(tid, m.id) for m in stored[:4]} | {(old, ancient.id)}
        assert ("thread_deleted", old, None) in _summary(events)
        assert ("thread_deleted", tid, None) not in _summary(events)

    @pytest.mark.asyncio
    async def test_async_twin_reads_the_same(self, store: MessageStore) -> None:
        start = _tail(store)
        user = _uid("async")
        await store.aappend(_tid(), _turns(3), user_id=user)
        got = await store.achanges(start, limit=10_000)
        assert got == store.changes(start, limit=10_000)
        assert [c.kind for c in got.changes if c.user_id == user] == ["append"] * 3
        with pytest.raises(ChangeFeedGapError):
            await store.achanges("garbage")

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["append", "append", "update", "fork", "drop", "erase"]),
                st.integers(min_value=0, max_value=1),  # user
                st.integers(min_value=0, max_value=2),  # thread
                st.integers(min_value=1, max_value=3),  # how many / which
            ),
            max_size=25,
        )
    )
    def test_replaying_the_feed_rebuilds_who_holds_what(
        self, store: MessageStore, ops: list[tuple[str, int, int, int]]
    ) -> None:
        users = [_uid("replay-a"), _uid("replay-b")]
        threads = [_tid() for _ in range(3)]
        start = _tail(store)
        for op, u, t, n in ops:
            user, tid = users[u], threads[t]
            if op == "append":
                store.append(tid, [Message.user(f"m{i}") for i in range(n)], user_id=user)
            elif op == "update":
                mine = store.read(tid, user_id=user)
                if mine:
                    target = mine[n % len(mine)]
                    store.update_message(target.model_copy(update={"name": "x"}), user_id=user)
            elif op == "fork":
                mine = store.read(tid, user_id=user)
                if mine:
                    name = f"b{uuid.uuid4().hex[:6]}"
                    store.fork(tid, mine[n % len(mine)].id, name=name, user_id=user)
                    store.append(tid, Message.user("side"), branch=name, user_id=user)
                    if n % 2:
                        store.delete_branch(tid, name, user_id=user)
            elif op == "drop":
                store.delete_thread(tid, user_id=user)
            else:
                store.erase_user(user)
        replayed: dict[tuple[str, str], set[str]] = {}
        for c in _after(store, start, set(users)):
            key = (c.user_id, c.thread_id or "")
            if c.kind == "append" and c.message_id is not None:
                replayed.setdefault(key, set()).add(c.message_id)
            elif c.kind == "update":
                assert c.message_id in replayed.get(key, set())
            elif c.kind == "delete":
                replayed.get(key, set()).discard(c.message_id or "")
            elif c.kind == "thread_deleted":
                replayed.pop(key, None)
            elif c.kind == "user_erased":
                for k in [k for k in replayed if k[0] == c.user_id]:
                    del replayed[k]
        truth: dict[tuple[str, str], set[str]] = {}
        for user in users:
            for tid in threads:
                ids = {
                    m.id
                    for b in store.branches(tid, user_id=user)
                    for m in store.read(tid, user_id=user, branch=b.name)
                }
                if ids:
                    truth[(user, tid)] = ids
        assert {k: v for k, v in replayed.items() if v} == truth
