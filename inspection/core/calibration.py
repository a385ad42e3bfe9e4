"""Station recalibration: one temperature fitted on a station's blind labels. Pure (numpy, scipy).

A model trained on one imaging setup ranks a new line's phones well but its scores drift in scale
(issue 9: AUROC 1.000, ECE 0.23). Temperature scaling rescales the logit, p' = sigmoid(logit(p) / t),
so the ranking (and AUROC) is untouched and only the thresholds' meaning is repaired; one parameter
is also the least a few dozen labels can fit without over-fitting.

The fit minimises the negative log-likelihood of the labels over log t (bounded, scipy). Labels are
unweighted: the blind sample (shadow reviews and uniformly drawn audits) is what the engineer sees
counted, and 1 / audit_rate weights would let a handful of audit labels dominate a small fit.
ECE before and after is `core.metrics.expected_calibration_error` on the same labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import isotonic_regression, minimize_scalar

from inspection.core.metrics import expected_calibration_error

__all__ = [
    "MIN_LABELS",
    "MIN_PER_CLASS",
    "T_BOUNDS",
    "CalibrationRefused",
    "TemperatureFit",
    "apply_temperature",
    "check_counts",
    "fit_temperature",
    "IsotonicMap",
    "fit_isotonic",
    "CBPE_MIN_LABELS",
    "CBPE_MIN_POSITIVES",
]

MIN_LABELS = 50  # fewer blind labels: the ECE itself is too noisy to show an improvement
MIN_PER_CLASS = 10  # of each class (scratch and ok): one class alone says nothing about the scale
T_BOUNDS = (0.05, 20.0)  # beyond these a "temperature" is a broken model, not a miscalibrated one
_EPS = 1e-6  # scores are clipped to [eps, 1 - eps] before the logit (0 and 1 are legal scores)

FloatArray = npt.NDArray[np.float64]


class CalibrationRefused(ValueError):
    """Too few labels (or of one class) to fit; the message says how many more are needed."""


@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    ece_before: float
    ece_after: float
    n_labels: int
    n_scratch: int
    nll_before: float
    nll_after: float


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def _sigmoid(z: FloatArray) -> FloatArray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # tanh form: no overflow warnings for large |z|


def apply_temperature(scores: Sequence[float] | FloatArray, temperature: float) -> FloatArray:
    """p' = sigmoid(logit(p) / t). NaN scores stay NaN (a failed prediction is never "calibrated")."""
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    p = np.asarray(scores, dtype=np.float64)
    out = _sigmoid(_logit(p) / temperature)
    return np.where(np.isnan(p), np.nan, out)


def _nll(z: FloatArray, y: FloatArray, t: float) -> float:
    # log(1 + e^{-x}) and log(1 + e^{x}) via logaddexp: stable for confident scores
    x = z / t
    return float(np.mean(y * np.logaddexp(0.0, -x) + (1.0 - y) * np.logaddexp(0.0, x)))


def check_counts(n: int, n_scratch: int, *, min_labels: int = MIN_LABELS, min_per_class: int = MIN_PER_CLASS) -> None:
    """Raise CalibrationRefused with what is missing (counts of blind labels with a valid score)."""
    n_ok = n - n_scratch
    missing = []
    if n < min_labels:
        missing.append(f"{min_labels - n} more labels (have {n}, need {min_labels})")
    if n_scratch < min_per_class:
        missing.append(f"{min_per_class - n_scratch} more scratched phones (have {n_scratch}, need {min_per_class})")
    if n_ok < min_per_class:
        missing.append(f"{min_per_class - n_ok} more good phones (have {n_ok}, need {min_per_class})")
    if missing:
        raise CalibrationRefused("too few blind labels to recalibrate: need " + "; ".join(missing))


def fit_temperature(
    scores: Sequence[float] | FloatArray,
    labels: Sequence[bool] | npt.NDArray[np.bool_],
    *,
    min_labels: int = MIN_LABELS,
    min_per_class: int = MIN_PER_CLASS,
    bins: int = 15,
) -> TemperatureFit:
    """The NLL-optimal temperature for (score, is_scratch) pairs, with ECE before and after.
    Raises CalibrationRefused under `min_labels` pairs or `min_per_class` of either class, and
    ValueError for scores outside [0, 1] or of another length than the labels."""
    p = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if p.size != y.size:
        raise ValueError(f"length mismatch: {p.size} scores vs {y.size} labels")
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("scores must be finite and within [0, 1]")
    check_counts(int(p.size), int(y.sum()), min_labels=min_labels, min_per_class=min_per_class)
    z, yf = _logit(p), y.astype(np.float64)
    lo, hi = (math.log(b) for b in T_BOUNDS)
    res = minimize_scalar(
        lambda u: _nll(z, yf, math.exp(u)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-6}
    )
    t = float(math.exp(res.x))
    if _nll(z, yf, t) > _nll(z, yf, 1.0):  # never worse than leaving the scores alone
        t = 1.0
    after = apply_temperature(p, t)
    return TemperatureFit(
        temperature=t,
        ece_before=expected_calibration_error(p, y, bins=bins),
        ece_after=expected_calibration_error(after, y, bins=bins),
        n_labels=int(p.size),
        n_scratch=int(y.sum()),
        nll_before=_nll(z, yf, 1.0),
        nll_after=_nll(z, yf, t),
    )


