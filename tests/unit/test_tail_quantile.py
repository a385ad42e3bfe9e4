"""Extreme quantiles of a reference sample (core.stats.upper_quantile, lower_quantile): the domain gate's
limits sit at the 0.1 % quantile, which 450 validation images cannot show; a fitted tail can."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from inspection.core.gate import FALSE_STOP_BUDGET, METRICS, SHAPE_METRICS, ranges_from_samples, reference_quantiles
from inspection.core.stats import lower_quantile, upper_quantile

Q = 0.001  # about the gate's per-side share (its 1 % budget over eleven sides)
TAILS = {  # shapes an image metric's upper tail takes: light to heavy
    "exponential": stats.expon(),
    "gamma 2": stats.gamma(2.0),
    "chi-square/8 (an OOD score's shape)": stats.chi2(8, scale=1 / 8),
    "lognormal 0.5": stats.lognorm(0.5),
}


@pytest.mark.parametrize("n", [1000, 3000])
def test_a_quantile_the_sample_shows_is_the_sample_s_own(n: int) -> None:
    values = np.random.default_rng(n).lognormal(0.0, 0.5, n)
    assert upper_quantile(values, Q) == np.quantile(values, 1 - Q)
    assert lower_quantile(values, Q) == np.quantile(values, Q)


@pytest.mark.parametrize("name", list(TAILS))
def test_a_quantile_beyond_the_sample_is_read_off_a_fitted_tail_and_stops_fewer_fresh_values(name: str) -> None:
    """450 values, the 0.1 % upper quantile: the sample's own is its largest value, which fresh values from
    the same distribution exceed ~3.5x as often as 0.1 %; the generalised Pareto tail's limit less often."""
    dist = TAILS[name]
    fitted, own = [], []
    for seed in range(20):
        values = dist.rvs(450, random_state=seed)
        limit = upper_quantile(values, Q)
        assert limit >= np.quantile(values, 1 - Q)  # never inside what the sample saw
        fitted.append(dist.sf(limit))
        own.append(dist.sf(np.quantile(values, 1 - Q)))
    assert np.mean(fitted) < np.mean(own)
    assert np.mean(fitted) < 3.1 * Q and np.mean(own) > 2.9 * Q


def test_a_lower_tail_of_positive_values_is_extrapolated_on_a_log_scale_and_stays_positive() -> None:
    # sharpness of blurred-looking frames: most near 1, a long thin tail towards 0
    values = stats.lognorm(1.5).rvs(450, random_state=3)
    low = lower_quantile(values, Q)
    assert 0.0 < low <= np.quantile(values, Q)
    assert low == pytest.approx(math.exp(-upper_quantile(-np.log(values), Q)))


@pytest.mark.parametrize(
    ("values", "want"),
    [
        (np.arange(100, dtype=float), np.quantile(np.arange(100, dtype=float), 1 - Q)),  # 10 above its 90 %: no fit
        (np.full(500, 2.5), 2.5),  # nothing to fit in a constant
        (np.array([np.nan, np.inf]), math.nan),
    ],
    ids=["too few in the tail", "constant", "no finite value"],
)
def test_without_a_tail_to_fit_the_sample_s_own_quantile_stands(values: np.ndarray, want: float) -> None:
    got = upper_quantile(values, Q)
    assert got == pytest.approx(want, nan_ok=True)


def test_the_gate_s_ood_limit_from_450_validation_scores_is_the_fitted_tail_widened() -> None:
    scores = stats.chi2(8, scale=1 / 8).rvs(450, random_state=0)
    quantiles = reference_quantiles([s.name for s in METRICS if s.name not in SHAPE_METRICS])
    assert quantiles[0] == pytest.approx(FALSE_STOP_BUDGET / 11)  # eleven bounded sides share the 1 % budget
    limit = ranges_from_samples({"ood": scores}, source="s", quantiles=quantiles, margin=0.15).ranges["ood"].hi
    assert limit == pytest.approx(upper_quantile(scores, quantiles[0]) * 1.15)
    assert limit > scores.max() * 1.15
