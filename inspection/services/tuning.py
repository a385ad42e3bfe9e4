"""Threshold tuning and calibration on the stored labelled history.

The history (`services.history`, one store query) is every item with a live human label and a
score of the chosen model: ordinary reviews weigh 1, blind audit labels of automatic decisions
1 / audit_rate of the policy version in force for that item (each stands for the unreviewed
automatic decisions it was drawn from), so reviewing mostly uncertain items does not bias escape or
automation rates. The math is `inspection.core` (pure); this module only reads the store and plots.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import numpy as np

from inspection import store
from inspection.core import metrics, thresholds
from inspection.core.domain import Label, LabelledScore
from inspection.services import history as _history
from inspection.services.context import Pipeline
from inspection.services.history import HistoryStats, labelled_history, model_names
from inspection.services.stations import recalibrated_history

__all__ = [
    "Calibration",
    "HistoryStats",
    "SuggestOptions",
    "TuningResult",
    "audit_weight",
    "calibration",
    "labelled_history",
    "plot_calibration",
    "plot_suggestion",
    "station_history",
    "suggest_thresholds",
]

audit_weight = store.audit_weight  # the one weighting rule, kept with the labelled-history query


def station_history(
    app: Pipeline, *, station: str | None, model_version: str | None = None
) -> tuple[str, list[LabelledScore], HistoryStats]:
    """`history.station_history` with the station's recalibration applied (when it has one fitted for
    the version): the what-if and the suggestion replay the scores the live decisions use."""
    version, labelled, stats = _history.station_history(app, station=station, model_version=model_version)
    return version, recalibrated_history(app, station=station, version=version, history=labelled), stats


class SuggestOptions(TypedDict, total=False):
    """Targets and line figures passed through to `thresholds.suggest` (its defaults apply)."""

    max_false_reject: float
    cost_escape: float | None
    cost_false_reject: float | None
    cost_review_minute: float | None
    seconds_per_review: float
    items_per_hour: float


@dataclass(frozen=True)
class TuningResult:
    station: str | None
    model_version: str
    stats: HistoryStats
    suggestion: thresholds.Suggestion
    max_escape: float
    max_false_reject: float
    curve: list[thresholds.WhatIf] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        s = self.suggestion
        wi = s.what_if
        return {
            "station": self.station,
            "model_version": self.model_version,
            "ok": s.ok,
            "pass_below": s.pass_below,
            "reject_above": s.reject_above,
            "labels_needed": s.labels_needed,
            "reason": s.reason,
            "mode": s.mode,
            "expected_cost": s.expected_cost,
            "max_escape": self.max_escape,
            "max_false_reject": self.max_false_reject,
            "what_if": _clean(vars(wi)) if wi is not None else None,
            "history": {
                "n": self.stats.n,
                "n_audit": self.stats.n_audit,
                "n_scratch": self.stats.n_scratch,
                "warnings": list(self.stats.warnings),
            },
        }


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (_none(v) if isinstance(v, float) else v) for k, v in d.items()}


def suggest_thresholds(
    app: Pipeline,
    *,
    station: str | None,
    max_escape: float,
    model_version: str | None = None,
    curve: bool = False,
    **options: Unpack[SuggestOptions],
) -> TuningResult:
    """Recommend (pass_below, reject_above) for `station` from its labelled history, or refuse
    (suggestion.ok False, with the number of labels still needed). The history is scored by
    `model_version` (default: the current production model)."""
    version, history, stats = station_history(app, station=station, model_version=model_version)
    sug = thresholds.suggest(history, max_escape=max_escape, **options)
    points: list[thresholds.WhatIf] = []
    if curve and history and any(math.isfinite(h.score) for h in history):
        fixed = sug.reject_above if sug.ok and sug.reject_above is not None else 1.0
        points = thresholds.sweep(
            history,
            reject_above=fixed,
            items_per_hour=options.get("items_per_hour", 600.0),
            seconds_per_review=options.get("seconds_per_review", 4.0),
        )
    max_false_reject = options.get("max_false_reject", 0.01)
    return TuningResult(station, version, stats, sug, max_escape, max_false_reject, points)


def plot_suggestion(result: TuningResult, out: Path) -> Path:
    """Automation vs escape-rate upper bound over pass_below (reject_above fixed), with the target."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    pts = result.curve
    if pts:
        x = [p.pass_below for p in pts]
        ax.plot(x, [p.automation_rate for p in pts], label="automation rate")
        ax2 = ax.twinx()
        ax2.plot(x, [p.escape_upper for p in pts], color="tab:red", label="escape rate (95 % upper bound)")
        ax2.axhline(result.max_escape, color="tab:red", linestyle=":", label="target")
        ax2.set_ylabel("escape rate per phone")
        ax2.legend(loc="lower right")
    if result.suggestion.ok and result.suggestion.pass_below is not None:
        ax.axvline(result.suggestion.pass_below, color="k", linestyle="--", label="suggested pass_below")
    ax.set_xlabel("pass_below")
    ax.set_ylabel("share of phones decided automatically")
    ax.set_title(f"{result.station or 'all stations'} · model {result.model_version}", fontsize=10)
    ax.legend(loc="upper left")
    if not result.suggestion.ok:
        ax.text(
            0.5,
            0.5,
            "no recommendation:\n" + result.suggestion.reason[:160],
            transform=ax.transAxes,
            ha="center",
            va="center",
            wrap=True,
            fontsize=8,
        )
    return _save(fig, out)


