"""Figures of the Monitoring tab, each drawn from one `MonitorReport` (pure: no I/O, no Gradio).

Sizes are chosen for two figures side by side on a 1366x768 screen (about 640 px each); the
constrained layout keeps titles, tick labels and legends inside the figure, and dates use the concise
formatter so that the x axis never needs rotated, clipped labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on the server; figures are rendered to images by gr.Plot
import matplotlib.dates as mdates  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from inspection.services.monitoring import DriftOut, MonitorReport  # noqa: E402

WIDE = (6.4, 3.0)
TALL = (6.4, 4.2)
EMPTY = "no items in this window yet"
INPUTS = (
    ("brightness", "brightness (grey level)"),
    ("contrast", "contrast"),
    ("sharpness", "sharpness"),
    ("colour_cast", "colour cast (grey levels)"),
)


def _num(x: Any) -> float:
    """A plottable float: None and non-numbers become NaN (a gap in the line)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def _column(report: MonitorReport, name: str, scale: float = 1.0) -> list[float]:
    return [_num(getattr(p, name, None)) * scale for p in report.series]


def _times(report: MonitorReport) -> Any:
    """Bucket starts as matplotlib date numbers (UTC), for a date axis."""
    return mdates.date2num([p.t for p in report.series])


def _figure(size: tuple[float, float], title: str) -> Figure:
    fig = Figure(figsize=size, dpi=100, layout="constrained")
    fig.suptitle(title, fontsize=12)
    return fig


def time_span(report: MonitorReport) -> tuple[float, float]:
    """The x range (matplotlib date numbers): the series' own span (it starts at the first sample, see
    services.monitor_report) padded by 4 % or half a bucket, whichever is more, so the first and
    last points sit inside the frame; a single point gets a bucket either side, never years."""
    if not report.series:
        return float(mdates.date2num(report.since)), float(mdates.date2num(report.generated_at))
    lo, hi = float(mdates.date2num(report.series[0].t)), float(mdates.date2num(report.series[-1].t))
    one_minute = 60.0 / 86400.0  # in days, for a lone point
    bucket = float(mdates.date2num(report.series[1].t)) - lo if len(report.series) > 1 else one_minute
    pad = max((hi - lo) * 0.04, bucket / 2)
    return lo - pad, hi + pad


def _time_axis(ax: Axes, report: MonitorReport) -> None:
    """Dates on x over the span that has data (see `time_span`)."""
    ax.set_xlim(*time_span(report))
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)


def _empty(ax: Axes, text: str = EMPTY) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _has_data(report: MonitorReport) -> bool:
    return report.n_items > 0 and bool(report.series)


def _lines(ax: Axes, report: MonitorReport, lines: Sequence[tuple[str, list[float], str]]) -> None:
    t = _times(report)
    for label, ys, colour in lines:
        ax.plot(t, ys, marker=".", label=label, color=colour)
    _time_axis(ax, report)


def traffic_figure(report: MonitorReport) -> Figure:
    """Throughput (items per minute) above latency p50/p95."""
    fig = _figure(TALL, "Throughput and latency")
    top, bottom = fig.subplots(2, 1, sharex=True)
    if not _has_data(report):
        _empty(top)
        _empty(bottom)
        return fig
    _lines(top, report, [("items / min", _column(report, "throughput_per_min"), "#1f77b4")])
    top.set_ylabel("items / min")
    _lines(
        bottom,
        report,
        [("p50", _column(report, "latency_p50_ms"), "#2ca02c"), ("p95", _column(report, "latency_p95_ms"), "#d62728")],
    )
    bottom.set_ylabel("latency (ms)")
    bottom.legend(loc="upper left", fontsize=8)
    top.set_ylim(bottom=0)
    bottom.set_ylim(bottom=0)
    return fig


def decisions_figure(report: MonitorReport) -> Figure:
    """Share of items sent to people, passed and rejected automatically, and unjudgeable."""
    fig = _figure(WIDE, "Where items went")
    ax = fig.add_subplot()
    if not _has_data(report):
        _empty(ax)
        return fig
    _lines(
        ax,
        report,
        [
            ("to people", _column(report, "to_people_share", 100), "#1f77b4"),
            ("auto-pass", _column(report, "auto_pass_share", 100), "#2ca02c"),
            ("auto-reject", _column(report, "auto_reject_share", 100), "#d62728"),
            ("unjudgeable", _column(report, "unjudgeable_share", 100), "#7f7f7f"),
        ],
    )
    ax.set_ylabel("share of items (%)")
    ax.set_ylim(-2, 102)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


def score_figure(report: MonitorReport) -> Figure:
    """Raw model score distribution over time (the p10-p90 band around the median) with the reference
    band: raw, because the model's reference is of raw scores (the station's calibration is applied
    only where a decision or an escape estimate needs it)."""
    fig = _figure(WIDE, "Raw model score (p10 – p90 band, median)")
    ax = fig.add_subplot()
    if not _has_data(report):
        _empty(ax)
        return fig
    t = _times(report)
    _band(ax, report, "score")
    ax.fill_between(
        t, _column(report, "score_p10"), _column(report, "score_p90"), alpha=0.3, color="#9467bd", label="p10 – p90"
    )
    ax.plot(t, _column(report, "score_p50"), marker=".", color="#9467bd", label="median")
    _time_axis(ax, report)
    ax.set_ylabel("raw score (uncalibrated)")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _band(ax: Axes, report: MonitorReport, metric: str) -> None:
    """The reference 5-95 % band of `metric` as a shaded horizontal stripe (when known)."""
    band = report.reference_bands.get(metric)
    if band is None:
        return
    lo, hi = _num(band[0]), _num(band[1])
    if math.isnan(lo) or math.isnan(hi):
        return
    ax.axhspan(lo, hi, color="#2ca02c", alpha=0.15, label="reference 5–95 %")


