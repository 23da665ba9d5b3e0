"""``Recaller``: hybrid search over a user's history and token-budgeted recall for the context
engine's recall slot ("the best turns within 1,000 tokens").

Every call acts for one user (``user_id=``): the user goes into the filter the index runs, so
no hit, neighbour or thread score of another user can come back. Searching every user is an
operator's act and says so, ``all_users=True``; a call with neither raises ``ScopeError``.
Thread ids in filters are the user's own threads (threads are ``(user_id, thread_id)``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tela_memory.errors import ScopeError
from tela_memory.messages import Message
from tela_memory.recall.embedder import Vectors
from tela_memory.recall.errors import InvalidQueryError
from tela_memory.recall.index import FilterLike, Index
from tela_memory.recall.ranking import (
    RankingConfig,
    Reranker,
    ThreadHit,
    dedup,
    fuse,
    rank_threads,
    thread_bm25,
    with_neighbors,
    with_recency,
    with_thread_scores,
    with_threads,
)
from tela_memory.recall.types import (
    MAX_K,
    Hit,
    SearchFilter,
    ThreadKey,
    check_k,
    check_query,
    thread_key,
)
from tela_memory.stores._common import check_id
from tela_memory.stores.base import MessageStore
from tela_memory.stores.scoped import UserStore
from tela_memory.tokens.base import TokenCounter
from tela_memory.tokens.counters import ApproxCounter


@dataclass(frozen=True)
class RecallConfig:
    """Knobs of :class:`Recaller`.

    Attributes:
        ranking: fusion, neighbour and recency weights.
        candidates: hits asked of each side (lexical, dense) before fusion. When
            de-duplication leaves fewer than ``k`` hits of a full pool, the pool is widened
            (x4 each round, up to ``MAX_K`` a side) until ``k`` distinct hits are found or the
            index has no more.
        rerank_top: how many fused candidates a reranker rescores.
        expand_top: the best this many hits bring their adjacent turns into a budgeted
            result, when they fit.
        neighbors: adjacent turns on each side that such a hit brings.
        neighbor_share: an adjacent turn competes for the budget with ``neighbor_share`` x
            the score of the hit that brought it (so it goes in before weaker hits, after
            stronger ones); ``None`` takes it right after its hit.
        session_dates: put each thread's date in the rendered result.
    """

    ranking: RankingConfig = field(default_factory=RankingConfig)
    candidates: int = 60
    rerank_top: int = 30
    expand_top: int = 10
    neighbors: int = 2
    neighbor_share: float | None = 0.5
    session_dates: bool = True


@dataclass(frozen=True)
class RecalledTurn:
    """One turn of a budgeted recall."""

    message: Message
    text: str
    score: float
    tokens: int
    rank: int | None
    """Rank among the hits (0 = best); ``None`` for a turn brought in as a neighbour."""


@dataclass(frozen=True)
class RecallResult:
    """What fit the budget: turns in time order (grouped by thread), plus the ranking."""

    query: str
    budget: int
    turns: tuple[RecalledTurn, ...]
    hits: tuple[Hit, ...]
    tokens: int

    @property
    def messages(self) -> list[Message]:
        """The recalled messages, oldest first."""
        return [t.message for t in self.turns]

    def render(self, *, session_dates: bool = True) -> str:
        """Plain text for a prompt: one block per thread, dated, one line per turn."""
        return render(self.turns, session_dates=session_dates)


def _speaker(m: Message) -> str:
    return m.name or m.role.value


def line(turn_text: str, message: Message) -> str:
    """How one turn is written in a rendered recall."""
    return f"{_speaker(message)}: {turn_text}"


def header(message: Message) -> str:
    """The line that opens a thread's block (with the date of its first turn)."""
    return f"[{message.created_at:%Y-%m-%d %H:%M} | thread {message.thread_id}]"


def render(turns: Sequence[RecalledTurn], *, session_dates: bool = True) -> str:
    """Render turns (already in order) as text, one block per thread (``(user, thread)``)."""
    out: list[str] = []
    thread: ThreadKey | None = None
    for t in turns:
        if thread_key(t.message) != thread:
            thread = thread_key(t.message)
            if session_dates:
                out.append(header(t.message))
        out.append(line(t.text, t.message))
    return "\n".join(out)