# ---------------------------------------------------------------------------------------------
# Score -> probability map for the label-free escape estimate (CBPE)
# ---------------------------------------------------------------------------------------------

CBPE_MIN_LABELS = 100  # labelled reference items before a map is fitted (else the scores are used as they are)
CBPE_MIN_POSITIVES = 5  # scratches among them: an isotonic map from fewer is mostly steps of zero


@dataclass(frozen=True)
class IsotonicMap:
    """P(scratch | score) as a non-decreasing step function fitted on labelled reference items.

    NannyML's CBPE calibrates on labelled reference data and then estimates performance from scores alone;
    this is that calibrator. A model can rank well and still be overconfident at the low end (the baseline
    says ~0.1 % where ~0.6 % of auto-passed phones are scratched on a line it was not trained for), which a
    temperature does not repair: the isotonic fit (scipy) matches the observed rate in every score range and
    keeps its weighted mean equal to the labelled items' rate. Between fitted scores it interpolates."""

    x: tuple[float, ...]  # increasing scores
    y: tuple[float, ...]  # fitted P(scratch) at those scores, non-decreasing
    n: int
    positives: int

    def __call__(self, scores: Sequence[float] | FloatArray) -> FloatArray:
        p = np.asarray(scores, dtype=np.float64)
        return np.interp(p, np.asarray(self.x), np.asarray(self.y))

    def to_json(self) -> dict[str, object]:
        return {"x": [round(v, 6) for v in self.x], "y": [round(v, 6) for v in self.y], "n": self.n,
                "positives": self.positives}

    @staticmethod
    def from_json(data: object) -> IsotonicMap:
        if not isinstance(data, dict) or not isinstance(data.get("x"), list) or not isinstance(data.get("y"), list):
            raise ValueError("a score calibration must be an object with lists 'x' and 'y'")
        x, y = tuple(float(v) for v in data["x"]), tuple(float(v) for v in data["y"])
        if len(x) != len(y) or not x or any(b < a for a, b in zip(x, x[1:], strict=False)):
            raise ValueError("score calibration 'x' must be non-empty, increasing and as long as 'y'")
        if any(b < a for a, b in zip(y, y[1:], strict=False)) or not all(0.0 <= v <= 1.0 for v in y):
            raise ValueError("score calibration 'y' must be non-decreasing within [0, 1]")
        return IsotonicMap(x, y, int(data.get("n", 0)), int(data.get("positives", 0)))


def fit_isotonic(
    scores: Sequence[float] | FloatArray,
    labels: Sequence[bool] | npt.NDArray[np.bool_],
    weights: Sequence[float] | FloatArray | None = None,
    *,
    min_labels: int = CBPE_MIN_LABELS,
    min_positives: int = CBPE_MIN_POSITIVES,
) -> IsotonicMap | None:
    """The isotonic P(scratch | score) of labelled items (weights: inverse sampling probabilities, e.g.
    1 / audit rate), or None when there are too few labels or scratches to fit one."""
    p = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    w = np.ones(p.size) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (p.size == y.size == w.size):
        raise ValueError(f"length mismatch: {p.size} scores, {y.size} labels, {w.size} weights")
    keep = np.isfinite(p) & np.isfinite(w) & (w > 0)
    p, y, w = p[keep], y[keep], w[keep]
    if p.size < min_labels or int(y.sum()) < min_positives:
        return None
    order = np.argsort(p, kind="stable")
    p, y, w = p[order], y[order].astype(np.float64), w[order]
    fitted = isotonic_regression(y, weights=w, increasing=True).x
    # one point per distinct score (the weighted mean of tied items), so np.interp sees an increasing x
    xs, group = np.unique(p, return_inverse=True)
    ys = np.bincount(group, weights=fitted * w) / np.bincount(group, weights=w)
    ys = np.clip(np.maximum.accumulate(ys), 0.0, 1.0)  # guard against rounding breaking monotonicity
    return IsotonicMap(tuple(map(float, xs)), tuple(map(float, ys)), int(p.size), int(y.sum()))
