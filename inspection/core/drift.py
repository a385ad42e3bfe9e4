"""Drift of a station's input, output and concept against a reference. Pure: stdlib, numpy, scipy.

A `Reference` holds samples of each per-item metric (at most 500 per metric) and the shares of flagged
items; a stream of `MonitorSample`s is compared with it by repeated tests on the last `window` items,
one test ("look") every `step` items:

- distributions (brightness, contrast, sharpness, colour_cast, width, height, score, n_regions,
  latency_ms, f0..f7): two-sample Kolmogorov–Smirnov (`scipy.stats.ks_2samp`); the effect size is the
  Wasserstein distance (`scipy.stats.wasserstein_distance`) in reference standard deviations.
- shares (unjudgeable, unreadable, to_people, auto_pass, auto_reject, and scratch_share = share of
  scores >= 0.5): Fisher's exact test on the 2x2 table window vs reference when the reference's item
  count is known (`scipy.stats.fisher_exact`: the reference share is itself an estimate, and a point
  null would turn its sampling error into a permanent false-alarm excess), else an exact binomial test
  against the reference share (`scipy.stats.binomtest`). More unjudgeable/unreadable/to_people items is
  the failure direction ("greater"); the other shares are tested two-sided.
- features (the model's k = 8 whitened PCA components f0..f7): per-component KS with a Bonferroni
  correction over k, i.e. p = min(1, k · min_j p_j). Chosen over MMD because the components are
  whitened and ~uncorrelated on the reference (so Bonferroni is only mildly conservative), KS needs no
  kernel bandwidth or permutation test (an exact p-value per look, O(n log n), which matters at a
  per-look alpha of 1e-5), and the evidence names the component that moved. What it gives up: a change
  of the joint distribution with unchanged marginals, which a pooled-CNN-feature shift rarely is.

False-alarm arithmetic. A rule is configured with a budget B of false alarms per 100,000 unshifted
items. It looks 100,000 / step times per 100,000 items, so each look is run at
    alpha_look = B / (100,000 / step) = B · step / 100,000.
By the union bound the expected number of breaching looks on an unshifted stream is at most B per
100,000 items (and per rule: a rule set's budget is the sum over its rules). Consecutive windows
overlap (window > step), so their tests are positively correlated and the real rate is lower than the
bound; KS on discrete values (width, n_regions) is conservative too. Example: B = 0.1, step = 50 gives
2,000 looks and alpha_look = 5e-5 per 100,000 items. The price of a small alpha is delay; a shift is
caught at the first look whose window holds enough shifted items, so the delay is about
(shifted items needed) rounded up to a multiple of `step`.

CUSUM is not used: it needs the size of the shift it is tuned for, while the windowed tests are
distribution-free and meet the delay goals of issue 10 (scripts/bench_drift.py measures them).

Concept estimates (labels arrive separately from the samples) live in `core.concept`; the alarm rules
compare them with absolute thresholds (`core.alarms.concept_check`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from inspection.core.calibration import IsotonicMap
from inspection.core.stats import Floats

__all__ = [
    "CONCEPT_METRICS",
    "FEATURE_METRICS",
    "FEATURES",
    "FLAGS",
    "KNOWN_METRICS",
    "MAX_REFERENCE_SAMPLES",
    "SHARE_METRICS",
    "VALUE_METRICS",
    "DriftResult",
    "MonitorSample",
    "Reference",
    "alpha_per_look",
    "check_window",
    "features_test",
    "ks_test",
    "look_ends",
    "metric_kind",
    "share_test",
]

Kind = Literal["distribution", "share", "features", "concept"]
FloatArray = npt.NDArray[np.float64]

INPUT_METRICS = ("brightness", "contrast", "sharpness", "colour_cast", "width", "height")
OUTPUT_METRICS = ("score", "n_regions")
SOFTWARE_METRICS = ("latency_ms",)
FEATURE_METRICS = tuple(f"f{i}" for i in range(8))
VALUE_METRICS = INPUT_METRICS + OUTPUT_METRICS + SOFTWARE_METRICS + FEATURE_METRICS
FLAGS = ("unreadable", "unjudgeable", "to_people", "auto_pass", "auto_reject", "audit")
# share metric -> the flag it counts (None: derived from the score, see SCRATCH_CUT)
SHARE_METRICS: dict[str, str | None] = {
    "unreadable_share": "unreadable",
    "unjudgeable_share": "unjudgeable",
    "to_people_share": "to_people",
    "auto_pass_share": "auto_pass",
    "auto_reject_share": "auto_reject",
    "scratch_share": None,
}
# Shares whose increase is the failure; the others are tested in both directions.
_ONE_SIDED_SHARES = frozenset({"unreadable_share", "unjudgeable_share", "to_people_share"})
FEATURES = "features"
CONCEPT_METRICS = ("disagreement", "ece", "escape_upper", "escape_label_free_upper")
KNOWN_METRICS = frozenset((*VALUE_METRICS, *SHARE_METRICS, FEATURES, *CONCEPT_METRICS))
MAX_REFERENCE_SAMPLES = 500
SCRATCH_CUT = 0.5  # a score at or above this counts towards scratch_share
_SUBSAMPLE_SEED = 0  # fixed: the same samples give the same reference
_DECIMALS = 4


def metric_kind(metric: str) -> Kind:
    """Which test a metric gets; ValueError for an unknown metric."""
    if metric in SHARE_METRICS:
        return "share"
    if metric == FEATURES:
        return "features"
    if metric in CONCEPT_METRICS:
        return "concept"
    if metric in VALUE_METRICS:
        return "distribution"
    raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(KNOWN_METRICS))}")


# ---------------------------------------------------------------------------------------------
# Samples and references
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorSample:
    """One ingested item: its metrics (absent when unknown) and flags (absent means False)."""

    at: datetime
    values: Mapping[str, float]
    flags: Mapping[str, bool]

    def value(self, metric: str) -> float | None:
        v = self.values.get(metric)
        return None if v is None or not math.isfinite(v) else float(v)


def _subsample(values: Floats, cap: int) -> tuple[float, ...]:
    """Finite values rounded to 4 dp; more than `cap` are cut to a seeded random subset (order kept)."""
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if arr.size > cap:
        keep = np.sort(np.random.default_rng(_SUBSAMPLE_SEED).choice(arr.size, cap, replace=False))
        arr = arr[keep]
    return tuple(round(float(v), _DECIMALS) for v in arr)


@dataclass(frozen=True)
class Reference:
    """What "normal" looks like: per-metric samples (<= 500 each) and shares of flagged items.

    `n` is the number of items the shares were counted on (0 when unknown): share tests then account
    for the reference's own sampling error.
    """

    values: Mapping[str, tuple[float, ...]]
    shares: Mapping[str, float]
    source: str = ""
    n: int = 0
    # P(scratch | score) fitted on the reference's labelled items, for the label-free escape estimate
    calibration: IsotonicMap | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "values": {k: [round(float(x), _DECIMALS) for x in v] for k, v in sorted(self.values.items())},
            "shares": {k: float(v) for k, v in sorted(self.shares.items())},
        }
        if self.source:
            out["source"] = self.source
        if self.n:
            out["n"] = int(self.n)
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reference:
        if not isinstance(data, Mapping):
            raise ValueError("a reference must be a JSON object with 'values' and 'shares'")
        values, shares = data.get("values", {}), data.get("shares", {})
        if not isinstance(values, Mapping) or not isinstance(shares, Mapping):
            raise ValueError("reference 'values' and 'shares' must be objects")
        vals: dict[str, tuple[float, ...]] = {}
        for name, seq in values.items():
            if not isinstance(seq, list) or not all(isinstance(x, int | float) for x in seq):
                raise ValueError(f"reference values of {name!r} must be a list of numbers")
            vals[str(name)] = tuple(float(x) for x in seq)
        for name, share in shares.items():
            if not isinstance(share, int | float) or not 0.0 <= share <= 1.0:
                raise ValueError(f"reference share {name!r} must be a number within [0, 1], got {share!r}")
        n = data.get("n", 0)
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"reference 'n' must be a non-negative integer, got {n!r}")
        cal = data.get("calibration")
        calibration = None if cal is None else IsotonicMap.from_json(cal)
        return cls(vals, {str(k): float(v) for k, v in shares.items()}, str(data.get("source", "")), n, calibration)

    @classmethod
    def from_values(
        cls,
        values: Mapping[str, Floats],
        shares: Mapping[str, float] | None = None,
        *,
        source: str = "",
        n: int = 0,
        cap: int = MAX_REFERENCE_SAMPLES,
    ) -> Reference:
        """A reference from raw per-metric values (capped at `cap` each by seeded subsampling)."""
        vals = {k: _subsample(v, cap) for k, v in values.items()}
        return cls({k: v for k, v in vals.items() if v}, dict(shares or {}), source, n)

    @classmethod
    def from_samples(
        cls, samples: Sequence[MonitorSample], *, source: str = "", cap: int = MAX_REFERENCE_SAMPLES
    ) -> Reference:
        """A station's reference window: every value metric seen, every flag's share over all items."""
        names = sorted({k for s in samples for k in s.values if k in VALUE_METRICS})
        values = {m: [v for s in samples if (v := s.value(m)) is not None] for m in names}
        n = len(samples)
        shares = {f: sum(bool(s.flags.get(f, False)) for s in samples) / n for f in FLAGS if n}
        return cls.from_values(values, shares, source=source, n=n, cap=cap)

    def band(self, metric: str, low: float = 5.0, high: float = 95.0) -> tuple[float, float] | None:
        """The reference's [low, high] percentile band of a metric; None without samples."""
        v = self.values.get(metric)
        if not v:
            return None
        lo, hi = np.percentile(np.asarray(v, dtype=np.float64), [low, high])
        return float(lo), float(hi)


