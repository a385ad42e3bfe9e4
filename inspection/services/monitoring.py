"""Monitoring use cases: one sample per inspection (in ingest's transaction), the engineer's alarm
rules and reference window (versioned, who/why), the deliberate restore after a demotion, and
example images of an alarm. Evaluation (looks, alarms, webhook, interlock) is `services.monitor_eval`
and the report `services.monitor_report`; their public names are re-exported here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from inspection import store
from inspection.core.alarms import DEFAULT_RULES, AlarmRuleSet, diff_rule_sets
from inspection.core.domain import AutomationLevel, Policy, PolicyError
from inspection.core.drift import FLAGS, Reference
from inspection.services import policies
from inspection.services.context import Pipeline
from inspection.services.errors import InputError, NotFound
from inspection.services.monitor_data import rules_in_force, to_sample, window_calibration
from inspection.services.monitor_eval import MONITOR_ACTOR, AlarmChange, evaluate_pending, evaluate_station
from inspection.services.monitor_report import (
    AlarmOut,
    DriftOut,
    EstimateOut,
    InterlockOut,
    MonitorReport,
    SeriesPoint,
    alarm_out,
    monitor_report,
)
from inspection.services.validation import validate_name, validate_station

__all__ = [
    "MONITOR_ACTOR",
    "AlarmChange",
    "AlarmExamples",
    "AlarmOut",
    "DriftOut",
    "EstimateOut",
    "InterlockOut",
    "MonitorGauges",
    "MonitorReport",
    "ReferenceOut",
    "RulesPreview",
    "RuleSetOut",
    "SeriesPoint",
    "alarm_example_set",
    "alarm_examples",
    "evaluate_pending",
    "evaluate_station",
    "get_reference",
    "get_rules",
    "monitor_gauges",
    "monitor_report",
    "preview_rules",
    "record_sample",
    "restore_level",
    "rule_history",
    "set_reference_window",
    "set_rules",
]

log = logging.getLogger("inspection.monitor")
MAX_WINDOW_ITEMS = 20_000  # a reference window never reads more samples than this
BEFORE_ITEMS = 500  # example images without a reference window: picked among this many items before the alarm


# ---------------------------------------------------------------------------------------------
# Samples (ingest's hot path: one insert in ingest's own transaction)


def record_sample(
    app: Pipeline,
    session: store.Session,
    *,
    inspection_id: int | None,
    station: str,
    at: datetime,
    model_version: str | None,
    metrics: Mapping[str, float | int | None],
    flags: Mapping[str, bool],
    score: float | None,
    n_regions: int | None,
    latency_ms: float | None,
    features: Sequence[float] = (),
) -> None:
    """Add the item's monitoring sample to ingest's write transaction (nothing with monitoring off)."""
    if not app.settings.monitoring:
        return
    values: dict[str, Any] = {
        "inspection_id": inspection_id,
        "station": station,
        "model_version": model_version,
        "at": at,
        "brightness": _num(metrics.get("brightness")),
        "contrast": _num(metrics.get("contrast")),
        "sharpness": _num(metrics.get("sharpness")),
        "colour_cast": _num(metrics.get("colour_cast")),
        "width": _int(metrics.get("width")),
        "height": _int(metrics.get("height")),
        "score": score,
        "n_regions": n_regions,
        "latency_ms": latency_ms,
        "features": [round(float(f), 4) for f in features],
    }
    for flag in FLAGS:
        values[flag] = bool(flags.get(flag, False))
    store.add_sample(session, values=values)


def _num(v: float | int | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _int(v: float | int | None) -> int | None:
    return None if v is None else int(v)


# ---------------------------------------------------------------------------------------------
# Rules and reference windows (versioned, who/why)


class RuleSetOut(BaseModel):
    station: str
    version: int  # 0: never set, the default rules hold
    rules: dict[str, Any]  # core.alarms.AlarmRuleSet.to_json()
    created_by: str | None = None
    created_at: datetime | None = None
    reason: str | None = None
    false_alarm_per_100k: float = 0.0  # the set's budget (union bound over its statistical rules)
    changes: list[str] = []  # what this version changed from the one before (core.alarms.diff_rule_sets)


def _rule_set_out(station: str, rules: AlarmRuleSet, row: store.AlarmRuleSetRow | None) -> RuleSetOut:
    return RuleSetOut(
        station=station,
        version=row.version if row else 0,
        rules=rules.to_json(),
        created_by=row.created_by if row else None,
        created_at=row.created_at if row else None,
        reason=row.reason if row else None,
        false_alarm_per_100k=rules.false_alarm_per_100k,
        changes=_changes(row.old if row else None, rules),
    )


def _changes(old: Mapping[str, Any] | None, new: AlarmRuleSet) -> list[str]:
    """The diff from the rules a version replaced (None: it replaced the defaults)."""
    try:
        before = DEFAULT_RULES if old is None else AlarmRuleSet.from_json(old)
    except ValueError:  # written by an older version with other rules
        return ["(the rules replaced are unreadable)"]
    return diff_rule_sets(before, new)


def rule_history(app: Pipeline, *, station: str) -> list[RuleSetOut]:
    """Every stored version of the station's rules, newest first, each with what it changed."""
    station = validate_station(station)
    with app.read() as s:
        rows = store.rule_set_history(s, station=station)
    out = []
    for row in reversed(rows):
        try:
            rules = AlarmRuleSet.from_json(row.rules)
        except ValueError:
            continue  # unreadable (an older version's rules): rules_in_force logs it
        out.append(_rule_set_out(station, rules, row))
    return out


