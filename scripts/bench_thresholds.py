"""Benchmark the threshold math on 100,000 synthetic labelled records (seeded).

Usage: .venv/bin/python scripts/bench_thresholds.py [--n 100000] [--grid 200]
Prints seconds per call; the whole run should take well under 10 s on one CPU core.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from inspection.core.domain import Label, LabelledScore
from inspection.core.metrics import coverage_at_risk
from inspection.core.thresholds import suggest, sweep, what_if

T = TypeVar("T")


def synthetic_history(n: int, *, seed: int = 0, prevalence: float = 0.05) -> list[LabelledScore]:
    """Scores like a decent calibrated model; 2 % audit samples of confident items weighted 1/0.02."""
    rng = np.random.default_rng(seed)
    scratched = rng.random(n) < prevalence
    logit = np.where(scratched, rng.normal(3.0, 1.5, n), rng.normal(-4.0, 1.5, n))
    scores = 1.0 / (1.0 + np.exp(-logit))
    confident = (scores < 0.05) | (scores > 0.95)
    audit = confident & (rng.random(n) < 0.02)
    weights = np.where(audit, 50.0, 1.0)
    return [
        LabelledScore(float(s), Label.SCRATCH if y else Label.OK, float(w), bool(a))
        for s, y, w, a in zip(scores, scratched, weights, audit, strict=True)
    ]


def timed(label: str, fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = fn()
    print(f"{label:<42} {time.perf_counter() - start:7.3f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--grid", type=int, default=200)
    args = parser.parse_args()

    total = time.perf_counter()
    history = timed(f"build {args.n} records", lambda: synthetic_history(args.n))
    timed("what_if (one pair)", lambda: what_if(history, pass_below=0.05, reject_above=0.95))
    results = timed(
        f"sweep ({args.grid}x{args.grid} grid, all pairs)", lambda: sweep(history, max_candidates=args.grid)
    )
    timed("sweep (curve, reject_above=0.95)", lambda: sweep(history, reject_above=0.95))
    s = timed("suggest (max_escape 0.2 %)", lambda: suggest(history, max_escape=0.002))
    timed(
        "suggest (cost mode)",
        lambda: suggest(
            history, max_escape=0.002, cost_escape=100.0, cost_false_reject=5.0, cost_review_minute=1.0
        ),
    )
    scores = np.array([h.score for h in history])
    labels = np.array([h.label is Label.SCRATCH for h in history])
    timed("coverage_at_risk (1 %)", lambda: coverage_at_risk(scores, labels, 0.01))
    print(f"{'total':<42} {time.perf_counter() - total:7.3f} s")
    print(f"sweep pairs: {len(results)}")
    print(f"suggestion: {s.reason}")


if __name__ == "__main__":
    main()
