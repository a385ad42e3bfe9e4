"""inspection.core.thresholds (what-if replay, sweeps, suggestions) and inspection.core.metrics (score quality)."""

from __future__ import annotations

import math
from dataclasses import astuple
from itertools import combinations

import numpy as np
import pytest

from inspection.core.domain import Label, LabelledScore
from inspection.core.metrics import auroc, average_precision, coverage_at_risk, expected_calibration_error, reliability
from inspection.core.stats import one_sided_upper
from inspection.core.thresholds import candidate_thresholds, labels_for_zero_escapes, suggest, sweep, what_if

SCR, OK = Label.SCRATCH, Label.OK

# Eight phones, small enough to replay by hand.
TINY = [
    LabelledScore(0.01, OK),
    LabelledScore(0.02, SCR),  # escapes once pass_below >= 0.02
    LabelledScore(0.10, OK),
    LabelledScore(0.50, OK),
    LabelledScore(0.50, SCR),
    LabelledScore(0.90, OK),  # falsely rejected once reject_above <= 0.90
    LabelledScore(0.95, SCR),
    LabelledScore(0.99, SCR),
]


def _history(
    scores: np.ndarray, scratched: np.ndarray, weights: np.ndarray | None = None
) -> list[LabelledScore]:
    w = np.ones(scores.size) if weights is None else weights
    return [
        LabelledScore(float(s), SCR if y else OK, float(wi))
        for s, y, wi in zip(scores, scratched, w, strict=True)
    ]


def _separable(n: int, *, seed: int = 0, prevalence: float = 0.1) -> list[LabelledScore]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    s = np.where(y, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.4, n))
    return _history(s, y)


def _realistic(n: int, *, seed: int = 0, prevalence: float = 0.05) -> list[LabelledScore]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < prevalence
    logit = np.where(y, rng.normal(3.0, 1.5, n), rng.normal(-4.0, 1.5, n))
    return _history(1.0 / (1.0 + np.exp(-logit)), y)


# --- what-if --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pass_below", "reject_above", "passed", "rejected", "escapes", "false_rejects"),
    [
        (0.05, 0.90, 2, 3, 1, 1),  # 0.01, 0.02 pass; 0.90, 0.95, 0.99 reject
        (0.015, 0.92, 1, 2, 0, 0),
        (0.02, 0.95, 2, 2, 1, 0),  # both thresholds are inclusive: 0.02 passes, 0.95 rejects
        (0.10, 0.50, 3, 5, 1, 2),  # 0.50 ties all reject
        (0.0, 1.0, 0, 0, 0, 0),
    ],
)
def test_what_if_replays_a_tiny_history_by_hand(
    pass_below: float, reject_above: float, passed: int, rejected: int, escapes: int, false_rejects: int
) -> None:
    wi = what_if(TINY, pass_below=pass_below, reject_above=reject_above)
    assert wi.n == 8 and wi.n_eff == pytest.approx(8.0)
    assert wi.auto_pass_rate == pytest.approx(passed / 8)
    assert wi.auto_reject_rate == pytest.approx(rejected / 8)
    assert wi.automation_rate == pytest.approx((passed + rejected) / 8)
    assert wi.review_rate == pytest.approx(1 - (passed + rejected) / 8)
    assert (wi.escapes, wi.false_rejects) == (escapes, false_rejects)
    assert wi.escape_rate == pytest.approx(escapes / 8)  # per inspected phone
    assert wi.false_reject_rate == pytest.approx(false_rejects / 8)
    assert wi.escape_upper == pytest.approx(one_sided_upper(escapes, 8), rel=1e-9)
    assert wi.false_reject_upper == pytest.approx(one_sided_upper(false_rejects, 8), rel=1e-9)


def test_what_if_reports_escapes_per_passed_and_per_scratched_phone_and_review_load() -> None:
    wi = what_if(TINY, pass_below=0.05, reject_above=0.90, items_per_hour=600, seconds_per_review=4)
    assert wi.escape_rate_among_passed == pytest.approx(1 / 2)
    assert wi.escape_rate_among_scratched == pytest.approx(1 / 4)
    assert wi.reviews_per_hour == pytest.approx(600 * 3 / 8)
    assert wi.review_minutes_per_hour == pytest.approx(600 * 3 / 8 * 4 / 60)
    assert wi.review_load_per_hour(1200, 6) == pytest.approx(1200 * 3 / 8 * 6 / 60)


