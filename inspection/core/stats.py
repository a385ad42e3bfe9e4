"""Pure statistics for audit reports, shadow agreement and drift monitoring.

Standard library, numpy, scipy and `inspection.core.domain` only: no I/O, no clock. The special
functions (normal and beta quantiles, incomplete beta), the integer-count Wilson interval and the
two-sample KS statistic come from scipy; what is ours is the thin layer on top: fractional counts,
the Kish effective-sample-size weighting of audit samples, and vectorised bounds for threshold
sweeps. tests/unit/test_stats_reference.py checks scipy against the hand-written code it replaced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import special
from scipy import stats as sps

from inspection.core.domain import AuditEstimate, Label

FloatArray = npt.NDArray[np.float64]
# Inputs may be plain sequences or numpy arrays; both are converted once with np.asarray.
Floats = Sequence[float] | npt.NDArray[Any]
LabelLike = Label | bool | int
Method = Literal["wilson", "clopper_pearson"]

__all__ = [
    "Confusion",
    "WeightedEstimate",
    "beta_ppf",
    "betainc",
    "clopper_pearson_interval",
    "confusion",
    "effective_sample_size",
    "estimate_rate",
    "is_scratch",
    "ks_statistic",
    "lower_quantile",
    "norm_ppf",
    "one_sided_upper",
    "one_sided_upper_array",
    "percentiles",
    "psi",
    "scratch_mask",
    "upper_quantile",
    "upper_bound_holds",
    "weighted_estimate",
    "weighted_rate",
    "wilson_interval",
]


# ---------------------------------------------------------------------------------------------
# Special functions (scipy, with the argument checks our callers rely on)
# ---------------------------------------------------------------------------------------------


def _check_confidence(confidence: float) -> None:
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")


def norm_ppf(p: float) -> float:
    """Standard normal quantile (scipy's `ndtri`)."""
    if not (0.0 < p < 1.0):
        raise ValueError(f"p must be within (0, 1), got {p}")
    return float(special.ndtri(p))


def betainc(a: Floats | float, b: Floats | float, x: Floats | float) -> FloatArray:
    """Regularized incomplete beta I_x(a, b) for a, b > 0 and x in [0, 1] (broadcast arrays)."""
    a_, b_, x_ = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x))
    if np.any(a_ <= 0) or np.any(b_ <= 0):
        raise ValueError("betainc needs a > 0 and b > 0")
    if np.any((x_ < 0) | (x_ > 1)) or np.any(np.isnan(x_)):
        raise ValueError("betainc needs x within [0, 1]")
    return np.asarray(special.betainc(a_, b_, x_), dtype=np.float64)


def beta_ppf(p: Floats | float, a: Floats | float, b: Floats | float) -> FloatArray:
    """Quantile of Beta(a, b): the x with I_x(a, b) = p (broadcast arrays; scipy's `betaincinv`)."""
    p_, a_, b_ = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(p, a, b))
    if np.any((p_ < 0) | (p_ > 1)) or np.any(np.isnan(p_)):
        raise ValueError("beta_ppf needs p within [0, 1]")
    x = np.asarray(special.betaincinv(a_, b_, p_), dtype=np.float64)
    # Exact ends: the quantiles of 0 and 1 are the support's ends whatever the shape.
    return np.where(p_ <= 0.0, 0.0, np.where(p_ >= 1.0, 1.0, x))


# ---------------------------------------------------------------------------------------------
# Binomial intervals
# ---------------------------------------------------------------------------------------------


def _check_counts(events: float, trials: float) -> None:
    if trials < 0 or events < 0 or events > trials:
        raise ValueError(f"need 0 <= events <= trials, got events={events}, trials={trials}")