class RulesPreview(BaseModel):
    station: str
    base_version: int  # the version the change is made against (a save checks it is still in force)
    rules: dict[str, Any]  # the new rules, validated and normalised (AlarmRuleSet.to_json())
    changes: list[str]  # empty: the new rules equal the ones in force
    false_alarm_per_100k: float


def preview_rules(app: Pipeline, *, station: str, rules: AlarmRuleSet | Mapping[str, Any]) -> RulesPreview:
    """Validate a rule change and say what it changes, storing nothing (the diff before a save)."""
    station = validate_station(station)
    new = _parse_rules(rules)
    with app.read() as s:
        current, row = rules_in_force(s, station=station)
    return RulesPreview(
        station=station,
        base_version=row.version if row else 0,
        rules=new.to_json(),
        changes=diff_rule_sets(current, new),
        false_alarm_per_100k=new.false_alarm_per_100k,
    )


def _parse_rules(rules: AlarmRuleSet | Mapping[str, Any]) -> AlarmRuleSet:
    try:
        return rules if isinstance(rules, AlarmRuleSet) else AlarmRuleSet.from_json(rules)
    except ValueError as exc:
        raise InputError(f"invalid alarm rules: {exc}") from None


def get_rules(app: Pipeline, *, station: str) -> RuleSetOut:
    station = validate_station(station)
    with app.read() as s:
        rules, row = rules_in_force(s, station=station)
    return _rule_set_out(station, rules, row)


def _who_why(by: str, reason: str) -> tuple[str, str]:
    by = validate_name(by, "by (who makes the change)")
    if not (reason or "").strip():
        raise InputError("a reason is required: say why")
    return by, reason.strip()


def set_rules(
    app: Pipeline,
    *,
    station: str,
    rules: AlarmRuleSet | Mapping[str, Any],
    by: str,
    reason: str,
    base_version: int | None = None,
) -> RuleSetOut:
    """Store a new version of the station's alarm rules (JSON as `AlarmRuleSet.to_json()`).
    `base_version`: the version the engineer changed (from `preview_rules`); the save is refused when
    another version was stored since, so nobody overwrites a change they have not seen."""
    station = validate_station(station)
    by, reason = _who_why(by, reason)
    new = _parse_rules(rules)
    now = app.clock()
    try:
        with app.write() as s:
            old = store.current_rule_set(s, station=station)
            if base_version is not None and base_version != (old.version if old else 0):
                raise InputError(
                    f"the alarm rules of {station} changed since you looked (now v{old.version if old else 0} "
                    f"by {old.created_by if old else '-'}); look again and retry"
                )
            row = store.AlarmRuleSetRow(
                station=station,
                version=(old.version if old else 0) + 1,
                rules=new.to_json(),
                created_by=by,
                created_at=now,
                reason=reason,
                old=old.rules if old else None,
            )
            store.add_rule_set(s, row=row)
            changes = _changes(row.old, new)
            detail = {"version": row.version, "reason": reason, "rules": row.rules, "changes": changes}
            store.add_event(s, kind="monitor.rules_changed", at=now, actor=by, station=station, detail=detail)
    except IntegrityError:
        raise InputError(f"the alarm rules of {station} were changed concurrently; look again and retry") from None
    return _rule_set_out(station, new, row)


class ReferenceOut(BaseModel):
    station: str
    version: int
    n: int
    spec: dict[str, Any]
    source: str
    created_by: str | None = None
    created_at: datetime | None = None
    reason: str | None = None


def get_reference(app: Pipeline, *, station: str) -> ReferenceOut | None:
    """The station's reference window in force; None when the production model's reference holds."""
    station = validate_station(station)
    with app.read() as s:
        row = store.current_reference(s, station=station)
    return None if row is None else _reference_out(row)


def _reference_out(row: store.StationReferenceRow) -> ReferenceOut:
    return ReferenceOut(
        station=row.station,
        version=row.version,
        n=row.n,
        spec=row.spec,
        source=_spec_text(row.spec),
        created_by=row.created_by,
        created_at=row.created_at,
        reason=row.reason,
    )


