"""Gradual ramp of a candidate: start, pause, resume, abort, and the evaluation the monitoring loop runs.

The decision is `core.ramp.decide` on evidence read here: items the candidate scored (shadow step)
or decided (canary steps), each with its live label weighted 1 / audit rate, and the open alarms of
every station (the deployment serves them all). Advancing changes the deployment's canary fraction
one step at a time through `deploy` (the same rows and events as an engineer's change); the last
step promotes; a breach or an open alarm withdraws the candidate, so production stays (goes back
to) the model before the ramp. Each step, rollback, pause and abort is a `ramp.*` event with the
evidence. During canary steps `ingest` audits the candidate's automatic decisions at the plan's
audit rate.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inspection import store
from inspection.core.ramp import (
    DEFAULT_PLAN,
    Advance,
    Decision,
    Evidence,
    LabelledItem,
    RampError,
    RampPlan,
    RampState,
    Rollback,
    decide,
    evidence_from_items,
)
from inspection.services import deploy
from inspection.services.context import Pipeline
from inspection.services.registry import DeployError, Report, current_state, declared_versions, model_dir

__all__ = [
    "RampError",
    "RampEvent",
    "RampOut",
    "abort",
    "evaluate_ramp",
    "history",
    "pause",
    "resume",
    "start",
    "status",
]

SYSTEM = "ramp"  # the actor of automatic steps


class RampOut(Report):
    id: int
    candidate: str
    production: str
    status: str
    step: int
    step_label: str
    fraction: float
    plan: dict[str, Any]
    created_by: str
    reason: str
    forced: bool
    evidence: dict[str, Any] | None = None  # the last evaluation: evidence, decision and reasons


def _out(row: store.RampRow) -> RampOut:
    plan = RampPlan.from_json(row.plan)
    step = plan.steps[min(row.step, len(plan.steps) - 1)]
    assert row.id is not None
    return RampOut(
        id=row.id, candidate=row.candidate_version, production=row.production_version, status=row.status,
        step=row.step, step_label=step.label, fraction=step.fraction, plan=row.plan, created_by=row.created_by,
        reason=row.reason, forced=row.forced, evidence=row.last_evidence,
    )  # fmt: skip


def status(app: Pipeline) -> RampOut | None:
    """The active ramp, else the latest one; None when there has never been one."""
    with app.read() as session:
        row = store.active_ramp(session) or next(iter(store.latest_ramps(session, limit=1)), None)
        return _out(row) if row is not None else None


class RampEvent(Report):
    """One ramp event for the screen: a step taken, a rollback, a pause, with its evidence."""

    at: datetime | None
    kind: str  # started | advanced | completed | rolled_back | paused | resumed | aborted
    actor: str | None
    step_label: str
    reasons: list[str]
    evidence: dict[str, Any] | None


def history(app: Pipeline, *, ramp_id: int, limit: int = 200) -> list[RampEvent]:
    """The ramp's events, oldest first."""
    with app.read() as session:
        row = session.get(store.RampRow, ramp_id)
        events = [e for e in store.list_events(session, limit=10_000) if e.kind.startswith("ramp.")
                  and (e.detail or {}).get("ramp_id") == ramp_id]  # fmt: skip
    steps = RampPlan.from_json(row.plan).steps if row is not None else ()
    out = []
    for e in reversed(events[:limit]):
        d = e.detail or {}
        step = d.get("step", 0) if isinstance(d.get("step"), int) else 0
        label = steps[min(step, len(steps) - 1)].label if steps else ""
        reasons = [str(r) for r in d.get("reasons") or []] or ([str(d["reason"])] if d.get("reason") else [])
        out.append(RampEvent(at=e.at, kind=e.kind.removeprefix("ramp."), actor=e.actor, step_label=label,
                             reasons=reasons, evidence=d.get("evidence")))  # fmt: skip
    return out


def _save(app: Pipeline, row: store.RampRow, *, kind: str, by: str, detail: dict[str, Any]) -> RampOut:
    now = app.clock()
    with app.write() as session:
        row.updated_at = now
        merged = store.add_ramp(session, row=session.merge(row))
        store.add_event(session, kind=f"ramp.{kind}", at=now, actor=by,
                        detail={"ramp_id": merged.id, "candidate": row.candidate_version, **detail})  # fmt: skip
        return _out(merged)


