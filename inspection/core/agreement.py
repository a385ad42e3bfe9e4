"""How far inspectors can be trusted: accuracy on gold items, agreement between two inspectors
(Cohen's kappa), and how both change across a shift. Pure: stdlib and core.stats only.

- Accuracy on gold is a binomial proportion (correct answers / gold answers) with the two-sided 95 %
  interval of `core.stats.estimate_rate` (Wilson by default, Clopper-Pearson on request).
- Cohen's kappa = (p_o - p_e) / (1 - p_e): observed agreement corrected for the agreement two raters
  with these label frequencies would reach by chance. Per pair of inspectors the labels are oriented
  by name (the alphabetically first inspector is rater A); overall, rater A is whoever labelled first.
  When chance agreement is 1 (both raters used one and the same label) kappa is undefined: nan, as
  scikit-learn's `cohen_kappa_score` gives.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from inspection.core.domain import AuditEstimate
from inspection.core.stats import Method, estimate_rate

__all__ = [
    "DoubleLabel",
    "Kappa",
    "PairAgreement",
    "ShiftDrift",
    "ShiftSample",
    "ShiftWindow",
    "accuracy",
    "cohen_kappa",
    "pair_agreement",
    "shift_drift",
]

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Kappa:
    n: int
    agreed: int
    observed: float  # p_o: share of items both raters labelled alike (nan without items)
    expected: float  # p_e: chance agreement from each rater's label frequencies
    kappa: float  # nan without items or when p_e == 1


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> Kappa:
    """Cohen's kappa of two raters' labels of the same items (a[i] and b[i] label item i)."""
    if len(a) != len(b):
        raise ValueError(f"both raters need a label for every item, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return Kappa(0, 0, math.nan, math.nan, math.nan)
    agreed = sum(x == y for x, y in zip(a, b, strict=True))
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in ca.keys() | cb.keys()) / (n * n)
    observed = agreed / n
    kappa = (observed - expected) / (1.0 - expected) if expected < 1.0 else math.nan
    return Kappa(n, agreed, observed, expected, kappa)


def accuracy(correct: int, answered: int, *, method: Method = "wilson") -> AuditEstimate:
    """Share of gold items answered correctly, with its two-sided 95 % interval."""
    return estimate_rate(correct, answered, method=method)


@dataclass(frozen=True)
class DoubleLabel:
    """One item labelled by two inspectors independently (first = who labelled first)."""

    inspection_id: int
    first: str
    first_label: str
    second: str
    second_label: str


@dataclass(frozen=True)
class PairAgreement:
    a: str  # alphabetically first inspector of the pair
    b: str
    kappa: Kappa


def pair_agreement(items: Iterable[DoubleLabel]) -> tuple[list[PairAgreement], Kappa]:
    """Kappa per (unordered) pair of inspectors, sorted by pair, and overall (first vs second label)."""
    per_pair: dict[tuple[str, str], tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    firsts: list[str] = []
    seconds: list[str] = []
    for it in items:
        firsts.append(it.first_label)
        seconds.append(it.second_label)
        (x, lx), (y, ly) = sorted(((it.first, it.first_label), (it.second, it.second_label)))
        la, lb = per_pair[(x, y)]
        la.append(lx)
        lb.append(ly)
    pairs = [PairAgreement(x, y, cohen_kappa(la, lb)) for (x, y), (la, lb) in sorted(per_pair.items())]
    return pairs, cohen_kappa(firsts, seconds)


@dataclass(frozen=True)
class ShiftSample:
    """One label an inspector gave: when, how long it took, and, for a gold item, whether it was right."""

    at: datetime
    seconds: float | None
    correct: bool | None = None  # None: not a gold item


@dataclass(frozen=True)
class ShiftWindow:
    n: int  # labels in the window (all kinds)
    seconds_median: float | None  # median time per item; None without timed labels
    gold: AuditEstimate  # accuracy on the gold items answered in the window


@dataclass(frozen=True)
class ShiftDrift:
    days: int  # working days seen (calendar days, UTC, with at least one label)
    first_hour: ShiftWindow  # the first hour after each day's first label, all days pooled
    last_hour: ShiftWindow  # the hour before each day's last label (never overlapping the first)


def _window(samples: Sequence[ShiftSample]) -> ShiftWindow:
    timed = [s.seconds for s in samples if s.seconds is not None and math.isfinite(s.seconds)]
    gold = [s.correct for s in samples if s.correct is not None]
    median = statistics.median(timed) if timed else None
    return ShiftWindow(len(samples), median, accuracy(sum(gold), len(gold)))


def shift_drift(samples: Iterable[ShiftSample], *, window: timedelta = HOUR) -> ShiftDrift:
    """Time per item and gold accuracy in the first vs the last hour of each of an inspector's days.

    A day is a calendar day (UTC). The first window is [first label, first + 1 h); the last window is
    (last label - 1 h, last label], cut so that it starts no earlier than the first window ends: a
    short day contributes to the first hour only, and no label counts in both.
    """
    days: dict[date, list[ShiftSample]] = defaultdict(list)
    for s in samples:
        days[s.at.date()].append(s)
    first: list[ShiftSample] = []
    last: list[ShiftSample] = []
    for day in days.values():
        day.sort(key=lambda s: s.at)
        start, end = day[0].at, day[-1].at
        first_end = start + window
        last_start = max(end - window, first_end)
        first += [s for s in day if s.at < first_end]
        last += [s for s in day if s.at >= last_start and s.at > end - window]
    return ShiftDrift(len(days), _window(first), _window(last))
