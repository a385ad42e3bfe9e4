"""The monitoring report: one pydantic shape for the engineer UI, `inspection monitor report --json`
and `GET /api/v1/monitoring/report`.

Time series are bucketed by time over the span that has data: from the first sample in the window
(not the window's start, so a line that started a minute ago is not one dot at the end of 8 empty
hours) to now. The bucket is the smallest of 10, 30 s, 1, 5, 15, 30 min, 1, 2, 6, 12 h and 1 day
that gives at most MAX_BUCKETS points over that span, aligned to the epoch, empty buckets included
(n = 0, other fields None) so throughput reads 0, not "no data".

Scores in the series (`score_p10/p50/p90`), the score reference band and the "score" drift rule are
the RAW model scores (the model artifact's reference is of raw scores); the concept estimates
(label-free escape, disagreement, ECE) use the scores calibrated as the station decides with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel

from inspection import store
from inspection.core.concept import Estimate
from inspection.core.drift import FEATURE_METRICS, INPUT_METRICS, OUTPUT_METRICS
from inspection.services.context import Pipeline
from inspection.services.monitor_data import StationReference, concept_for, reference_for, rules_in_force, to_sample
from inspection.services.policies import policy_from_row
from inspection.services.validation import validate_station

__all__ = [
    "AlarmOut",
    "DriftOut",
    "EstimateOut",
    "InterlockOut",
    "MonitorReport",
    "SeriesPoint",
    "alarm_out",
    "estimate_out",
    "monitor_report",
]

MAX_BUCKETS = 60
MAX_REPORT_SAMPLES = 100_000  # the newest ones when a span holds more
DEFAULT_SPAN = timedelta(hours=24)
_BUCKETS = tuple(timedelta(seconds=m) for m in (10, 30)) + tuple(
    timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 360, 720, 1440)
)
EVENT_KINDS = ("alarm.fired", "alarm.cleared", "interlock.demoted", "interlock.restored", "monitor.rules_changed",
               "monitor.reference_set")  # fmt: skip


class SeriesPoint(BaseModel):
    t: datetime  # bucket start
    n: int
    throughput_per_min: float
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    to_people_share: float | None = None
    auto_pass_share: float | None = None
    auto_reject_share: float | None = None
    unjudgeable_share: float | None = None
    score_p10: float | None = None  # raw model scores (not the station's calibrated ones)
    score_p50: float | None = None
    score_p90: float | None = None
    brightness: float | None = None  # medians of the frame metrics
    contrast: float | None = None
    sharpness: float | None = None
    colour_cast: float | None = None
    feature_drift: float | None = None  # mean of the squared whitened features: ~1 on the reference


class DriftOut(BaseModel):
    metric: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    breached: bool
    n_window: int
    station: str | None = None
    rule: str | None = None
    kind: str | None = None
    effect: float | None = None
    skipped: str | None = None  # why the look was not tested (no reference, too few items)
    at: datetime | None = None


class EstimateOut(BaseModel):
    rate: float | None
    low: float
    high: float
    n: int = 0
    upper: float | None = None
    method: str = ""


class AlarmOut(BaseModel):
    id: int
    station: str
    rule: str
    metric: str
    severity: str
    opened_at: datetime
    cleared_at: datetime | None
    evidence: dict[str, Any]


class InterlockOut(BaseModel):
    station: str
    enabled: bool
    demoted_from: str | None = None  # set while the station runs demoted (until an engineer restores it)
    demoted_to: str | None = None
    at: datetime | None = None
    alarm_id: int | None = None


class MonitorReport(BaseModel):
    station: str | None
    since: datetime
    generated_at: datetime
    n_items: int
    series: list[SeriesPoint]
    reference_bands: dict[str, tuple[float, float]]
    reference_source: str = ""
    drift: list[DriftOut]
    escape_audited: EstimateOut | None
    escape_label_free: EstimateOut | None
    disagreement: EstimateOut | None
    ece_audit: float | None
    alarms: list[AlarmOut]
    events: list[dict[str, Any]]
    interlock: InterlockOut | None


def finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def estimate_out(e: Estimate | None) -> EstimateOut | None:
    if e is None:
        return None
    return EstimateOut(rate=finite(e.rate), low=e.low, high=e.high, n=e.n, upper=finite(e.upper), method=e.method)


def alarm_out(row: store.AlarmRow) -> AlarmOut:
    return AlarmOut.model_validate(row, from_attributes=True)


def monitor_report(
    app: Pipeline, *, station: str | None = None, since: datetime | None = None, model: str | None = None
) -> MonitorReport:
    """Series, reference bands, last drift looks, concept estimates, alarms, events and the interlock
    of one station (or all stations) since `since` (default: the last 24 hours); with `model`, the
    series and the label-free estimate cover only the items that model version decided (e.g. a canary)."""
    station = validate_station(station) if station is not None else None
    now = app.clock()
    since = since or now - DEFAULT_SPAN
    with app.read() as s:
        rows = store.samples_in_range(
            s, station=station, since=since, limit=MAX_REPORT_SAMPLES, newest=True, model_version=model
        )
        ref = reference_for(app, s, station=station)
        recent = [to_sample(r) for r in rows[-500:]]
        cal = ref.reference.calibration if ref.reference else None  # the reference's labels for CBPE
        concept = concept_for(app, s, station=station, recent=recent, now=now, calibration=cal)
        states = store.monitor_states(s, stations=None if station is None else [station])
        alarms = store.list_alarms(s, station=station, since=since)
        events = store.monitor_events(s, kinds=EVENT_KINDS, station=station, limit=200)
        interlock = _interlock(s, station, events) if station is not None else None
    return MonitorReport(
        station=station,
        since=since,
        generated_at=now,
        n_items=len(rows),
        series=series(rows, since=_data_start(rows, since), until=now),
        reference_bands=_bands(ref),
        reference_source=ref.source,
        drift=[DriftOut(**r) for st in states for r in st.results],
        escape_audited=estimate_out(concept.escape_audited),
        escape_label_free=estimate_out(concept.escape_label_free),
        disagreement=estimate_out(concept.disagreement),
        ece_audit=finite(concept.ece),
        alarms=[alarm_out(a) for a in alarms],
        events=[_event(e) for e in events],
        interlock=interlock,
    )


def _event(e: store.EventRow) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "kind": e.kind, "actor": e.actor, "station": e.station, "detail": e.detail}


def _bands(ref: StationReference) -> dict[str, tuple[float, float]]:
    if ref.reference is None:
        return {}
    out = {}
    for metric in (*INPUT_METRICS, *OUTPUT_METRICS):
        band = ref.reference.band(metric)
        if band is not None:
            out[metric] = band
    return out


def _interlock(s: store.Session, station: str, events: Sequence[store.EventRow]) -> InterlockOut:
    rules, _row = rules_in_force(s, station=station)
    level = policy_from_row(station, store.current_policy(s, station=station)).level
    enabled = rules.interlock_on(level)
    last = next((e for e in events if e.kind in ("interlock.demoted", "interlock.restored")), None)
    if last is None or last.kind == "interlock.restored":
        return InterlockOut(station=station, enabled=enabled)
    d = last.detail
    return InterlockOut(
        station=station,
        enabled=enabled,
        demoted_from=d.get("from"),
        demoted_to=d.get("to"),
        at=last.at,
        alarm_id=d.get("alarm_id"),
    )


def _data_start(rows: Sequence[store.MonitorSampleRow], since: datetime) -> datetime:
    """Where the series starts: the first sample (rows are oldest first), else the window's start."""
    return _aware(rows[0].at) if rows else since