def _pyplot() -> Any:
    # matplotlib is heavy and only the plotting commands need it: imported on first use.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Path) -> Path:
    plt = _pyplot()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return out


# Calibration


@dataclass(frozen=True)
class Calibration:
    model_version: str
    n: int
    ece: float | None
    reliability: metrics.Reliability | None

    def to_dict(self) -> dict[str, Any]:
        r = self.reliability
        return {
            "model_version": self.model_version,
            "n": self.n,
            "ece": self.ece,
            "bins": None
            if r is None
            else [
                {"low": lo, "high": hi, "mean_predicted": _none(p), "observed": _none(o), "count": c}
                for lo, hi, p, o, c in zip(
                    r.edges[:-1], r.edges[1:], r.mean_predicted, r.observed, r.counts, strict=True
                )
            ],
        }


def calibration(
    app: Pipeline, *, model_version: str | None = None, station: str | None = None, bins: int = 10
) -> list[Calibration]:
    """Reliability and ECE per model version on the stored human labels (every role: production,
    shadow and canary scores all met the same inspectors' labels)."""
    versions = None if model_version is None else model_names(app, model_version)
    scores = store.ScoreFilter(versions=versions, roles=None, valid_only=True)
    with app.read() as session:
        rows = store.labelled_history(session, station=station, scores=scores)
    per: dict[str, tuple[list[float], list[bool]]] = {}
    for r in rows:
        s, y = per.setdefault(str(r.model_version), ([], []))
        s.append(float(r.score or 0.0))  # valid_only: every score is present
        y.append(r.label == Label.SCRATCH.value)
    out = []
    for version, (s, y) in sorted(per.items()):
        rel = metrics.reliability(np.asarray(s), np.asarray(y), bins=bins)
        out.append(Calibration(version, len(s), _none(rel.ece), rel))
    if model_version is not None and not out:
        out.append(Calibration(model_version, 0, None, None))
    return out


def plot_calibration(results: list[Calibration], out: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for r in results:
        if r.reliability is None:
            continue
        pts = [
            (p, o)
            for p, o, c in zip(
                r.reliability.mean_predicted, r.reliability.observed, r.reliability.counts, strict=True
            )
            if c
        ]
        ece = f"{r.ece:.3f}" if r.ece is not None else "n/a"
        ax.plot(
            [p for p, _ in pts],
            [o for _, o in pts],
            marker="o",
            label=f"{r.model_version} (n={r.n}, ECE {ece})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted scratch probability")
    ax.set_ylabel("observed share scratched (human labels)")
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, out)
