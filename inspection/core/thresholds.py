"""Threshold math for partial automation: what-if on labelled history, sweeps, a suggestion with
evidence. Pure: stdlib, numpy, `inspection.core.domain` and `inspection.core.stats` (score-quality
curves such as AUROC and ECE live in `inspection.core.metrics`).

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

import numpy as np
import numpy.typing as npt

from inspection.core.domain import LabelledScore
from inspection.core.replay import (
    ScoreTable,
    Side,
    WhatIf,
    pass_side,
    reject_side,
    score_table,
    weighted_candidates,
    what_ifs,
)
from inspection.core.stats import upper_bound_holds

FloatArray = npt.NDArray[np.float64]

__all__ = [
    "Suggestion",
    "WhatIf",
    "candidate_thresholds",
    "labels_for_zero_escapes",
    "suggest",
    "sweep",
    "what_if",
]


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
    t = score_table(history)
    return what_ifs(
        t,
        np.array([pass_below], dtype=np.float64),
        np.array([reject_above], dtype=np.float64),
        items_per_hour=items_per_hour,
        seconds_per_review=seconds_per_review,
        confidence=confidence,
    )[0]


def candidate_thresholds(history: Sequence[LabelledScore], *, max_candidates: int = 200) -> list[float]:
    """Thresholds worth trying: 0, 1 and the distinct scores (weighted quantiles when too many)."""
    if max_candidates < 3:
        raise ValueError("max_candidates must be >= 3")
    return weighted_candidates(score_table(history), max_candidates).tolist()


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
    t = score_table(history)
    g = (
        weighted_candidates(t, max_candidates)
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
    return what_ifs(
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


def _more_labels(t: ScoreTable, n_eff_target: float) -> int:
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

    t = score_table(history)
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

    cand = weighted_candidates(t, max_candidates)
    ps = pass_side(t, cand)
    rs = reject_side(t, cand)
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
    wi = what_ifs(
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
    t: ScoreTable,
    ps: Side,
    rs: Side,
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
