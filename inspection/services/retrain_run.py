"""The body of one automatic retrain run (services.retrain_trigger starts it in the background).

The candidate is built by `retrain.retrain`, the very code `inspection retrain` runs (same data set,
held-out split, training, registration, event). Then both models score the candidate's held-out items
one by one, and `core.retrain_trigger.judge` decides: only a better candidate goes into shadow (or onto
the default ramp plan when the engineer allowed it). Nothing here ever promotes. Progress, metrics and
the outcome go to the run's row; the start and the end are `retrain.run_*` events with the metrics.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from inspection import store
from inspection.core.retrain_trigger import HeldOutMetrics, TriggerSettings, Verdict, heldout_metrics, judge
from inspection.services import deploy, ramp, retrain
from inspection.services.context import Pipeline
from inspection.services.policies import get_policy
from inspection.services.registry import DeployError, current_state, read_artifact
from inspection.vision.images import ImageError, read_image_file

__all__ = ["SYSTEM", "busy_reason", "execute_run", "save_progress", "trigger_settings"]

SYSTEM = "retrain-trigger"  # the actor of automatic runs and their deployment changes
log = logging.getLogger("inspection.retrain_trigger")
_EPOCH = re.compile(r"^epoch (\d+):")
_SCHEDULED = re.compile(r"^(\d+) epochs \(")  # retrain's line when the schedule chose the epochs


def trigger_settings(row: store.RetrainTriggerRow | None) -> TriggerSettings:
    if row is None:
        return TriggerSettings()
    return TriggerSettings.from_json({"enabled": row.enabled, "on_labels": row.on_labels,
                                      "every_hours": row.every_hours, "on_drift": row.on_drift,
                                      "deploy_as": row.deploy_as, **(row.params or {})})  # fmt: skip


def busy_reason(app: Pipeline) -> str | None:
    """Why a new candidate must not replace the current one now: a canary or a ramp is deciding."""
    with app.read() as session:
        active = store.active_ramp(session)
    if active is not None:
        return f"a ramp of {active.candidate_version} is {active.status}"
    state = current_state(app)
    if state.mode == store.DeploymentMode.CANARY and state.candidate:
        return f"a canary of {state.candidate} decides {state.canary_fraction:.0%} of items"
    return None


def save_progress(app: Pipeline, *, run_id: int, progress: float | None = None, message: str | None = None,
                  **fields: Any) -> store.RetrainRunRow:  # fmt: skip
    """Write the run's progress (also its heartbeat) and any other fields, in a short transaction of its
    own: the screen polls it while the run goes on."""
    with app.write() as session:
        row = store.get_retrain_run(session, run_id=run_id)
        if row is None:
            raise LookupError(f"no retrain run {run_id}")
        if progress is not None:
            row.progress = max(row.progress, min(1.0, progress))
        if message is not None:
            row.message = message[:500]
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = app.clock()
        session.add(row)
        session.flush()
        session.expunge(row)
        return row


def _event(app: Pipeline, run: store.RetrainRunRow, kind: str, detail: dict[str, Any]) -> None:
    with app.write() as session:
        store.add_event(session, kind=f"retrain.{kind}", at=app.clock(), actor=SYSTEM, station=run.station,
                        detail={"run_id": run.id, "trigger": run.trigger, **detail})  # fmt: skip


def _finish(app: Pipeline, run_id: int, *, status: str, outcome: str, reason: str,
            metrics: dict[str, Any] | None = None, candidate: str | None = None) -> store.RetrainRunRow:  # fmt: skip
    row = save_progress(app, run_id=run_id, progress=1.0, message=f"{status}: {reason}", status=status,
                        outcome=outcome, outcome_reason=reason, finished_at=app.clock(), metrics=metrics,
                        candidate_version=candidate)  # fmt: skip
    _event(app, row, "run_finished", {"status": status, "outcome": outcome, "reason": reason,
                                      "candidate": candidate, "production": row.production_version,
                                      "metrics": metrics})  # fmt: skip
    return row


def _score(app: Pipeline, version: str, rows: Sequence[store.LabelledRow]) -> dict[int, float]:
    """Score of `version` per held-out item it can judge (an unreadable image, or one where it finds
    no phone, gets none; the comparison then uses the items both models scored)."""
    scorer = app.scorer(version)
    scores: dict[int, float] = {}
    for start in range(0, len(rows), 16):
        chunk, images = [], []
        for r in rows[start : start + 16]:
            try:
                images.append(read_image_file(app.resolve(r.image_path), max_pixels=app.settings.max_pixels))
                chunk.append(r)
            except ImageError:
                continue
        for r, scored in zip(chunk, scorer.score(images) if images else [], strict=True):
            pred = scored.prediction
            if pred.valid and pred.score is not None:
                scores[r.inspection_id] = float(pred.score)
    return scores


def _compare(app: Pipeline, run: store.RetrainRunRow, result: retrain.RetrainResult,
             settings: TriggerSettings) -> tuple[Verdict, dict[str, Any]]:  # fmt: skip
    """Both models on the candidate's held-out items at the station's operating thresholds."""
    data = read_artifact(result.path).metrics.get("retrain", {}).get("data", {})
    test_ids = [int(i) for i in data.get("test_ids", [])]
    with app.read() as session:
        rows = [r for r in store.labelled_history(session, inspection_ids=test_ids) if r.label in ("scratch", "ok")]
    policy = get_policy(app, station=run.station)
    cut = {"pass_below": policy.pass_below, "reject_above": policy.reject_above}
    cand_scores = _score(app, result.version, rows)
    save_progress(app, run_id=int(run.id or 0), progress=0.9, message="scoring production on the held-out labels")
    prod_scores: dict[int, float] | None = None
    try:
        prod_scores = _score(app, result.production_version, rows)
    except Exception as exc:  # no usable production model: judge() keeps the candidate out
        log.warning("production %s could not be scored: %s", result.production_version, exc)
    both = [
        r for r in rows if r.inspection_id in cand_scores and (prod_scores is None or r.inspection_id in prod_scores)
    ]
    labels = [r.label == "scratch" for r in both]
    cand = heldout_metrics(labels, [cand_scores[r.inspection_id] for r in both], **cut)
    prod: HeldOutMetrics | None = None
    if prod_scores is not None:
        prod = heldout_metrics(labels, [prod_scores[r.inspection_id] for r in both], **cut)
    verdict = judge(cand, prod, min_auroc_gain=settings.min_auroc_gain)
    metrics = {
        "rule": f"AUROC higher by more than {settings.min_auroc_gain:g} and no more escapes at pass_below",
        "heldout_ids": test_ids,
        "unscored": len(rows) - len(both),  # held-out items one of the models could not judge (left out)
        "candidate": {"version": result.version, **cand.to_json()},
        "production": {"version": result.production_version, **(prod.to_json() if prod else {})},
        "retrain": {
            "verdict": result.verdict,
            "n_train": result.n_train,
            "n_test": result.n_test,
            "data_hash": result.data_hash,
            "seconds": round(result.seconds, 1),
        },
        "reasons": list(verdict.reasons),
    }
    return verdict, metrics


def _deploy(app: Pipeline, version: str, settings: TriggerSettings, why: str) -> tuple[str, str]:
    """(outcome, reason): the better candidate in shadow or on a ramp, never promoted. A canary or a
    ramp started meanwhile wins: the candidate then stays registered and out of the deployment."""
    busy = busy_reason(app)
    if busy:
        return "kept_out", f"better, but not deployed: {busy}"
    reason = f"automatic candidate: {why}"
    try:
        if settings.deploy_as == "ramp":
            ramp.start(app, version=version, by=SYSTEM, reason=reason)
            return "ramp", f"better; ramp started at shadow: {why}"
        deploy.shadow(app, version=version, by=SYSTEM, reason=reason)
        return "shadow", f"better; in shadow: {why}"
    except DeployError as exc:
        return "kept_out", f"better, but the deployment refused it: {exc}"


def _progress_log(app: Pipeline, run_id: int, epochs: int | None) -> Any:
    """Progress by epoch; with no epochs set, the total is the one retrain logs from the schedule."""
    total = [epochs]

    def log_line(message: str) -> None:
        scheduled = _SCHEDULED.match(message)
        if scheduled and total[0] is None:
            total[0] = int(scheduled.group(1))
        m = _EPOCH.match(message)
        if m and total[0]:  # training takes most of the time: 10 % .. 80 % by epoch
            save_progress(app, run_id=run_id, progress=0.1 + 0.7 * int(m.group(1)) / total[0], message=message)

    return log_line


def execute_run(app: Pipeline, *, run_id: int) -> store.RetrainRunRow:
    """Run a queued run to its end; every failure is recorded on the run, none escapes."""
    with app.read() as session:
        trig = store.current_trigger(session, station=(run := _get(app, run_id)).station)
    production = current_state(app).production
    run = save_progress(app, run_id=run_id, progress=0.02, message="building the data set from stored labels",
                        status=store.RunStatus.RUNNING.value, started_at=app.clock(),
                        production_version=production)  # fmt: skip
    try:
        settings = trigger_settings(trig)
        _event(app, run, "run_started", {"reason": run.trigger_detail, "production": production,
                                         "settings": settings.to_json()})  # fmt: skip
        result = retrain.retrain(app, by=SYSTEM, station=run.station, epochs=settings.epochs,
                                 min_per_class=settings.min_per_class, warm_start=settings.warm_start,
                                 log=_progress_log(app, run_id, settings.epochs))  # fmt: skip
        save_progress(app, run_id=run_id, progress=0.82, message="scoring the candidate on the held-out labels",
                      candidate_version=result.version)  # fmt: skip
        verdict, metrics = _compare(app, run, result, settings)
    except Exception as exc:  # too few labels, a training error, a broken image store: the run failed
        reason = str(exc) if isinstance(exc, retrain.NotEnoughLabels) else f"{type(exc).__name__}: {exc}"
        log.warning("retrain run %s failed: %s", run_id, reason)
        return _finish(app, run_id, status=store.RunStatus.FAILED.value, outcome="failed", reason=reason,
                       candidate=_get(app, run_id).candidate_version)  # fmt: skip
    why = "; ".join(verdict.reasons)
    if not verdict.better:
        reason = f"not better than production: {why}"
        return _finish(app, run_id, status=store.RunStatus.REJECTED.value, outcome="kept_out", reason=reason,
                       metrics=metrics, candidate=result.version)  # fmt: skip
    outcome, reason = _deploy(app, result.version, settings, why)
    return _finish(app, run_id, status=store.RunStatus.DONE.value, outcome=outcome, reason=reason, metrics=metrics,
                   candidate=result.version)  # fmt: skip


def _get(app: Pipeline, run_id: int) -> store.RetrainRunRow:
    with app.read() as session:
        row = store.get_retrain_run(session, run_id=run_id)
        if row is None:
            raise LookupError(f"no retrain run {run_id}")
        session.expunge(row)
        return row
