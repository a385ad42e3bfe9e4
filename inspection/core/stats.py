"""Pure statistics for audit reports, shadow agreement and drift monitoring.

Standard library, numpy and `inspection.core.domain` only: no scipy (not a dependency), no I/O, no clock.
The exact (Clopper–Pearson) intervals rest on a regularized incomplete beta function evaluated
with the Numerical Recipes continued fraction (modified Lentz), and a safeguarded Newton solve for
its quantile. Both are vectorised because threshold sweeps need hundreds of bounds at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

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
    "norm_ppf",
    "one_sided_upper",
    "one_sided_upper_array",
    "percentiles",
    "psi",
    "scratch_mask",
    "upper_bound_holds",
    "weighted_estimate",
    "weighted_rate",
    "wilson_interval",
]


# ---------------------------------------------------------------------------------------------
# Special functions
# ---------------------------------------------------------------------------------------------

_FPMIN = 1e-300
_CF_EPS = 1e-15
_CF_MAXIT = 100_000  # convergence takes O(sqrt(max(a, b))) terms; n_eff of 1e7 is still covered


def _check_confidence(confidence: float) -> None:
    if not (0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be within (0, 1), got {confidence}")


def norm_ppf(p: float) -> float:
    """Standard normal quantile (Acklam's rational approximation refined by one Halley step).

    The raw approximation is good to ~1e-9; the Halley step against math.erfc brings it to
    double precision, so Wilson intervals match published tables in every printed digit.
    """
    if not (0.0 < p < 1.0):
        raise ValueError(f"p must be within (0, 1), got {p}")
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    p_low = 0.02425
    if p < p_low:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    elif p <= 1.0 - p_low:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        )
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _log_beta_front(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    """log( x^a (1-x)^b / B(a, b) ), the prefactor shared by the continued fraction and the pdf."""
    with np.errstate(divide="ignore"):
        return (_lgamma(a + b) - _lgamma(a) - _lgamma(b) + a * np.log(x) + b * np.log1p(-x)).astype(
            np.float64
        )


def _betacf(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    """Continued fraction for the incomplete beta (Numerical Recipes `betacf`, modified Lentz).

    Vectorised: an element is frozen at the first term where it converges (as the scalar loop
    would stop); waiting for all elements to satisfy the test on the *same* term never ends when
    rounding makes some hover just above the tolerance.
    """
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < _FPMIN, _FPMIN, d)
    d = 1.0 / d
    h = d.copy()
    converged = np.zeros(x.shape, dtype=bool)
    for m in range(1, _CF_MAXIT + 1):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _FPMIN, _FPMIN, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _FPMIN, _FPMIN, c)
        d = 1.0 / d
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _FPMIN, _FPMIN, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _FPMIN, _FPMIN, c)
        d = 1.0 / d
        delta = d * c
        h = np.where(converged, h, h * delta)
        converged |= np.abs(delta - 1.0) < _CF_EPS
        if bool(np.all(converged)):
            break
    return np.asarray(h, dtype=np.float64)


def betainc(a: Floats | float, b: Floats | float, x: Floats | float) -> FloatArray:
    """Regularized incomplete beta I_x(a, b) for a, b > 0 and x in [0, 1] (broadcast arrays)."""
    a_, b_, x_ = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x))
    if np.any(a_ <= 0) or np.any(b_ <= 0):
        raise ValueError("betainc needs a > 0 and b > 0")
    if np.any((x_ < 0) | (x_ > 1)) or np.any(np.isnan(x_)):
        raise ValueError("betainc needs x within [0, 1]")
    out = np.where(x_ >= 1.0, 1.0, 0.0).astype(np.float64)
    inner = (x_ > 0.0) & (x_ < 1.0)
    if not np.any(inner):
        return out
    a_i, b_i, x_i = a_[inner], b_[inner], x_[inner]
    front = np.exp(_log_beta_front(a_i, b_i, x_i))
    # The continued fraction converges fast only below the mean; above it use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a).
    direct = x_i < (a_i + 1.0) / (a_i + b_i + 2.0)
    res = np.empty_like(x_i)
    if np.any(direct):
        ad, bd, xd = a_i[direct], b_i[direct], x_i[direct]
        res[direct] = front[direct] * _betacf(ad, bd, xd) / ad
    flip = ~direct
    if np.any(flip):
        af, bf, xf = a_i[flip], b_i[flip], x_i[flip]
        res[flip] = 1.0 - front[flip] * _betacf(bf, af, 1.0 - xf) / bf
    out[inner] = np.clip(res, 0.0, 1.0)
    return out


def beta_ppf(p: Floats | float, a: Floats | float, b: Floats | float) -> FloatArray:
    """Quantile of Beta(a, b): the x with I_x(a, b) = p (broadcast arrays).

    Safeguarded Newton (NR `rtsafe`): a bracket [lo, hi] that always contains the root shrinks
    every step, Newton steps that leave it fall back to bisection, so it cannot diverge; it reaches
    ~1e-13 relative accuracy in about ten evaluations instead of fifty bisections.
    """
    p_, a_, b_ = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(p, a, b))
    if np.any((p_ < 0) | (p_ > 1)) or np.any(np.isnan(p_)):
        raise ValueError("beta_ppf needs p within [0, 1]")
    shape = p_.shape
    p_, a_, b_ = p_.ravel(), a_.ravel(), b_.ravel()
    x = np.clip(a_ / (a_ + b_), 1e-300, 1.0 - 1e-16)
    lo = np.zeros_like(x)
    hi = np.ones_like(x)
    active = (p_ > 0.0) & (p_ < 1.0)
    for _ in range(200):
        if not np.any(active):
            break
        idx = np.flatnonzero(active)
        xa, aa, ba, pa = x[idx], a_[idx], b_[idx], p_[idx]
        f = betainc(aa, ba, xa) - pa
        below = f < 0.0
        lo[idx] = np.where(below, xa, lo[idx])
        hi[idx] = np.where(below, hi[idx], xa)
        # pdf = x^(a-1)(1-x)^(b-1)/B(a,b) = front / (x(1-x)); exp underflow → 0 → bisection below.
        pdf = np.exp(_log_beta_front(aa, ba, xa)) / (xa * (1.0 - xa))
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xa - f / pdf
        lo_i, hi_i = lo[idx], hi[idx]
        ok = np.isfinite(newton) & (newton > lo_i) & (newton < hi_i)
        # f == 0 makes xa its own bracket end, so "inside the bracket" fails: keep the exact root.
        nxt = np.where(f == 0.0, xa, np.where(ok, newton, 0.5 * (lo_i + hi_i)))
        step = np.abs(nxt - xa)
        x[idx] = nxt
        done = (f == 0.0) | (step <= 1e-14 * np.maximum(nxt, 1e-280)) | (hi_i - lo_i <= 1e-300)
        active[idx[done]] = False
    x = np.where(p_ <= 0.0, 0.0, np.where(p_ >= 1.0, 1.0, x))
    return x.reshape(shape)


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
    z = norm_ppf(0.5 + confidence / 2.0)
    n = float(trials)
    phat = events / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(phat * (1.0 - phat) / n + z * z / (4.0 * n * n)) / denom
    # Exact endpoints at 0 / n events (the formula gives them up to rounding).
    low = 0.0 if events == 0 else max(0.0, centre - half)
    high = 1.0 if events == trials else min(1.0, centre + half)
    return low, high


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
        # Wilson's formula is continuous in (k, n), so fractional counts are fine.
        z = norm_ppf(0.5 + confidence / 2.0)
        denom = 1.0 + z * z / n_eff
        centre = (rate + z * z / (2.0 * n_eff)) / denom
        half = z * math.sqrt(rate * (1.0 - rate) / n_eff + z * z / (4.0 * n_eff * n_eff)) / denom
        low = 0.0 if k == 0 else max(0.0, centre - half)
        high = 1.0 if k >= n_eff else min(1.0, centre + half)
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
    xa = np.sort(_finite(a))
    xb = np.sort(_finite(b))
    if xa.size == 0 or xb.size == 0:
        return math.nan
    # Both ECDFs are right-continuous step functions that only jump at sample points, so the
    # supremum is attained at one of them.
    grid = np.concatenate([xa, xb])
    fa = np.searchsorted(xa, grid, side="right") / xa.size
    fb = np.searchsorted(xb, grid, side="right") / xb.size
    return float(np.max(np.abs(fa - fb)))


def percentiles(values: Floats, qs: Sequence[int] = (50, 90, 99)) -> dict[int, float]:
    """Linear-interpolated percentiles of the finite values; nan for each q when there are none."""
    arr = _finite(values)
    if arr.size == 0:
        return {q: math.nan for q in qs}
    got = np.percentile(arr, np.asarray(qs, dtype=np.float64))
    return {q: float(v) for q, v in zip(qs, np.atleast_1d(got), strict=True)}
