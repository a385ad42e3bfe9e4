"""inspection.core.stats: intervals against published values, agreement, drift statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inspection.core.domain import AuditEstimate, Label
from inspection.core.stats import (
    beta_ppf,
    betainc,
    clopper_pearson_interval,
    confusion,
    effective_sample_size,
    estimate_rate,
    ks_statistic,
    norm_ppf,
    one_sided_upper,
    one_sided_upper_array,
    percentiles,
    psi,
    upper_bound_holds,
    weighted_estimate,
    weighted_rate,
    wilson_interval,
)

SCR, OK = Label.SCRATCH, Label.OK


def _binom_tail_at_least(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (independent of the beta code)."""
    total = 0.0
    for i in range(k, n + 1):
        log_term = (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p)
        )  # fmt: skip
        total += math.exp(log_term)
    return total


# --- normal quantile ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "z"),
    [
        (0.5, 0.0),
        (0.975, 1.959963984540054),
        (0.995, 2.5758293035489004),
        (0.05, -1.6448536269514729),
        (1e-10, -6.361340902404056),
    ],
)
def test_norm_ppf_matches_known_quantiles(p: float, z: float) -> None:
    assert norm_ppf(p) == pytest.approx(z, abs=1e-12)


# --- binomial intervals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "trials", "low", "high"),
    [
        (0, 10, 0.0, 0.27753),
        (1, 10, 0.01788, 0.40415),
        (5, 10, 0.23659, 0.76341),
        (50, 100, 0.40383, 0.59617),
        (10, 10, 0.72247, 1.0),
    ],
)
def test_wilson_interval_matches_known_values(events: int, trials: int, low: float, high: float) -> None:
    got = wilson_interval(events, trials)
    assert got == pytest.approx((low, high), abs=1e-5)


@pytest.mark.parametrize(
    ("events", "trials", "low", "high"),
    [
        (0, 10, 0.0, 0.30850),
        (1, 10, 0.00253, 0.44502),
        (5, 10, 0.18709, 0.81291),
        (50, 100, 0.39832, 0.60168),
        (10, 10, 0.69150, 1.0),
    ],
)
def test_clopper_pearson_interval_matches_published_values(
    events: int, trials: int, low: float, high: float
) -> None:
    got = clopper_pearson_interval(events, trials)
    assert got == pytest.approx((low, high), abs=1e-5)


@pytest.mark.parametrize(("events", "trials"), [(1, 10), (3, 40), (17, 200), (120, 1000), (999, 1000)])
def test_clopper_pearson_endpoints_invert_the_binomial_tail_to_1e_6(events: int, trials: int) -> None:
    # Definition of the exact interval: P(X >= k | low) = P(X <= k | high) = alpha / 2.
    low, high = clopper_pearson_interval(events, trials, confidence=0.95)
    assert _binom_tail_at_least(events, trials, low) == pytest.approx(0.025, abs=1e-6)
    assert 1.0 - _binom_tail_at_least(events + 1, trials, high) == pytest.approx(0.025, abs=1e-6)


@pytest.mark.parametrize("trials", [1, 10, 300, 2995, 100_000])
def test_one_sided_upper_with_zero_events_is_the_closed_form(trials: int) -> None:
    assert one_sided_upper(0, trials) == pytest.approx(1.0 - 0.05 ** (1.0 / trials), rel=1e-12)


@pytest.mark.parametrize(
    ("events", "trials", "upper"),
    [(0, 10, 0.25887), (1, 10, 0.39416), (5, 10, 0.77756), (3, 100_000, 7.7535e-05), (10, 10, 1.0)],
)
def test_one_sided_upper_matches_known_values(events: int, trials: int, upper: float) -> None:
    assert one_sided_upper(events, trials) == pytest.approx(upper, rel=1e-4)


@pytest.mark.parametrize(("events", "trials"), [(2, 50), (40, 900), (500, 100_000)])
def test_one_sided_upper_leaves_confidence_in_the_lower_tail(events: int, trials: int) -> None:
    upper = one_sided_upper(events, trials, confidence=0.95)
    assert 1.0 - _binom_tail_at_least(events + 1, trials, upper) == pytest.approx(0.05, abs=1e-6)