# ---------------------------------------------------------------------------------------------
# Window tests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftResult:
    """One look of one metric. Statistical kinds: breached = p_value < threshold (the per-look alpha);
    concept: breached = statistic > threshold (p_value nan). Not testable (no reference, too few items):
    breached False, statistic and p_value nan, detail["skipped"] says why."""

    metric: str
    kind: str
    statistic: float
    p_value: float
    effect: float
    threshold: float
    breached: bool
    n_window: int
    n_reference: int
    detail: Mapping[str, Any] = field(default_factory=dict)


def alpha_per_look(false_alarm_per_100k: float, step: int) -> float:
    """alpha_look = budget · step / 100,000 (see the module docstring), kept within (0, 0.5]."""
    if false_alarm_per_100k <= 0 or step <= 0:
        raise ValueError("false_alarm_per_100k and step must be positive")
    return min(0.5, false_alarm_per_100k * step / 100_000.0)


def look_ends(n_items: int, step: int) -> range:
    """Item counts after which a look happens on a stream of n_items: step, 2·step, ..."""
    return range(step, n_items + 1, step)


def _skipped(metric: str, kind: str, alpha: float, n_window: int, n_ref: int, why: str) -> DriftResult:
    return DriftResult(metric, kind, math.nan, math.nan, math.nan, alpha, False, n_window, n_ref, {"skipped": why})


