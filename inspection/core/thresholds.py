"""Threshold math for partial automation: what-if on labelled history, sweeps, a suggestion with
evidence, and score-quality curves. Pure: stdlib, numpy, `inspection.core.domain` and `inspection.core.stats`.

Semantics follow `inspection.core.policy.route` under `partial`: score <= pass_below → auto pass (ok),
score >= reject_above → auto reject (scratch), anything else → a person.

Rates are **per inspected phone** and weighted: each `LabelledScore` stands for `weight` phones
(audit samples of automatic decisions carry 1/audit_rate), so

    escape_rate       = Σw[scratched and auto-passed] / Σw[all]
    false_reject_rate = Σw[ok and auto-rejected]      / Σw[all]

Upper bounds are exact one-sided Clopper–Pearson bounds computed on the Kish effective sample size
n_eff = (Σw)² / Σw² with rate · n_eff events (exact for unit weights, a design-effect
approximation otherwise). A history item whose score is NaN (no valid model output) is never
decided automatically, mirroring the fail-safe in `route`: it counts as reviewed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from inspection.core.domain import LabelledScore
from inspection.core.stats import (
    Floats,
    LabelLike,
    is_scratch,
    one_sided_upper_array,
    scratch_mask,
    upper_bound_holds,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Labels = Sequence[LabelLike] | npt.NDArray[Any]

__all__ = [
    "Reliability",
    "Suggestion",
    "WhatIf",
    "auroc",
    "average_precision",
    "candidate_thresholds",
    "coverage_at_risk",
    "expected_calibration_error",
    "labels_for_zero_escapes",
    "reliability",
    "suggest",
    "sweep",
    "what_if",
]


# ---------------------------------------------------------------------------------------------
# Result types
# ---------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Suggestion:
    """A threshold recommendation, or a refusal (ok=False, thresholds None) saying what is missing."""

    ok: bool
    pass_below: float | None
    reject_above: float | None
    what_if: WhatIf | None
    reason: str
    # More labels (of the history's mix) before a sound answer; 0 if none are needed. With ok=True
    # it can be > 0 when only the reject side is automated: the labels auto pass would need.
    labels_needed: int
    mode: str = "automation"  # "automation" (maximise automation) or "cost" (minimise cost)
    expected_cost: float | None = None  # per inspected phone, cost mode only


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
# History → cumulative table
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Table:
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


def _table(history: Sequence[LabelledScore]) -> _Table:
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
    return _Table(
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
class _Side:
    """Per-threshold quantities of one side (pass or reject); arrays aligned with the thresholds."""

    decided_w: FloatArray  # weight decided automatically on this side
    error_w: FloatArray  # weight decided wrongly (escapes on the pass side, false rejects on the other)
    errors: IntArray  # unweighted count of wrong decisions
    rate: FloatArray  # error_w / total weight
    events_eff: FloatArray  # rate * n_eff, the event count bounds are computed with


def _pass_side(t: _Table, pass_below: FloatArray) -> _Side:
    idx = np.searchsorted(t.scores, pass_below, side="right")  # score <= pass_below
    err_w = t.cw_s[idx]
    return _side(t, t.cw_s[idx] + t.cw_o[idx], err_w, t.cn_s[idx])


def _reject_side(t: _Table, reject_above: FloatArray) -> _Side:
    idx = np.searchsorted(t.scores, reject_above, side="left")  # score >= reject_above
    err_w = t.cw_o[-1] - t.cw_o[idx]
    dec_w = (t.cw_s[-1] - t.cw_s[idx]) + err_w
    return _side(t, dec_w, err_w, t.cn_o[-1] - t.cn_o[idx])


def _side(t: _Table, decided_w: FloatArray, error_w: FloatArray, errors: IntArray) -> _Side:
    # Clip: prefix-sum differences can be a hair below zero.
    decided_w = np.maximum(decided_w, 0.0)
    error_w = np.maximum(error_w, 0.0)
    rate = error_w / t.total_w if t.total_w > 0 else np.full_like(error_w, math.nan)
    # rate * n_eff = error_w * Σw / Σw²: for unit weights exactly the integer count.
    events = error_w * t.total_w / t.sum_w2 if t.sum_w2 > 0 else np.zeros_like(error_w)
    return _Side(decided_w, error_w, np.asarray(errors, dtype=np.int64), rate, events)


def _what_ifs(
    t: _Table,
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
    ps = _pass_side(t, p_u)
    rs = _reject_side(t, r_u)
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


def _check_pair(pass_below: float, reject_above: float) -> None:
    # Same rule as Policy.validate: a what-if for a policy that could never be stored is a bug.
    if not (0.0 <= pass_below <= 1.0 and 0.0 <= reject_above <= 1.0):
        raise ValueError("thresholds must be within [0, 1]")
    if pass_below >= reject_above:
        raise ValueError(f"pass_below ({pass_below}) must be below reject_above ({reject_above})")


# ---------------------------------------------------------------------------------------------
# Public: what-if, sweep, candidates
# ---------------------------------------------------------------------------------------------


def what_if(
    history: Sequence[LabelledScore],
    *,
    pass_below: float,
    reject_above: float,
    items_per_hour: float = 600.0,
    seconds_per_review: float = 4.0,
    confidence: float = 0.95,
) -> WhatIf:
    """Replay the history under `partial` with these thresholds (rates weighted, per phone)."""
    _check_pair(pass_below, reject_above)
    t = _table(history)
    return _what_ifs(
        t,
        np.array([pass_below], dtype=np.float64),
        np.array([reject_above], dtype=np.float64),
        items_per_hour=items_per_hour,
        seconds_per_review=seconds_per_review,
        confidence=confidence,
    )[0]


def _weighted_candidates(t: _Table, max_candidates: int) -> FloatArray:
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


def candidate_thresholds(history: Sequence[LabelledScore], *, max_candidates: int = 200) -> list[float]:
    """Thresholds worth trying: 0, 1 and the distinct scores (weighted quantiles when too many)."""
    if max_candidates < 3:
        raise ValueError("max_candidates must be >= 3")
    return _weighted_candidates(_table(history), max_candidates).tolist()


def sweep(
    history: Sequence[LabelledScore],
    *,
    grid: Sequence[float] | None = None,
    reject_above: float | None = None,
    items_per_hour: float = 600.0,
    seconds_per_review: float = 4.0,
    confidence: float = 0.95,
    max_candidates: int = 200,
) -> list[WhatIf]:
    """What-if for every threshold pair on a grid, sorted by (pass_below, reject_above).

    With `reject_above` fixed: one curve over pass_below (the values below it). Otherwise every
    pair p < r from the grid (200 values → 19,900 pairs). The grid defaults to
    `candidate_thresholds`. Sorting + prefix sums: O(n log n + pairs) in total.
    """
    t = _table(history)
    g = (
        _weighted_candidates(t, max_candidates)
        if grid is None
        else np.unique(np.asarray(grid, dtype=np.float64))
    )
    if g.size and (g[0] < 0 or g[-1] > 1 or np.any(np.isnan(g))):
        raise ValueError("grid values must be within [0, 1]")
    if reject_above is not None:
        if not 0.0 <= reject_above <= 1.0:
            raise ValueError("reject_above must be within [0, 1]")
        p = g[g < reject_above]
        r = np.full(p.size, reject_above)
    else:
        i, j = np.triu_indices(g.size, k=1)
        p, r = g[i], g[j]
    return _what_ifs(
        t, p, r, items_per_hour=items_per_hour, seconds_per_review=seconds_per_review, confidence=confidence
    )


# ---------------------------------------------------------------------------------------------
# Suggestion
# ---------------------------------------------------------------------------------------------


def labels_for_zero_escapes(max_escape: float, *, confidence: float = 0.95) -> float:
    """Effective labelled phones needed to show escape_rate <= max_escape with zero escapes seen.

    From 1 - (1-confidence)^(1/n) <= max_escape: n >= ln(1-confidence) / ln(1-max_escape), about
    3/max_escape at 95 %. Escapes are counted per inspected phone, so every labelled phone counts,
    scratched or not: the scratch prevalence does not change this number.
    """
    if not 0.0 < max_escape < 1.0:
        raise ValueError("max_escape must be within (0, 1)")
    return math.log(1.0 - confidence) / math.log1p(-max_escape)


def _n_eff_needed(rates: FloatArray, bound: float, n_eff_now: float, confidence: float) -> FloatArray:
    """Smallest n_eff at which a side with this observed error rate meets `bound` (inf if never).

    The upper bound at fixed rate falls as n grows and tends to the rate itself, so it is
    reachable only when rate < bound; a bisection on log(n) finds the crossing.
    """
    out = np.full(rates.shape, math.inf)
    ok = rates < bound
    if not np.any(ok):
        return out
    r = rates[ok]
    lo = np.full(r.shape, max(n_eff_now, 1e-9))
    hi = lo.copy()
    # Grow hi until the bound holds (at most ~60 doublings: n up to 1e18).
    for _ in range(64):
        holds = upper_bound_holds(r * hi, hi, bound, confidence=confidence)
        if np.all(holds):
            break
        hi = np.where(holds, hi, hi * 2.0)
    for _ in range(40):
        mid = np.sqrt(lo * hi)
        holds = upper_bound_holds(r * mid, mid, bound, confidence=confidence)
        hi = np.where(holds, mid, hi)
        lo = np.where(holds, lo, mid)
    out[ok] = hi
    return out


def _more_labels(t: _Table, n_eff_target: float) -> int:
    # New labels are assumed to come in the same weight mix as the history, so n_eff grows in
    # proportion to the number of records (for unit weights: target - n).
    if t.n == 0 or t.n_eff == 0:
        return math.ceil(n_eff_target)
    return max(0, math.ceil(t.n * n_eff_target / t.n_eff - t.n - 1e-9))


def _pct(x: float) -> str:
    v = 100.0 * x
    if v >= 10 or v == 0:
        return f"{v:.0f} %"
    if v >= 1:
        return f"{v:.1f} %"
    return f"{v:.2g} %"


def _refuse(reason: str, labels_needed: int, mode: str) -> Suggestion:
    return Suggestion(False, None, None, None, reason, labels_needed, mode)


def suggest(
    history: Sequence[LabelledScore],
    *,
    max_escape: float,
    max_false_reject: float = 0.01,
    cost_escape: float | None = None,
    cost_false_reject: float | None = None,
    cost_review_minute: float | None = None,
    seconds_per_review: float = 4.0,
    items_per_hour: float = 600.0,
    confidence: float = 0.95,
    max_candidates: int = 400,
) -> Suggestion:
    """Recommend (pass_below, reject_above) for `partial` from labelled history, or refuse.

    Rule (automation mode): among candidate pairs p < r, keep those whose pass side has
    escape_upper <= max_escape and whose reject side has false_reject_upper <= max_false_reject
    (both one-sided bounds at `confidence`, per inspected phone); pick the most automation, ties
    broken by fewer escapes, then fewer false rejects. A side that decides no labelled phone is
    "off" and needs no bound.

    Cost mode (all three costs given): minimise the expected cost per phone
    cost_escape·escape_rate + cost_false_reject·false_reject_rate
    + cost_review_minute·(seconds_per_review/60)·review_rate, subject to the same escape bound;
    false rejects are priced instead of bounded.

    Refuses (ok=False, no thresholds) when no candidate pair automates anything within the bounds;
    `labels_needed` then estimates how many more labels of the history's mix would make the most
    promising pair provable (0 when the observed rates themselves exceed the bounds: more labels
    will not help, the model must improve).
    """
    if not 0.0 < max_escape < 1.0:
        raise ValueError("max_escape must be within (0, 1)")
    if not 0.0 < max_false_reject <= 1.0:
        raise ValueError("max_false_reject must be within (0, 1]")
    costs = (cost_escape, cost_false_reject, cost_review_minute)
    if any(c is not None for c in costs) and any(c is None for c in costs):
        raise ValueError("cost mode needs cost_escape, cost_false_reject and cost_review_minute together")
    mode = "cost" if cost_escape is not None else "automation"
    if max_candidates < 3:
        raise ValueError("max_candidates must be >= 3")

    t = _table(history)
    n_zero = labels_for_zero_escapes(max_escape, confidence=confidence)
    conf_txt = f"{confidence * 100:g} %"
    if t.n == 0 or t.total_w <= 0:
        return _refuse(
            f"no labelled history: showing an escape rate <= {_pct(max_escape)} ({conf_txt} upper bound) "
            f"needs at least {math.ceil(n_zero)} labelled phones even if none escapes",
            math.ceil(n_zero),
            mode,
        )

    if t.scores.size == 0:
        return _refuse(
            f"none of the {t.n} labelled phones has a valid model score, so no threshold can be judged; "
            f"label phones the model has scored (at least {math.ceil(n_zero)})",
            math.ceil(n_zero),
            mode,
        )

    cand = _weighted_candidates(t, max_candidates)
    ps = _pass_side(t, cand)
    rs = _reject_side(t, cand)
    n_eff = t.n_eff
    n_vec = np.full(cand.size, n_eff)
    pass_ok = (ps.decided_w <= 0) | upper_bound_holds(ps.events_eff, n_vec, max_escape, confidence=confidence)
    if mode == "cost":
        rej_ok = np.ones(cand.size, dtype=bool)
    else:
        rej_ok = (rs.decided_w <= 0) | upper_bound_holds(
            rs.events_eff, n_vec, max_false_reject, confidence=confidence
        )

    # All pairs on the candidate grid (≤ max_candidates² / 2): small, and exact on the grid.
    i, j = np.triu_indices(cand.size, k=1)
    feasible = pass_ok[i] & rej_ok[j]
    i, j = i[feasible], j[feasible]
    W = t.total_w
    automation = (ps.decided_w[i] + rs.decided_w[j]) / W
    escape = ps.rate[i]
    false_rej = rs.rate[j]
    cost: FloatArray | None = None
    if mode == "cost":
        assert cost_escape is not None and cost_false_reject is not None and cost_review_minute is not None
        review_cost = cost_review_minute * seconds_per_review / 60.0
        cost = cost_escape * escape + cost_false_reject * false_rej + review_cost * (1.0 - automation)
        # Round away float noise so equal choices tie and the next key decides.
        order = np.lexsort((false_rej, escape, -np.round(automation, 12), np.round(cost, 12)))
    else:
        order = np.lexsort((false_rej, escape, -np.round(automation, 12)))
    best = int(order[0]) if order.size else -1

    if mode == "cost" and best >= 0 and automation[best] <= 0 and cost is not None:
        # Feasible automation exists but costs more than people: that is an answer, not a
        # recommendation of thresholds.
        return _refuse(
            f"at these costs automation does not pay: reviewing every phone costs "
            f"{float(cost[best]):.4g} per phone, less than any pair that meets the escape bound",
            0,
            mode,
        )
    if best < 0 or automation[best] <= 0:
        return _refusal(t, ps, rs, cand, max_escape, max_false_reject, mode, confidence, n_zero)

    pb, ra = float(cand[i[best]]), float(cand[j[best]])
    wi = _what_ifs(
        t,
        np.array([pb]),
        np.array([ra]),
        items_per_hour=items_per_hour,
        seconds_per_review=seconds_per_review,
        confidence=confidence,
    )[0]
    reason = (
        f"partial with pass_below {pb:.4g} / reject_above {ra:.4g} would have automated "
        f"{_pct(wi.automation_rate)} with an estimated escape rate <= {_pct(wi.escape_upper)} "
        f"({conf_txt} upper bound; observed {_pct(wi.escape_rate)}, {wi.escapes} escapes"
        + (f", {_pct(wi.escape_rate_among_scratched)} of scratched phones missed" if wi.escapes else "")
        + ") and "
        f"false rejects <= {_pct(wi.false_reject_upper)} (observed {_pct(wi.false_reject_rate)}); "
        f"rates per inspected phone, from {t.n} labelled phones ({t.n_scratch} scratched, "
        f"effective sample {n_eff:.0f}); {wi.reviews_per_hour:.0f} reviews per hour at "
        f"{items_per_hour:g} phones per hour"
    )
    labels_needed = 0
    if wi.auto_pass_rate == 0:
        labels_needed = _more_labels(t, n_zero) if n_eff < n_zero else 0
        reason += "; nothing would pass automatically"
        if labels_needed:
            reason += f" (about {labels_needed} more labels are needed before auto pass can be shown safe)"
    expected_cost = None
    if cost is not None:
        expected_cost = float(cost[best])
        reason += f"; expected cost {expected_cost:.4g} per phone"
    return Suggestion(True, pb, ra, wi, reason, labels_needed, mode, expected_cost)


def _refusal(
    t: _Table,
    ps: _Side,
    rs: _Side,
    cand: FloatArray,
    max_escape: float,
    max_false_reject: float,
    mode: str,
    confidence: float,
    n_zero: float,
) -> Suggestion:
    conf_txt = f"{confidence * 100:g} %"
    n_eff = t.n_eff
    # The cheapest way to *some* automation: the candidate (either side) that automates something
    # and needs the fewest labels for its observed error rate to be provably under its bound.
    need = _n_eff_needed(ps.rate[ps.decided_w > 0], max_escape, n_eff, confidence)
    if mode == "automation":
        need_r = _n_eff_needed(rs.rate[rs.decided_w > 0], max_false_reject, n_eff, confidence)
        need = np.concatenate([need, need_r])
    target = float(need.min()) if need.size else math.inf
    if n_eff < n_zero:
        labels = _more_labels(t, max(target, n_zero) if math.isfinite(target) else n_zero)
        reason = (
            f"too few labels: {t.n} labelled phones (effective sample {n_eff:.0f}, {t.n_scratch} scratched) "
            f"cannot show an escape rate <= {_pct(max_escape)} at {conf_txt}; even with zero escapes "
            f"that needs {math.ceil(n_zero)} effective labelled phones (escapes are counted per "
            f"inspected phone, so ok and scratched labels both count). Label about {labels} more phones."
        )
        return _refuse(reason, labels, mode)
    lowest = float(np.min(ps.rate[ps.decided_w > 0])) if np.any(ps.decided_w > 0) else math.nan
    if math.isfinite(target):
        labels = _more_labels(t, target)
        reason = (
            f"no threshold pair automates anything with escape rate <= {_pct(max_escape)}"
            + (f" and false rejects <= {_pct(max_false_reject)}" if mode == "automation" else "")
            + f" ({conf_txt} upper bounds) on {t.n} labelled phones; if the observed rates hold, "
            f"about {labels} more labels would prove the most promising one"
        )
        return _refuse(reason, labels, mode)
    reason = (
        f"no threshold pair can meet the bounds: every automatic decision the history allows has an "
        f"observed error rate above its bound (the most cautious auto pass already escapes "
        f"{_pct(lowest)} of phones, bound {_pct(max_escape)}); more labels will not help: the model "
        f"(or its calibration) must improve, or the bounds must be relaxed"
    )
    return _refuse(reason, 0, mode)


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
