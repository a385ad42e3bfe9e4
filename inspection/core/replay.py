"""Replaying labelled history under `partial`: the sorted score table with prefix sums, the
per-threshold quantities of each side, and the vectorised what-if of threshold pairs.

The machinery behind `inspection.core.thresholds` (what_if, sweep, suggest), kept apart so that
each module stays one concept. Pure: stdlib, numpy, `inspection.core.domain` and `inspection.core.stats`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from inspection.core.domain import LabelledScore
from inspection.core.stats import is_scratch, one_sided_upper_array

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = ["ScoreTable", "Side", "WhatIf", "pass_side", "reject_side", "score_table", "weighted_candidates", "what_ifs"]


@dataclass(frozen=True)
class WhatIf:
    """What `partial` with these thresholds would have done on the labelled history.

    All rates are weighted shares of ALL inspected phones unless the name says otherwise.
    """

    pass_below: float
    reject_above: float
    n: int  # labelled records
    n_eff: float  # Kish effective sample size of the weights
    automation_rate: float  # auto pass + auto reject
    auto_pass_rate: float
    auto_reject_rate: float
    review_rate: float  # routed to a person (1 - automation_rate)
    escape_rate: float  # scratched AND auto-passed, per inspected phone
    escape_upper: float  # one-sided upper bound of escape_rate at `confidence`
    escape_rate_among_passed: float  # escapes / auto-passed phones (nan if none pass)
    escape_rate_among_scratched: float  # escapes / scratched phones: the miss rate (nan if none)
    false_reject_rate: float  # ok AND auto-rejected, per inspected phone
    false_reject_upper: float
    escapes: int  # labelled records that would have escaped (unweighted)
    false_rejects: int  # labelled records that would have been falsely rejected (unweighted)
    items_per_hour: float
    seconds_per_review: float
    reviews_per_hour: float  # items_per_hour * review_rate
    review_minutes_per_hour: float  # inspector minutes needed per hour of line time
    confidence: float

    def review_load_per_hour(self, items_per_hour: float, seconds_per_review: float) -> float:
        """Inspector minutes per hour at another line speed or review speed."""
        return items_per_hour * self.review_rate * seconds_per_review / 60.0


# ---------------------------------------------------------------------------------------------
# History → cumulative table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreTable:
    """Sorted scores with prefix sums, so any threshold is evaluated in O(log n)."""

    scores: FloatArray  # finite scores, ascending
    cw_s: FloatArray  # prefix sums (length len(scores) + 1) of scratched weight
    cw_o: FloatArray  # ... of ok weight
    cn_s: IntArray  # ... of scratched counts
    cn_o: IntArray  # ... of ok counts
    total_w: float  # all weight, including items without a valid score
    scratch_w: float
    sum_w2: float
    n: int
    n_scratch: int

    @property
    def n_eff(self) -> float:
        return self.total_w**2 / self.sum_w2 if self.sum_w2 > 0 else 0.0


def score_table(history: Sequence[LabelledScore]) -> ScoreTable:
    n = len(history)
    scores = np.fromiter((r.score for r in history), dtype=np.float64, count=n)
    weights = np.fromiter((r.weight for r in history), dtype=np.float64, count=n)
    scratch = np.fromiter((is_scratch(r.label) for r in history), dtype=bool, count=n)
    if np.any(~np.isfinite(weights)) or np.any(weights <= 0):
        raise ValueError("weights must be finite and > 0")
    valid = np.isfinite(scores)
    if np.any((scores[valid] < 0) | (scores[valid] > 1)):
        raise ValueError("scores must be within [0, 1] (NaN marks an item without a valid output)")
    order = np.argsort(scores[valid], kind="stable")
    s = scores[valid][order]
    w = weights[valid][order]
    sc = scratch[valid][order]
    zero = np.zeros(1)
    return ScoreTable(
        scores=s,
        cw_s=np.concatenate([zero, np.cumsum(np.where(sc, w, 0.0))]),
        cw_o=np.concatenate([zero, np.cumsum(np.where(sc, 0.0, w))]),
        cn_s=np.concatenate([[0], np.cumsum(sc)]).astype(np.int64),
        cn_o=np.concatenate([[0], np.cumsum(~sc)]).astype(np.int64),
        total_w=float(weights.sum()),
        scratch_w=float(weights[scratch].sum()),
        sum_w2=float(np.sum(weights * weights)),
        n=n,
        n_scratch=int(scratch.sum()),
    )


@dataclass(frozen=True)
class Side:
    """Per-threshold quantities of one side (pass or reject); arrays aligned with the thresholds."""

    decided_w: FloatArray  # weight decided automatically on this side
    error_w: FloatArray  # weight decided wrongly (escapes on the pass side, false rejects on the other)
    errors: IntArray  # unweighted count of wrong decisions
    rate: FloatArray  # error_w / total weight
    events_eff: FloatArray  # rate * n_eff, the event count bounds are computed with


def pass_side(t: ScoreTable, pass_below: FloatArray) -> Side:
    idx = np.searchsorted(t.scores, pass_below, side="right")  # score <= pass_below
    err_w = t.cw_s[idx]
    return _side(t, t.cw_s[idx] + t.cw_o[idx], err_w, t.cn_s[idx])


def reject_side(t: ScoreTable, reject_above: FloatArray) -> Side:
    idx = np.searchsorted(t.scores, reject_above, side="left")  # score >= reject_above
    err_w = t.cw_o[-1] - t.cw_o[idx]
    dec_w = (t.cw_s[-1] - t.cw_s[idx]) + err_w
    return _side(t, dec_w, err_w, t.cn_o[-1] - t.cn_o[idx])


def _side(t: ScoreTable, decided_w: FloatArray, error_w: FloatArray, errors: IntArray) -> Side:
    # Clip: prefix-sum differences can be a hair below zero.
    decided_w = np.maximum(decided_w, 0.0)
    error_w = np.maximum(error_w, 0.0)
    rate = error_w / t.total_w if t.total_w > 0 else np.full_like(error_w, math.nan)
    # rate * n_eff = error_w * Σw / Σw²: for unit weights exactly the integer count.
    events = error_w * t.total_w / t.sum_w2 if t.sum_w2 > 0 else np.zeros_like(error_w)
    return Side(decided_w, error_w, np.asarray(errors, dtype=np.int64), rate, events)


def what_ifs(
    t: ScoreTable,
    pass_below: FloatArray,
    reject_above: FloatArray,
    *,
    items_per_hour: float,
    seconds_per_review: float,
    confidence: float,
) -> list[WhatIf]:
    """Vectorised evaluation of aligned (pass_below[k], reject_above[k]) pairs.

    Bounds depend on one side only, so they are solved once per distinct threshold, not per pair.
    """
    if pass_below.size == 0:
        return []
    p_u, p_inv = np.unique(pass_below, return_inverse=True)
    r_u, r_inv = np.unique(reject_above, return_inverse=True)
    ps = pass_side(t, p_u)
    rs = reject_side(t, r_u)
    n_eff = t.n_eff
    p_upper = one_sided_upper_array(ps.events_eff, np.full(p_u.size, n_eff), confidence=confidence)
    r_upper = one_sided_upper_array(rs.events_eff, np.full(r_u.size, n_eff), confidence=confidence)
    W = t.total_w
    with np.errstate(divide="ignore", invalid="ignore"):
        pass_rate = ps.decided_w[p_inv] / W
        rej_rate = rs.decided_w[r_inv] / W
        among_passed = np.where(ps.decided_w > 0, ps.error_w / ps.decided_w, math.nan)[p_inv]
        among_scratch = ps.error_w[p_inv] / t.scratch_w if t.scratch_w > 0 else np.full(p_inv.size, math.nan)
    automation = pass_rate + rej_rate
    review = 1.0 - automation
    reviews_per_hour = items_per_hour * review
    minutes = reviews_per_hour * seconds_per_review / 60.0
    cols = zip(
        pass_below.tolist(),
        reject_above.tolist(),
        automation.tolist(),
        pass_rate.tolist(),
        rej_rate.tolist(),
        review.tolist(),
        ps.rate[p_inv].tolist(),
        p_upper[p_inv].tolist(),
        among_passed.tolist(),
        among_scratch.tolist(),
        rs.rate[r_inv].tolist(),
        r_upper[r_inv].tolist(),
        ps.errors[p_inv].tolist(),
        rs.errors[r_inv].tolist(),
        reviews_per_hour.tolist(),
        minutes.tolist(),
        strict=True,
    )
    return [
        WhatIf(
            pass_below=pb,
            reject_above=ra,
            n=t.n,
            n_eff=n_eff,
            automation_rate=au,
            auto_pass_rate=pr,
            auto_reject_rate=rr,
            review_rate=rv,
            escape_rate=er,
            escape_upper=eu,
            escape_rate_among_passed=ep,
            escape_rate_among_scratched=es,
            false_reject_rate=fr,
            false_reject_upper=fu,
            escapes=ne,
            false_rejects=nf,
            items_per_hour=items_per_hour,
            seconds_per_review=seconds_per_review,
            reviews_per_hour=rph,
            review_minutes_per_hour=mph,
            confidence=confidence,
        )
        for pb, ra, au, pr, rr, rv, er, eu, ep, es, fr, fu, ne, nf, rph, mph in cols
    ]


def weighted_candidates(t: ScoreTable, max_candidates: int) -> FloatArray:
    uniq = np.unique(t.scores)
    if uniq.size + 2 <= max_candidates:
        cand = uniq
    else:
        # Weighted quantiles: candidates spaced by share of phones, so automation is resolved
        # evenly (~1/max_candidates) where the phones are, not where the score axis is empty.
        w = np.diff(t.cw_s) + np.diff(t.cw_o)
        cum = np.cumsum(w)
        qs = np.linspace(0.0, 1.0, max_candidates - 2) * cum[-1]
        idx = np.clip(np.searchsorted(cum, qs, side="left"), 0, t.scores.size - 1)
        cand = t.scores[idx]
    return np.unique(np.concatenate([cand, [0.0, 1.0]]))