def _ks(ref: FloatArray, win: FloatArray) -> tuple[float, float, float]:
    """(KS D, p-value, Wasserstein distance in reference SDs; raw distance when the SD is 0).

    The window is rounded to the reference's 4 decimals first: otherwise the rounding alone is a shift
    for tightly clustered values (scores near 0 differ in the 5th decimal) and KS would see it.
    """
    win = np.round(win, _DECIMALS)
    res = sps.ks_2samp(ref, win)
    w = float(sps.wasserstein_distance(ref, win))
    sd = float(np.std(ref))
    return float(res.statistic), float(res.pvalue), w / sd if sd > 0 else w


def ks_test(
    metric: str, reference: Reference, window: Sequence[float], alpha: float, *, min_items: int = 1
) -> DriftResult:
    """Two-sample KS of the window's values against the reference samples of `metric`."""
    ref = np.asarray(reference.values.get(metric, ()), dtype=np.float64)
    win = np.asarray([v for v in window if math.isfinite(v)], dtype=np.float64)
    if ref.size == 0:
        return _skipped(metric, "distribution", alpha, win.size, 0, "no reference samples")
    if win.size < max(1, min_items):
        return _skipped(metric, "distribution", alpha, win.size, ref.size, f"{win.size} items < {min_items}")
    d, p, effect = _ks(ref, win)
    detail = {
        "window_median": float(np.median(win)),
        "reference_median": float(np.median(ref)),
        "wasserstein": float(sps.wasserstein_distance(ref, np.round(win, _DECIMALS))),
    }
    return DriftResult(metric, "distribution", d, p, effect, alpha, p < alpha, win.size, ref.size, detail)


