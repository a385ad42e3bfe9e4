"""Automatic candidates (issue 14): a station's retrain trigger, the check that starts a run, the runs.

`check_trigger` measures what `core.retrain_trigger.should_start` needs (new blind labels, time since
the last run, a drift alarm opened since, whether a run or a canary/ramp is in progress) and starts at
most one run per station: the database's unique index on active runs refuses a second even when two
server processes check at once. The monitoring loop calls `check_all` after each pass.

A run executes in the background (`process_runner`, the default): a separate process, started with
`spawn`, at a lower CPU priority (nice 10) and with one torch thread. Why a process, not a thread:
`torch.set_num_threads` is process-wide, so a training thread would change the serving model's thread
count too, and training's Python parts would hold the GIL against request handlers; a niced one-thread
process takes at most one of the machine's cores and yields it to ingest and review. Progress is
written to the run's row, which the Models tab and `inspection retrain trigger runs` read.
`thread_runner` (same process) serves the tests' fake models; `inline_runner` the CLI's foreground run.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from inspection import store
from inspection.config import Settings
from inspection.core.retrain_trigger import (
    StartDecision,
    TriggerError,
    TriggerInputs,
    TriggerSettings,
    should_start,
)
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.registry import Report
from inspection.services.retrain_run import SYSTEM, busy_reason, execute_run, save_progress, trigger_settings
from inspection.services.validation import validate_station

__all__ = [
    "CheckOut",
    "RunOut",
    "Runner",
    "TriggerError",
    "TriggerOut",
    "check_all",
    "check_trigger",
    "get_run",
    "get_trigger",
    "inline_runner",
    "list_runs",
    "process_runner",
    "run_now",
    "set_trigger",
    "thread_runner",
    "wait_run",
]

log = logging.getLogger("inspection.retrain_trigger")
Runner = Callable[[Pipeline, int], None]
# A queued or running run whose row has not changed for this long lost its process (server restart):
# it is marked failed so that the station can run again. Progress is written at least once per epoch.
STALE_AFTER = timedelta(minutes=30)
# Software alarms say nothing about the model: a slow server is not a reason to retrain.
NOT_DRIFT = frozenset({"latency_ms"})


class TriggerOut(Report):
    station: str
    version: int  # 0: never set (the defaults, disabled)
    settings: dict[str, Any]  # TriggerSettings.to_json()
    created_by: str | None = None
    created_at: datetime | None = None
    reason: str = ""


class RunOut(Report):
    id: int
    station: str
    trigger: str
    trigger_detail: str
    status: str
    progress: float
    message: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    production_version: str | None
    candidate_version: str | None
    metrics: dict[str, Any] | None
    outcome: str | None
    outcome_reason: str | None


class CheckOut(Report):
    station: str
    start: bool
    reason: str
    run: RunOut | None = None


def _run_out(row: store.RetrainRunRow) -> RunOut:
    return RunOut.model_validate(row, from_attributes=True)


def _trigger_out(station: str, row: store.RetrainTriggerRow | None) -> TriggerOut:
    if row is None:
        return TriggerOut(station=station, version=0, settings=TriggerSettings().to_json())
    return TriggerOut(station=station, version=row.version, settings=trigger_settings(row).to_json(),
                      created_by=row.created_by, created_at=row.created_at, reason=row.reason)  # fmt: skip


def get_trigger(app: Pipeline, *, station: str) -> TriggerOut:
    st = validate_station(station)
    with app.read() as session:
        return _trigger_out(st, store.current_trigger(session, station=st))


def set_trigger(app: Pipeline, *, station: str, settings: Mapping[str, Any], by: str, reason: str) -> TriggerOut:
    """Store a new version of the station's trigger (changed fields over the current ones), with who/why."""
    st = validate_station(station)
    who, why = (by or "").strip(), (reason or "").strip()
    if not who or not why:
        raise InputError("who changes the trigger and why are required (--by, --reason)")
    with app.write() as session:
        current = store.current_trigger(session, station=st)
        old = trigger_settings(current)
        new = TriggerSettings.from_json({**old.to_json(), **dict(settings)})
        row = store.RetrainTriggerRow(
            station=st, version=(current.version if current else 0) + 1, enabled=new.enabled,
            on_labels=new.on_labels, every_hours=new.every_hours, on_drift=new.on_drift, deploy_as=new.deploy_as,
            params=new.params, created_by=who, created_at=app.clock(), reason=why,
            old=old.to_json() if current else None,
        )  # fmt: skip
        store.add_trigger_version(session, row=row)
        detail = {"version": row.version, "old": row.old, "new": new.to_json(), "reason": why}
        store.add_event(session, kind="retrain.trigger_set", at=row.created_at, actor=who, station=st, detail=detail)
        return _trigger_out(st, row)


