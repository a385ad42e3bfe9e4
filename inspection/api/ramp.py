"""A candidate's gradual ramp and the retrain trigger over HTTP (engineers): the ramp's status and step
history, start / pause / resume / abort; a station's retrain trigger (read, new version with a reason),
its runs, and "run now". The same service calls as `inspection models ramp …`, `inspection retrain
trigger …` and the Models tab.

Refusals are 4xx with the service's own words, never 500: a plan that does not validate (the CLI's
`RampPlan.from_json`) or trigger settings that do not (`TriggerSettings.from_json`) are 422; an unknown
model version is 422 (it names something that is not there); a change the deployment's state refuses
(a ramp already running, no ramp running, a candidate worse on held-out labels without force) is 409;
an unknown run is 404. A station's run that cannot start now (one in progress, a canary or ramp
deciding) is 422 like every `InputError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from inspection.api.deps import EngineerUser, PipelineDep
from inspection.core.ramp import DEFAULT_PLAN, RampError, RampPlan
from inspection.core.retrain_trigger import TriggerError
from inspection.services import ramp as ramps  # `ramp` is also the status body's field
from inspection.services import registry, retrain_trigger

API = "/api/v1"
T = TypeVar("T")

router = APIRouter(prefix=API, tags=["ramp", "retrain"])


def get_runner() -> retrain_trigger.Runner | None:
    """The runner of "run now": None is the service's default, the niced background worker process.
    A dependency so that tests can swap it (`app.dependency_overrides`) for a thread with fake models."""
    return None


RunnerDep = Annotated[retrain_trigger.Runner | None, Depends(get_runner)]


@contextmanager
def _refusals() -> Iterator[None]:
    """The service's refusals as 4xx with their message (InputError is the app's 422 already)."""
    try:
        yield
    except (RampError, TriggerError) as exc:
        raise HTTPException(422, str(exc)) from None
    except registry.DeployError as exc:
        raise HTTPException(409, str(exc)) from None
    except LookupError as exc:
        raise HTTPException(404, str(exc).strip("'\"")) from None


def _call(fn: Callable[[], T]) -> T:
    with _refusals():
        return fn()


# Ramp


class StepIn(BaseModel):
    """One step; fields left out take the defaults of `core.ramp.RampStep`."""

    model_config = ConfigDict(extra="forbid")
    fraction: float
    min_items: int | None = None
    max_disagreement: float | None = None
    max_escape_upper: float | None = None


class PlanIn(BaseModel):
    """A ramp plan (as GET /ramp's `default_plan`); left out: the safe defaults."""

    model_config = ConfigDict(extra="forbid")
    steps: list[StepIn] | None = None
    audit_rate: float | None = None
    confidence: float | None = None

    def to_plan(self) -> RampPlan:
        """Validated by the same code as the CLI's `--plan` file (RampError: 422)."""
        data = self.model_dump(exclude_none=True)
        return RampPlan.from_json(data)


class StartIn(BaseModel):
    version: str = Field(min_length=1, max_length=128)
    plan: PlanIn | None = None  # None: the default plan (shadow → 5 % → 25 % → 50 % → 100 %)
    reason: str = Field(min_length=1, max_length=2000)
    force: bool = False  # ramp a candidate worse on held-out labels (the reason says why)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RampStatusOut(BaseModel):
    ramp: ramps.RampOut | None  # the active ramp, else the latest; None: never one
    history: list[ramps.RampEvent]  # its events, oldest first, with the evidence of each step
    default_plan: dict[str, Any]  # the safe defaults a start without `plan` uses


@router.get("/ramp", response_model=RampStatusOut)
def ramp_status(user: EngineerUser, pipeline: PipelineDep) -> RampStatusOut:
    out = ramps.status(pipeline)
    history = ramps.history(pipeline, ramp_id=out.id) if out is not None else []
    return RampStatusOut(ramp=out, history=history, default_plan=DEFAULT_PLAN.to_json())


@router.post("/ramp/start", response_model=ramps.RampOut, status_code=201)
def start_ramp(body: StartIn, user: EngineerUser, pipeline: PipelineDep) -> ramps.RampOut:
    try:
        registry.model_dir(pipeline, body.version)  # an unknown version is bad input (422), not a conflict
    except registry.DeployError as exc:
        raise HTTPException(422, str(exc)) from None
    with _refusals():
        plan = body.plan.to_plan() if body.plan is not None else None
        return ramps.start(pipeline, version=body.version, by=user.name, reason=body.reason, plan=plan,
                          force=body.force)  # fmt: skip


@router.post("/ramp/{action}", response_model=ramps.RampOut)
def change_ramp(
    action: Literal["pause", "resume", "abort"], body: ReasonIn, user: EngineerUser, pipeline: PipelineDep
) -> ramps.RampOut:
    use_case = {"pause": ramps.pause, "resume": ramps.resume, "abort": ramps.abort}[action]
    return _call(lambda: use_case(pipeline, by=user.name, reason=body.reason))


# Retrain trigger


class TriggerIn(BaseModel):
    """A new version of the station's trigger: the fields given change (null turns `on_labels` or
    `every_hours` off, and leaves `epochs` to the schedule), the others keep their current values; the reason
    is stored with it."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    on_labels: int | None = None
    every_hours: float | None = None
    on_drift: bool | None = None
    deploy_as: Literal["shadow", "ramp"] | None = None
    epochs: int | None = None
    min_per_class: int | None = None
    min_auroc_gain: float | None = None
    warm_start: bool | None = None
    reason: str = Field(min_length=1, max_length=2000)

    def changes(self) -> dict[str, Any]:
        """The settings sent: null kept for the three that may be none, dropped for the others."""
        sent = self.model_dump(exclude_unset=True, exclude={"reason"})
        return {k: v for k, v in sent.items() if v is not None or k in ("on_labels", "every_hours", "epochs")}


class RunIn(BaseModel):
    reason: str = Field(default="", max_length=2000)


@router.get("/retrain/triggers/{station}", response_model=retrain_trigger.TriggerOut)
def get_trigger(station: str, user: EngineerUser, pipeline: PipelineDep) -> retrain_trigger.TriggerOut:
    return _call(lambda: retrain_trigger.get_trigger(pipeline, station=station))


@router.put("/retrain/triggers/{station}", response_model=retrain_trigger.TriggerOut)
def put_trigger(station: str, body: TriggerIn, user: EngineerUser, pipeline: PipelineDep) -> retrain_trigger.TriggerOut:
    return _call(lambda: retrain_trigger.set_trigger(pipeline, station=station, settings=body.changes(),
                                                     by=user.name, reason=body.reason))  # fmt: skip


@router.get("/retrain/runs", response_model=list[retrain_trigger.RunOut])
def list_runs(
    user: EngineerUser,
    pipeline: PipelineDep,
    station: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> list[retrain_trigger.RunOut]:
    return _call(lambda: retrain_trigger.list_runs(pipeline, station=station, limit=limit))


@router.get("/retrain/runs/{run_id}", response_model=retrain_trigger.RunOut)
def get_run(run_id: int, user: EngineerUser, pipeline: PipelineDep) -> retrain_trigger.RunOut:
    return _call(lambda: retrain_trigger.get_run(pipeline, run_id=run_id))


@router.post("/retrain/triggers/{station}/run", response_model=retrain_trigger.RunOut, status_code=201)
def run_now(
    station: str, user: EngineerUser, pipeline: PipelineDep, runner: RunnerDep, body: RunIn | None = None
) -> retrain_trigger.RunOut:
    """Start a run now whatever the trigger's conditions; it trains in the background (poll the run)."""
    why = body.reason if body is not None else ""
    return _call(lambda: retrain_trigger.run_now(pipeline, station=station, by=user.name, reason=why, runner=runner))
