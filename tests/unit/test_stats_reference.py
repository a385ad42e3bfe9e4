"""The scipy-backed statistics in inspection.core.stats against the hand-written code they replaced.

Until issue 8, `stats` carried its own special functions (Acklam's normal quantile, a Numerical
Recipes continued fraction for the incomplete beta, a safeguarded Newton solve for its inverse),
its own Wilson formula and its own two-sample KS statistic. They were replaced by scipy; the old
implementations are kept here verbatim (as `_old_*`) so that the replacement is checked on a table
of inputs, not just on the few published values in test_stats.py.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from inspection.core.stats import (
    beta_ppf,
    betainc,
    clopper_pearson_interval,
    ks_statistic,
    norm_ppf,
    one_sided_upper,
    one_sided_upper_array,
    upper_bound_holds,
    weighted_estimate,
    wilson_interval,
)

FloatArray = npt.NDArray[np.float64]

# ---------------------------------------------------------------------------------------------
# The old implementations (copied from inspection/core/stats.py before issue 8)
# ---------------------------------------------------------------------------------------------

_FPMIN = 1e-300
_CF_EPS = 1e-15
_CF_MAXIT = 100_000


def _old_norm_ppf(p: float) -> float:
    a = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
         1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)  # fmt: skip
    b = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
         6.680131188771972e01, -1.328068155288572e01)  # fmt: skip
    c = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
         -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)  # fmt: skip
    d = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
    p_low = 0.02425
    if p < p_low:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    elif p <= 1.0 - p_low:
        q = p - 0.5
        r = q * q
        x = (
            (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
            * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
        )
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
    e = 0.5 * math.erfc(-x / math.sqrt(2.0)) - p
    u = e * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _old_log_beta_front(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        return (_lgamma(a + b) - _lgamma(a) - _lgamma(b) + a * np.log(x) + b * np.log1p(-x)).astype(
            np.float64
        )


def _old_betacf(a: FloatArray, b: FloatArray, x: FloatArray) -> FloatArray:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = np.where(np.abs(d) < _FPMIN, _FPMIN, d)
    d = 1.0 / d
    h = d.copy()
    converged = np.zeros(x.shape, dtype=bool)
    for m in range(1, _CF_MAXIT + 1):
        m2 = 2.0 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _FPMIN, _FPMIN, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _FPMIN, _FPMIN, c)
        d = 1.0 / d
        h = h * d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = np.where(np.abs(d) < _FPMIN, _FPMIN, d)
        c = 1.0 + aa / c
        c = np.where(np.abs(c) < _FPMIN, _FPMIN, c)
        d = 1.0 / d
        delta = d * c
        h = np.where(converged, h, h * delta)
        converged |= np.abs(delta - 1.0) < _CF_EPS
        if bool(np.all(converged)):
            break
    return np.asarray(h, dtype=np.float64)


def _old_betainc(a: float, b: float, x: float) -> FloatArray:
    a_, b_, x_ = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x))
    out = np.where(x_ >= 1.0, 1.0, 0.0).astype(np.float64)
    inner = (x_ > 0.0) & (x_ < 1.0)
    if not np.any(inner):
        return out
    a_i, b_i, x_i = a_[inner], b_[inner], x_[inner]
    front = np.exp(_old_log_beta_front(a_i, b_i, x_i))
    direct = x_i < (a_i + 1.0) / (a_i + b_i + 2.0)
    res = np.empty_like(x_i)
    if np.any(direct):
        ad, bd, xd = a_i[direct], b_i[direct], x_i[direct]
        res[direct] = front[direct] * _old_betacf(ad, bd, xd) / ad
    flip = ~direct
    if np.any(flip):
        af, bf, xf = a_i[flip], b_i[flip], x_i[flip]
        res[flip] = 1.0 - front[flip] * _old_betacf(bf, af, 1.0 - xf) / bf
    out[inner] = np.clip(res, 0.0, 1.0)
    return out


def _old_beta_ppf(p: float, a: float, b: float) -> FloatArray:
    p_, a_, b_ = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(p, a, b))
    shape = p_.shape
    p_, a_, b_ = p_.ravel(), a_.ravel(), b_.ravel()
    x = np.clip(a_ / (a_ + b_), 1e-300, 1.0 - 1e-16)
    lo = np.zeros_like(x)
    hi = np.ones_like(x)
    active = (p_ > 0.0) & (p_ < 1.0)
    for _ in range(200):
        if not np.any(active):
            break
        idx = np.flatnonzero(active)
        xa, aa, ba, pa = x[idx], a_[idx], b_[idx], p_[idx]
        f = _old_betainc(aa, ba, xa) - pa  # type: ignore[arg-type]
        below = f < 0.0
        lo[idx] = np.where(below, xa, lo[idx])
        hi[idx] = np.where(below, hi[idx], xa)
        pdf = np.exp(_old_log_beta_front(aa, ba, xa)) / (xa * (1.0 - xa))
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xa - f / pdf
        lo_i, hi_i = lo[idx], hi[idx]
        ok = np.isfinite(newton) & (newton > lo_i) & (newton < hi_i)
        nxt = np.where(f == 0.0, xa, np.where(ok, newton, 0.5 * (lo_i + hi_i)))
        step = np.abs(nxt - xa)
        x[idx] = nxt
        done = (f == 0.0) | (step <= 1e-14 * np.maximum(nxt, 1e-280)) | (hi_i - lo_i <= 1e-300)
        active[idx[done]] = False
    x = np.where(p_ <= 0.0, 0.0, np.where(p_ >= 1.0, 1.0, x))
    return x.reshape(shape)


def _old_wilson(events: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    z = _old_norm_ppf(0.5 + confidence / 2.0)
    n = float(trials)
    phat = events / n
    denom = 1.0 + z * z / n
    centre = (phat + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(phat * (1.0 - phat) / n + z * z / (4.0 * n * n)) / denom
    low = 0.0 if events == 0 else max(0.0, centre - half)
    high = 1.0 if events >= trials else min(1.0, centre + half)
    return low, high


def _old_clopper_pearson(events: float, trials: float, confidence: float = 0.95) -> tuple[float, float]:
    if trials == 0:
        return 0.0, 1.0
    alpha = 1.0 - confidence
    low = 0.0 if events == 0 else float(_old_beta_ppf(alpha / 2.0, events, trials - events + 1.0))
    high = 1.0 if events == trials else float(_old_beta_ppf(1.0 - alpha / 2.0, events + 1.0, trials - events))
    return low, high


def _old_one_sided_upper(events: float, trials: float, confidence: float = 0.95) -> float:
    if trials == 0 or events >= trials:
        return 1.0
    if events == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / trials)
    return float(_old_beta_ppf(confidence, events + 1.0, trials - events))


def _old_ks(a: list[float], b: list[float]) -> float:
    xa, xb = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    grid = np.concatenate([xa, xb])
    fa = np.searchsorted(xa, grid, side="right") / xa.size
    fb = np.searchsorted(xb, grid, side="right") / xb.size
    return float(np.max(np.abs(fa - fb)))


# ---------------------------------------------------------------------------------------------
# Old vs new on tables of inputs
# ---------------------------------------------------------------------------------------------

PS = [1e-12, 1e-6, 0.001, 0.02425, 0.025, 0.05, 0.3, 0.5, 0.7, 0.95, 0.975, 0.995, 1 - 1e-9]
COUNTS = [(0, 1), (0, 10), (1, 10), (5, 10), (10, 10), (3, 40), (17, 200), (50, 100), (120, 1000),
          (999, 1000), (3, 100_000), (0, 2995), (500, 100_000), (40, 900)]  # fmt: skip
FRACTIONAL = [(0.5, 3.2), (2.7, 11.2), (30.5, 4000.0), (1.0, 1.5), (123.4, 98_765.4)]
CONFIDENCES = [0.8, 0.9, 0.95, 0.99, 0.999]
BETA_ARGS = [(0.5, 0.5, 0.3), (2.7, 11.2, 0.2), (150.0, 3.5, 0.97), (1.0, 99_999.0, 2e-5), (1.0, 1.0, 0.3),
             (40.0, 4000.0, 0.01), (1e4, 1e6, 0.0099), (3.0, 7.0, 0.999), (0.1, 20.0, 1e-8)]  # fmt: skip


@pytest.mark.parametrize("p", PS)
def test_norm_ppf_matches_the_old_approximation(p: float) -> None:
    # 1e-10 relative: the old code lost ~5e-11 near p = 1 (see the 50-digit check below).
    assert norm_ppf(p) == pytest.approx(_old_norm_ppf(p), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize(("a", "b", "x"), BETA_ARGS)
def test_betainc_matches_the_old_continued_fraction(a: float, b: float, x: float) -> None:
    # 1e-9 relative: with a, b ~ 1e6 the old lgamma prefactor lost ~3e-10 (see below).
    want = float(_old_betainc(a, b, x)[()])
    assert float(betainc(a, b, x)[()]) == pytest.approx(want, rel=1e-9, abs=1e-14)


def test_where_old_and_new_differ_a_50_digit_reference_sides_with_scipy() -> None:
    # References computed with mpmath at 50 digits (sqrt(2)·erfinv(2p-1); quadrature of the beta pdf).
    p = 1 - 1e-9
    z_true = 5.997807019601637426423078
    assert norm_ppf(p) == pytest.approx(z_true, rel=1e-15)
    assert abs(_old_norm_ppf(p) - z_true) > 1e-10
    i_true = 0.4973005589797615072491662
    assert float(betainc(1e4, 1e6, 0.0099)[()]) == pytest.approx(i_true, rel=1e-13)
    assert abs(float(_old_betainc(1e4, 1e6, 0.0099)[()]) - i_true) > 1e-10


@pytest.mark.parametrize(("a", "b", "x"), BETA_ARGS)
@pytest.mark.parametrize("p", [0.025, 0.05, 0.5, 0.95, 0.975])
def test_beta_ppf_matches_the_old_newton_solve(p: float, a: float, b: float, x: float) -> None:
    del x
    assert float(beta_ppf(p, a, b)[()]) == pytest.approx(float(_old_beta_ppf(p, a, b)[()]), rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("events", "trials"), COUNTS)
def test_wilson_interval_matches_the_old_formula(events: int, trials: int, confidence: float) -> None:
    got = wilson_interval(events, trials, confidence=confidence)
    assert got == pytest.approx(_old_wilson(events, trials, confidence), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(("events", "trials"), COUNTS + FRACTIONAL)
def test_clopper_pearson_and_upper_bound_match_the_old_code(events: float, trials: float, confidence: float) -> None:
    got = clopper_pearson_interval(events, trials, confidence=confidence)
    assert got == pytest.approx(_old_clopper_pearson(events, trials, confidence), rel=1e-9, abs=1e-15)
    want = _old_one_sided_upper(events, trials, confidence)
    assert one_sided_upper(events, trials, confidence=confidence) == pytest.approx(want, rel=1e-9)
    arr = one_sided_upper_array(np.array([events]), np.array([trials]), confidence=confidence)
    assert float(arr[0]) == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize(("events", "trials"), COUNTS + FRACTIONAL)
def test_upper_bound_holds_agrees_with_the_old_quantile(events: float, trials: float) -> None:
    upper = _old_one_sided_upper(events, trials)
    for bound in (upper * 0.999, upper * 1.001, 0.01, 0.5):
        got = bool(upper_bound_holds(np.array([events]), np.array([trials]), bound)[0])
        assert got == (upper <= bound or bound >= 1.0)


@pytest.mark.parametrize(("events", "trials"), COUNTS + FRACTIONAL)
def test_weighted_wilson_matches_the_old_formula(events: float, trials: float) -> None:
    # Unit weights scaled so that n_eff == trials and rate * n_eff == events (fractional allowed).
    n = max(1, round(trials))
    w = [trials / n] * n
    rate = events / trials
    ev = [rate * sum(w)]
    est = weighted_estimate(ev, w)
    assert (est.low, est.high) == pytest.approx(_old_wilson(est.events_eff, est.n_eff), rel=1e-12, abs=1e-15)


def test_ks_statistic_matches_the_old_ecdf_code() -> None:
    rng = np.random.default_rng(7)
    cases = [
        ([1, 2, 3, 4], [3, 4, 5, 6]),
        ([1, 1, 2, 5], [1, 3]),
        (rng.normal(0, 1, 500).tolist(), rng.normal(0.2, 1, 300).tolist()),
        (rng.integers(0, 5, 200).tolist(), rng.integers(0, 6, 150).tolist()),  # many ties
        ([0.5], [0.5]),
    ]
    for a, b in cases:
        assert ks_statistic(a, b) == pytest.approx(_old_ks(a, b), abs=1e-15)
