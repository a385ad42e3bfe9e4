"""The domain gate (core.gate) and its effect on routing (core.policy.route): pure, table-driven."""

from __future__ import annotations

import numpy as np
import pytest

from inspection.core.domain import AutomationLevel, Policy, Prediction, RouteKind
from inspection.core.gate import (
    FALSE_STOP_BUDGET,
    METRICS,
    SHAPE_METRICS,
    GateFailure,
    GateRanges,
    MetricRange,
    check,
    ranges_from_samples,
    reference_quantiles,
)
from inspection.core.policy import route

RANGES = GateRanges(
    {
        "brightness": MetricRange(20.0, 60.0, 36.0),
        "contrast": MetricRange(16.0, 45.0, 28.0),
        "sharpness": MetricRange(12.0, 75.0, 28.0),
        "region_px": MetricRange(330.0, 530.0, 420.0),
        "localisation": MetricRange(0.8, None, 0.97),
        "aspect": MetricRange(1.75, 2.6, 2.13),
        "completeness": MetricRange(0.85, None, 1.0),
        "blockiness": MetricRange(None, 1.7, 1.17),
        "edge_blur": MetricRange(None, 9.0, 2.7),
    },
    "test",
)
GOOD = {"brightness": 36.0, "contrast": 28.0, "sharpness": 28.0, "region_px": 420.0, "localisation": 0.97,
        "aspect": 2.13, "completeness": 1.0, "blockiness": 1.1, "edge_blur": 2.7}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"brightness": 2.2}, "too dark: exposure 6 % of reference"),
        ({"brightness": 12.0}, "too dark: exposure 33 % of reference"),
        ({"brightness": 90.0}, "too bright: exposure 250 % of reference"),
        ({"contrast": 5.6}, "low contrast: contrast 20 % of reference"),
        ({"sharpness": 3.36}, "blurred: sharpness 12 % of reference"),
        ({"sharpness": 300.0}, "noisy: sharpness 1071 % of reference"),
        ({"edge_blur": 12.2}, "blurred: edge width 12 px"),
        ({"edge_blur": float("inf")}, "edge_blur not measurable"),
        ({"region_px": 120.0}, "region too small: 120 px"),
        ({"localisation": 0.4}, "phone not clearly found: localisation confidence 0.40"),
        ({"aspect": 1.41}, "region not phone-shaped: aspect 1.41"),
        ({"completeness": 0.3}, "incomplete image: decoded rows 30 %"),
        ({"blockiness": 7.5}, "heavily compressed: JPEG blockiness 7.50"),
        ({"sharpness": float("nan")}, "sharpness not measurable"),
    ],
)
def test_each_metric_outside_its_range_gives_a_specific_reason(change: dict[str, float], reason: str) -> None:
    failures = check(GOOD | change, RANGES)
    assert [f.reason for f in failures] == [reason]
    assert failures[0].metric == next(iter(change))


@pytest.mark.parametrize("region_px", [900.0, 1058.0, 4000.0])
def test_a_region_larger_than_any_reference_one_is_no_reason_to_stop(region_px: float) -> None:
    """The canvas shows the region at one scale: more pixels are a finer camera, not another domain."""
    ranges = GateRanges({**RANGES.ranges, "region_px": MetricRange(200.0, 800.0, 410.0)}, "test")
    assert check(GOOD | {"region_px": region_px}, ranges) == ()


def test_inside_every_range_passes_and_unmeasured_metrics_are_not_checked() -> None:
    assert check(GOOD, RANGES) == ()
    assert check({"brightness": 36.0}, RANGES) == ()
    assert check({}, GateRanges()) == ()


def test_several_failures_are_all_reported_in_a_fixed_order() -> None:
    reasons = [f.reason for f in check(GOOD | {"sharpness": 1.0, "region_px": 100.0, "brightness": 5.0}, RANGES)]
    assert reasons == ["region too small: 100 px", "too dark: exposure 14 % of reference",
                       "blurred: sharpness 4 % of reference"]


@pytest.mark.parametrize(
    ("metrics", "reasons"),
    [
        # without a reference (a model with no domain block) only the absolute floors apply
        ({"region_px": 63.0}, ["region too small: 63 px"]),
        ({"region_px": 64.0}, []),
        ({"brightness": 5.0}, ["too dark: exposure 4 % of reference"]),
        ({"brightness": 250.0}, ["too bright: exposure 196 % of reference"]),
        ({"completeness": 0.5}, ["incomplete image: decoded rows 50 %"]),
        ({"sharpness": 0.01, "contrast": 0.1, "aspect": 9.0, "localisation": 0.0, "blockiness": 30.0}, []),
    ],
)
def test_floors_apply_without_a_reference(metrics: dict[str, float], reasons: list[str]) -> None:
    assert [f.reason for f in check(metrics, GateRanges())] == reasons


def test_floors_hold_even_when_the_reference_range_is_wider() -> None:
    wide = GateRanges({"region_px": MetricRange(10.0, 5000.0, 400.0)})
    assert [f.reason for f in check({"region_px": 50.0}, wide)] == ["region too small: 50 px"]


