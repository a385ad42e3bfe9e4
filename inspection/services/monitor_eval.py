"""Evaluating a station's alarm rules: the due looks, alarms opened and cleared (with their events,
in one transaction), the webhook, and the demotion interlock.

Evaluation is sequential: a statistical rule looks at the last `window` samples every `step` samples
of the station (`core.alarms`, false-alarm arithmetic in `core.drift`). The station's sample count
and the newest sample seen are kept in `monitor_states`, so an evaluation run every few seconds (the
API's background loop) or by hand (`inspection monitor evaluate`) makes exactly the looks that fell
due since the last one, each on the window ending at its own item: the number of looks is what the
false-alarm budget assumes, however often or rarely the evaluation runs. Concept rules (labels) get
one look per evaluation with new samples.

An alarm opens when any due look of its rule fired, and clears at a later evaluation whose latest
look of the rule is tested and does not fire. Two processes evaluating one station at once are safe:
the database opens an alarm once (`store.open_alarm`), and only the opener notifies and demotes.

The interlock acts once per incident: when an alarm of a rule with `demote=True` opens while no other
demoting alarm of the station is open, and the station's interlock is on
(`AlarmRuleSet.interlock_on`), the station drops one automation level (`services.policies.set_policy`
by "monitor" with the alarm as the reason; event `interlock.demoted`). It never raises a level and
never raises an exception; an engineer restores the level (`services.monitoring.restore_level`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from inspection import store
from inspection.core.alarms import AlarmRule, AlarmRuleSet, RuleOutcome, demote, evaluate
from inspection.core.concept import Concept
from inspection.core.domain import AutomationLevel
from inspection.core.drift import DriftResult, MonitorSample, Reference
from inspection.services import policies, webhook
from inspection.services.context import Pipeline
from inspection.services.monitor_data import concept_for, reference_for, rules_in_force, to_sample
from inspection.services.monitor_report import AlarmOut, alarm_out
from inspection.services.validation import validate_station

__all__ = ["MONITOR_ACTOR", "AlarmChange", "evaluate_pending", "evaluate_station"]

log = logging.getLogger("inspection.monitor")
MONITOR_ACTOR = "monitor"
MAX_NEW = 5_000  # new samples per evaluation pass (a backlog is caught up in passes, oldest first)
RECENT = 500  # samples the label-free escape estimate reads


@dataclass(frozen=True)
class AlarmChange:
    kind: Literal["fired", "cleared"]
    alarm: AlarmOut
    demoted_to: AutomationLevel | None = None  # the interlock dropped the station to this level


@dataclass
class _RuleLooks:
    """The due looks of one rule in one pass: the first that fired and the latest."""

    rule: AlarmRule
    latest: RuleOutcome
    fired: RuleOutcome | None = None
    fired_at: int = 0  # items seen at the firing look
    window_ids: tuple[int | None, int | None] = (None, None)  # sample ids of the firing window


@dataclass
class _Pass:
    station: str
    rules: AlarmRuleSet
    looks: list[_RuleLooks] = field(default_factory=list)
    last_id: int = 0
    n_seen: int = 0
    reference_source: str = ""
    more: bool = False


def evaluate_station(app: Pipeline, *, station: str, now: datetime | None = None) -> list[AlarmChange]:
    """Make the looks that fell due since the last evaluation; open and clear alarms (events, webhook,
    interlock). Returns what changed."""
    station = validate_station(station)
    changes: list[AlarmChange] = []
    while True:
        done = _one_pass(app, station=station, now=now or app.clock())
        if done is None:
            return changes
        changes += _apply(app, done, now=now or app.clock())
        if not done.more:
            return changes


def evaluate_pending(app: Pipeline) -> list[AlarmChange]:
    """Evaluate every station with samples newer than its last evaluation (the background loop)."""
    with app.read() as s:
        newest = store.latest_sample_ids(s)
        seen = {st.station: st.last_sample_id for st in store.monitor_states(s)}
    changes: list[AlarmChange] = []
    for station, top in sorted(newest.items()):
        if top > seen.get(station, 0):
            try:
                changes += evaluate_station(app, station=station)
            except Exception:  # one station's failure must not stop the others being watched
                log.exception("monitoring %s failed", station)
    return changes


def _one_pass(app: Pipeline, *, station: str, now: datetime) -> _Pass | None:
    with app.read() as s:
        state = next(iter(store.monitor_states(s, stations=[station])), None)
        rules, _row = rules_in_force(s, station=station)
        last_id, n_before = (state.last_sample_id, state.n_seen) if state else (0, 0)
        longest = max((r.window for r in rules.rules), default=1)
        context = store.recent_samples(s, station=station, limit=longest, up_to_id=last_id) if last_id else []
        new = store.samples_after(s, station=station, after_id=last_id, limit=MAX_NEW)
        if not new:
            return None
        ref = reference_for(app, s, station=station)
        rows = context + new
        samples = [to_sample(r) for r in rows]
        cal = ref.reference.calibration if ref.reference else None  # the reference's labels for CBPE
        concept = concept_for(app, s, station=station, recent=samples[-500:], now=now, calibration=cal)
    done = _Pass(station, rules, last_id=int(new[-1].id or 0), n_seen=n_before + len(new))
    done.reference_source, done.more = ref.source, len(new) == MAX_NEW
    ids = [r.id for r in rows]
    for rule in rules.rules:
        looks = _rule_looks(rule, ref.reference, samples, ids, concept, n_before=n_before, n_context=len(context))
        if looks is not None:
            done.looks.append(looks)
    return done


def _rule_looks(
    rule: AlarmRule,
    reference: Reference | None,
    samples: Sequence[MonitorSample],
    ids: Sequence[int | None],
    concept: Concept,
    *,
    n_before: int,
    n_context: int,
) -> _RuleLooks | None:
    """Every look of `rule` due at station item counts n_before+1 .. n_now, oldest first (concept
    rules: one look on the current labels)."""
    n_now = n_before + len(samples) - n_context
    if rule.is_concept:
        return _RuleLooks(rule, evaluate([rule], reference, samples, concept)[0])
    looks: _RuleLooks | None = None
    first_due = (n_before // rule.step + 1) * rule.step
    for end in range(first_due, n_now + 1, rule.step):
        stop = end - n_before + n_context  # index after the look's last item
        start = max(0, stop - rule.window)
        outcome = evaluate([rule], reference, samples[start:stop], concept)[0]
        if looks is None:
            looks = _RuleLooks(rule, outcome)
        looks.latest = outcome
        if outcome.firing and looks.fired is None:
            looks.fired, looks.fired_at, looks.window_ids = outcome, end, (ids[start], ids[stop - 1])
    return looks


def _json_num(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def _look_numbers(r: DriftResult) -> dict[str, Any]:
    """What a look measured, JSON-safe: shared by monitor_states rows and alarm evidence."""
    return {
        "metric": r.metric,
        "kind": r.kind,
        "statistic": _json_num(r.statistic),
        "p_value": _json_num(r.p_value),
        "effect": _json_num(r.effect),
        "threshold": _json_num(r.threshold),
        "n_window": int(r.n_window),
    }


def _result_json(station: str, rule: AlarmRule, r: DriftResult, at: datetime) -> dict[str, Any]:
    """One look as stored in monitor_states and shown as a DriftOut."""
    return {
        "station": station,
        "rule": rule.name,
        **_look_numbers(r),
        "breached": bool(r.breached),
        "skipped": r.detail.get("skipped"),
        "at": at.isoformat(),
    }


def _evidence(done: _Pass, looks: _RuleLooks, *, latest: bool = False) -> dict[str, Any]:
    """The look that fired (or with `latest`, the newest look: why an alarm cleared), JSON-safe."""
    fired = looks.fired if not latest else None
    r = (fired or looks.latest).result
    return {
        "rule": looks.rule.to_json(),
        **_look_numbers(r),
        "n_reference": r.n_reference,
        "detail": _jsonable(dict(r.detail)),
        "items_seen": looks.fired_at if fired else done.n_seen,
        "window_sample_ids": list(looks.window_ids) if fired else None,
        "reference": done.reference_source,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return _json_num(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass
class _Written:
    changes: list[AlarmChange] = field(default_factory=list)
    demoting: list[tuple[AlarmOut, AlarmRule]] = field(default_factory=list)  # opened, rule demotes
    incident_open: bool = False  # a demoting alarm of the station was open before this pass


def _write(app: Pipeline, done: _Pass, *, now: datetime) -> _Written:
    """Open and clear alarms, their events, and the station's state: one transaction."""
    out = _Written()
    with app.write() as s:
        open_by_rule = {a.rule: a for a in store.open_alarms(s, station=done.station)}
        demoting = {r.name for r in done.rules.rules if r.demote}
        out.incident_open = any(name in demoting for name in open_by_rule)
        for looks in done.looks:
            change = _open_or_clear(s, done, looks, open_by_rule.get(looks.rule.name), now=now)
            if change is None:
                continue
            out.changes.append(change)
            if change.kind == "fired" and looks.rule.demote:
                out.demoting.append((change.alarm, looks.rule))
        state = next(iter(store.monitor_states(s, stations=[done.station])), None)
        results = {r["rule"]: r for r in (state.results if state else [])}
        known = {r.name for r in done.rules.rules}
        results = {k: v for k, v in results.items() if k in known}
        for looks in done.looks:
            results[looks.rule.name] = _result_json(done.station, looks.rule, looks.latest.result, now)
        store.save_monitor_state(
            s,
            row=store.MonitorStateRow(
                station=done.station,
                evaluated_at=now,
                last_sample_id=done.last_id,
                n_seen=done.n_seen,
                results=[results[k] for k in sorted(results)],
            ),
        )
    return out


