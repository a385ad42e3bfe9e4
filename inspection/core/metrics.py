"""Score-quality metrics of a scratch model: calibration (reliability, ECE), coverage at a given
risk, ranking (AUROC, average precision). Pure: stdlib, numpy, scipy and `inspection.core.stats`.

Labels are anything `inspection.core.stats.scratch_mask` understands (Label, bool, 0/1); positive
means scratch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from inspection.core.stats import Floats, LabelLike, scratch_mask

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Labels = Sequence[LabelLike] | npt.NDArray[Any]

__all__ = [
    "Reliability",
    "auroc",
    "average_precision",
    "coverage_at_risk",
    "expected_calibration_error",
    "reliability",
]


@dataclass(frozen=True)
class Reliability:
    """Reliability diagram on equal-width bins; mean_predicted/observed are nan for empty bins."""

    edges: tuple[float, ...]
    mean_predicted: tuple[float, ...]
    observed: tuple[float, ...]
    counts: tuple[int, ...]

    @property
    def ece(self) -> float:
        n = sum(self.counts)
        if n == 0:
            return math.nan
        return sum(
            c / n * abs(p - o)
            for c, p, o in zip(self.counts, self.mean_predicted, self.observed, strict=True)
            if c
        )


# ---------------------------------------------------------------------------------------------
# Score quality: calibration, coverage, ranking
# ---------------------------------------------------------------------------------------------


def _scores_labels(scores: Floats, labels: Labels) -> tuple[FloatArray, BoolArray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = scratch_mask(labels)
    if s.size != y.size:
        raise ValueError(f"length mismatch: {s.size} scores vs {y.size} labels")
    if np.any(~np.isfinite(s)):
        raise ValueError("scores must be finite")
    return s, y


def reliability(scores: Floats, labels: Labels, *, bins: int = 10) -> Reliability:
    """Reliability diagram: per equal-width score bin, mean score vs observed scratch share."""
    if bins < 1:
        raise ValueError("bins must be >= 1")
    s, y = _scores_labels(scores, labels)
    if np.any((s < 0) | (s > 1)):
        raise ValueError("scores must be within [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # searchsorted on the inner edges: bins are [e_k, e_k+1), the last one closed at 1.0.
    idx = np.searchsorted(edges[1:-1], s, side="right")
    counts = np.bincount(idx, minlength=bins)
    sum_s = np.bincount(idx, weights=s, minlength=bins)
    sum_y = np.bincount(idx, weights=y.astype(np.float64), minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pred = np.where(counts > 0, sum_s / counts, math.nan)
        observed = np.where(counts > 0, sum_y / counts, math.nan)
    return Reliability(
        edges=tuple(edges.tolist()),
        mean_predicted=tuple(mean_pred.tolist()),
        observed=tuple(observed.tolist()),
        counts=tuple(int(c) for c in counts),
    )


def expected_calibration_error(scores: Floats, labels: Labels, *, bins: int = 15) -> float:
    """Standard ECE: Σ_bins (n_b / N) |mean score - observed share|, equal-width bins; nan if empty."""
    return reliability(scores, labels, bins=bins).ece


def coverage_at_risk(scores: Floats, labels: Labels, risk: float, *, max_candidates: int = 5000) -> float:
    """Largest share of items decidable automatically with error rate among decided <= risk.

    Decided: score <= t_low called ok, score >= t_high called scratch (t_low < t_high, so ties
    can never be split). With the items sorted into G distinct-score groups, the low side is the
    first i groups and the high side the last j (i + j <= G); the rate constraint
    E_low(i) + E_high(j) <= risk·(N_low(i) + N_high(j)) separates into a(i) + b(j) <= 0. For each
    i all j are checked at once: O(G) per i. Every i is tried when G <= max_candidates (exact);
    otherwise i runs over a quantile grid, and the mirror pass (j on the grid, every i) is added.
    Returns nan for no items.
    """
    if not 0.0 <= risk <= 1.0:
        raise ValueError("risk must be within [0, 1]")
    s, y = _scores_labels(scores, labels)
    n = s.size
    if n == 0:
        return math.nan
    uniq, inv = np.unique(s, return_inverse=True)
    g = uniq.size
    pos = np.bincount(inv, weights=y.astype(np.float64), minlength=g)
    cnt = np.bincount(inv, minlength=g).astype(np.float64)
    neg = cnt - pos
    zero = np.zeros(1)
    # Low side (called ok): errors are scratched items. High side (called scratch): ok items.
    n_low = np.concatenate([zero, np.cumsum(cnt)])
    e_low = np.concatenate([zero, np.cumsum(pos)])
    n_high = np.concatenate([zero, np.cumsum(cnt[::-1])])
    e_high = np.concatenate([zero, np.cumsum(neg[::-1])])
    a = e_low - risk * n_low
    b = e_high - risk * n_high
    tol = 1e-9 * n  # integer error counts against a float product: allow rounding only

    def best_over(fixed: IntArray, fixed_term: FloatArray, fixed_n: FloatArray,
                  other_term: FloatArray, other_n: FloatArray) -> float:  # fmt: skip
        best = 0.0
        for k in fixed.tolist():
            m = g - k + 1  # the other side may take 0 .. g-k groups
            ok = other_term[:m] + fixed_term[k] <= tol
            if np.any(ok):
                best = max(best, float(fixed_n[k] + np.max(np.where(ok, other_n[:m], -1.0))))
        return best

    if g + 1 <= max_candidates:
        grid = np.arange(g + 1, dtype=np.int64)
        covered = best_over(grid, a, n_low, b, n_high)
    else:
        grid = np.unique(np.linspace(0, g, max_candidates).round().astype(np.int64))
        covered = max(best_over(grid, a, n_low, b, n_high), best_over(grid, b, n_high, a, n_low))
    return covered / n


def auroc(scores: Floats, labels: Labels) -> float:
    """Area under the ROC curve via the Mann–Whitney U with mid-ranks for ties; nan if one class."""
    s, y = _scores_labels(scores, labels)
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return math.nan
    uniq, inv, counts = np.unique(s, return_inverse=True, return_counts=True)
    # Tied items share the average of the ranks they occupy (1-based).
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mid_rank = start + (counts + 1) / 2.0
    rank_sum = float(mid_rank[inv][y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def average_precision(scores: Floats, labels: Labels) -> float:
    """Average precision Σ (R_k - R_k-1)·P_k over distinct score thresholds, high to low (ties
    enter together, as in scikit-learn); nan without positives."""
    s, y = _scores_labels(scores, labels)
    n_pos = int(y.sum())
    if n_pos == 0:
        return math.nan
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    # Keep the last index of each run of equal scores: thresholds sit between distinct scores.
    last = np.flatnonzero(np.concatenate([s_sorted[1:] != s_sorted[:-1], [True]]))
    tp_t, fp_t = tp[last].astype(np.float64), fp[last].astype(np.float64)
    precision = tp_t / (tp_t + fp_t)
    recall = tp_t / n_pos
    d_recall = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(d_recall * precision))
