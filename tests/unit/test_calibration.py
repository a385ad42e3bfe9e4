"""Temperature recalibration (core.calibration) and the station Localisation value (core.domain)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inspection.core.calibration import (
    MIN_LABELS,
    CalibrationRefused,
    IsotonicMap,
    apply_temperature,
    fit_isotonic,
    fit_temperature,
)
from inspection.core.domain import Localisation, LocalisationMode
from inspection.core.metrics import auroc


def shifted(n: int, true_t: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores with a known miscalibration: the true scratch rate is sigmoid(logit(p) / true_t)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    q = 1.0 / (1.0 + np.exp(-z))
    return apply_temperature(q, 1.0 / true_t), rng.random(n) < q


@pytest.mark.parametrize("true_t", [0.5, 2.5])  # under- and over-confident scores
def test_the_fit_recovers_the_temperature_and_lowers_ece(true_t: float) -> None:
    p, y = shifted(3000, true_t, seed=1)
    fit = fit_temperature(p, y)
    assert fit.temperature == pytest.approx(true_t, rel=0.15)
    assert fit.ece_after < fit.ece_before / 2 and fit.ece_after < 0.03
    assert fit.nll_after < fit.nll_before
    assert (fit.n_labels, fit.n_scratch) == (3000, int(y.sum()))
    # a monotone map: the ranking (AUROC) is untouched
    assert auroc(apply_temperature(p, fit.temperature), y) == pytest.approx(auroc(p, y))


def test_calibrated_scores_are_left_alone() -> None:
    p, y = shifted(2000, 1.0, seed=2)
    fit = fit_temperature(p, y)
    assert fit.temperature == pytest.approx(1.0, rel=0.15)


def test_a_small_shifted_sample_still_improves() -> None:
    p, y = shifted(120, 3.0, seed=3)
    fit = fit_temperature(p, y)
    assert fit.ece_after < fit.ece_before and 1.5 < fit.temperature < 6.0


@pytest.mark.parametrize(
    ("n", "n_scratch", "words"),
    [
        (MIN_LABELS - 1, 20, "1 more labels (have 49, need 50)"),
        (200, 3, "7 more scratched phones (have 3, need 10)"),
        (200, 195, "5 more good phones (have 5, need 10)"),
        (0, 0, "need 50 more labels"),
    ],
)
def test_too_few_labels_are_refused_with_what_is_missing(n: int, n_scratch: int, words: str) -> None:
    y = np.arange(n) < n_scratch
    p = np.where(y, 0.9, 0.1)
    with pytest.raises(CalibrationRefused, match="too few blind labels") as err:
        fit_temperature(p, y)
    assert words in str(err.value)


def test_bad_inputs_are_errors() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        fit_temperature([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="within"):
        fit_temperature([1.5] * 60, [True] * 30 + [False] * 30)
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature([0.5], 0.0)


def test_apply_temperature_keeps_the_ends_nan_and_the_middle() -> None:
    out = apply_temperature([0.0, 0.5, 1.0, math.nan], 2.0)
    assert out[1] == pytest.approx(0.5) and 0 < out[0] < 1e-2 and 1 - 1e-2 < out[2] < 1 and math.isnan(out[3])
    # t > 1 pulls towards 0.5, t < 1 pushes away
    assert apply_temperature([0.9], 2.0)[0] < 0.9 < apply_temperature([0.9], 0.5)[0]


def test_localisation_values_are_validated() -> None:
    assert Localisation().mode is LocalisationMode.AUTO
    roi = Localisation(LocalisationMode.ROI, (0, 0, 1, 1))
    assert roi.roi == (0.0, 0.0, 1.0, 1.0)
    assert Localisation("frame").mode is LocalisationMode.FRAME  # type: ignore[arg-type]
    for mode, rect, words in [
        ("roi", None, "needs a rectangle"),
        ("roi", (0.5, 0.0, 0.6, 0.5), "within the frame"),
        ("roi", (-0.1, 0.0, 0.5, 0.5), "within the frame"),
        ("roi", (0.1, 0.1, 0.5, 0.0), "positive"),
        ("roi", (0.1, 0.1, math.nan, 0.2), "finite"),
        ("roi", (0.1, 0.1, 0.2), "four numbers"),
        ("frame", (0.0, 0.0, 1.0, 1.0), "takes no roi"),
        ("diagonal", None, "unknown localisation mode"),
    ]:
        with pytest.raises(ValueError, match=words):
            Localisation(mode, rect)  # type: ignore[arg-type]


# --- the isotonic score map behind the label-free escape estimate ---------------------------------


def overconfident_line(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that say ~0.1 % where 1 % of the phones are scratched (the low end of a real line)."""
    rng = np.random.default_rng(seed)
    scratched = rng.random(n) < 0.1
    low = rng.random(n) < 0.9
    scores = np.where(low, rng.uniform(0.0, 0.002, n), rng.uniform(0.5, 1.0, n))
    truth = np.where(low, rng.random(n) < 0.01, scratched)
    return scores, truth


def test_the_isotonic_map_matches_sklearn() -> None:
    from sklearn.isotonic import IsotonicRegression

    scores, truth = overconfident_line(3000, seed=1)
    fitted = fit_isotonic(scores, truth)
    assert fitted is not None
    reference = IsotonicRegression(out_of_bounds="clip").fit(scores, truth.astype(float))
    grid = np.linspace(0.0, 1.0, 101)
    assert np.allclose(fitted(grid), reference.predict(grid), atol=1e-9)


def test_the_label_free_estimate_recovers_the_escape_rate_of_an_overconfident_model() -> None:
    from inspection.core.concept import cbpe_escape

    scores, truth = overconfident_line(5000, seed=2)
    fitted = fit_isotonic(scores, truth)
    live, live_truth = overconfident_line(5000, seed=3)
    passed = live < 0.1
    true_rate = float(live_truth[passed].mean())
    raw = cbpe_escape(live[passed])
    calibrated = cbpe_escape(live[passed], calibration=fitted)
    assert raw.rate < true_rate / 5  # the model's own scores miss most escapes
    assert calibrated.low <= true_rate <= calibrated.high or abs(calibrated.rate - true_rate) < 0.004


@pytest.mark.parametrize(("n", "positives"), [(50, 10), (500, 2)])
def test_no_isotonic_map_is_fitted_from_too_few_labels_or_scratches(n: int, positives: int) -> None:
    scores = np.linspace(0, 1, n)
    truth = np.zeros(n, dtype=bool)
    truth[-positives:] = True
    assert fit_isotonic(scores, truth) is None


def test_an_isotonic_map_survives_json_and_refuses_a_decreasing_one() -> None:
    scores, truth = overconfident_line(1000, seed=4)
    fitted = fit_isotonic(scores, truth)
    assert fitted is not None and IsotonicMap.from_json(fitted.to_json()).y == pytest.approx(fitted.y, abs=1e-6)
    with pytest.raises(ValueError, match="non-decreasing"):
        IsotonicMap.from_json({"x": [0.1, 0.2], "y": [0.5, 0.1]})
