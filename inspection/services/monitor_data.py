"""What monitoring compares: a station's samples as `core.drift.MonitorSample`s, its alarm rules in
force, its reference (its own reference window, else the production model's), and the concept
numbers from people's labels and the calibrated scores.

The evaluation (`services.monitoring`) and the report (`services.monitor_report`) both read here, so
they agree on every number.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from inspection import store
from inspection.core.alarms import DEFAULT_RULES, AlarmRuleSet
from inspection.core.calibration import IsotonicMap, apply_temperature, fit_isotonic
from inspection.core.concept import Concept, audited_escape, calibration_error, cbpe_escape, disagreement_rate
from inspection.core.domain import Label, RouteKind
from inspection.core.drift import FEATURE_METRICS, FLAGS, MonitorSample, Reference
from inspection.services import registry
from inspection.services.context import Pipeline
from inspection.services.stations import setup_from_row
from inspection.vision.artifact_meta import read_meta_json

__all__ = [
    "CONCEPT_DAYS",
    "CONCEPT_ITEMS",
    "StationReference",
    "concept_for",
    "reference_for",
    "rules_in_force",
    "to_sample",
]

log = logging.getLogger("inspection.monitor")

# Concept numbers read the labels of the last CONCEPT_DAYS days, the latest CONCEPT_ITEMS of each kind
# (a window like the sample rules': what the line does now, not since installation).
CONCEPT_DAYS = 14
CONCEPT_ITEMS = 500
_VALUE_COLUMNS = (
    "brightness",
    "contrast",
    "sharpness",
    "colour_cast",
    "width",
    "height",
    "score",
    "n_regions",
    "latency_ms",
)


def to_sample(row: store.MonitorSampleRow) -> MonitorSample:
    """A stored sample as the drift checks read it (unknown values left out; features as f0..f7)."""
    values: dict[str, float] = {}
    for name in _VALUE_COLUMNS:
        v = getattr(row, name)
        if v is not None:
            values[name] = float(v)
    for name, v in zip(FEATURE_METRICS, row.features or (), strict=False):
        values[name] = float(v)
    return MonitorSample(row.at, values, {flag: bool(getattr(row, flag)) for flag in FLAGS})


def rules_in_force(session: store.Session, *, station: str) -> tuple[AlarmRuleSet, store.AlarmRuleSetRow | None]:
    """The station's latest rule set (DEFAULT_RULES when none was set) and its row."""
    row = store.current_rule_set(session, station=station)
    if row is None:
        return DEFAULT_RULES, None
    try:
        return AlarmRuleSet.from_json(row.rules), row
    except ValueError as exc:  # stored by an older version with other rules: say so, watch with defaults
        log.error("alarm rules v%d of %s unreadable (%s); using the default rules", row.version, station, exc)
        return DEFAULT_RULES, row


@dataclass(frozen=True)
class StationReference:
    reference: Reference | None  # None: nothing to compare the input with
    source: str  # "station window v2 (first 2000 items after …)", "model baseline", or why there is none
    window: store.StationReferenceRow | None = None  # the station's reference window, when it is one


def reference_for(app: Pipeline, session: store.Session, *, station: str | None) -> StationReference:
    """The station's reference window if set, else the production model artifact's `monitor.reference`."""
    row = store.current_reference(session, station=station) if station is not None else None
    if row is not None:
        spec = ", ".join(f"{k} {v}" for k, v in row.spec.items() if v is not None)
        return StationReference(Reference.from_json(row.reference), f"station window v{row.version} ({spec})", row)
    production = store.current_deployment(session)
    version = production.production_version if production else app.settings.default_model
    try:
        path = registry.model_dir(app, version)
    except registry.DeployError as exc:
        return StationReference(None, f"no reference: {exc}")
    reference = _model_reference(path, path.joinpath("model.json").stat().st_mtime_ns)
    if reference is None:
        return StationReference(None, f"no reference: model {version} has no monitor.reference in model.json")
    return StationReference(reference, f"model {version}")