def wilson_interval(events: int, trials: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided Wilson score interval for a binomial proportion; (0, 1) when there are no trials.

    Wilson is the default for reports: close to nominal coverage, never outside [0, 1], and
    sensible at 0 or n events where the textbook normal interval collapses to a point.
    """
    _check_confidence(confidence)
    _check_counts(events, trials)
    if trials == 0:
        return 0.0, 1.0
    ci = sps.binomtest(int(events), int(trials)).proportion_ci(confidence_level=confidence, method="wilson")
    return _exact_ends(float(ci.low), float(ci.high), events, trials)


def _exact_ends(low: float, high: float, events: float, trials: float) -> tuple[float, float]:
    # Exact endpoints at 0 / n events (the formula gives them up to rounding).
    return (0.0 if events == 0 else max(0.0, low)), (1.0 if events >= trials else min(1.0, high))


def _wilson_fractional(events: float, trials: float, confidence: float) -> tuple[float, float]:
    """Wilson's formula for fractional counts (weighted data); scipy's binomtest takes integers only.

    The formula is continuous in (k, n); for integer counts it equals `wilson_interval`
    (test_stats_reference checks both against the old code).
    """
    z = norm_ppf(0.5 + confidence / 2.0)
    n = float(trials)
    phat = events / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(phat * (1.0 - phat) / n + z * z / (4.0 * n * n)) / denom
    return _exact_ends(centre - half, centre + half, events, trials)


def clopper_pearson_interval(
    events: float, trials: float, *, confidence: float = 0.95
) -> tuple[float, float]:
    """Exact two-sided Clopper–Pearson interval (beta quantiles); (0, 1) when there are no trials.

    Accepts fractional counts (effective events / effective sample size of weighted data).
    """
    _check_confidence(confidence)
    _check_counts(events, trials)
    if trials == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if events == 0 else float(beta_ppf(alpha / 2.0, events, trials - events + 1.0))
    high = 1.0 if events == trials else float(beta_ppf(1.0 - alpha / 2.0, events + 1.0, trials - events))
    return low, high


def one_sided_upper(events: float, trials: float, *, confidence: float = 0.95) -> float:
    """Exact one-sided Clopper–Pearson upper bound: "rate <= this" with the given confidence.

    With zero events it is 1 - (1 - confidence)^(1/n) (~3/n at 95 %, the "rule of three").
    Accepts fractional counts for weighted data (see `weighted_estimate`).
    """
    _check_confidence(confidence)
    _check_counts(events, trials)
    if trials == 0 or events >= trials:
        return 1.0
    if events == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / trials)
    return float(beta_ppf(confidence, events + 1.0, trials - events))


def one_sided_upper_array(events: Floats, trials: Floats, *, confidence: float = 0.95) -> FloatArray:
    """Vectorised `one_sided_upper` (one Newton solve for all elements; used by threshold sweeps)."""
    _check_confidence(confidence)
    ev, tr = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(events, trials))
    ev = np.clip(ev, 0.0, tr)  # cumulative sums of weights may overshoot by rounding
    out = np.ones_like(tr)
    zero = (ev <= 0.0) & (tr > 0.0)
    with np.errstate(divide="ignore"):
        out[zero] = 1.0 - (1.0 - confidence) ** (1.0 / tr[zero])
    mid = (ev > 0.0) & (ev < tr)
    if np.any(mid):
        out[mid] = beta_ppf(confidence, ev[mid] + 1.0, tr[mid] - ev[mid])
    return out


def upper_bound_holds(
    events: Floats, trials: Floats, bound: float, *, confidence: float = 0.95
) -> npt.NDArray[np.bool_]:
    """Vectorised `one_sided_upper(events, trials) <= bound`, without solving for the quantile.

    upper <= bound  ⇔  P(Beta(k+1, n-k) <= bound) >= confidence, i.e. one incomplete-beta
    evaluation per element: the cheap test a threshold search needs.
    """
    _check_confidence(confidence)
    ev, tr = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(events, trials))
    ev = np.clip(ev, 0.0, tr)
    out = np.zeros(ev.shape, dtype=bool)
    if bound >= 1.0:
        out[:] = True
        return out
    if bound < 0.0:
        return out
    mid = (tr > 0.0) & (ev < tr)
    if np.any(mid):
        # A hair of tolerance so that a bound computed by one_sided_upper itself passes.
        out[mid] = betainc(ev[mid] + 1.0, tr[mid] - ev[mid], bound) >= confidence - 1e-12
    return out


def estimate_rate(
    events: int, trials: int, *, confidence: float = 0.95, method: Method = "wilson"
) -> AuditEstimate:
    """Point estimate and two-sided interval; with no trials the rate is nan and the interval (0, 1)."""
    if method == "wilson":
        low, high = wilson_interval(events, trials, confidence=confidence)
    elif method == "clopper_pearson":
        low, high = clopper_pearson_interval(events, trials, confidence=confidence)
    else:
        raise ValueError(f"unknown method {method!r} (use 'wilson' or 'clopper_pearson')")
    rate = events / trials if trials > 0 else math.nan
    return AuditEstimate(events=events, trials=trials, rate=rate, low=low, high=high)


# ---------------------------------------------------------------------------------------------
# Weighted rates
# ---------------------------------------------------------------------------------------------


def effective_sample_size(weights: Floats) -> float:
    """Kish effective sample size (Σw)² / Σw²: n for equal weights, less when weights vary."""
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return 0.0
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def weighted_rate(event_weights: Floats, trial_weights: Floats) -> float:
    """Σ(weights of the items that are events) / Σ(weights of all items); nan with no weight."""
    total = float(np.sum(np.asarray(trial_weights, dtype=np.float64)))
    events = float(np.sum(np.asarray(event_weights, dtype=np.float64)))
    if total <= 0:
        return math.nan
    if events > total * (1 + 1e-12):
        raise ValueError("event weight exceeds trial weight: events must be a subset of trials")
    return events / total


@dataclass(frozen=True)
class WeightedEstimate:
    """A rate from weighted items, with an interval computed on the Kish effective sample size."""

    rate: float
    n: int  # items
    n_eff: float  # (Σw)² / Σw² over all items
    events_eff: float  # rate * n_eff: the event count the interval is computed with
    low: float
    high: float
    upper: float  # one-sided exact upper bound at the same confidence


def weighted_estimate(
    event_weights: Floats, trial_weights: Floats, *, confidence: float = 0.95, method: Method = "wilson"
) -> WeightedEstimate:
    """Weighted rate with intervals from (rate · n_eff) events in n_eff trials.

    This is the usual design-effect approximation: weights that vary (audit samples weighted by
    1/audit_rate) shrink the information to n_eff items, so intervals widen accordingly.
    """
    tw = np.asarray(trial_weights, dtype=np.float64)
    rate = weighted_rate(event_weights, tw)
    n_eff = effective_sample_size(tw)
    if math.isnan(rate) or n_eff == 0:
        return WeightedEstimate(math.nan, int(tw.size), n_eff, 0.0, 0.0, 1.0, 1.0)
    rate = min(rate, 1.0)
    k = rate * n_eff
    if method == "wilson":
        low, high = _wilson_fractional(k, n_eff, confidence)
    elif method == "clopper_pearson":
        low, high = clopper_pearson_interval(k, n_eff, confidence=confidence)
    else:
        raise ValueError(f"unknown method {method!r}")
    upper = one_sided_upper(k, n_eff, confidence=confidence)
    return WeightedEstimate(rate, int(tw.size), n_eff, k, low, high, upper)


# ---------------------------------------------------------------------------------------------
# Agreement
# ---------------------------------------------------------------------------------------------


def is_scratch(label: LabelLike) -> bool:
    """Normalise a label: Label.SCRATCH / True / 1 mean scratch; Label.OK / False / 0 mean ok."""
    if isinstance(label, Label):
        return label is Label.SCRATCH
    if isinstance(label, str):
        # A raw string that is not a Label member ("Scratch", "yes") is a bug upstream, not "ok".
        return Label(label) is Label.SCRATCH
    value = int(label)
    if value not in (0, 1):
        raise ValueError(f"label must be 0/1, True/False or a Label, got {label!r}")
    return value == 1


def scratch_mask(labels: Sequence[LabelLike] | npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Boolean array, True where the label means scratch (vectorised fast path for arrays)."""
    arr = np.asarray(labels)
    if arr.dtype == np.bool_:
        return arr.astype(bool)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and not np.all((arr == 0) | (arr == 1)):
            raise ValueError("integer labels must be 0 or 1")
        return arr.astype(bool)
    return np.fromiter((is_scratch(v) for v in labels), dtype=bool, count=len(labels))


@dataclass(frozen=True)
class Confusion:
    """Model vs person on the same items; positive = scratch (fn are escapes, fp false rejects)."""

    tp: int
    fp: int
    tn: int
    fn: int
    agreement_interval: tuple[float, float]  # Wilson, 95 %
    kappa: float  # Cohen's kappa; nan when chance agreement is 1 (both sides constant)

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def agreement(self) -> float:
        """Share of items where model and person agree; nan with no items."""
        return (self.tp + self.tn) / self.n if self.n else math.nan

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan


def confusion(
    model_labels: Sequence[LabelLike],
    human_labels: Sequence[LabelLike],
    *,
    confidence: float = 0.95,
) -> Confusion:
    """Confusion counts of model calls against human labels (the reference), plus agreement."""
    if len(model_labels) != len(human_labels):
        raise ValueError(f"length mismatch: {len(model_labels)} model vs {len(human_labels)} human labels")
    m = scratch_mask(model_labels)
    h = scratch_mask(human_labels)
    tp = int(np.sum(m & h))
    fp = int(np.sum(m & ~h))
    tn = int(np.sum(~m & ~h))
    fn = int(np.sum(~m & h))
    n = tp + fp + tn + fn
    interval = wilson_interval(tp + tn, n, confidence=confidence)
    if n == 0:
        kappa = math.nan
    else:
        po = (tp + tn) / n
        pe = ((tp + fp) / n) * ((tp + fn) / n) + ((tn + fn) / n) * ((tn + fp) / n)
        kappa = (po - pe) / (1.0 - pe) if pe < 1.0 else math.nan
    return Confusion(tp=tp, fp=fp, tn=tn, fn=fn, agreement_interval=interval, kappa=kappa)


# ---------------------------------------------------------------------------------------------
# Drift
# ---------------------------------------------------------------------------------------------


def _finite(values: Floats) -> FloatArray:
    # Unreadable images give NaN metrics; they are counted elsewhere ("fraction unreadable") and
    # must not poison distribution comparisons.
    arr = np.asarray(values, dtype=np.float64).ravel()
    return arr[np.isfinite(arr)]


def psi(reference: Floats, recent: Floats, *, bins: int = 10, epsilon: float = 1e-4) -> float:
    """Population stability index of `recent` against `reference`; nan if either is empty.

    Bin edges are the reference's quantiles, so each bin holds ~1/bins of the reference (tied
    quantiles merge bins). Shares are floored at `epsilon` and renormalised so that an empty bin
    gives a large but finite term instead of infinity. Rule of thumb: < 0.1 stable, > 0.25 shifted.
    """
    if bins < 1:
        raise ValueError("bins must be >= 1")
    ref = _finite(reference)
    rec = _finite(recent)
    if ref.size == 0 or rec.size == 0:
        return math.nan
    inner = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    # side="right": a value equal to an edge joins the bin above, consistently for both samples.
    ref_counts = np.bincount(np.searchsorted(inner, ref, side="right"), minlength=inner.size + 1)
    rec_counts = np.bincount(np.searchsorted(inner, rec, side="right"), minlength=inner.size + 1)
    p = np.maximum(ref_counts / ref.size, epsilon)
    q = np.maximum(rec_counts / rec.size, epsilon)
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum((q - p) * np.log(q / p)))


