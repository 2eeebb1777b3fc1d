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


def bench_parser(doc: str, model: str):
    """The options every model benchmark takes: --model and --threads (0: torch's default)."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", default=model)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return parser


def apply_threads(args) -> None:
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