@functools.lru_cache(maxsize=16)
def _model_reference(path: Path, _mtime_ns: int) -> Reference | None:
    """model.json's monitor.reference, parsed once per file version (the mtime is the cache key)."""
    try:
        block = read_meta_json(path).get("monitor", {})
        data = block.get("reference") if isinstance(block, dict) else None
        return None if data is None else Reference.from_json(data)
    except (OSError, ValueError) as exc:
        log.error("monitor.reference of %s unreadable: %s", path, exc)
        return None


def _model_call(score: float) -> Label:
    return Label.SCRATCH if score >= 0.5 else Label.OK


def window_calibration(
    session: store.Session, *, station: str, rows: Sequence[store.MonitorSampleRow]
) -> IsotonicMap | None:
    """P(scratch | raw score) from the blind labels (audits, items reviewed without the model's output) of
    a reference window's items, weighted by 1 / audit rate; None with too few (core.calibration). This is
    the labelled reference NannyML's CBPE calibrates on: later, label-free estimates map scores through it."""
    ids = [int(r.inspection_id) for r in rows if r.inspection_id is not None]
    labelled = store.labelled_history(
        session, station=station, inspection_ids=ids, scores=store.ScoreFilter(valid_only=True)
    )
    blind = [r for r in labelled if r.blind and r.score is not None]
    scores = [float(r.score or 0.0) for r in blind]
    return fit_isotonic(scores, [r.label == Label.SCRATCH.value for r in blind], [r.weight for r in blind])


def _station_calibrated(session: store.Session, *, station: str | None, raw: list[float]) -> list[float]:
    """Samples keep raw model scores; CBPE needs the calibrated ones the station decides with."""
    if station is None or not raw:
        return raw
    cal = setup_from_row(station, store.current_station_setup(session, station=station)).calibration
    return raw if cal is None else [float(p) for p in apply_temperature(raw, cal.temperature)]


def _labelled_calibrated(session: store.Session, rows: Sequence[store.LabelledRow]) -> list[float]:
    """The labelled items' production scores as their station decides with them (its calibration
    applied per station; prediction rows keep the raw model score)."""
    by_station: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_station.setdefault(r.station, []).append(i)
    out = [r.score or 0.0 for r in rows]
    for station, idx in by_station.items():
        for i, p in zip(idx, _station_calibrated(session, station=station, raw=[out[i] for i in idx]), strict=True):
            out[i] = p
    return out


def concept_for(
    app: Pipeline,
    session: store.Session,
    *,
    station: str | None,
    recent: Sequence[MonitorSample],
    now: datetime,
    calibration: IsotonicMap | None = None,
) -> Concept:
    """Disagreement (model call at 0.5 vs the person, every live label with a production score), ECE
    and the audited escape rate (blind audits), and the label-free escape estimate (CBPE) from the
    scores of the recent auto-passed samples. Every score here is calibrated as the station decides
    with it (the samples and prediction rows keep the raw model score)."""
    since = now - timedelta(days=CONCEPT_DAYS)
    scores = store.ScoreFilter(valid_only=True)
    labelled = store.labelled_history(session, station=station, since=since, scores=scores)[-CONCEPT_ITEMS:]
    audits = [r for r in labelled if r.audit]
    passed = store.labelled_history(session, station=station, since=since, audit=True)
    passed = [r for r in passed if r.route == RouteKind.AUTO_PASS][-CONCEPT_ITEMS:]
    auto_scores = [v for s in recent if s.flags.get("auto_pass") and (v := s.value("score")) is not None]
    if calibration is None:  # no labelled reference: the station's temperature, if any, else the model's own
        auto_scores = _station_calibrated(session, station=station, raw=auto_scores)
    calibrated = _labelled_calibrated(session, labelled)
    audit_scores = [p for p, r in zip(calibrated, labelled, strict=True) if r.audit]
    ece = calibration_error(audit_scores, [Label(r.label) for r in audits]) if audits else None
    return Concept(
        disagreement=disagreement_rate([_model_call(p) for p in calibrated], [Label(r.label) for r in labelled])
        if labelled
        else None,
        ece=None if ece is None or math.isnan(ece) else ece,
        ece_n=len(audits),
        escape_audited=audited_escape([Label(r.label) for r in passed], [r.weight for r in passed]) if passed else None,
        escape_label_free=cbpe_escape(auto_scores[-CONCEPT_ITEMS:], calibration=calibration) if auto_scores else None,
    )
