"""Concept signals of monitoring: what labels, and calibrated scores, say about the model on the line.
Pure (numpy, scipy).

`cbpe_escape` (label-free, from calibrated scores, NannyML's CBPE idea; optionally through the isotonic map
of a labelled reference), `audited_escape` (blind audit labels, weighted, via `core.stats.weighted_estimate`),
`disagreement_rate` (Wilson via `core.stats.estimate_rate`) and `calibration_error` (ECE via `core.metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from inspection.core.calibration import IsotonicMap
from inspection.core.metrics import expected_calibration_error
from inspection.core.stats import Floats, LabelLike, estimate_rate, norm_ppf, scratch_mask, weighted_estimate

__all__ = ["Concept", "Estimate", "audited_escape", "calibration_error", "cbpe_escape", "disagreement_rate"]


# ---------------------------------------------------------------------------------------------
# Concept: escape, disagreement, calibration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A rate with a two-sided interval; `upper` is the one-sided bound at the same confidence."""

    rate: float
    low: float
    high: float
    n: int = 0  # items behind it (labelled items, or auto-passed items for the label-free estimate)
    upper: float = math.nan
    method: str = ""


@dataclass(frozen=True)
class Concept:
    """What labels (and calibrated scores) say over the latest labelled window; None when unknown."""

    disagreement: Estimate | None = None
    ece: float | None = None
    ece_n: int = 0
    escape_audited: Estimate | None = None
    escape_label_free: Estimate | None = None


def _count_interval(mean: float, var: float, confidence: float) -> tuple[float, float, float]:
    """(low, high, one-sided upper) of a Poisson-binomial count with this mean and variance.

    Normal approximation when the variance is >= 9 (three events' worth); below that the count is
    nearly Poisson(mean) (Le Cam: small p's) and the Poisson quantiles are used, since the normal
    interval is symmetric where the count is skewed and would put the upper bound too low.
    """
    a = 1.0 - confidence
    if var >= 9.0:
        z2, z1 = norm_ppf(1.0 - a / 2.0), norm_ppf(confidence)
        sd = math.sqrt(var)
        return max(0.0, mean - z2 * sd), mean + z2 * sd, mean + z1 * sd
    if mean <= 0.0:
        return 0.0, 0.0, 0.0
    pois = sps.poisson(mean)
    # The quantiles are whole counts: with mean 0.01 both are 0. Keep the mean itself inside the interval
    # so the reported rate never falls outside its own bounds.
    low, high, upper = float(pois.ppf(a / 2.0)), float(pois.ppf(1.0 - a / 2.0)), float(pois.ppf(confidence))
    return min(low, mean), max(high, mean), max(upper, mean)


def cbpe_escape(
    scores_auto_passed: Floats, *, confidence: float = 0.95, calibration: IsotonicMap | None = None
) -> Estimate:
    """Label-free escape rate among auto-passed items (NannyML's CBPE idea): mean calibrated P(scratch).

    If the scores are calibrated, each auto-passed item is a scratch with probability equal to its
    score, so the number of escapes is Poisson-binomial with mean Σp and variance Σp(1-p); the
    interval is that count's central interval divided by n (see `_count_interval`). It covers the
    outcome noise only: a miscalibrated model biases the rate itself, which is what the audited
    estimate and the ECE rule are for.
    """
    p = np.asarray(scores_auto_passed, dtype=np.float64).ravel()
    p = p[np.isfinite(p)]
    if p.size == 0:
        return Estimate(math.nan, 0.0, 1.0, 0, 1.0, "cbpe")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("scores must be within [0, 1]")
    method = "cbpe"
    if calibration is not None:  # the reference's labelled items say what each score means on this line
        p, method = calibration(p), "cbpe (isotonic on the reference's labels)"
    n = int(p.size)
    low, high, upper = _count_interval(float(p.sum()), float(np.sum(p * (1 - p))), confidence)
    return Estimate(float(p.mean()), low / n, min(1.0, high / n), n, min(1.0, upper / n), method)


def audited_escape(
    labels: Sequence[LabelLike] | npt.NDArray[Any], weights: Floats | None = None, *, confidence: float = 0.95
) -> Estimate:
    """Escape rate among auto-passed items from blind audits of them: the weighted share labelled scratch.

    `weights` are the items' inverse audit probabilities (None: equal); the interval is
    `core.stats.weighted_estimate`'s Wilson interval on the Kish effective sample size, `upper` its
    exact one-sided bound.
    """
    y = scratch_mask(labels)
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.size != y.size:
        raise ValueError(f"length mismatch: {y.size} labels vs {w.size} weights")
    if y.size == 0:
        return Estimate(math.nan, 0.0, 1.0, 0, 1.0, "audit")
    est = weighted_estimate(w * y, w, confidence=confidence)
    return Estimate(est.rate, est.low, est.high, est.n, est.upper, "audit")


def disagreement_rate(
    model_calls: Sequence[LabelLike] | npt.NDArray[Any],
    human_labels: Sequence[LabelLike] | npt.NDArray[Any],
    *,
    confidence: float = 0.95,
) -> Estimate:
    """Share of labelled items where the model's call and the person's label differ (Wilson)."""
    m, h = scratch_mask(model_calls), scratch_mask(human_labels)
    if m.size != h.size:
        raise ValueError(f"length mismatch: {m.size} model calls vs {h.size} labels")
    k = int(np.sum(m != h))
    est = estimate_rate(k, int(m.size), confidence=confidence)
    upper = est.high if m.size else 1.0
    return Estimate(est.rate, est.low, est.high, int(m.size), upper, "wilson")


def calibration_error(scores: Floats, labels: Sequence[LabelLike] | npt.NDArray[Any], *, bins: int = 15) -> float:
    """ECE of calibrated scores on blind audit labels (`core.metrics.expected_calibration_error`)."""
    return expected_calibration_error(scores, labels, bins=bins)