def test_weights_change_rates_as_the_items_they_stand_for() -> None:
    # The ok phone at 0.01 is an audit sample standing for 10 auto-passed phones.
    weighted = [LabelledScore(0.01, OK, 10.0, audit=True), *TINY[1:]]
    wi = what_if(weighted, pass_below=0.05, reject_above=0.90)
    assert wi.auto_pass_rate == pytest.approx(11 / 17)
    assert wi.escape_rate == pytest.approx(1 / 17)
    assert wi.escape_rate_among_passed == pytest.approx(1 / 11)
    assert wi.false_reject_rate == pytest.approx(1 / 17)
    assert wi.n == 8 and wi.n_eff == pytest.approx(17**2 / (100 + 7))
    # The bound uses rate * n_eff events in n_eff trials.
    assert wi.escape_upper == pytest.approx(one_sided_upper(wi.n_eff / 17, wi.n_eff), rel=1e-9)


def test_items_without_a_valid_score_are_always_reviewed() -> None:
    history = [*TINY, LabelledScore(float("nan"), SCR)]
    wi = what_if(history, pass_below=0.99, reject_above=1.0)
    assert wi.automation_rate == pytest.approx(8 / 9)
    assert wi.escapes == 4  # all four scored scratches pass; the one without a score is reviewed


@pytest.mark.parametrize(("pass_below", "reject_above"), [(0.5, 0.5), (0.6, 0.4), (-0.1, 0.5), (0.2, 1.5)])
def test_what_if_rejects_thresholds_a_policy_could_not_have(pass_below: float, reject_above: float) -> None:
    with pytest.raises(ValueError):
        what_if(TINY, pass_below=pass_below, reject_above=reject_above)


def test_what_if_rejects_bad_history() -> None:
    with pytest.raises(ValueError):
        what_if([LabelledScore(1.2, OK)], pass_below=0.1, reject_above=0.9)
    with pytest.raises(ValueError):
        what_if([LabelledScore(0.2, OK, 0.0)], pass_below=0.1, reject_above=0.9)


# --- sweep ----------------------------------------------------------------------------------


def test_sweep_covers_every_pair_of_the_grid_and_matches_what_if() -> None:
    history = _realistic(300, seed=3)
    grid = [0.0, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0]
    results = sweep(history, grid=grid)
    assert [(w.pass_below, w.reject_above) for w in results] == list(combinations(grid, 2))
    for w in results[::5]:
        single = what_if(history, pass_below=w.pass_below, reject_above=w.reject_above)
        assert astuple(w) == pytest.approx(astuple(single), nan_ok=True)


def test_sweep_with_fixed_reject_above_is_a_curve_over_pass_below() -> None:
    history = _realistic(2000, seed=4)
    curve = sweep(history, reject_above=0.9)
    assert all(w.reject_above == 0.9 and w.pass_below < 0.9 for w in curve)
    assert [w.pass_below for w in curve] == sorted(w.pass_below for w in curve)
    automation = [w.automation_rate for w in curve]
    escapes = [w.escape_rate for w in curve]
    assert automation == sorted(automation) and escapes == sorted(escapes)


def test_candidate_thresholds_are_the_scores_plus_0_and_1_or_quantiles_when_many() -> None:
    assert candidate_thresholds(TINY) == [0.0, 0.01, 0.02, 0.1, 0.5, 0.9, 0.95, 0.99, 1.0]
    many = candidate_thresholds(_realistic(5000), max_candidates=50)
    assert len(many) <= 50 and many[0] == 0.0 and many[-1] == 1.0


# --- suggest --------------------------------------------------------------------------------


def test_suggest_on_separable_data_automates_almost_everything() -> None:
    s = suggest(_separable(3000), max_escape=0.002)
    assert s.ok and s.what_if is not None and s.labels_needed == 0
    assert s.what_if.automation_rate >= 0.99
    assert s.what_if.escapes == 0 and s.what_if.false_rejects == 0
    assert s.what_if.escape_upper <= 0.002
    assert s.pass_below is not None and s.reject_above is not None
    assert s.pass_below < s.reject_above


def test_suggest_keeps_the_escape_bound_on_realistic_scores() -> None:
    s = suggest(_realistic(20_000), max_escape=0.001, max_false_reject=0.005)
    assert s.ok and s.what_if is not None
    assert s.what_if.escape_upper <= 0.001 and s.what_if.false_reject_upper <= 0.005
    assert 0.5 < s.what_if.automation_rate < 1.0
    assert "would have automated" in s.reason and "95 % upper bound" in s.reason


def test_suggest_picks_the_most_automation_among_pairs_that_meet_the_bounds() -> None:
    history = _realistic(3000, seed=5)
    s = suggest(history, max_escape=0.003, max_false_reject=0.01, max_candidates=60)
    assert s.ok and s.what_if is not None
    grid = candidate_thresholds(history, max_candidates=60)
    feasible = [
        w for w in sweep(history, grid=grid) if w.escape_upper <= 0.003 and w.false_reject_upper <= 0.01
    ]
    assert s.what_if.automation_rate == pytest.approx(max(w.automation_rate for w in feasible))