def set_reference_window(
    app: Pipeline,
    *,
    station: str,
    by: str,
    reason: str,
    first: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ReferenceOut:
    """The station's reference becomes its own samples: the first `first` items received at or after
    `since` (e.g. "the first 2,000 items after installation"), or every item in [since, until)."""
    station = validate_station(station)
    by, reason = _who_why(by, reason)
    if (first is None) == (until is None):
        raise InputError("give either first=N (with an optional since) or a date range since/until")
    if first is not None and not 1 <= first <= MAX_WINDOW_ITEMS:
        raise InputError(f"first must be within 1..{MAX_WINDOW_ITEMS}, got {first}")
    if until is not None and (since is None or since >= until):
        raise InputError("a date range needs since < until")
    spec = {
        "first": first,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    now = app.clock()
    with app.write() as s:
        rows = store.samples_in_range(s, station=station, since=since, until=until, limit=first or MAX_WINDOW_ITEMS)
        if not rows:
            raise InputError(f"no monitored items of {station} in that window ({_spec_text(spec)})")
        ref = Reference.from_samples([to_sample(r) for r in rows], source=f"{station} window")
        ref = replace(ref, calibration=window_calibration(s, station=station, rows=rows))
        old = store.current_reference(s, station=station)
        row = store.StationReferenceRow(
            station=station,
            version=(old.version if old else 0) + 1,
            spec=spec,
            reference=ref.to_json(),
            n=len(rows),
            first_sample_id=rows[0].id,
            last_sample_id=rows[-1].id,
            created_by=by,
            created_at=now,
            reason=reason,
        )
        store.add_reference(s, row=row)
        detail = {"version": row.version, "n": row.n, "spec": spec, "reason": reason}
        store.add_event(s, kind="monitor.reference_set", at=now, actor=by, station=station, detail=detail)
    return _reference_out(row)


def _spec_text(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in spec.items() if v is not None)


# ---------------------------------------------------------------------------------------------
# Restore and example images


def restore_level(app: Pipeline, *, station: str, level: str | AutomationLevel, by: str, reason: str) -> Policy:
    """An engineer's deliberate restore after a demotion: a new policy version and `interlock.restored`."""
    station = validate_station(station)
    by, reason = _who_why(by, reason)
    try:
        new_level = AutomationLevel(level)
    except ValueError:
        raise InputError(f"unknown automation level {level!r}") from None
    old = policies.get_policy(app, station=station)
    try:
        policy = policies.set_policy(app, station=station, by=by, reason=f"restore: {reason}", level=new_level)
    except PolicyError as exc:
        raise InputError(str(exc)) from None
    with app.write() as s:
        detail = {"from": old.level.value, "to": new_level.value, "reason": reason}
        store.add_event(s, kind="interlock.restored", at=app.clock(), actor=by, station=station, detail=detail)
    return policy


@dataclass(frozen=True)
class AlarmExamples:
    drifted: list[Path]  # images of the window that fired
    reference: list[Path]  # images to compare them with
    reference_caption: str  # where the reference images come from


def alarm_example_set(app: Pipeline, *, alarm_id: int, n: int = 8) -> AlarmExamples:
    """Images of the window that fired beside reference images: the station's reference window when
    it has one; else (the reference is the model artifact's, whose images are not in this database)
    the station's own items from just before the drifted window."""
    with app.read() as s:
        alarm = store.get_alarm(s, alarm_id=alarm_id)
        if alarm is None:
            raise NotFound(f"alarm {alarm_id} not found")
        first, last = alarm.first_sample_id, alarm.last_sample_id
        drifted: list[str] = []
        if first is not None and last is not None:
            drifted = store.sample_image_paths(s, station=alarm.station, first_id=first, last_id=last, n=n)
        ref = store.current_reference(s, station=alarm.station)
        reference: list[str] = []
        if ref is not None and ref.first_sample_id is not None and ref.last_sample_id is not None:
            reference = store.sample_image_paths(
                s, station=alarm.station, first_id=ref.first_sample_id, last_id=ref.last_sample_id, n=n
            )
            caption = f"the station's reference window v{ref.version} ({_spec_text(ref.spec)})"
        elif first is not None:
            reference = store.sample_image_paths_before(
                s, station=alarm.station, before_id=first, n=n, span=BEFORE_ITEMS
            )
            caption = (
                "the station's own items from before the drifted window (the reference is the model's, "
                "whose images are not stored here)"
            )
        else:
            caption = "none: the alarm has no sample window"
    return AlarmExamples([app.resolve(p) for p in drifted], [app.resolve(p) for p in reference], caption)


def alarm_examples(app: Pipeline, *, alarm_id: int, n: int = 8) -> tuple[list[Path], list[Path]]:
    """(drifted, reference) images of an alarm, as `alarm_example_set` picks them."""
    ex = alarm_example_set(app, alarm_id=alarm_id, n=n)
    return ex.drifted, ex.reference


# ---------------------------------------------------------------------------------------------
# Gauges (Prometheus reads them at scrape time)


@dataclass(frozen=True)
class StationGauges:
    station: str
    evaluated_at: datetime
    results: list[dict[str, Any]]  # the latest look of each rule (see DriftOut)


@dataclass(frozen=True)
class MonitorGauges:
    alarms: list[AlarmOut]  # open now
    stations: list[StationGauges]


def monitor_gauges(app: Pipeline) -> MonitorGauges:
    """Open alarms and every station's latest looks: two small reads."""
    with app.read() as s:
        alarms = [alarm_out(a) for a in store.open_alarms(s)]
        states = [StationGauges(st.station, st.evaluated_at, list(st.results)) for st in store.monitor_states(s)]
    return MonitorGauges(alarms, states)
