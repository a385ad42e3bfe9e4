"""The review queue over HTTP, for integrations: claim, label, skip, undo.

These act for the authenticated user only (session cookie or HTTP Basic, never a station token) and
the inspector recorded is always that user. `inspector` in a body is optional and only checked: a
name other than the caller's is refused (403), never used.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from inspection.api.deps import PipelineDep, Reviewer
from inspection.api.inspections import InspectionId
from inspection.core.domain import Region
from inspection.services import review
from inspection.services.accounts import User

API = "/api/v1"

router = APIRouter(
    prefix=API,
    tags=["queue"],
    responses={
        401: {"description": "no valid user credentials (session cookie or HTTP Basic)"},
        403: {"description": "the body names another inspector, or the user may not review"},
    },
)

INSPECTOR_FIELD = Field(
    default=None, max_length=64, description="optional; if given, must be the authenticated user's name"
)
STATION_FIELD = Field(default=None, min_length=1, max_length=64, description="only this station")


class ClaimIn(BaseModel):
    order: Literal["oldest", "uncertain"] = "oldest"
    station: str | None = STATION_FIELD
    inspector: str | None = INSPECTOR_FIELD


class LabelIn(BaseModel):
    label: Literal["scratch", "ok"]
    note: str | None = Field(default=None, max_length=2000)
    seconds_taken: float | None = Field(default=None, ge=0)
    inspector: str | None = INSPECTOR_FIELD


class SkipIn(BaseModel):
    reason: str | None = Field(default=None, max_length=500)
    inspector: str | None = INSPECTOR_FIELD


class UndoIn(BaseModel):
    station: str | None = STATION_FIELD
    inspector: str | None = INSPECTOR_FIELD


class TaskOut(BaseModel):
    """An item for a person: the image link instead of server paths; model output only when the
    station's policy shows it (`show_model`)."""

    inspection_id: int
    station: str
    image_url: str
    received_at: str
    lease_until: str | None
    show_model: bool
    audit: bool
    score: float | None = None
    model_version: str | None = None
    regions: list[Region] = []
    reason: str = ""
    error: str | None = None

    @classmethod
    def of(cls, t: review.ReviewTask) -> TaskOut:
        return cls(
            image_url=f"{API}/inspections/{t.inspection_id}/image",
            received_at=t.received_at.isoformat(),
            lease_until=t.lease_until.isoformat() if t.lease_until else None,
            regions=list(t.regions),
            **{name: getattr(t, name) for name in _TASK_AS_IS},
        )


# ReviewTask fields that go out unchanged.
_TASK_AS_IS = ("inspection_id", "station", "show_model", "audit", "score", "model_version", "reason", "error")


class LabelOut(BaseModel):
    inspection_id: int
    review_id: int
    label: str
    created: bool


def acting_inspector(user: User, named: str | None) -> str:
    """The inspector to record: always the authenticated user; a different name in the body is 403."""
    if named is not None and named.strip() != user.name:
        raise HTTPException(403, f"authenticated as {user.name!r}: cannot act as inspector {named!r}")
    return user.name


@router.post("/queue/claim", response_model=TaskOut, responses={204: {"description": "queue empty"}})
def claim(user: Reviewer, pipeline: PipelineDep, body: ClaimIn | None = None) -> Any:
    """Claim the next item (with a lease) for the authenticated user."""
    body = body or ClaimIn()
    inspector = acting_inspector(user, body.inspector)
    task = review.claim_next(pipeline, inspector=inspector, station=body.station, order=body.order)
    return Response(status_code=204) if task is None else TaskOut.of(task)


@router.post("/inspections/{inspection_id}/label", response_model=LabelOut, status_code=201)
def label(inspection_id: InspectionId, body: LabelIn, user: Reviewer, pipeline: PipelineDep) -> JSONResponse:
    """Label an item as the authenticated user (a retried identical label is stored once: 200)."""
    out = review.submit_label(
        pipeline,
        inspection_id=inspection_id,
        inspector=acting_inspector(user, body.inspector),
        label=body.label,
        note=body.note,
        seconds_taken=body.seconds_taken,
    )
    payload = LabelOut(
        inspection_id=out.inspection_id, review_id=out.review_id, label=out.label.value, created=out.created
    )
    return JSONResponse(payload.model_dump(), status_code=201 if out.created else 200)


@router.post("/inspections/{inspection_id}/skip", status_code=204)
def skip(inspection_id: InspectionId, user: Reviewer, pipeline: PipelineDep, body: SkipIn | None = None) -> Response:
    """Give back an item the authenticated user holds; it is not offered to them again."""
    body = body or SkipIn()
    inspector = acting_inspector(user, body.inspector)
    review.skip(pipeline, inspection_id=inspection_id, inspector=inspector, reason=body.reason)
    return Response(status_code=204)


@router.post("/queue/undo", response_model=TaskOut)
def undo(user: Reviewer, pipeline: PipelineDep, body: UndoIn | None = None) -> TaskOut:
    """Withdraw the authenticated user's own last label (within the undo window)."""
    body = body or UndoIn()
    inspector = acting_inspector(user, body.inspector)
    return TaskOut.of(review.undo_last(pipeline, inspector=inspector, station=body.station))