@pytest.mark.parametrize(("n", "max_escape"), [(50, 0.01), (200, 0.005), (1, 0.05)])
def test_suggest_refuses_when_too_few_labels(n: int, max_escape: float) -> None:
    s = suggest(_separable(n, seed=n), max_escape=max_escape)
    assert not s.ok and s.pass_below is None and s.reject_above is None and s.what_if is None
    assert "too few labels" in s.reason
    # Zero escapes bound: 1 - 0.05^(1/n) <= max_escape  ⇔  n >= ln 0.05 / ln(1 - max_escape).
    assert s.labels_needed == math.ceil(labels_for_zero_escapes(max_escape)) - n


def test_suggest_succeeds_once_the_labels_needed_are_added() -> None:
    first = suggest(_separable(50, seed=7), max_escape=0.01)
    enough = suggest(_separable(50 + first.labels_needed, seed=7), max_escape=0.01)
    assert not first.ok and enough.ok


def test_suggest_refuses_without_history() -> None:
    s = suggest([], max_escape=0.01)
    assert not s.ok and s.labels_needed == math.ceil(labels_for_zero_escapes(0.01))


def test_suggest_refuses_when_no_labelled_phone_has_a_score() -> None:
    s = suggest([LabelledScore(float("nan"), OK)] * 500, max_escape=0.01)
    assert not s.ok and "valid model score" in s.reason and s.labels_needed > 0


def test_suggest_refuses_and_asks_for_no_labels_when_the_model_is_hopeless() -> None:
    # Ties cannot be split: the lowest score already hides 100 scratched phones, the highest
    # already holds 100 ok ones, so every automatic decision breaks its bound however many labels.
    s_scores = np.concatenate([np.zeros(100), np.ones(100), np.full(3000, 0.5)])
    scratched = np.concatenate([np.ones(100, bool), np.zeros(100, bool), np.arange(3000) % 2 == 0])
    s = suggest(_history(s_scores, scratched), max_escape=0.005, max_false_reject=0.005)
    assert not s.ok and s.labels_needed == 0
    assert "more labels will not help" in s.reason


def test_suggest_with_audit_weights_counts_the_phones_they_stand_for() -> None:
    # Each auto-passed phone that was audited stands for 50: an escape among them weighs 50.
    base = _separable(3000, seed=8)
    audited_escape = LabelledScore(0.01, SCR, 50.0, audit=True)
    unweighted = suggest([*base, LabelledScore(0.01, SCR)], max_escape=0.002)
    weighted = suggest([*base, audited_escape], max_escape=0.002)
    assert unweighted.ok and weighted.ok
    assert unweighted.what_if is not None and weighted.what_if is not None
    assert weighted.what_if.auto_pass_rate < unweighted.what_if.auto_pass_rate


def test_cost_mode_picks_the_cheapest_pair_within_the_escape_bound() -> None:
    history = _realistic(3000, seed=9)
    costs = {"cost_escape": 200.0, "cost_false_reject": 20.0, "cost_review_minute": 0.5}
    s = suggest(history, max_escape=0.003, max_candidates=60, **costs)
    assert s.ok and s.mode == "cost" and s.what_if is not None and s.expected_cost is not None
    review = 0.5 * 4.0 / 60.0

    def cost(w):  # type: ignore[no-untyped-def]
        return 200.0 * w.escape_rate + 20.0 * w.false_reject_rate + review * w.review_rate

    grid = candidate_thresholds(history, max_candidates=60)
    feasible = [w for w in sweep(history, grid=grid) if w.escape_upper <= 0.003]
    assert s.expected_cost == pytest.approx(cost(s.what_if))
    assert s.expected_cost == pytest.approx(min(cost(w) for w in feasible))


@pytest.mark.parametrize(("review_minute", "more_automation"), [(0.01, False), (50.0, True)])
def test_cost_mode_automates_more_when_reviews_are_expensive(
    review_minute: float, more_automation: bool
) -> None:
    history = _realistic(5000, seed=10)
    cheap = suggest(history, max_escape=0.002, cost_escape=100, cost_false_reject=10, cost_review_minute=0.01)
    s = suggest(
        history, max_escape=0.002, cost_escape=100, cost_false_reject=10, cost_review_minute=review_minute
    )
    assert cheap.what_if is not None and s.what_if is not None
    assert (s.what_if.automation_rate > cheap.what_if.automation_rate) is more_automation


def test_cost_mode_needs_all_three_costs() -> None:
    with pytest.raises(ValueError):
        suggest(TINY, max_escape=0.01, cost_escape=1.0)


# --- calibration ----------------------------------------------------------------------------