def _open_or_clear(
    s: store.Session, done: _Pass, looks: _RuleLooks, current: store.AlarmRow | None, *, now: datetime
) -> AlarmChange | None:
    rule = looks.rule
    if looks.fired is not None and current is None:
        first, last = looks.window_ids
        row = store.open_alarm(
            s,
            row=store.AlarmRow(
                station=done.station, rule=rule.name, metric=rule.metric, severity=rule.severity.value,
                opened_at=now, evidence=_evidence(done, looks), first_sample_id=first, last_sample_id=last,
            ),
        )  # fmt: skip
        if row is None:  # another process opened it first: it notifies
            return None
        alarm = alarm_out(row)
        detail = {"alarm_id": alarm.id, "rule": rule.name, "severity": alarm.severity, "evidence": alarm.evidence}
        store.add_event(s, kind="alarm.fired", at=now, actor=MONITOR_ACTOR, station=done.station, detail=detail)
        return AlarmChange("fired", alarm)
    latest = looks.latest
    tested = "skipped" not in latest.result.detail
    if current is not None and current.id is not None and tested and not latest.firing:
        evidence = _evidence(done, looks, latest=True)
        if not store.clear_alarm(s, alarm_id=current.id, at=now, evidence=evidence):
            return None
        alarm = alarm_out(current)
        detail = {"alarm_id": alarm.id, "rule": rule.name, "severity": alarm.severity, "evidence": evidence}
        store.add_event(s, kind="alarm.cleared", at=now, actor=MONITOR_ACTOR, station=done.station, detail=detail)
        return AlarmChange("cleared", alarm)
    return None