def test_vectorised_bounds_agree_with_the_scalar_ones() -> None:
    events = np.array([0.0, 1.0, 7.0, 30.5, 100.0])
    trials = np.array([50.0, 50.0, 1000.0, 4000.0, 100.0])
    got = one_sided_upper_array(events, trials)
    want = [one_sided_upper(float(k), float(n)) for k, n in zip(events, trials, strict=True)]
    assert got == pytest.approx(want, rel=1e-10)
    assert upper_bound_holds(events, trials, 0.02).tolist() == [False, False, True, True, False]


@pytest.mark.parametrize(
    ("a", "b", "x"), [(0.5, 0.5, 0.3), (2.7, 11.2, 0.2), (150.0, 3.5, 0.97), (1.0, 99_999.0, 2e-5)]
)
def test_betainc_satisfies_symmetry_and_its_quantile_inverts_it(a: float, b: float, x: float) -> None:
    ix = float(betainc(a, b, x)[()])
    assert ix + float(betainc(b, a, 1.0 - x)[()]) == pytest.approx(1.0, abs=1e-12)
    assert float(beta_ppf(ix, a, b)[()]) == pytest.approx(x, rel=1e-9)


@pytest.mark.parametrize(
    ("a", "b", "x", "want"), [(1.0, 1.0, 0.3, 0.3), (2.0, 1.0, 0.5, 0.25), (1.0, 3.0, 0.5, 0.875)]
)
def test_betainc_matches_closed_forms(a: float, b: float, x: float, want: float) -> None:
    assert float(betainc(a, b, x)[()]) == pytest.approx(want, abs=1e-14)


def test_intervals_without_trials_are_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert clopper_pearson_interval(0, 0) == (0.0, 1.0)
    assert one_sided_upper(0, 0) == 1.0


@pytest.mark.parametrize(("events", "trials"), [(-1, 10), (11, 10), (1, -1)])
def test_impossible_counts_are_rejected(events: int, trials: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(events, trials)
    with pytest.raises(ValueError):
        clopper_pearson_interval(events, trials)


def test_a_higher_confidence_gives_a_wider_interval() -> None:
    narrow = wilson_interval(3, 40, confidence=0.9)
    wide = wilson_interval(3, 40, confidence=0.99)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]


@pytest.mark.parametrize(
    ("method", "low", "high"), [("wilson", 0.01788, 0.40415), ("clopper_pearson", 0.00253, 0.44502)]
)
def test_estimate_rate_reports_rate_and_interval(method: str, low: float, high: float) -> None:
    est = estimate_rate(1, 10, method=method)  # type: ignore[arg-type]
    assert isinstance(est, AuditEstimate)
    assert (est.events, est.trials, est.rate) == (1, 10, 0.1)
    assert (est.low, est.high) == pytest.approx((low, high), abs=1e-5)


def test_estimate_rate_without_trials_is_nan_with_the_full_interval() -> None:
    est = estimate_rate(0, 0)
    assert math.isnan(est.rate) and (est.low, est.high) == (0.0, 1.0)


def test_estimate_rate_rejects_an_unknown_method() -> None:
    with pytest.raises(ValueError):
        estimate_rate(1, 10, method="normal")  # type: ignore[arg-type]


# --- weighted rates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("weights", "n_eff"), [([1.0] * 10, 10.0), ([1.0, 3.0], 1.6), ([50.0] * 4, 4.0), ([], 0.0)]
)
def test_effective_sample_size_is_kish(weights: list[float], n_eff: float) -> None:
    assert effective_sample_size(weights) == pytest.approx(n_eff)


def test_weighted_rate_divides_event_weight_by_trial_weight() -> None:
    assert weighted_rate([50.0], [50.0, 1.0, 1.0, 1.0]) == pytest.approx(50 / 53)
    assert math.isnan(weighted_rate([], []))


def test_weighted_estimate_with_unit_weights_equals_the_unweighted_one() -> None:
    est = weighted_estimate([1.0] * 5, [1.0] * 50, method="clopper_pearson")
    assert est.rate == pytest.approx(0.1)
    assert (est.low, est.high) == pytest.approx(clopper_pearson_interval(5, 50), rel=1e-9)
    assert est.upper == pytest.approx(one_sided_upper(5, 50), rel=1e-9)