def inputs_figure(report: MonitorReport) -> Figure:
    """Frame metrics against their reference band, one small panel each."""
    fig = _figure(TALL, "Input metrics against the reference band (shaded)")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, (name, label) in zip(axes, INPUTS, strict=True):
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=8)
        if not _has_data(report):
            _empty(ax)
            continue
        _band(ax, report, name)
        ax.plot(_times(report), _column(report, name), marker=".", color="#1f77b4", label="window mean")
        _time_axis(ax, report)
    if _has_data(report):
        axes[0].legend(loc="best", fontsize=7)
    return fig


def feature_drift_figure(report: MonitorReport) -> Figure:
    """The model features' mean squared whitened component over time: about 1 on the reference data,
    higher when the images the model sees move away from it. The alarm itself is the per-component KS
    test (`drift_tests_figure`); the dashed line marks the reference level for scale."""
    fig = _figure(WIDE, "Feature drift (model features vs reference)")
    ax = fig.add_subplot()
    values = _column(report, "feature_drift")
    if not _has_data(report) or all(math.isnan(v) for v in values):
        _empty(ax, EMPTY if not _has_data(report) else "no feature summary for this model")
        return fig
    ax.plot(_times(report), values, marker=".", color="#ff7f0e", label="mean squared feature")
    ax.axhline(1.0, color="#2ca02c", linestyle="--", label="reference level (1)")
    _time_axis(ax, report)
    ax.set_ylabel("mean sq. feature")  # short: the 3-inch figure cuts a longer one
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def look_strength(d: DriftOut) -> float | None:
    """How far a look is towards its alarm, on one scale for every kind (1 = the alarm threshold):
    -log10(p) / -log10(alpha) for statistical tests (p < alpha fires), statistic / threshold for
    concept metrics (statistic > threshold fires). None when the look was not tested."""
    thr = _num(d.threshold)
    if math.isnan(thr) or thr <= 0:
        return None
    p = _num(d.p_value)
    if not math.isnan(p):
        if thr >= 1:
            return None
        return -math.log10(max(p, 1e-300)) / -math.log10(thr)
    stat = _num(d.statistic)
    return None if math.isnan(stat) else stat / thr


def drift_tests_figure(report: MonitorReport) -> Figure:
    """The latest look of every rule, as its strength relative to the alarm threshold (line at 1)."""
    fig = _figure(TALL, "Drift tests against their alarm threshold")
    ax = fig.add_subplot()
    rows = [
        (f"{d.station} · {d.metric}" if report.station is None and d.station else d.metric, s, d.breached)
        for d in report.drift
        if (s := look_strength(d)) is not None
    ]
    if not rows:
        _empty(ax, "no drift test has run yet (needs a reference and enough items)")
        return fig
    rows = sorted(rows, key=lambda r: -r[1])[:16]  # the strongest; the table lists them all
    names = [r[0] for r in rows]
    values = [min(r[1], 10.0) for r in rows]  # clipped: one huge bar must not flatten the others
    colours = ["#d62728" if r[2] else "#1f77b4" for r in rows]
    ax.barh(range(len(rows)), values, color=colours)
    ax.axvline(1.0, color="#d62728", linestyle="--", label="alarm threshold")
    ax.set_yticks(range(len(rows)), names, fontsize=8)
    ax.set_ylim(max(len(rows), 6) - 0.5, -0.5)  # top-down; a lone bar stays a bar, not a wall
    ax.set_xlim(0, max(2.0, *values) * 1.05)
    ax.set_xlabel("evidence / threshold (≥ 1 fires; clipped at 10)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def _estimate_rows(report: MonitorReport) -> list[tuple[str, Any]]:
    return [
        ("audited escape", report.escape_audited),
        ("label-free escape", report.escape_label_free),
        ("model vs inspector\ndisagreement", report.disagreement),
    ]


def escape_figure(report: MonitorReport) -> Figure:
    """Audited and label-free escape estimates (and disagreement) with their 95 % intervals."""
    fig = _figure(WIDE, "Escape estimates with 95 % intervals")
    ax = fig.add_subplot()
    rows = [(name, est) for name, est in _estimate_rows(report) if est is not None]
    if not rows:
        _empty(ax, "no audited or scored auto-passed items yet")
        return fig
    colours = {"audited escape": "#d62728", "label-free escape": "#ff7f0e"}
    for i, (name, est) in enumerate(rows):
        rate, lo, hi = (_num(est.rate) * 100, _num(est.low) * 100, _num(est.high) * 100)
        rate = 0.0 if math.isnan(rate) else rate
        err = [
            [max(0.0, rate - lo) if not math.isnan(lo) else 0.0],
            [max(0.0, hi - rate) if not math.isnan(hi) else 0.0],
        ]
        ax.errorbar([rate], [i], xerr=err, fmt="o", capsize=6, color=colours.get(name, "#1f77b4"))
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ends = [x * 100 for _, est in rows for v in (est.rate, est.high) if not math.isnan(x := _num(v))]
    ax.set_xlim(0, max(0.1, *ends) * 1.15)  # room right of the last marker
    ax.set_xlabel("rate (%)")
    ax.grid(True, axis="x", alpha=0.3)
    return fig