def bucket_size(span: timedelta) -> timedelta:
    for size in _BUCKETS:
        if span / size <= MAX_BUCKETS:
            return size
    return _BUCKETS[-1]


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # SQLite returns naive UTC


def series(rows: Sequence[store.MonitorSampleRow], *, since: datetime, until: datetime) -> list[SeriesPoint]:
    """The samples bucketed by time over [since, until]."""
    since, until = _aware(since), _aware(until)
    size = bucket_size(until - since)
    secs = size.total_seconds()
    first = math.floor(since.timestamp() / secs)
    last = math.floor(until.timestamp() / secs)
    groups: dict[int, list[store.MonitorSampleRow]] = {}
    for r in rows:
        groups.setdefault(math.floor(_aware(r.at).timestamp() / secs), []).append(r)
    return [_point(datetime.fromtimestamp(b * secs, UTC), groups.get(b, []), size) for b in range(first, last + 1)]


def _share(rows: Sequence[store.MonitorSampleRow], flag: str) -> float | None:
    return sum(bool(getattr(r, flag)) for r in rows) / len(rows) if rows else None


def _quantile(values: Sequence[float], q: float) -> float | None:
    return float(np.quantile(np.asarray(values, dtype=np.float64), q)) if values else None


def _column(rows: Sequence[store.MonitorSampleRow], name: str) -> list[float]:
    return [float(v) for r in rows if (v := getattr(r, name)) is not None and math.isfinite(v)]


def _point(t: datetime, rows: Sequence[store.MonitorSampleRow], size: timedelta) -> SeriesPoint:
    scores, latency = _column(rows, "score"), _column(rows, "latency_ms")
    k = len(FEATURE_METRICS)
    feats = [np.asarray(r.features[:k], dtype=np.float64) for r in rows if r.features]
    return SeriesPoint(
        t=t,
        n=len(rows),
        throughput_per_min=len(rows) / (size.total_seconds() / 60.0),
        latency_p50_ms=_quantile(latency, 0.5),
        latency_p95_ms=_quantile(latency, 0.95),
        to_people_share=_share(rows, "to_people"),
        auto_pass_share=_share(rows, "auto_pass"),
        auto_reject_share=_share(rows, "auto_reject"),
        unjudgeable_share=_share(rows, "unjudgeable"),
        score_p10=_quantile(scores, 0.1),
        score_p50=_quantile(scores, 0.5),
        score_p90=_quantile(scores, 0.9),
        brightness=_quantile(_column(rows, "brightness"), 0.5),
        contrast=_quantile(_column(rows, "contrast"), 0.5),
        sharpness=_quantile(_column(rows, "sharpness"), 0.5),
        colour_cast=_quantile(_column(rows, "colour_cast"), 0.5),
        feature_drift=float(np.mean([np.mean(f**2) for f in feats])) if feats else None,
    )