def test_unequal_weights_widen_the_interval() -> None:
    equal = weighted_estimate([1.0] * 5, [1.0] * 50)
    # Same rate, but one item stands for half the population: far less information.
    skewed = weighted_estimate([1.0] * 5, [1.0] * 49 + [49.0])
    assert skewed.n_eff < equal.n_eff
    assert skewed.high - skewed.low > equal.high - equal.low


# --- agreement ------------------------------------------------------------------------------


def test_confusion_counts_agreement_and_kappa_match_a_hand_computation() -> None:
    model = [SCR, SCR, OK, OK, SCR, OK]
    human = [SCR, OK, OK, SCR, SCR, OK]
    c = confusion(model, human)
    assert (c.tp, c.fp, c.tn, c.fn, c.n) == (2, 1, 2, 1, 6)
    assert c.agreement == pytest.approx(4 / 6)
    # p_e = 0.5·0.5 + 0.5·0.5 = 0.5 → kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert c.kappa == pytest.approx(1 / 3)
    assert c.agreement_interval == pytest.approx(wilson_interval(4, 6))


@pytest.mark.parametrize(
    ("model", "human"),
    [([True, False, True], [1, 0, 0]), ([1, 0, 1], [SCR, OK, OK]), ([SCR, OK, SCR], [True, False, False])],
)
def test_confusion_accepts_labels_bools_and_ints(model: list, human: list) -> None:
    c = confusion(model, human)
    assert (c.tp, c.fp, c.tn, c.fn) == (1, 1, 1, 0)


def test_kappa_is_nan_when_both_sides_never_vary() -> None:
    c = confusion([OK, OK, OK], [OK, OK, OK])
    assert c.agreement == 1.0 and math.isnan(c.kappa)


def test_confusion_of_nothing_has_nan_agreement() -> None:
    c = confusion([], [])
    assert c.n == 0 and math.isnan(c.agreement) and c.agreement_interval == (0.0, 1.0)


def test_confusion_rejects_mismatched_lengths_and_bad_labels() -> None:
    with pytest.raises(ValueError):
        confusion([SCR], [SCR, OK])
    with pytest.raises(ValueError):
        confusion([2], [1])


# --- drift ----------------------------------------------------------------------------------


def test_psi_is_near_zero_for_the_same_distribution() -> None:
    rng = np.random.default_rng(0)
    assert psi(rng.normal(0, 1, 20_000), rng.normal(0, 1, 20_000)) < 0.01


def test_psi_is_large_for_a_shifted_distribution() -> None:
    rng = np.random.default_rng(1)
    assert psi(rng.normal(0, 1, 20_000), rng.normal(1, 1, 20_000)) > 0.25


def test_psi_matches_a_hand_computation() -> None:
    # Two bins split at the reference median 4.5: p = (0.5, 0.5), q = (0.75, 0.25).
    want = 0.25 * math.log(1.5) + (-0.25) * math.log(0.5)
    assert psi(list(range(10)), [0, 0, 0, 9], bins=2) == pytest.approx(want, rel=1e-3)


def test_psi_stays_finite_when_recent_leaves_bins_empty() -> None:
    assert math.isfinite(psi(np.linspace(0, 1, 1000), np.full(100, 0.99)))


@pytest.mark.parametrize(
    ("a", "b", "d"),
    [
        ([1, 2, 3, 4], [3, 4, 5, 6], 0.5),
        ([1, 2], [3, 4], 1.0),
        ([1, 2, 3], [1, 2, 3], 0.0),
        ([1, 1, 2, 5], [1, 3], 0.25),  # at x=1: 0.5 vs 0.5; x=2: 0.75 vs 0.5; x=3: 0.75 vs 1.0
    ],
)
def test_ks_statistic_matches_a_hand_computation(a: list[float], b: list[float], d: float) -> None:
    assert ks_statistic(a, b) == pytest.approx(d)


def test_percentiles_interpolate_linearly() -> None:
    got = percentiles(list(range(1, 101)))
    assert got == pytest.approx({50: 50.5, 90: 90.1, 99: 99.01})


def test_drift_statistics_of_empty_inputs_are_nan() -> None:
    assert math.isnan(psi([], [1.0]))
    assert math.isnan(ks_statistic([1.0], []))
    assert all(math.isnan(v) for v in percentiles([float("nan")], qs=(50, 99)).values())