class Recaller:
    """Hybrid recall over an index, for one user per call.

    Every method takes ``user_id=`` (the acting user: only that user's turns are searched,
    expanded and scored) or ``all_users=True`` (an operator's search across every user, which
    a filter ``{"user_id": ...}`` may narrow); with neither it raises
    :class:`~tela_memory.errors.ScopeError`. One ``Recaller`` serves many users.

    Args:
        index: where to search (lexical, dense or both).
        config: ranking and budgeting knobs.
        reranker: optional second-stage scorer of the fused candidates.
        counter: counts tokens for budgets (default: :class:`ApproxCounter`).
    """

    def __init__(
        self,
        index: Index,
        *,
        config: RecallConfig | None = None,
        reranker: Reranker | None = None,
        counter: TokenCounter | None = None,
    ) -> None:
        self.index = index
        self.config = config or RecallConfig()
        self.reranker = reranker
        self.counter: TokenCounter = counter or ApproxCounter()

    # -- ranking ----------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        filter: FilterLike = None,
        k: int = 10,
        now: datetime | None = None,
        query_vector: Vectors | None = None,
    ) -> list[Hit]:
        """The best ``k`` turns of ``user_id``'s for a query.

        Both sides run with the same filter inside the index; results are fused, lifted by
        adjacent matches and recency, optionally reranked, and de-duplicated. Pass
        ``query_vector`` when the query is already embedded.

        Args:
            query: what to look for.
            user_id: the acting user (required unless ``all_users``).
            all_users: search every user's turns (the named cross-user opt-in).
            filter: more conditions, applied inside the index (``thread_ids`` are the
                user's threads); it may repeat ``user_id``, never name another.
            k: how many hits.
            now: the time recency is measured from (default: now).
            query_vector: the query already embedded (skips the embedder).

        Raises:
            ScopeError: neither ``user_id`` nor ``all_users=True`` (or both).
        """
        text, flt = self._prepare(query, user_id, all_users, filter, k)
        n = self.config.candidates
        while True:
            fused, full = self._ranked(text, flt, now, query_vector, n)
            hits = self._finish(fused, k)
            if len(hits) >= k or not full or n >= MAX_K:
                return hits
            n = min(MAX_K, n * 4)  # de-duplication ate the pool: look further

    def search_threads(
        self,
        query: str,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        filter: FilterLike = None,
        k: int = 5,
        now: datetime | None = None,
        query_vector: Vectors | None = None,
    ) -> list[ThreadHit]:
        """The best ``k`` threads (sessions) for a query, each scored by its best turn (thread
        BM25 included, see ``RankingConfig.thread_lexical``) with its matching turns.

        Args:
            query: what to look for.
            user_id: the acting user, whose threads are ranked (required unless
                ``all_users``).
            all_users: rank every user's threads (two users' threads of the same id are
                two threads, told apart by ``ThreadHit.user_id``).
            filter: more conditions, applied inside the index.
            k: how many threads.
            now: the time recency is measured from (default: now).
            query_vector: the query already embedded (skips the embedder).

        Only threads with a turn among the ``RecallConfig.candidates`` best of either side can
        be returned.

        Raises:
            ScopeError: neither ``user_id`` nor ``all_users=True`` (or both).
        """
        text, flt = self._prepare(query, user_id, all_users, filter, k)
        fused, _ = self._ranked(text, flt, now, query_vector, self.config.candidates)
        return rank_threads(self._finish(fused, None))[:k]

    async def asearch_threads(
        self,
        query: str,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        filter: FilterLike = None,
        k: int = 5,
        now: datetime | None = None,
        query_vector: Vectors | None = None,
    ) -> list[ThreadHit]:
        """Async twin of :meth:`search_threads`."""
        text, flt = self._prepare(query, user_id, all_users, filter, k)
        ranked, _ = await self._aranked(text, flt, now, query_vector, self.config.candidates)
        return rank_threads(self._finish(ranked, None))[:k]

    async def asearch(
        self,
        query: str,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        filter: FilterLike = None,
        k: int = 10,
        now: datetime | None = None,
        query_vector: Vectors | None = None,
    ) -> list[Hit]:
        """Async twin of :meth:`search`."""
        text, flt = self._prepare(query, user_id, all_users, filter, k)
        if query_vector is None and self.index.dense_enabled and self.index.embedder is not None:
            query_vector = await self.index.embedder.aembed_query(text)
        n = self.config.candidates
        while True:
            fused, full = await self._aranked(text, flt, now, query_vector, n)
            hits = self._finish(fused, k)
            if len(hits) >= k or not full or n >= MAX_K:
                return hits
            n = min(MAX_K, n * 4)

    # -- budgeted recall --------------------------------------------------------------------

    def recall(
        self,
        query: str,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        budget: int = 1000,
        filter: FilterLike = None,
        k: int = 50,
        now: datetime | None = None,
    ) -> RecallResult:
        """The best turns of ``user_id``'s that fit in ``budget`` tokens (rendered lines and
        headers counted), the best hits bringing their adjacent turns when those fit; oldest
        first. ``user_id`` / ``all_users`` as for :meth:`search`."""
        self._check_budget(budget)
        hits = self.search(query, user_id=user_id, all_users=all_users, filter=filter, k=k, now=now)
        return self.pack(query, budget, hits, user_id, all_users=all_users, filter=filter)

    async def arecall(
        self,
        query: str,
        *,
        user_id: str | None = None,
        all_users: bool = False,
        budget: int = 1000,
        filter: FilterLike = None,
        k: int = 50,
        now: datetime | None = None,
    ) -> RecallResult:
        """Async twin of :meth:`recall`."""
        self._check_budget(budget)
        hits = await self.asearch(
            query, user_id=user_id, all_users=all_users, filter=filter, k=k, now=now
        )
        return await asyncio.to_thread(
            self.pack, query, budget, hits, user_id, all_users=all_users, filter=filter
        )

    def pack(
        self,
        query: str,
        budget: int,
        hits: Sequence[Hit],
        user_id: str | None = None,
        *,
        all_users: bool = False,
        filter: FilterLike = None,
        neighbors: bool = True,
    ) -> RecallResult:
        """Fit ranked hits into ``budget`` tokens (what :meth:`recall` does after searching).

        With ``neighbors`` the best ``expand_top`` hits bring their adjacent turns (looked up
        in the index under the same filter, so only ``user_id``'s) when they fit. Hits of
        another user than ``user_id`` are left out. ``user_id`` / ``all_users`` as for
        :meth:`search`.
        """
        self._check_budget(budget)
        flt = self._scope(user_id, all_users, filter)
        kept = [h for h in hits if flt.user_id is None or h.message.user_id == flt.user_id]
        return self._pack(query, budget, kept, flt, neighbors)

    # -- internals --------------------------------------------------------------------------

    def _prepare(
        self,
        query: str,
        user_id: str | None,
        all_users: bool,
        filter: FilterLike,
        k: int,
    ) -> tuple[str, SearchFilter]:
        flt = self._scope(user_id, all_users, filter)
        text = check_query(query)
        check_k(k)
        return text, flt

    @staticmethod
    def _scope(user_id: str | None, all_users: bool, filter: FilterLike) -> SearchFilter:
        """The filter a call runs with: ``filter`` narrowed to the acting user."""
        if user_id is None and all_users is not True:
            raise ScopeError(
                "Recaller acts for one user: pass user_id=... (or all_users=True for an "
                "operator's search across every user)"
            )
        if user_id is not None and all_users:
            raise ScopeError(
                "pass either user_id=... or all_users=True, not both (narrow an all-users "
                "search with filter={'user_id': ...})"
            )
        flt = SearchFilter.coerce(filter)
        if user_id is not None:
            check_id("user_id", user_id)
            if flt.user_id is not None and flt.user_id != user_id:
                raise InvalidQueryError(
                    "the filter's user_id disagrees with user_id=: a filter can narrow a "
                    "search, never switch it to another user"
                )
            flt = flt.narrowed(user_id=user_id)
        return flt

    @staticmethod
    def _check_budget(budget: int) -> None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
            raise InvalidQueryError(f"budget must be a positive number of tokens, got {budget!r}")

    def _ranked(
        self, text: str, flt: SearchFilter, now: datetime | None, vector: Vectors | None, n: int
    ) -> tuple[list[Hit], bool]:
        """Fused (and reranked) candidates of ``n`` a side, and whether a side was full."""
        lexical, dense, threads = self._candidates(text, flt, vector, n)
        fused = self._fuse(lexical, dense, threads, now)
        if self.reranker is not None and fused:
            top = fused[: self.config.rerank_top]
            fused = _apply_rerank(top, self.reranker.rerank(text, top)) + fused[len(top) :]
        return fused, len(lexical) >= n or len(dense) >= n

    async def _aranked(
        self, text: str, flt: SearchFilter, now: datetime | None, vector: Vectors | None, n: int
    ) -> tuple[list[Hit], bool]:
        if vector is None and self.index.dense_enabled and self.index.embedder is not None:
            vector = await self.index.embedder.aembed_query(text)
        lexical, dense, threads = await asyncio.to_thread(self._candidates, text, flt, vector, n)
        fused = self._fuse(lexical, dense, threads, now)
        if self.reranker is not None and fused:
            top = fused[: self.config.rerank_top]
            fused = _apply_rerank(top, await self.reranker.arerank(text, top)) + fused[len(top) :]
        return fused, len(lexical) >= n or len(dense) >= n

    def _candidates(
        self, text: str, flt: SearchFilter, vector: Vectors | None, n: int
    ) -> tuple[list[Hit], list[Hit], dict[ThreadKey, float] | None]:
        lexical: list[Hit] = []
        dense: list[Hit] = []
        threads = None
        if self.index.supports_lexical:
            lexical = self.index.search(text, filter=flt, k=n, mode="lexical")
        if self.index.dense_enabled:
            dense = self.index.search(text, filter=flt, k=n, mode="dense", query_vector=vector)
        cfg = self.config.ranking
        if cfg.thread_lexical and cfg.thread_weight > 0 and self.index.supports_thread_terms:
            threads = thread_bm25(self.index.thread_term_counts(text, filter=flt))
        return lexical, dense, threads

    def _fuse(
        self,
        lexical: list[Hit],
        dense: list[Hit],
        threads: dict[ThreadKey, float] | None,
        now: datetime | None,
    ) -> list[Hit]:
        cfg = self.config.ranking
        fused = fuse(lexical, dense, cfg)
        fused = with_neighbors(fused, cfg.neighbor_weight)
        if threads is None:
            fused = with_threads(fused, cfg.thread_weight, cfg.thread_top)
        else:
            fused = with_thread_scores(fused, threads, cfg.thread_weight)
        return with_recency(fused, cfg.recency_weight, cfg.half_life_days, now or datetime.now(UTC))

    def _finish(self, fused: list[Hit], k: int | None) -> list[Hit]:
        if self.config.ranking.dedup:
            fused = dedup(fused)
        return fused if k is None else fused[:k]

    def _cost(self, text: str, message: Message) -> int:
        return self.counter.count_text(line(text, message)) + 1

    def _pack(
        self, query: str, budget: int, hits: list[Hit], flt: SearchFilter, neighbors: bool
    ) -> RecallResult:
        chosen: dict[str, RecalledTurn] = {}
        threads: set[ThreadKey] = set()
        used = 0

        def take(hit: Hit, rank: int | None) -> bool:
            nonlocal used
            if hit.message.id in chosen:
                return True
            cost = self._cost(hit.text, hit.message)
            new_thread = thread_key(hit.message) not in threads
            if new_thread and self.config.session_dates:
                cost += self.counter.count_text(header(hit.message)) + 1
            if used + cost > budget:
                return False
            used += cost
            threads.add(thread_key(hit.message))
            chosen[hit.message.id] = RecalledTurn(hit.message, hit.text, hit.score, cost, rank)
            return True

        share = self.config.neighbor_share
        if share is None or not neighbors:
            for rank, hit in enumerate(hits):
                if not take(hit, rank):
                    continue
                if neighbors and rank < self.config.expand_top and self.config.neighbors > 0:
                    n = self.config.neighbors
                    for near in self.index.neighbors(hit.message.id, before=n, after=n, filter=flt):
                        take(near, None)
        else:
            queue: list[tuple[float, int, Hit, int | None]] = [
                (h.score, i, h, i) for i, h in enumerate(hits)
            ]
            n = self.config.neighbors
            if n > 0:
                for hit in hits[: self.config.expand_top]:
                    for near in self.index.neighbors(hit.message.id, before=n, after=n, filter=flt):
                        # below its hit's score whatever the sign (a reranker may go negative)
                        after = hit.score - (1.0 - share) * abs(hit.score)
                        queue.append((after, len(queue), near, None))
            queue.sort(key=lambda e: (-e[0], e[1]))
            for _, _, hit, place in queue:
                take(hit, place)
        turns = sorted(
            chosen.values(),
            key=lambda t: (_order(thread_key(t.message)), t.message.created_at, t.message.id),
        )
        # threads in order of their first turn's time
        first: dict[ThreadKey, datetime] = {}
        for t in turns:
            first.setdefault(thread_key(t.message), t.message.created_at)
        turns.sort(key=lambda t: (first[thread_key(t.message)], _order(thread_key(t.message))))
        return RecallResult(query, budget, tuple(turns), tuple(hits), used)