def test_ranges_from_samples_are_widened_percentiles_with_the_median_as_reference() -> None:
    rng = np.random.default_rng(0)
    values = rng.uniform(100.0, 200.0, 1000)
    ranges = ranges_from_samples({"sharpness": values, "localisation": values / 200, "blockiness": values / 100},
                                 source="s", margin=0.1)
    q = FALSE_STOP_BUDGET / 3  # three bounded quality sides: sharpness both, blockiness high
    sharp = ranges.ranges["sharpness"]
    assert sharp.lo == pytest.approx(np.quantile(values, q) * 0.9)
    assert sharp.hi == pytest.approx(np.quantile(values, 1 - q) * 1.1)
    assert sharp.reference == pytest.approx(np.median(values))
    assert ranges.ranges["localisation"].hi is None  # no upper bound for a one-sided metric
    # a shape metric: its 0.25 % quantile, barely widened (its tail is mislocalised frames, not the domain)
    assert ranges.ranges["localisation"].lo == pytest.approx(np.quantile(values / 200, 0.0025) * 0.95)
    assert ranges.ranges["blockiness"].lo is None


def test_fresh_images_of_the_reference_domain_are_stopped_within_the_false_stop_budget() -> None:
    """Eight independent metrics (the worst case for a union bound), ranges from 3,000 reference images,
    checked on 20,000 fresh ones from the same distributions, with no margin."""  # completeness falls to 1 - x
    rng = np.random.default_rng(1)
    names = [s.name for s in METRICS if s.name not in SHAPE_METRICS]  # the shape metrics: not this budget

    centre = {"completeness": 0.01, "region_px": 400.0, "brightness": 100.0}  # clear of the absolute FLOORS

    def draw(n: int) -> dict[str, np.ndarray]:
        out = {name: rng.lognormal(np.log(centre.get(name, 1.0)), 0.2, n) for name in names}
        out["completeness"] = 1.0 - out["completeness"]  # a share of rows decoded: just under 1
        return out

    reference, fresh = draw(3000), draw(20_000)

    def stopped_share(quantiles: tuple[float, float] | None) -> float:
        ranges = ranges_from_samples(reference, source="s", quantiles=quantiles, margin=0.0)
        return sum(bool(check({k: float(v[i]) for k, v in fresh.items()}, ranges)) for i in range(20_000)) / 20_000

    # An extreme quantile from 3,000 images rests on the few beyond it: within twice the budget here.
    assert stopped_share(None) <= 2 * FALSE_STOP_BUDGET
    assert stopped_share((0.005, 0.995)) > 0.04  # the former 0.5 % per side: ~5 % with 11 sides
    assert reference_quantiles(names)[0] == pytest.approx(FALSE_STOP_BUDGET / 11)  # 11 sides


def test_ranges_round_trip_through_json_and_reject_unknown_metrics() -> None:
    assert GateRanges.from_json(RANGES.to_json()) == RANGES
    assert GateRanges.from_json(None) == GateRanges()
    assert GateRanges.from_json({}) == GateRanges()
    with pytest.raises(ValueError, match="unknown metric"):
        GateRanges.from_json({"ranges": {"colourfulness": {"lo": 1}}})


FAILURE = (GateFailure("brightness", 2.2, "too dark: exposure 6 % of reference"),)


@pytest.mark.parametrize("level", [AutomationLevel.PARTIAL, AutomationLevel.FULL])
@pytest.mark.parametrize("score", [0.0, 0.01, 0.5, 0.99, 1.0])
def test_a_gate_failure_sends_every_score_to_a_person_with_the_reason(level: AutomationLevel, score: float) -> None:
    policy = Policy("s1", level=level, audit_rate=1.0)
    decided = route(Prediction("m", score), policy, image_hash="h", gate=FAILURE)
    assert decided.kind is RouteKind.REVIEW and decided.label is None
    assert decided.reason == "domain gate: too dark: exposure 6 % of reference"
    assert not decided.show_model  # an out-of-domain call must not anchor the inspector
    assert route(Prediction("m", score), policy, image_hash="h").kind is not RouteKind.REVIEW or 0.05 < score < 0.95


@pytest.mark.parametrize(
    ("level", "reason_start"),
    [(AutomationLevel.HUMAN_ONLY, "human_only"), (AutomationLevel.SHADOW, "shadow"),
     (AutomationLevel.AI_ASSIST, "ai_assist")],
)
def test_levels_where_a_person_decides_anyway_keep_their_reason(level: AutomationLevel, reason_start: str) -> None:
    decided = route(Prediction("m", 0.01), Policy("s1", level=level), gate=FAILURE)
    assert decided.kind is RouteKind.REVIEW and decided.reason.startswith(reason_start)


def test_the_fail_safe_reason_wins_over_the_gate() -> None:
    decided = route(Prediction("m", None, error="model error: boom"), Policy("s1", level=AutomationLevel.FULL),
                    gate=FAILURE)
    assert decided.reason == "fail-safe: model error: boom"
