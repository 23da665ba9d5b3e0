"""Records workload: one user puts 1,000 records, gets each by key, lists the namespace, and
updates each with compare-and-set (the version it read).

Ours: ``SQLiteRecordStore`` (its own file) and ``InMemoryRecordStore``, both through
``for_user`` as applications hold them. Peer: LangGraph's ``InMemoryStore`` (``put`` / ``get``
/ ``search`` on a namespace; it has no compare-and-set, so its update is what a user must do
instead: get, compare a version kept in the value, put, not atomic). Floor: bare ``sqlite3``
on an equivalent table (primary key user, namespace, key; value and version columns) in a WAL
file in the same temporary folder, with the store's settings (autocommit, ``synchronous=NORMAL``):
``INSERT OR REPLACE``, ``SELECT`` by primary key, ``SELECT`` of the namespace, and one
``UPDATE ... WHERE version = ?`` (checked by its row count) for compare-and-set. The floor
writes no history, no change feed and no JSON checks. Every row is compared to the floor.

    python bench/bench_records.py            # 1,000 records, 5 rounds of each operation
    python bench/bench_records.py --quick    # 1,000 records, 1 round
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tela_memory.records import (
    InMemoryRecordStore,
    RecordStore,
    SQLiteRecordStore,
    VersionConflictError,
)

from harness import Row, Stats, fmt_time, measure, write_json

USER = "bench"
NS = ("facts",)
FLOOR = "floor: bare sqlite3 (WAL)"


def _value(i: int, round_: int = 0) -> dict[str, Any]:
    return {
        "text": f"fact {i}: the user likes item {i % 97} " + "lorem ipsum " * (1 + i % 5),
        "confidence": round(0.5 + (i % 50) / 100, 2),
        "tags": ["pref", f"t{i % 13}"],
        "round": round_,
    }


def _key(i: int) -> str:
    return f"k{i:05d}"


class Workload:
    """What every implementation is asked to do, in the same order, on the same data."""

    def __init__(self, n: int, rounds: int, list_repeat: int) -> None:
        self.n = n
        self.rounds = rounds
        self.list_repeat = list_repeat
        self.order = list(range(n))
        random.Random(7).shuffle(self.order)

    def per_op(self, fn: Callable[[int], object]) -> Stats:
        """Call ``fn(i)`` for every record in shuffled order, ``rounds`` times; one sample
        per call."""
        it = iter(self.order * self.rounds)
        return measure(lambda: fn(next(it)), repeat=self.n * self.rounds, warmup=0)


def _row(op: str, impl: str, stats: Stats, **extra: Any) -> Row:
    return Row("records", op, impl, stats.median, stats.p95, dict(extra))


# -- ours ---------------------------------------------------------------------------------


def tela_rows(backend: RecordStore, impl: str, w: Workload) -> list[Row]:
    records = backend.for_user(USER)
    records.put(("warm",), "x", 0)  # the schema exists before the first timed write
    rows: list[Row] = []
    counter = iter(range(w.n))
    stats = measure(
        lambda: records.put(NS, _key(next(counter)), _value(0), kind="fact", provenance=["m1"]),
        repeat=w.n,
        warmup=0,
    )
    rows.append(_row(f"put x{w.n:,} (new keys)", impl, stats))
    rows.append(_row(f"get by key x{w.n:,}", impl, w.per_op(lambda i: records.get(NS, _key(i)))))
    listed = records.list(NS, limit=w.n)
    assert len(listed) == w.n
    stats = measure(lambda: records.list(NS, limit=w.n), repeat=w.list_repeat)
    rows.append(_row(f"list namespace ({w.n:,})", impl, stats, **{"per record": stats.median}))
    versions = {r.key: r.version for r in listed}
    rounds = iter(range(10**9))

    def cas(i: int) -> None:
        key = _key(i)
        rec = records.put(NS, key, _value(i, next(rounds)), expected_version=versions[key])
        versions[key] = rec.version

    rows.append(_row(f"update with CAS x{w.n:,}", impl, w.per_op(cas)))
    try:  # a stale version is refused
        records.put(NS, _key(0), _value(0), expected_version=1)
        raise AssertionError("a stale expected_version was accepted")
    except VersionConflictError:
        pass
    backend.close()
    return rows


# -- LangGraph InMemoryStore ----------------------------------------------------------------


def langgraph_rows(w: Workload) -> list[Row]:
    from langgraph.store.memory import InMemoryStore

    impl = "langgraph InMemoryStore"
    store = InMemoryStore()
    ns = (USER, *NS)  # LangGraph has no user scope: the user is a namespace segment
    rows: list[Row] = []
    counter = iter(range(w.n))
    stats = measure(
        lambda: store.put(ns, _key(next(counter)), {**_value(0), "version": 1}),
        repeat=w.n,
        warmup=0,
    )
    rows.append(_row(f"put x{w.n:,} (new keys)", impl, stats))
    rows.append(_row(f"get by key x{w.n:,}", impl, w.per_op(lambda i: store.get(ns, _key(i)))))
    assert len(store.search(ns, limit=w.n)) == w.n
    stats = measure(lambda: store.search(ns, limit=w.n), repeat=w.list_repeat)
    rows.append(
        _row(
            f"list namespace ({w.n:,})",
            impl,
            stats,
            **{"per record": stats.median, "note": "search"},
        )
    )
    versions = dict.fromkeys((_key(i) for i in range(w.n)), 1)
    rounds = iter(range(10**9))

    def get_compare_put(i: int) -> None:
        key = _key(i)
        item = store.get(ns, key)
        if item is None or item.value["version"] != versions[key]:
            raise AssertionError("langgraph lost an update")
        versions[key] += 1
        store.put(ns, key, {**_value(i, next(rounds)), "version": versions[key]})

    stats = w.per_op(get_compare_put)
    rows.append(_row(f"update with CAS x{w.n:,}", impl, stats, note="no CAS: get, compare, put"))
    return rows


# -- floor: bare sqlite3 ------------------------------------------------------------------


def floor_rows(folder: Path, w: Workload) -> list[Row]:
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE records (user_id TEXT NOT NULL, namespace TEXT NOT NULL, key TEXT NOT NULL,"
        " version INTEGER NOT NULL, value TEXT NOT NULL,"
        " PRIMARY KEY (user_id, namespace, key)) WITHOUT ROWID"
    )
    ns = "\x1f".join(NS)
    rows: list[Row] = []
    counter = iter(range(w.n))
    put = "INSERT OR REPLACE INTO records VALUES (?, ?, ?, 1, ?)"
    stats = measure(
        lambda: conn.execute(put, (USER, ns, _key(next(counter)), json.dumps(_value(0)))),
        repeat=w.n,
        warmup=0,
    )
    rows.append(_row(f"put x{w.n:,} (new keys)", FLOOR, stats))
    get = "SELECT version, value FROM records WHERE user_id = ? AND namespace = ? AND key = ?"

    def get_one(i: int) -> object:
        version, value = conn.execute(get, (USER, ns, _key(i))).fetchone()
        return version, json.loads(value)

    rows.append(_row(f"get by key x{w.n:,}", FLOOR, w.per_op(get_one)))
    scan = (
        "SELECT key, version, value FROM records WHERE user_id = ? AND namespace = ?"
        " ORDER BY key LIMIT ?"
    )

    def list_all() -> list[object]:
        return [(k, v, json.loads(x)) for k, v, x in conn.execute(scan, (USER, ns, w.n))]

    assert len(list_all()) == w.n
    stats = measure(list_all, repeat=w.list_repeat)
    rows.append(_row(f"list namespace ({w.n:,})", FLOOR, stats, **{"per record": stats.median}))
    versions = dict.fromkeys((_key(i) for i in range(w.n)), 1)
    rounds = iter(range(10**9))
    update = (
        "UPDATE records SET value = ?, version = version + 1"
        " WHERE user_id = ? AND namespace = ? AND key = ? AND version = ?"
    )

    def cas(i: int) -> None:
        key = _key(i)
        args = (json.dumps(_value(i, next(rounds))), USER, ns, key, versions[key])
        if conn.execute(update, args).rowcount != 1:
            raise AssertionError("the floor lost a compare-and-set")
        versions[key] += 1

    rows.append(_row(f"update with CAS x{w.n:,}", FLOOR, w.per_op(cas)))
    conn.close()
    return rows


# -- table ----------------------------------------------------------------------------------


def print_floor_table(rows: list[Row], n: int) -> str:
    """A markdown table: time per op and ``x floor`` = time / the floor's (1.0x: as fast as
    bare sqlite3). A list's ``per record`` is its median over the records listed."""
    floor = {r.operation: r.median_s for r in rows if r.impl == FLOOR}
    head = ["operation", "impl", "median / op", "p95 / op", "x floor", "per record", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        base = floor.get(r.operation)
        per_record = r.extra.get("per record")
        cells = [
            r.operation,
            r.impl,
            fmt_time(r.median_s),
            fmt_time(r.p95_s) if r.p95_s is not None else "",
            f"{r.median_s / base:.1f}x" if base else "",
            fmt_time(per_record / n) if per_record is not None else "",
            str(r.extra.get("note", "")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round of each operation (CI)")
    args = parser.parse_args()
    n = 1_000
    w = Workload(n, rounds=1, list_repeat=10) if args.quick else Workload(n, 5, 50)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tela-bench-") as tmp:
        folder = Path(tmp)
        rows += tela_rows(SQLiteRecordStore(folder / "tela.db"), "tela SQLiteRecordStore", w)
        rows += tela_rows(InMemoryRecordStore(), "tela InMemoryRecordStore", w)
        rows += langgraph_rows(w)
        rows += floor_rows(folder, w)
    order: dict[str, int] = {}
    for r in rows:
        order.setdefault(r.operation, len(order))
    rows.sort(key=lambda r: order[r.operation])
    print_floor_table(rows, n)
    write_json("records" + ("-quick" if args.quick else ""), rows)


if __name__ == "__main__":
    main()
