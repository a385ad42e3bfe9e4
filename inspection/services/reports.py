"""Audit and shadow reports: escape and false-reject rates with intervals; model vs inspectors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inspection import store
from inspection.core import thresholds
from inspection.core.domain import AuditEstimate, AutomationLevel, Label, RouteKind
from inspection.core.stats import confusion, estimate_rate, weighted_estimate
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.history import labelled_scores
from inspection.services.validation import validate_station

# Reports


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _estimate_dict(e: AuditEstimate) -> dict[str, Any]:
    return {"events": e.events, "n": e.trials, "rate": _finite_or_none(e.rate), "low": e.low, "high": e.high}


@dataclass(frozen=True)
class AuditReport:
    station: str | None
    escape: AuditEstimate  # auto-passed items an auditor labelled scratch / audited auto-passed
    false_reject: AuditEstimate  # auto-rejected items labelled ok / audited auto-rejected
    audits: int
    pending: int  # audit reviews queued but not labelled yet

    def to_dict(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "audits": self.audits,
            "pending": self.pending,
            "confidence": 0.95,
            "escape_rate": _estimate_dict(self.escape),
            "false_reject_rate": _estimate_dict(self.false_reject),
        }


def audit_report(app: Pipeline, *, station: str | None = None, since: datetime | None = None) -> AuditReport:
    station = validate_station(station) if station is not None else None
    with app.read() as session:
        rows = store.labelled_history(session, station=station, since=since, audit=True)
        pending = store.pending_audits(session, station=station)
    passed = [r for r in rows if r.route == RouteKind.AUTO_PASS]
    rejected = [r for r in rows if r.route == RouteKind.AUTO_REJECT]
    escape = _route_estimate(passed, Label.SCRATCH)
    false_reject = _route_estimate(rejected, Label.OK)
    return AuditReport(station, escape, false_reject, audits=len(rows), pending=pending)


def _route_estimate(rows: list[store.LabelledRow], event: Label) -> AuditEstimate:
    """Audits counted as drawn when they share one audit rate (the weights cancel out); weighted by
    1 / rate when they do not (a ramp audits the candidate's decisions more often)."""
    events = [r.label == event for r in rows]
    weights = [r.weight for r in rows]
    est = estimate_rate(sum(events), len(rows))
    if len(set(weights)) <= 1:
        return est
    w = weighted_estimate([x for x, e in zip(weights, events, strict=True) if e], weights)
    return AuditEstimate(events=est.events, trials=est.trials, rate=w.rate, low=w.low, high=w.high)


@dataclass(frozen=True)
class ShadowReport:
    station: str | None
    model_version: str | None
    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    agreement: float | None
    agreement_low: float
    agreement_high: float
    kappa: float | None
    suggestion: thresholds.Suggestion | None  # None with no labels at all
    summary: str

    def to_dict(self) -> dict[str, Any]:
        sug = self.suggestion
        suggestion: dict[str, Any] | None = None
        if sug is not None:
            wi = sug.what_if
            suggestion = {
                "ok": sug.ok,
                "level": "partial" if sug.ok else None,
                "pass_below": sug.pass_below,
                "reject_above": sug.reject_above,
                "labels_needed": sug.labels_needed,
                "automation_rate": _finite_or_none(wi.automation_rate) if wi else None,
                "escape_rate": _finite_or_none(wi.escape_rate) if wi else None,
                "escape_upper": _finite_or_none(wi.escape_upper) if wi else None,
                "false_reject_upper": _finite_or_none(wi.false_reject_upper) if wi else None,
                "reason": sug.reason,
            }
        return {
            "station": self.station,
            "model_version": self.model_version,
            "n": self.n,
            "confusion": {"tp": self.tp, "fp": self.fp, "tn": self.tn, "fn": self.fn},
            "agreement": self.agreement,
            "agreement_interval": [self.agreement_low, self.agreement_high],
            "kappa": self.kappa,
            "suggestion": suggestion,
            "summary": self.summary,
        }


SHADOW_LEVELS = (AutomationLevel.SHADOW.value, AutomationLevel.AI_ASSIST.value)


def shadow_report(
    app: Pipeline,
    *,
    station: str | None = None,
    model_version: str | None = None,
    max_escape: float = 0.002,
) -> ShadowReport:
    """Model (score ≥ 0.5 = scratch) against inspectors on items reviewed under shadow / ai_assist,
    and what thresholds that evidence supports for a target escape rate."""
    station = validate_station(station) if station is not None else None
    if not (0.0 < max_escape < 1.0):
        raise InputError(f"max_escape must be within (0, 1), got {max_escape}")
    versions = None if model_version is None else {model_version}
    with app.read() as session:
        rows = store.labelled_history(
            session,
            station=station,
            levels=SHADOW_LEVELS,
            audit=False,
            scores=store.ScoreFilter(versions=versions, valid_only=True),
        )
    history = labelled_scores(rows)
    model_labels = [Label.SCRATCH if h.score >= 0.5 else Label.OK for h in history]
    conf = confusion(model_labels, [h.label for h in history])
    suggestion = thresholds.suggest(history, max_escape=max_escape)
    summary = _shadow_summary(suggestion, max_escape=max_escape)
    return ShadowReport(
        station=station,
        model_version=model_version,
        n=conf.n,
        tp=conf.tp,
        fp=conf.fp,
        tn=conf.tn,
        fn=conf.fn,
        agreement=_finite_or_none(conf.agreement),
        agreement_low=conf.agreement_interval[0],
        agreement_high=conf.agreement_interval[1],
        kappa=_finite_or_none(conf.kappa),
        suggestion=suggestion,
        summary=summary,
    )


def _shadow_summary(suggestion: thresholds.Suggestion | None, *, max_escape: float) -> str:
    if suggestion is None:
        return f"no labels under shadow or ai_assist yet (target escape rate {max_escape:.2%})"
    if not suggestion.ok and suggestion.labels_needed > 0:
        return f"not enough labels: {suggestion.labels_needed} more needed ({suggestion.reason})"
    return suggestion.reason