def list_runs(app: Pipeline, *, station: str | None = None, limit: int = 20) -> list[RunOut]:
    st = validate_station(station) if station is not None else None
    with app.read() as session:
        return [_run_out(r) for r in store.list_retrain_runs(session, station=st, limit=max(1, min(limit, 500)))]


def get_run(app: Pipeline, *, run_id: int) -> RunOut:
    with app.read() as session:
        row = store.get_retrain_run(session, run_id=run_id)
        if row is None:
            raise LookupError(f"no retrain run {run_id}")
        return _run_out(row)


# Deciding


def _fail_stale(app: Pipeline, now: datetime) -> None:
    with app.read() as session:
        stale = [int(r.id or 0) for r in store.stale_runs(session, updated_before=now - STALE_AFTER)]
    for run_id in stale:
        why = "the run stopped reporting progress (its process ended)"
        save_progress(app, run_id=run_id, status=store.RunStatus.FAILED.value, outcome="failed",
                      outcome_reason=why, finished_at=now)  # fmt: skip


def _inputs(app: Pipeline, station: str, now: datetime) -> tuple[TriggerSettings, TriggerInputs]:
    with app.read() as session:
        trig = store.current_trigger(session, station=station)
        last = store.last_retrain_run(session, station=station)
        since = last.created_at if last is not None else (trig.created_at if trig is not None else None)
        new_labels = store.blind_labels_after(session, station=station,
                                              after_review_id=last.last_review_id if last else 0)  # fmt: skip
        alarms = [a for a in store.open_alarms(session, station=station) if a.metric not in NOT_DRIFT
                  and (last is None or _aware(a.opened_at) > _aware(last.created_at))]  # fmt: skip
        running = store.active_run(session, station=station) is not None
    hours = (now - _aware(since)).total_seconds() / 3600 if since is not None else None
    drift = f"{alarms[-1].rule} ({alarms[-1].metric}, {alarms[-1].severity})" if alarms else None
    busy = None if running else busy_reason(app)
    return trigger_settings(trig), TriggerInputs(new_labels, hours, drift, running, busy)


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); compare them as UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _start(app: Pipeline, *, station: str, decision: StartDecision, by: str, runner: Runner | None) -> RunOut:
    now = app.clock()
    try:
        with app.write() as session:
            row = store.add_retrain_run(session, row=store.RetrainRunRow(
                station=station, trigger=decision.kind or "manual", trigger_detail=decision.reason,
                requested_by=by, created_at=now, updated_at=now, last_review_id=store.max_review_id(session),
                message="queued",
            ))  # fmt: skip
            run_id = int(row.id or 0)
    except store.AlreadyExists:
        raise InputError(f"a retrain run of {station} is in progress") from None
    (runner or process_runner)(app, run_id)
    return get_run(app, run_id=run_id)


def check_trigger(
    app: Pipeline, *, station: str, now: datetime | None = None, runner: Runner | None = None
) -> CheckOut:
    """Start a run of `station` if its trigger says so (at most one at a time)."""
    st = validate_station(station)
    when = _aware(now or app.clock())
    _fail_stale(app, when)
    settings, inputs = _inputs(app, st, when)
    decision = should_start(settings, inputs)
    if not decision.start:
        return CheckOut(station=st, start=False, reason=decision.reason)
    try:
        run = _start(app, station=st, decision=decision, by=SYSTEM, runner=runner)
    except InputError as exc:  # another process started one a moment ago
        return CheckOut(station=st, start=False, reason=str(exc))
    return CheckOut(station=st, start=True, reason=decision.reason, run=run)


