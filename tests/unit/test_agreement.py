"""core.agreement: Cohen's kappa against scikit-learn, accuracy intervals against core.stats, pairs, shift drift."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from sklearn.metrics import cohen_kappa_score

from inspection.core import agreement
from inspection.core.stats import clopper_pearson_interval, wilson_interval


@pytest.mark.parametrize("seed", range(8))
def test_kappa_matches_scikit_learn(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(5, 200)
    p_agree = rng.random()
    a = [rng.choice(["scratch", "ok"]) for _ in range(n)]
    b = [x if rng.random() < p_agree else rng.choice(["scratch", "ok"]) for x in a]
    k = agreement.cohen_kappa(a, b)
    assert k.kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert k.n == n and k.agreed == sum(x == y for x, y in zip(a, b, strict=True))


def test_kappa_three_categories_and_edge_cases() -> None:
    a = ["scratch", "ok", "lint", "ok", "scratch", "lint", "ok"]
    b = ["scratch", "ok", "ok", "ok", "lint", "lint", "scratch"]
    assert agreement.cohen_kappa(a, b).kappa == pytest.approx(cohen_kappa_score(a, b))
    assert math.isnan(agreement.cohen_kappa(["ok"] * 4, ["ok"] * 4).kappa)  # chance agreement 1: undefined
    perfect = agreement.cohen_kappa(["ok", "scratch"], ["ok", "scratch"])
    assert perfect.kappa == 1.0 and perfect.observed == 1.0
    assert math.isnan(agreement.cohen_kappa([], []).kappa)
    with pytest.raises(ValueError, match="every item"):
        agreement.cohen_kappa(["ok"], [])


def test_accuracy_interval_is_the_core_stats_one() -> None:
    est = agreement.accuracy(7, 10)
    assert est.rate == 0.7 and (est.low, est.high) == pytest.approx(wilson_interval(7, 10))
    cp = agreement.accuracy(7, 10, method="clopper_pearson")
    assert (cp.low, cp.high) == pytest.approx(clopper_pearson_interval(7, 10))
    none = agreement.accuracy(0, 0)
    assert math.isnan(none.rate) and (none.low, none.high) == (0.0, 1.0)


def test_pairs_are_unordered_and_overall_is_first_vs_second() -> None:
    items = [
        agreement.DoubleLabel(1, "bob", "ok", "ann", "ok"),
        agreement.DoubleLabel(2, "ann", "scratch", "bob", "ok"),
        agreement.DoubleLabel(3, "ann", "scratch", "bob", "scratch"),
        agreement.DoubleLabel(4, "cid", "ok", "ann", "scratch"),
    ]
    pairs, overall = agreement.pair_agreement(items)
    assert [(p.a, p.b, p.kappa.n) for p in pairs] == [("ann", "bob", 3), ("ann", "cid", 1)]
    ann = ["ok", "scratch", "scratch"]
    bob = ["ok", "ok", "scratch"]
    assert pairs[0].kappa.kappa == pytest.approx(cohen_kappa_score(ann, bob))
    firsts, seconds = ["ok", "scratch", "scratch", "ok"], ["ok", "ok", "scratch", "scratch"]
    assert overall.kappa == pytest.approx(cohen_kappa_score(firsts, seconds)) and overall.n == 4


def test_shift_drift_compares_first_and_last_hour_of_each_day() -> None:
    start = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
    samples = []
    for day in range(2):
        t0 = start + timedelta(days=day)
        for minute in range(0, 8 * 60, 10):  # an 8-hour shift, one label every 10 minutes
            late = minute >= 7 * 60
            gold = None if minute % 30 else (not late)  # a gold item every 30 min: missed in the last hour
            samples.append(agreement.ShiftSample(t0 + timedelta(minutes=minute), 20.0 if late else 8.0, gold))
    drift = agreement.shift_drift(samples)
    assert drift.days == 2
    assert drift.first_hour.n == 12 and drift.last_hour.n == 12  # 6 labels per hour per day
    assert drift.first_hour.seconds_median == 8.0 and drift.last_hour.seconds_median == 20.0
    assert drift.first_hour.gold.rate == 1.0 and drift.last_hour.gold.rate == 0.0
    assert drift.first_hour.gold.trials == 4 and drift.last_hour.gold.trials == 4


def test_a_short_day_counts_in_the_first_hour_only() -> None:
    t0 = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
    samples = [agreement.ShiftSample(t0 + timedelta(minutes=m), None) for m in (0, 20, 50, 70)]
    drift = agreement.shift_drift(samples)
    assert drift.first_hour.n == 3 and drift.last_hour.n == 1
    assert drift.first_hour.seconds_median is None and math.isnan(drift.first_hour.gold.rate)