def _reference_share(metric: str, reference: Reference) -> tuple[float, int] | None:
    """(share, items behind it) of a share metric in the reference; None if it has none."""
    flag = SHARE_METRICS[metric]
    if flag is None:
        scores = reference.values.get("score", ())
        if not scores:
            return None
        return sum(s >= SCRATCH_CUT for s in scores) / len(scores), len(scores)
    if flag not in reference.shares:
        return None
    return reference.shares[flag], reference.n


def _window_count(metric: str, window: Sequence[MonitorSample]) -> tuple[int, int]:
    """(events, trials) of a share metric in a window of samples."""
    flag = SHARE_METRICS[metric]
    if flag is None:
        scores = [v for s in window if (v := s.value("score")) is not None]
        return sum(v >= SCRATCH_CUT for v in scores), len(scores)
    return sum(bool(s.flags.get(flag, False)) for s in window), len(window)


def share_test(
    metric: str, reference: Reference, window: Sequence[MonitorSample], alpha: float, *, min_items: int = 1
) -> DriftResult:
    """Window share vs reference share: Fisher's exact test when the reference count is known, else binomial."""
    ref = _reference_share(metric, reference)
    k, n = _window_count(metric, window)
    if ref is None:
        return _skipped(metric, "share", alpha, n, 0, "no reference share")
    if n < max(1, min_items):
        return _skipped(metric, "share", alpha, n, ref[1], f"{n} items < {min_items}")
    p0, n_ref = ref
    side = "greater" if metric in _ONE_SIDED_SHARES else "two-sided"
    if n_ref > 0:
        k_ref = round(p0 * n_ref)
        p = float(sps.fisher_exact([[k, n - k], [k_ref, n_ref - k_ref]], alternative=side).pvalue)
        test = "fisher_exact"
    else:
        p = float(sps.binomtest(k, n, p0, alternative=side).pvalue)
        test = "binomtest"
    share = k / n
    detail = {"window_share": share, "reference_share": p0, "events": k, "test": test, "alternative": side}
    return DriftResult(metric, "share", share - p0, p, share - p0, alpha, p < alpha, n, n_ref, detail)


def features_test(
    reference: Reference, window: Sequence[MonitorSample], alpha: float, *, min_items: int = 1
) -> DriftResult:
    """Per-component KS on f0..f7 with Bonferroni over the components present in both."""
    comps = [f for f in FEATURE_METRICS if reference.values.get(f)]
    per: dict[str, tuple[float, float, float]] = {}
    n_win = 0
    for f in comps:
        win = np.asarray([v for s in window if (v := s.value(f)) is not None], dtype=np.float64)
        n_win = max(n_win, int(win.size))
        if win.size >= max(1, min_items):
            per[f] = _ks(np.asarray(reference.values[f], dtype=np.float64), win)
    n_ref = max((len(reference.values[f]) for f in comps), default=0)
    if not comps:
        return _skipped(FEATURES, "features", alpha, n_win, 0, "no reference features")
    if not per:
        return _skipped(FEATURES, "features", alpha, n_win, n_ref, f"{n_win} items with features < {min_items}")
    worst = min(per, key=lambda f: per[f][1])
    p = min(1.0, len(per) * per[worst][1])
    detail = {"component": worst, "components": {f: {"ks": d, "p": q, "effect": e} for f, (d, q, e) in per.items()}}
    return DriftResult(FEATURES, "features", per[worst][0], p, per[worst][2], alpha, p < alpha, n_win, n_ref, detail)


def check_window(
    metric: str, reference: Reference, window: Sequence[MonitorSample], alpha: float, *, min_items: int = 1
) -> DriftResult:
    """Dispatch one look of a distribution, share or features metric (concept: core.alarms.concept_check)."""
    kind = metric_kind(metric)
    if kind == "share":
        return share_test(metric, reference, window, alpha, min_items=min_items)
    if kind == "features":
        return features_test(reference, window, alpha, min_items=min_items)
    if kind == "concept":
        raise ValueError(f"{metric!r} is a concept metric: use core.alarms.concept_check")
    values = [v for s in window if (v := s.value(metric)) is not None]
    return ks_test(metric, reference, values, alpha, min_items=min_items)