def ks_statistic(a: Floats, b: Floats) -> float:
    """Two-sample Kolmogorov–Smirnov D = max |F_a(x) - F_b(x)|; nan if either sample is empty."""
    xa, xb = _finite(a), _finite(b)
    if xa.size == 0 or xb.size == 0:
        return math.nan
    return float(sps.ks_2samp(xa, xb).statistic)


def percentiles(values: Floats, qs: Sequence[int] = (50, 90, 99)) -> dict[int, float]:
    """Linear-interpolated percentiles of the finite values; nan for each q when there are none."""
    arr = _finite(values)
    if arr.size == 0:
        return {q: math.nan for q in qs}
    got = np.percentile(arr, np.asarray(qs, dtype=np.float64))
    return {q: float(v) for q, v in zip(qs, np.atleast_1d(got), strict=True)}


# Peaks over threshold: the generalised Pareto fit uses the values above this quantile of the sample (the
# usual 10 %), and needs at least TAIL_MIN of them for its two parameters to mean anything.
TAIL_FROM, TAIL_MIN = 0.90, 20


def upper_quantile(values: Floats, q: float) -> float:
    """The (1 - q) quantile of the finite values, extrapolated when the sample is too small to show it.

    With fewer than one value expected beyond it (n * q < 1) the sample's own quantile is its maximum,
    whatever the true tail: 450 reference images put a 0.1 % limit at their largest value, and fresh images
    from the same distribution exceed it several times as often as q. Then a generalised Pareto distribution
    is fitted (scipy, maximum likelihood) to the values above the sample's 90 % quantile and read at the
    conditional level q / 0.1 (extreme value theory's peaks over threshold). Never below the sample's own
    quantile: values seen in the reference are inside it. nan without finite values."""
    arr = _finite(values)
    if arr.size == 0:
        return math.nan
    empirical = float(np.quantile(arr, 1.0 - q))
    if arr.size * q >= 1.0:
        return empirical
    u = float(np.quantile(arr, TAIL_FROM))
    excess = arr[arr > u] - u
    if excess.size < TAIL_MIN or float(np.ptp(excess)) == 0.0:
        return empirical
    shape, _, scale = sps.genpareto.fit(excess, floc=0.0)
    tail = u + float(sps.genpareto.ppf(1.0 - q / (1.0 - TAIL_FROM), shape, loc=0.0, scale=scale))
    return max(empirical, tail) if math.isfinite(tail) else empirical


def lower_quantile(values: Floats, q: float) -> float:
    """The q quantile of the finite values, extrapolated as upper_quantile does (on the negated values).
    Positive values are extrapolated on a log scale: a metric's lower tail fitted in its own units (blur
    falling towards 0) can run past zero, where no positive value would ever be out of range."""
    arr = _finite(values)
    if arr.size == 0:
        return math.nan
    if arr.size * q >= 1.0:
        return float(np.quantile(arr, q))
    if float(arr.min()) > 0.0:
        return math.exp(-upper_quantile(-np.log(arr), q))
    return -upper_quantile(-arr, q)
