"""Property test: any program of appends, forks, branch deletions and retention gives the same
branches on RedisStore (segments of lists) as on the reference InMemoryStore (parent pointers),
on a standalone server and on the cluster."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_servers import RedisClusterServers, RedisServer

from tela_memory.errors import TelaMemoryError
from tela_memory.messages import Message
from tela_memory.stores.base import MessageStore
from tela_memory.stores.memory import InMemoryStore
from tela_memory_redis import RedisStore

pytestmark = pytest.mark.integration

step = st.one_of(
    st.tuples(st.just("append"), st.integers(0, 5), st.integers(1, 4)),
    st.tuples(st.just("fork"), st.integers(0, 5), st.integers(0, 30)),
    st.tuples(st.just("delete"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("default"), st.integers(0, 5), st.just(0)),
    st.tuples(st.just("retain"), st.integers(1, 12), st.just(0)),
)


U = "model-user"


def _snapshot(store: MessageStore, tid: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for b in store.branches(tid, user_id=U):
        msgs = store.read(tid, branch=b.name, user_id=U)
        out[b.name] = (
            b.head_id,
            b.is_default,
            [(m.id, m.parent_id, m.text) for m in msgs],
            [m.id for m in store.read(tid, branch=b.name, last=3, user_id=U)],
        )
    return out


def _play(redis_store: RedisStore, program: list[tuple[str, int, int]]) -> None:
    ref = InMemoryStore()
    tid = f"model-{uuid.uuid4().hex[:8]}"
    counter = 0
    for op, a, b in program:
        names = [br.name for br in ref.branches(tid, user_id=U)] or ["main"]
        name = names[a % len(names)]
        results = []
        for store in (ref, redis_store):
            try:
                if op == "append":
                    msgs = [
                        Message.user(f"m{counter + i}", id=f"{tid}-{counter + i}") for i in range(b)
                    ]
                    results.append([m.id for m in store.append(tid, msgs, branch=name, user_id=U)])
                elif op == "fork":
                    chain = store.read(tid, branch=name, user_id=U)
                    if not chain:
                        results.append(None)
                        continue
                    at = chain[b % len(chain)].id
                    results.append(store.fork(tid, at, name=f"f{counter}", user_id=U).name)
                elif op == "delete":
                    results.append(store.delete_branch(tid, name, user_id=U))
                elif op == "default":
                    store.set_default_branch(tid, name, user_id=U)
                    results.append(None)
                elif op == "retain":
                    results.append(store.apply_retention(max_messages=a).messages)
            except TelaMemoryError as exc:
                results.append(type(exc).__name__)
        counter += 10
        assert results[0] == results[1], (op, a, b)
        assert _snapshot(redis_store, tid) == _snapshot(ref, tid), (op, a, b)


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(program=st.lists(step, min_size=1, max_size=25))
def test_branches_match_the_reference(
    redis_plain: RedisServer, program: list[tuple[str, int, int]]
) -> None:
    with RedisStore(redis_plain.url, prefix=f"model-{uuid.uuid4().hex[:6]}") as store:
        _play(store, program)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(program=st.lists(step, min_size=1, max_size=15))
def test_branches_match_the_reference_on_the_cluster(
    redis_cluster: RedisClusterServers, program: list[tuple[str, int, int]]
) -> None:
    with RedisStore(redis_cluster.url, prefix=f"model-{uuid.uuid4().hex[:6]}") as store:
        _play(store, program)