def _set_step(app: Pipeline, row: store.RampRow, plan: RampPlan, step: int, *, by: str, reason: str) -> None:
    """Put the deployment at the step's fraction (shadow at 0)."""
    fraction = plan.steps[step].fraction
    if fraction <= 0.0:
        deploy.shadow(app, version=row.candidate_version, by=by, reason=reason)
    else:
        deploy.canary(app, version=row.candidate_version, fraction=fraction, by=by, reason=reason, force=row.forced)


def start(
    app: Pipeline, *, version: str, by: str, reason: str, plan: RampPlan | None = None, force: bool = False
) -> RampOut:
    """Start a ramp of `version` at the plan's first step. Refused while another ramp is active, and
    (unless `force` with a reason) when a canary of the candidate would be refused."""
    p = (plan or DEFAULT_PLAN).validate()
    who = (by or "").strip()
    if not who:
        raise DeployError("who starts the ramp is required (--by NAME)")
    v = model_dir(app, version).name
    with app.read() as session:
        active = store.active_ramp(session)
    if active is not None:
        raise DeployError(f"a ramp of {active.candidate_version} is {active.status}; abort it first")
    first_canary = next(s.fraction for s in p.steps if s.fraction > 0)
    # The same checks a canary makes (worse on held-out labels needs force and a reason), up front.
    checked = deploy.plan(app, action="canary", version=v, fraction=min(first_canary, 0.99), force=force,
                          reason=reason)  # fmt: skip
    now = app.clock()
    with app.read() as session:
        last_id = store.last_inspection_id(session)
    row = store.RampRow(
        candidate_version=v, production_version=checked.before.production, plan=p.to_json(), status="running",
        step=0, step_started_at=now, first_inspection_id=last_id, step_first_inspection_id=last_id,
        forced=checked.forced, created_by=who, created_at=now, reason=(reason or "").strip(), updated_at=now,
    )  # fmt: skip
    _set_step(app, row, p, 0, by=who, reason=f"ramp start: {reason}".strip())
    return _save(app, row, kind="started", by=who, detail={"plan": p.to_json(), "reason": row.reason,
                                                           "forced": row.forced})  # fmt: skip


def _active(app: Pipeline) -> store.RampRow:
    with app.read() as session:
        row = store.active_ramp(session)
    if row is None:
        raise DeployError("no ramp is running")
    return row


def pause(app: Pipeline, *, by: str, reason: str = "") -> RampOut:
    """Stop advancing (the deployment stays where it is; alarms and breaches still roll back)."""
    row = _active(app)
    if row.status == "paused":
        raise DeployError("the ramp is already paused")
    row.status = "paused"
    return _save(app, row, kind="paused", by=by, detail={"reason": reason})


def resume(app: Pipeline, *, by: str, reason: str = "") -> RampOut:
    row = _active(app)
    if row.status != "paused":
        raise DeployError("the ramp is not paused")
    row.status = "running"
    return _save(app, row, kind="resumed", by=by, detail={"reason": reason})


def abort(app: Pipeline, *, by: str, reason: str = "") -> RampOut:
    """End the ramp and withdraw the candidate: all traffic to production at once."""
    row = _active(app)
    _withdraw(app, row, by=by, reason=f"ramp aborted: {reason}".strip())
    return _end(app, row, status="aborted", by=by, detail={"reason": reason})


def _withdraw(app: Pipeline, row: store.RampRow, *, by: str, reason: str) -> None:
    state = current_state(app)
    if state.candidate == row.candidate_version and state.mode != store.DeploymentMode.NONE:
        deploy.rollback(app, by=by, reason=reason)


def _end(app: Pipeline, row: store.RampRow, *, status: str, by: str, detail: dict[str, Any]) -> RampOut:
    row.status = status
    row.ended_at = app.clock()
    return _save(app, row, kind=status, by=by, detail=detail)


# Evaluation (the monitoring loop)