def test_reliability_bins_scores_with_equal_width() -> None:
    r = reliability([0.05, 0.15, 0.15, 1.0], [0, 1, 0, 1], bins=10)
    assert len(r.edges) == 11 and r.edges[0] == 0.0 and r.edges[-1] == 1.0
    assert r.counts == (1, 2, 0, 0, 0, 0, 0, 0, 0, 1)  # 1.0 falls in the last, closed bin
    assert r.mean_predicted[1] == pytest.approx(0.15) and r.observed[1] == pytest.approx(0.5)
    assert math.isnan(r.observed[2])


def test_ece_of_perfectly_calibrated_data_is_about_zero() -> None:
    rng = np.random.default_rng(11)
    p = rng.random(200_000)
    y = rng.random(p.size) < p
    assert expected_calibration_error(p, y) < 0.01


def test_ece_of_overconfident_data_is_large() -> None:
    rng = np.random.default_rng(12)
    p = rng.random(50_000)
    y = rng.random(p.size) < p
    overconfident = np.where(p > 0.5, 0.99, 0.01)
    assert expected_calibration_error(overconfident, y) > 0.1


def test_ece_matches_a_hand_computation() -> None:
    assert expected_calibration_error([0.1, 0.1, 0.9, 0.9], [0, 0, 1, 1], bins=10) == pytest.approx(0.1)


# --- coverage at risk -----------------------------------------------------------------------


def _coverage_brute_force(scores: np.ndarray, y: np.ndarray, risk: float) -> float:
    levels = np.unique(scores)
    best = 0.0
    options = [-1.0, *levels.tolist()]
    for lo in options:
        for hi in [*levels.tolist(), 2.0]:
            if lo >= hi:
                continue
            low, high = scores <= lo, scores >= hi
            decided = int(low.sum() + high.sum())
            errors = int((low & y).sum() + (high & ~y).sum())
            if decided and errors <= risk * decided + 1e-9:
                best = max(best, decided / scores.size)
    return best


@pytest.mark.parametrize("n", [50, 5000])
def test_coverage_at_risk_is_full_for_separable_scores(n: int) -> None:
    history = _separable(n, seed=n)
    scores = [h.score for h in history]
    labels = [h.label for h in history]
    assert coverage_at_risk(scores, labels, 0.0) == 1.0


@pytest.mark.parametrize(("risk", "coverage"), [(0.0, 4 / 6), (0.1, 4 / 6), (0.2, 1.0)])
def test_coverage_at_risk_matches_a_hand_computation(risk: float, coverage: float) -> None:
    # 0.3 is a scratch among oks: with it decided there is 1 error in 6 (16.7 %).
    scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    labels = [0, 0, 1, 0, 1, 1]
    assert coverage_at_risk(scores, labels, risk) == pytest.approx(coverage)


@pytest.mark.parametrize("seed", range(5))
def test_coverage_at_risk_agrees_with_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(40) < 0.4
    scores = np.round(np.clip(np.where(y, 0.65, 0.35) + rng.normal(0, 0.2, 40), 0, 1), 1)  # with ties
    for risk in (0.0, 0.05, 0.1, 0.2):
        assert coverage_at_risk(scores, y, risk) == pytest.approx(_coverage_brute_force(scores, y, risk))


def test_coverage_at_risk_on_a_quantile_grid_stays_close_to_exact() -> None:
    history = _realistic(3000, seed=13)
    s = np.array([h.score for h in history])
    y = np.array([h.label is SCR for h in history])
    exact = coverage_at_risk(s, y, 0.01, max_candidates=10_000)
    approx = coverage_at_risk(s, y, 0.01, max_candidates=64)
    assert approx <= exact + 1e-12 and exact - approx < 0.02


# --- ranking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scores", "labels", "want"),
    [
        ([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0),
        ([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0], 0.0),
        ([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5),
        ([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1], 0.875),  # the tied pair counts one half
    ],
)
def test_auroc_handles_perfect_inverted_and_tied_scores(scores: list, labels: list, want: float) -> None:
    assert auroc(scores, labels) == pytest.approx(want)


def test_auroc_needs_both_classes() -> None:
    assert math.isnan(auroc([0.1, 0.2], [0, 0]))


@pytest.mark.parametrize(
    ("scores", "labels", "want"),
    [
        ([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 0], 1.0),
        ([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0], 0.5 * 1.0 + 0.5 * 2 / 3),
        ([0.5, 0.5], [1, 0], 0.5),
        ([0.9, 0.1], [SCR, OK], 1.0),
    ],
)
def test_average_precision_matches_hand_computations(scores: list, labels: list, want: float) -> None:
    assert average_precision(scores, labels) == pytest.approx(want)


def test_average_precision_without_positives_is_nan() -> None:
    assert math.isnan(average_precision([0.3], [0]))
