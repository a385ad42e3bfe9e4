"""Monitoring over HTTP (engineers): the report, a station's alarm rules, its reference window, an
evaluation on demand, and the deliberate restore of a level the interlock dropped. Plus the
background loop the API process runs (`MonitorLoop`, started and stopped by the app's lifespan)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from inspection.api.deps import EngineerUser, PipelineDep
from inspection.core.domain import Policy
from inspection.services import background, monitoring, ramp, retrain_trigger
from inspection.services.context import Pipeline

API = "/api/v1"
log = logging.getLogger("inspection.monitor")

router = APIRouter(prefix=f"{API}/monitoring", tags=["monitoring"])


class RulesIn(BaseModel):
    rules: dict[str, Any]  # {"rules": [...], "interlock": true|false|null}, as GET returns it
    reason: str = Field(min_length=1, max_length=2000)


class ReferenceIn(BaseModel):
    """Either `first` (with an optional `since`) or a date range `since`..`until`."""

    first: int | None = Field(default=None, ge=1)
    since: datetime | None = None
    until: datetime | None = None
    reason: str = Field(min_length=1, max_length=2000)


class RestoreIn(BaseModel):
    level: Literal["human_only", "shadow", "ai_assist", "partial", "full"]
    reason: str = Field(min_length=1, max_length=2000)


class ChangeOut(BaseModel):
    kind: str
    alarm: monitoring.AlarmOut
    demoted_to: str | None = None


@router.get("/report", response_model=monitoring.MonitorReport)
def report(
    user: EngineerUser,
    pipeline: PipelineDep,
    station: str | None = None,
    since: datetime | None = None,
    model: str | None = None,
) -> monitoring.MonitorReport:
    return monitoring.monitor_report(pipeline, station=station, since=since, model=model)


@router.get("/rules/{station}", response_model=monitoring.RuleSetOut)
def get_rules(station: str, user: EngineerUser, pipeline: PipelineDep) -> monitoring.RuleSetOut:
    return monitoring.get_rules(pipeline, station=station)


@router.put("/rules/{station}", response_model=monitoring.RuleSetOut)
def put_rules(station: str, body: RulesIn, user: EngineerUser, pipeline: PipelineDep) -> monitoring.RuleSetOut:
    return monitoring.set_rules(pipeline, station=station, rules=body.rules, by=user.name, reason=body.reason)


@router.post("/reference/{station}", response_model=monitoring.ReferenceOut)
def set_reference(
    station: str, body: ReferenceIn, user: EngineerUser, pipeline: PipelineDep
) -> monitoring.ReferenceOut:
    return monitoring.set_reference_window(
        pipeline,
        station=station,
        by=user.name,
        reason=body.reason,
        first=body.first,
        since=body.since,
        until=body.until,
    )


@router.post("/evaluate/{station}", response_model=list[ChangeOut])
def evaluate(station: str, user: EngineerUser, pipeline: PipelineDep) -> list[ChangeOut]:
    changes = monitoring.evaluate_station(pipeline, station=station)
    return [ChangeOut(kind=c.kind, alarm=c.alarm, demoted_to=c.demoted_to) for c in changes]


@router.post("/restore/{station}", response_model=Policy)
def restore(station: str, body: RestoreIn, user: EngineerUser, pipeline: PipelineDep) -> Policy:
    return monitoring.restore_level(pipeline, station=station, level=body.level, by=user.name, reason=body.reason)


class MonitorLoop:
    """Every `monitor_interval_seconds`, evaluate the stations with new samples, in a daemon thread
    (evaluation reads and writes the database: it must not hold the event loop). Each server process
    runs one; one process at a time makes a pass (services.background), and the database keeps alarms
    single even outside the loop (see services.monitor_eval)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.interval = pipeline.settings.monitor_interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor", daemon=True)

    def start(self) -> MonitorLoop:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:  # one server process at a time makes the pass (services.background); the others skip it
                with background.turn(self.pipeline) as mine:
                    if mine:
                        self._pass()
            except Exception:  # the database may be away for a while: log, keep watching
                log.exception("background pass failed")

    def _pass(self) -> None:
        try:
            monitoring.evaluate_pending(self.pipeline)
        except Exception:  # the database may be away for a while: log, keep watching
            log.exception("monitoring pass failed")
        try:  # after monitoring: a ramp rolls back on the alarms this pass opened
            ramp.evaluate_ramp(self.pipeline)
        except Exception:
            log.exception("ramp evaluation failed")
        try:  # after monitoring too: a drift alarm this pass opened may start a retrain run
            retrain_trigger.check_all(self.pipeline)
        except Exception:
            log.exception("retrain trigger check failed")
