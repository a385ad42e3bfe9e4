"""Threshold tuning and calibration on the stored labelled history.

The history is every item with a live human label and a score of the chosen model:
- ordinary reviews (items a person decided) carry weight 1;
- blind audit labels of automatic decisions carry weight 1 / audit_rate of the policy version in
  force for that item: each stands for the unreviewed automatic decisions it was drawn from,
  so reviewing mostly uncertain items does not bias escape or automation rates.
The math is `inspection.core.thresholds` (pure); this module only reads the store and plots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import col

from inspection import store
from inspection.core import thresholds
from inspection.core.domain import Label, LabelledScore
from inspection.services.context import Pipeline

__all__ = [
    "Calibration",
    "HistoryStats",
    "TuningResult",
    "audit_weight",
    "calibration",
    "labelled_history",
    "plot_calibration",
    "plot_suggestion",
    "suggest_thresholds",
]


def audit_weight(audit: bool, audit_rate: float | None) -> float:
    """Sampling weight of one labelled item (see the module doc)."""
    if audit and audit_rate is not None and audit_rate > 0:
        return 1.0 / audit_rate
    return 1.0


@dataclass(frozen=True)
class HistoryStats:
    n: int
    n_audit: int
    n_scratch: int
    model_version: str | None
    unaudited_auto: int  # automatic decisions under policies with audit_rate 0: not represented
    warnings: tuple[str, ...] = ()


def _version_names(app: Pipeline, version: str) -> set[str]:
    """A directory name and the version its model.json declares (what predictions record)."""
    import json

    names = {version}
    try:
        data = json.loads((app.settings.models_dir / version / "model.json").read_text())
        names.add(str(data.get("version", version)))
    except (OSError, ValueError):
        pass
    return names


def labelled_history(
    app: Pipeline,
    *,
    station: str | None = None,
    model_version: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[LabelledScore], HistoryStats]:
    """Weighted labelled history. `model_version=None` takes the production-role scores (whatever
    version served); a version takes that model's scores in any role (production, shadow, canary).
    A prediction that failed (model error, time-out) is kept with a NaN score: that phone would go
    to a person under any thresholds."""
    ins: Any = store.InspectionRow
    rev: Any = store.ReviewRow
    pred: Any = store.PredictionRow
    pol: Any = store.PolicyVersionRow
    stmt = (
        sa.select(pred.score, pred.error, rev.label, rev.audit, pol.audit_rate)
        .select_from(rev)
        .join(ins, col(ins.id) == col(rev.inspection_id))
        .join(pred, col(pred.inspection_id) == col(ins.id))
        .outerjoin(
            pol, sa.and_(col(pol.station) == col(ins.station), col(pol.version) == col(ins.policy_version))
        )
        .where(col(rev.undone_at).is_(None), col(rev.label).in_([Label.SCRATCH.value, Label.OK.value]))
    )
    if model_version is None:
        stmt = stmt.where(pred.role == store.PredictionRole.PRODUCTION)
    else:
        stmt = stmt.where(col(pred.model_version).in_(_version_names(app, model_version)))
    if station is not None:
        stmt = stmt.where(ins.station == station)
    if since is not None:
        stmt = stmt.where(col(ins.received_at) >= since)
    if until is not None:
        stmt = stmt.where(col(ins.received_at) < until)
    unaudited = (
        sa.select(sa.func.count())
        .select_from(ins)
        .join(pol, sa.and_(col(pol.station) == col(ins.station), col(pol.version) == col(ins.policy_version)))
        .where(col(ins.route) != "review", col(pol.audit_rate) <= 0)
    )
    if station is not None:
        unaudited = unaudited.where(ins.station == station)
    history: list[LabelledScore] = []
    n_audit = n_scratch = 0
    with app.read() as session:
        for score, error, label, audit, rate in session.execute(stmt).yield_per(10_000):
            s = float(score) if score is not None and error is None else math.nan
            lab = Label(label)
            history.append(LabelledScore(s, lab, audit_weight(bool(audit), rate), bool(audit)))
            n_audit += bool(audit)
            n_scratch += lab is Label.SCRATCH
        n_unaudited = int(session.execute(unaudited).scalar_one())
    warnings = []
    if n_unaudited:
        warnings.append(
            f"{n_unaudited} automatic decisions were made under policies with audit_rate 0: no label "
            "stands for them, so the rates below describe the reviewed and audited phones only"
        )
    return history, HistoryStats(
        len(history), n_audit, n_scratch, model_version, n_unaudited, tuple(warnings)
    )


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


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def suggest_thresholds(
    app: Pipeline,
    *,
    station: str | None,
    max_escape: float,
    max_false_reject: float = 0.01,
    cost_escape: float | None = None,
    cost_false_reject: float | None = None,
    cost_review_minute: float | None = None,
    seconds_per_review: float = 4.0,
    items_per_hour: float = 600.0,
    model_version: str | None = None,
    curve: bool = False,
) -> TuningResult:
    """Recommend (pass_below, reject_above) for `station` from its labelled history, or refuse
    (suggestion.ok False, with the number of labels still needed). The history is scored by
    `model_version` (default: the current production model)."""
    from inspection.services.deploy import current_state

    version = model_version or current_state(app).production
    history, stats = labelled_history(app, station=station, model_version=version)
    sug = thresholds.suggest(
        history,
        max_escape=max_escape,
        max_false_reject=max_false_reject,
        cost_escape=cost_escape,
        cost_false_reject=cost_false_reject,
        cost_review_minute=cost_review_minute,
        seconds_per_review=seconds_per_review,
        items_per_hour=items_per_hour,
    )
    points: list[thresholds.WhatIf] = []
    if curve and history and any(math.isfinite(h.score) for h in history):
        fixed = sug.reject_above if sug.ok and sug.reject_above is not None else 1.0
        points = thresholds.sweep(
            history, reject_above=fixed, items_per_hour=items_per_hour, seconds_per_review=seconds_per_review
        )
    return TuningResult(station, version, stats, sug, max_escape, max_false_reject, points)


def plot_suggestion(result: TuningResult, out: Path) -> Path:
    """Automation vs escape-rate upper bound over pass_below (reject_above fixed), with the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _save(fig: Any, out: Path) -> Path:
    import os
    import tempfile

    import matplotlib.pyplot as plt

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
    reliability: thresholds.Reliability | None

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