def _apply(app: Pipeline, done: _Pass, *, now: datetime) -> list[AlarmChange]:
    written = _write(app, done, now=now)
    changes = written.changes
    if written.demoting and not written.incident_open:
        alarm, rule = written.demoting[0]  # one incident, one level: the first demoting alarm decides
        level = _interlock(app, done, alarm, rule, now=now)
        changes = [_with_level(c, level) if c.alarm.id == alarm.id else c for c in changes]
    _notify(app, changes)
    return changes


def _with_level(change: AlarmChange, level: AutomationLevel | None) -> AlarmChange:
    return AlarmChange(change.kind, change.alarm, level)


def _interlock(
    app: Pipeline, done: _Pass, alarm: AlarmOut, rule: AlarmRule, *, now: datetime
) -> AutomationLevel | None:
    """Drop the station one level for `alarm` when its interlock is on. Never raises (the alarm
    stands either way); returns the new level, or None when nothing dropped."""
    try:
        current = policies.get_policy(app, station=done.station)
        to = demote(current.level)
        if to is None or not done.rules.interlock_on(current.level):
            return None
        reason = f"interlock: alarm #{alarm.id} {rule.name} ({alarm.severity}) on {rule.metric}"
        policies.set_policy(app, station=done.station, by=MONITOR_ACTOR, reason=reason, level=to)
        detail = {"from": current.level.value, "to": to.value, "alarm_id": alarm.id, "rule": rule.name}
        with app.write() as s:
            store.add_event(
                s, kind="interlock.demoted", at=now, actor=MONITOR_ACTOR, station=done.station, detail=detail
            )
        log.warning("interlock: %s dropped from %s to %s (%s)", done.station, current.level, to, reason)
        return to
    except Exception:  # a failed demotion must not lose the alarm or stop monitoring: logged loudly
        log.exception("interlock on %s failed for alarm #%s", done.station, alarm.id)
        return None


def _notify(app: Pipeline, changes: Sequence[AlarmChange]) -> None:
    notifier = webhook.notifier_for(app.settings.alarm_webhook_url)
    if notifier is None:
        return
    for c in changes:
        payload = {"event": f"alarm.{c.kind}", "alarm": c.alarm.model_dump(mode="json")}
        if c.demoted_to is not None:
            payload["interlock"] = {"demoted_to": c.demoted_to.value}
        notifier.notify(payload)