def _order(key: ThreadKey) -> tuple[str, str]:
    return key[0] or "", key[1] or ""


def _branch_user(store: MessageStore | UserStore, user_id: str | None) -> str:
    """The user a branch filter is read for: ``user_id``, or the one a ``UserStore`` binds."""
    bound = store.user_id if isinstance(store, UserStore) else None
    if user_id is None and bound is None:
        raise ScopeError(
            "branch_filter reads one user's thread: pass user_id=... (or a store.for_user(...))"
        )
    if user_id is not None and bound is not None and user_id != bound:
        raise ScopeError("user_id= disagrees with the user the UserStore is bound to")
    return check_id("user_id", user_id if user_id is not None else str(bound))


def branch_filter(
    store: MessageStore | UserStore,
    thread_id: str,
    branch: str | None = None,
    *,
    user_id: str | None = None,
) -> SearchFilter:
    """A filter for the messages on one branch of one of ``user_id``'s threads (read from the
    store: the ids on the branch become ``message_ids``, so any index can enforce it in its
    query). ``store`` may be a ``store.for_user(...)`` view, which gives the user; a foreign
    or missing thread gives a filter that admits nothing."""
    user = _branch_user(store, user_id)
    base = store.store if isinstance(store, UserStore) else store
    ids = tuple(m.id for m in base.read(thread_id, user_id=user, branch=branch))
    return SearchFilter(user_id=user, thread_ids=(thread_id,), message_ids=ids)


async def abranch_filter(
    store: MessageStore | UserStore,
    thread_id: str,
    branch: str | None = None,
    *,
    user_id: str | None = None,
) -> SearchFilter:
    """Async twin of :func:`branch_filter`."""
    user = _branch_user(store, user_id)
    base = store.store if isinstance(store, UserStore) else store
    ids = tuple(m.id for m in await base.aread(thread_id, user_id=user, branch=branch))
    return SearchFilter(user_id=user, thread_ids=(thread_id,), message_ids=ids)


def _apply_rerank(hits: list[Hit], scores: Sequence[float]) -> list[Hit]:
    if len(scores) != len(hits):
        raise InvalidQueryError(f"reranker gave {len(scores)} scores for {len(hits)} hits")
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    return [hits[i].model_copy(update={"score": float(scores[i])}) for i in order]


__all__ = [
    "RecallConfig",
    "RecallResult",
    "RecalledTurn",
    "Recaller",
    "abranch_filter",
    "branch_filter",
    "render",
]
