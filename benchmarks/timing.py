"""Timing helpers shared by the benchmark scripts (they print figures, never assert)."""
from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int) -> list[float]:
    """Seconds per call of fn, after one warm-up call."""
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fmt_ms(ts: list[float]) -> str:
    ts = sorted(ts)
    return f"p50 {1000 * statistics.median(ts):7.1f} ms   p90 {1000 * ts[int(0.9 * (len(ts) - 1))]:7.1f} ms"


def fmt_s(ts: list[float]) -> str:
    ts = sorted(ts)
    return f"p50 {statistics.median(ts):6.2f} s   min {ts[0]:6.2f} s   max {ts[-1]:6.2f} s"