def _none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def calibration(
    app: Pipeline, *, model_version: str | None = None, station: str | None = None, bins: int = 10
) -> list[Calibration]:
    """Reliability and ECE per model version on the stored human labels (every role: production,
    shadow and canary scores all met the same inspectors' labels)."""
    ins: Any = store.InspectionRow
    rev: Any = store.ReviewRow
    pred: Any = store.PredictionRow
    stmt = (
        sa.select(pred.model_version, pred.score, rev.label)
        .select_from(rev)
        .join(ins, col(ins.id) == col(rev.inspection_id))
        .join(pred, col(pred.inspection_id) == col(ins.id))
        .where(
            col(rev.undone_at).is_(None),
            col(rev.label).in_([Label.SCRATCH.value, Label.OK.value]),
            col(pred.score).is_not(None),
            col(pred.error).is_(None),
        )
        .order_by(col(pred.model_version))
    )
    if model_version is not None:
        stmt = stmt.where(col(pred.model_version).in_(_version_names(app, model_version)))
    if station is not None:
        stmt = stmt.where(ins.station == station)
    per: dict[str, tuple[list[float], list[bool]]] = {}
    with app.read() as session:
        for version, score, label in session.execute(stmt).yield_per(10_000):
            s, y = per.setdefault(version, ([], []))
            s.append(float(score))
            y.append(label == Label.SCRATCH.value)
    out = []
    for version, (s, y) in sorted(per.items()):
        rel = thresholds.reliability(np.asarray(s), np.asarray(y), bins=bins)
        out.append(Calibration(version, len(s), _none(rel.ece), rel))
    if model_version is not None and not out:
        out.append(Calibration(model_version, 0, None, None))
    return out


def plot_calibration(results: list[Calibration], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