def _evidence(app: Pipeline, row: store.RampRow, plan: RampPlan) -> Evidence:
    """Shadow step: the items the candidate scored in this step. Canary steps: the items it decided
    in this step count towards min_items; labels count from every item it decided in the ramp."""
    path = model_dir(app, row.candidate_version)
    names = declared_versions(path.parent, path.name)
    with app.read() as session:
        items = store.ramp_items(session, candidate_versions=names, after_id=row.first_inspection_id)
        alarms = store.open_alarms(session)
        alarm_text = tuple(f"{a.station}: {a.rule} ({a.metric}, {a.severity})" for a in alarms)
    role = store.PredictionRole.SHADOW if plan.steps[row.step].fraction <= 0 else store.PredictionRole.CANARY
    step_items = sum(1 for x in items if x.role == role and x.inspection_id > row.step_first_inspection_id)
    pool = [x for x in items if x.role == role and (role == store.PredictionRole.CANARY
                                                   or x.inspection_id > row.step_first_inspection_id)]  # fmt: skip
    labelled = [
        LabelledItem(candidate_scratch=x.candidate_score >= 0.5, passed=role == store.PredictionRole.CANARY
                     and x.route == "auto_pass", label=x.label, weight=x.weight)
        for x in pool
    ]  # fmt: skip
    return evidence_from_items(step_items, labelled, confidence=plan.confidence, open_alarms=alarm_text)


def _record(decision: Decision, ev: Evidence, step: int) -> dict[str, Any]:
    return {"step": step, "decision": decision.kind, "reasons": list(decision.reasons), "evidence": ev.to_json()}


def evaluate_ramp(app: Pipeline) -> RampOut | None:
    """One evaluation of the active ramp (none: None). A paused ramp still rolls back on a breach."""
    with app.read() as session:
        row = store.active_ramp(session)
    if row is None:
        return None
    state = current_state(app)
    if state.candidate != row.candidate_version or state.mode == store.DeploymentMode.NONE:
        who = state.actor or "someone"
        return _end(app, row, status="aborted", by=SYSTEM, detail={"reason": f"deployment changed by {who}"})
    plan = RampPlan.from_json(row.plan)
    ev = _evidence(app, row, plan)
    decision = decide(plan, RampState(row.step), ev)
    if row.status == "paused" and not isinstance(decision, Rollback):
        decision = decide(plan, RampState(row.step, "paused"), ev)  # paused: never advance
    row.last_evidence = _record(decision, ev, row.step)
    if isinstance(decision, Rollback):
        _withdraw(app, row, by=SYSTEM, reason="ramp rollback: " + "; ".join(decision.reasons))
        return _end(app, row, status="rolled_back", by=SYSTEM, detail=row.last_evidence)
    if isinstance(decision, Advance):
        return _advance(app, row, plan, decision, ev)
    with app.write() as session:  # hold: keep the latest evidence for the screen, no event
        session.merge(row)
    return _out(row)


def _advance(app: Pipeline, row: store.RampRow, plan: RampPlan, decision: Advance, ev: Evidence) -> RampOut:
    detail = {**(row.last_evidence or {}), "to_step": decision.to_step}
    if decision.to_step == len(plan.steps) - 1:
        deploy.promote_ramped(app, version=row.candidate_version, by=SYSTEM,
                              reason="ramp completed: " + "; ".join(decision.reasons), evidence=detail)  # fmt: skip
        row.step = decision.to_step
        return _end(app, row, status="completed", by=SYSTEM, detail=detail)
    try:
        _set_step(app, row, plan, decision.to_step, by=SYSTEM, reason="ramp step: " + "; ".join(decision.reasons))
    except DeployError as exc:  # e.g. a canary refused since the start: hold, and say why on the screen
        row.last_evidence = {**detail, "decision": "hold", "reasons": [f"step refused: {exc}"]}
        with app.write() as session:
            session.merge(row)
        return _out(row)
    with app.read() as session:
        last_id = store.last_inspection_id(session)
    row.step, row.step_first_inspection_id, row.step_started_at = decision.to_step, last_id, app.clock()
    return _save(app, row, kind="advanced", by=SYSTEM, detail=detail)