def check_all(app: Pipeline, *, now: datetime | None = None, runner: Runner | None = None) -> list[CheckOut]:
    """The monitoring loop's pass: every station whose trigger is enabled."""
    with app.read() as session:
        stations = store.enabled_trigger_stations(session)
    return [check_trigger(app, station=s, now=now, runner=runner) for s in stations]


def run_now(app: Pipeline, *, station: str, by: str, reason: str = "", runner: Runner | None = None) -> RunOut:
    """An engineer's run, whatever the trigger's conditions (enabled or not); refused while a run of
    the station is in progress or a canary or ramp is deciding items."""
    st = validate_station(station)
    who = (by or "").strip()
    if not who:
        raise InputError("who starts the run is required (--by)")
    busy = busy_reason(app)
    if busy:
        raise InputError(f"not now: {busy} (a new candidate would replace it)")
    detail = f"run now by {who}" + (f": {reason.strip()}" if reason.strip() else "")
    return _start(app, station=st, decision=StartDecision(True, "manual", detail), by=who, runner=runner)


def wait_run(app: Pipeline, *, run_id: int, timeout: float = 600.0, poll: float = 0.5) -> RunOut:
    """The run once it has ended (TimeoutError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while (run := get_run(app, run_id=run_id)).status in store.ACTIVE_RUN:
        if time.monotonic() > deadline:
            raise TimeoutError(f"retrain run {run_id} still {run.status} after {timeout:.0f} s")
        time.sleep(poll)
    return run


# Runners


def inline_runner(app: Pipeline, run_id: int) -> None:
    """In the caller, to the end (the CLI: its process is already apart from the server)."""
    execute_run(app, run_id=run_id)


def thread_runner(app: Pipeline, run_id: int) -> None:
    """A daemon thread of this process, with this pipeline's models (tests with fake models)."""
    threading.Thread(target=execute_run, args=(app,), kwargs={"run_id": run_id}, name=f"retrain-{run_id}",
                     daemon=True).start()  # fmt: skip


def _child(settings: Settings, run_id: int) -> None:
    """The worker process: low priority, one thread, its own pipeline over the same database."""
    with contextlib.suppress(AttributeError, OSError):  # not on this platform or not allowed: normal priority
        os.nice(10)
    import torch  # only in the worker: the run trains and scores with torch

    torch.set_num_threads(1)
    app = Pipeline.create(settings.model_copy(update={"threads": 1}), upgrade=False)
    try:
        execute_run(app, run_id=run_id)
    finally:
        app.close()


def _watch(app: Pipeline, proc: Any, run_id: int) -> None:
    """Join the worker; a worker that died without ending its run (killed, out of memory) fails it. With the
    database out of reach at that moment (down, or a server shutting down) one line is logged, and the
    stale-run sweep (_fail_stale) fails a run left running: the watcher thread never dies on it."""
    proc.join()
    try:
        if get_run(app, run_id=run_id).status in store.ACTIVE_RUN:
            save_progress(app, run_id=run_id, status=store.RunStatus.FAILED.value, outcome="failed",
                          outcome_reason=f"the worker process ended with exit code {proc.exitcode}",
                          finished_at=app.clock())  # fmt: skip
    except SQLAlchemyError as exc:
        log.warning("retrain run %d: its worker ended (exit code %s) but the database could not be reached "
                    "to check the run: %s", run_id, proc.exitcode, type(exc).__name__)


def process_runner(app: Pipeline, run_id: int) -> None:
    """A separate, niced, one-thread process (spawn: no copy of the server's threads or locks)."""
    proc = multiprocessing.get_context("spawn").Process(target=_child, args=(app.settings, run_id),
                                                         name=f"retrain-{run_id}", daemon=True)  # fmt: skip
    proc.start()
    threading.Thread(target=_watch, args=(app, proc, run_id), name=f"retrain-watch-{run_id}", daemon=True).start()
