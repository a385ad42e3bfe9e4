"""inspection.core.drift: window tests against scipy, references, sequential looks, concept estimates."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pytest
from scipy import stats as sps

from inspection.core.alarms import concept_check
from inspection.core.concept import Concept, Estimate, audited_escape, calibration_error, cbpe_escape, disagreement_rate
from inspection.core.drift import (
    FEATURE_METRICS,
    MAX_REFERENCE_SAMPLES,
    MonitorSample,
    Reference,
    alpha_per_look,
    check_window,
    features_test,
    ks_test,
    look_ends,
    metric_kind,
    share_test,
)
from inspection.core.metrics import expected_calibration_error
from inspection.core.stats import weighted_estimate, wilson_interval

T0 = datetime(2025, 1, 1, tzinfo=UTC)
# Typical frame metrics of the generated line (mean, sd): what "normal" looks like in these tests.
NORMAL = {"brightness": (100.0, 10.0), "contrast": (40.0, 5.0), "sharpness": (50.0, 8.0), "colour_cast": (4.0, 1.0)}


def stream(
    n: int, seed: int, *, scale: Mapping[str, float] | None = None, unjudgeable: float = 0.01, scratch: float = 0.1
) -> list[MonitorSample]:
    """n items of a simulated line; `scale` multiplies a metric (e.g. brightness 0.75 = exposure -25 %)."""
    rng = np.random.default_rng(seed)
    scale = scale or {}
    cols = {m: rng.normal(mu, sd, n) * scale.get(m, 1.0) for m, (mu, sd) in NORMAL.items()}
    for f in FEATURE_METRICS:
        cols[f] = rng.normal(0.0, 1.0, n) + scale.get(f, 0.0)
    is_scratch = rng.random(n) < scratch
    cols["score"] = np.where(is_scratch, rng.beta(8, 2, n), rng.beta(1, 30, n))
    cols["width"] = np.full(n, 1920.0)
    cols["n_regions"] = rng.poisson(np.where(is_scratch, 2.0, 0.2)).astype(np.float64)
    flags = rng.random(n) < unjudgeable
    return [
        MonitorSample(T0, {k: float(v[i]) for k, v in cols.items()}, {"unjudgeable": bool(flags[i])}) for i in range(n)
    ]


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference.from_samples(stream(500, seed=1), source="test line")


# ---------------------------------------------------------------------------------------------
# window tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "scale", "fires"),
    [
        ("brightness", 0.75, True),  # exposure -25 %
        ("brightness", 1.0, False),
        ("sharpness", 0.5, True),  # defocus
        ("sharpness", 1.0, False),
        ("colour_cast", 2.5, True),  # a new table colour
        ("contrast", 1.0, False),
    ],
)
def test_a_shifted_window_fires_and_an_unshifted_one_does_not(
    reference: Reference, metric: str, scale: float, fires: bool
) -> None:
    window = stream(200, seed=7, scale={metric: scale})
    result = check_window(metric, reference, window, alpha=alpha_per_look(0.05, 50))
    assert result.breached is fires
    assert result.kind == "distribution" and result.n_window == 200 and result.n_reference == 500


def test_ks_test_reports_what_scipy_ks_2samp_and_wasserstein_report(reference: Reference) -> None:
    # the window is compared at the reference's resolution (4 decimals)
    window = np.round([s.values["brightness"] for s in stream(200, seed=3, scale={"brightness": 0.9})], 4)
    result = ks_test("brightness", reference, list(window), 1e-4)
    ref = np.asarray(reference.values["brightness"])
    direct = sps.ks_2samp(ref, window)
    assert result.statistic == pytest.approx(direct.statistic)
    assert result.p_value == pytest.approx(direct.pvalue)
    assert result.effect == pytest.approx(sps.wasserstein_distance(ref, window) / np.std(ref))
    assert result.detail["wasserstein"] == pytest.approx(sps.wasserstein_distance(ref, window))


def test_scores_that_differ_from_the_reference_only_in_the_5th_decimal_do_not_fire() -> None:
    rng = np.random.default_rng(0)
    scores = rng.uniform(0.0005, 0.0012, 1000)  # a confident model's ok items: tightly clustered near 0
    ref = Reference.from_values({"score": scores[:500]})
    assert not ks_test("score", ref, list(scores[500:700]), 1e-3).breached


@pytest.mark.parametrize(
    ("unjudgeable", "fires"),
    [(0.01, False), (0.10, True)],  # 1 % as in the reference; ten times as many "no phone found"
)
def test_a_rise_of_the_unjudgeable_share_fires(reference: Reference, unjudgeable: float, fires: bool) -> None:
    window = stream(300, seed=11, unjudgeable=unjudgeable)
    result = share_test("unjudgeable_share", reference, window, alpha_per_look(0.05, 50))
    assert result.breached is fires
    k = result.detail["events"]
    k_ref = round(reference.shares["unjudgeable"] * reference.n)
    direct = sps.fisher_exact([[k, 300 - k], [k_ref, reference.n - k_ref]], alternative="greater")
    assert result.p_value == pytest.approx(direct.pvalue)


def test_a_share_without_a_reference_count_uses_scipy_binomtest() -> None:
    ref = Reference({}, {"unjudgeable": 0.02})
    window = [MonitorSample(T0, {}, {"unjudgeable": i < 9}) for i in range(100)]
    result = share_test("unjudgeable_share", ref, window, 1e-3)
    assert result.p_value == pytest.approx(sps.binomtest(9, 100, 0.02, alternative="greater").pvalue)
    assert result.detail["test"] == "binomtest" and result.breached


@pytest.mark.parametrize(("scratch", "fires"), [(0.1, False), (0.2, True)])
def test_a_doubled_scratch_rate_moves_the_scratch_share(reference: Reference, scratch: float, fires: bool) -> None:
    window = stream(300, seed=5, scratch=scratch)
    assert share_test("scratch_share", reference, window, alpha_per_look(0.05, 50)).breached is fires


def test_feature_drift_is_per_component_ks_with_bonferroni_and_names_the_component(reference: Reference) -> None:
    window = stream(200, seed=9, scale={"f3": 0.6})  # component 3 moves by 0.6 reference SDs
    result = features_test(reference, window, alpha_per_look(0.05, 50))
    assert result.breached and result.detail["component"] == "f3"
    ref = np.asarray(reference.values["f3"])
    p3 = sps.ks_2samp(ref, [s.values["f3"] for s in window]).pvalue
    assert result.p_value == pytest.approx(min(1.0, len(FEATURE_METRICS) * p3))
    assert not features_test(reference, stream(200, seed=9), alpha_per_look(0.05, 50)).breached


@pytest.mark.parametrize(
    ("ref", "window", "why"),
    [
        (Reference({}, {}), stream(50, seed=2), "no reference samples"),
        (Reference({"brightness": (1.0, 2.0)}, {}), [], "0 items < 1"),
    ],
)
def test_a_look_without_data_is_skipped_not_breached(ref: Reference, window: list[MonitorSample], why: str) -> None:
    result = check_window("brightness", ref, window, 1e-3)
    assert not result.breached and math.isnan(result.p_value) and result.detail["skipped"] == why


def test_unknown_metrics_are_refused_and_concept_metrics_go_elsewhere(reference: Reference) -> None:
    with pytest.raises(ValueError, match="unknown metric 'glare'"):
        metric_kind("glare")
    with pytest.raises(ValueError, match="concept_check"):
        check_window("ece", reference, [], 1e-3)


# ---------------------------------------------------------------------------------------------
# sequential looks and the false-alarm arithmetic
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("budget", "step", "alpha"), [(0.1, 50, 5e-5), (1.0, 100, 1e-3), (0.05, 50, 2.5e-5)])
def test_the_per_look_alpha_spends_the_budget_over_the_looks_per_100k(budget: float, step: int, alpha: float) -> None:
    assert alpha_per_look(budget, step) == pytest.approx(alpha)
    # looks per 100,000 items x alpha per look = the budget (union bound)
    assert len(look_ends(100_000, step)) * alpha_per_look(budget, step) == pytest.approx(budget)


def test_looks_happen_every_step_items() -> None:
    assert list(look_ends(230, 50)) == [50, 100, 150, 200]


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------


def test_a_reference_round_trips_through_json(reference: Reference) -> None:
    again = Reference.from_json(reference.to_json())
    assert again == reference
    assert set(reference.to_json()) == {"values", "shares", "source", "n"}


def test_a_reference_keeps_at_most_500_samples_per_metric_chosen_deterministically() -> None:
    samples = stream(1200, seed=4)
    a, b = Reference.from_samples(samples), Reference.from_samples(samples)
    assert all(len(v) == MAX_REFERENCE_SAMPLES for v in a.values.values())
    assert a == b and a.n == 1200
    assert all(round(x, 4) == x for x in a.values["brightness"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"values": [], "shares": {}}, "must be objects"),
        ({"values": {"brightness": "dark"}, "shares": {}}, "list of numbers"),
        ({"values": {}, "shares": {"unjudgeable": 1.5}}, r"within \[0, 1\]"),
        ({"values": {}, "shares": {}, "n": -3}, "non-negative integer"),
    ],
)
def test_a_bad_reference_is_refused_with_a_message(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reference.from_json(data)  # type: ignore[arg-type]


def test_the_reference_band_is_its_5_to_95_percent_range(reference: Reference) -> None:
    band = reference.band("brightness")
    assert band is not None
    assert band == pytest.approx(tuple(np.percentile(reference.values["brightness"], [5, 95])))
    assert reference.band("latency_ms") is None


# ---------------------------------------------------------------------------------------------
# concept
# ---------------------------------------------------------------------------------------------


def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of auto-passed items that are calibrated by construction: each is a scratch with p = score."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.6, 40.0, n)
    return p, rng.random(n) < p


@pytest.mark.parametrize("seed", range(5))
def test_the_label_free_escape_estimate_is_near_the_truth_on_calibrated_scores(seed: int) -> None:
    p, truth = calibrated(4000, seed)
    est = cbpe_escape(p)
    assert est.low <= truth.mean() <= est.high
    assert est.rate == pytest.approx(p.mean())
    assert abs(est.rate - truth.mean()) < 0.01


def test_the_label_free_interval_covers_the_realised_escape_rate_about_95_percent_of_the_time() -> None:
    hits = 0
    for seed in range(300):
        p, truth = calibrated(300, 1000 + seed)  # few escapes: the Poisson branch
        est = cbpe_escape(p)
        hits += est.low <= truth.mean() <= est.high
    assert 0.9 <= hits / 300 <= 1.0


def test_cbpe_uses_the_normal_approximation_when_there_are_many_expected_escapes() -> None:
    p = np.full(2000, 0.05)  # variance 95 >= 9
    est = cbpe_escape(p)
    sd = math.sqrt(2000 * 0.05 * 0.95) / 2000
    assert (est.low, est.high) == pytest.approx((0.05 - 1.959964 * sd, 0.05 + 1.959964 * sd), rel=1e-5)
    assert est.upper == pytest.approx(0.05 + 1.644854 * sd, rel=1e-5)


def test_the_audited_escape_is_core_stats_weighted_estimate() -> None:
    labels = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 20)
    weights = np.where(np.arange(200) % 3 == 0, 10.0, 20.0)
    est = audited_escape(labels, weights)
    ref = weighted_estimate(weights * labels, weights)
    assert (est.rate, est.low, est.high, est.upper, est.n) == (ref.rate, ref.low, ref.high, ref.upper, 200)


def test_disagreement_is_a_wilson_interval_and_ece_is_core_metrics() -> None:
    model = [1, 1, 0, 0, 0, 1, 0, 0]
    human = [1, 0, 0, 0, 1, 1, 0, 0]
    est = disagreement_rate(model, human)
    assert est.rate == 2 / 8 and (est.low, est.high) == wilson_interval(2, 8)
    scores = [0.9, 0.6, 0.1, 0.2, 0.4, 0.8, 0.05, 0.3]
    assert calibration_error(scores, human) == expected_calibration_error(scores, human)


@pytest.mark.parametrize(
    ("metric", "concept", "threshold", "min_items", "breached", "skipped"),
    [
        ("disagreement", Concept(disagreement=Estimate(0.15, 0.1, 0.2, n=300)), 0.10, 100, True, False),
        ("disagreement", Concept(disagreement=Estimate(0.05, 0.03, 0.08, n=300)), 0.10, 100, False, False),
        ("disagreement", Concept(disagreement=Estimate(0.5, 0.1, 0.9, n=20)), 0.10, 100, False, True),
        ("ece", Concept(ece=0.2, ece_n=150), 0.10, 100, True, False),
        ("escape_upper", Concept(escape_audited=Estimate(0.01, 0.0, 0.04, n=300, upper=0.035)), 0.03, 200, True, False),
        ("escape_upper", Concept(escape_audited=Estimate(0.0, 0.0, 0.012, n=300, upper=0.01)), 0.03, 200, False, False),
        ("escape_label_free_upper", Concept(), 0.03, 200, False, True),
    ],
)
def test_concept_rules_compare_with_absolute_thresholds(
    metric: str, concept: Concept, threshold: float, min_items: int, breached: bool, skipped: bool
) -> None:
    result = concept_check(metric, concept, threshold, min_items=min_items)
    assert result.breached is breached
    assert ("skipped" in result.detail) is skipped


@pytest.mark.parametrize("n", [10, 400, 5000])
def test_the_label_free_rate_lies_within_its_own_interval_even_when_escapes_are_rare(n: int) -> None:
    est = cbpe_escape(np.full(n, 2e-5))
    assert est.low <= est.rate <= est.high and est.rate <= est.upper
