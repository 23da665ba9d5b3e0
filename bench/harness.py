"""Tiny shared harness for the benchmarks: timing, ratio tables, JSON results.

Every workload measures Tela Memory and its peers in the same process, on the same data, and
reports ratios (this machine is noisy; absolute times lie).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


@dataclass
class Stats:
    """Timings of one measured operation, in seconds."""

    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def measure(fn: Callable[[], Any], *, repeat: int = 20, warmup: int = 1) -> Stats:
    """Call ``fn`` ``warmup`` + ``repeat`` times and keep the last ``repeat`` durations."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return Stats(samples)


@dataclass
class Row:
    """One line of a result table: an operation measured for one implementation."""

    workload: str
    operation: str
    impl: str
    median_s: float
    p95_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def print_table(rows: list[Row], *, ours: str = "tela") -> str:
    """Print (and return) a markdown table; ``vs tela`` = peer time / our time (>1: we win)."""
    ref = {(r.workload, r.operation): r.median_s for r in rows if r.impl == ours}
    extra_keys = sorted({k for r in rows for k in r.extra})
    head = ["workload", "operation", "impl", "median", "p95", "vs tela", *extra_keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        base = ref.get((r.workload, r.operation))
        ratio = f"{r.median_s / base:.1f}x" if base and r.impl != ours else ""
        cells = [
            r.workload,
            r.operation,
            r.impl,
            fmt_time(r.median_s),
            fmt_time(r.p95_s) if r.p95_s is not None else "",
            ratio,
            *(str(r.extra.get(k, "")) for k in extra_keys),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def write_json(name: str, rows: list[Row]) -> Path:
    """Write rows to ``bench/results/<name>.json`` and return the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps([asdict(r) for r in rows], indent=2))
    return path
