"""Stations post images and read back their own decisions; the image of an item is readable by the
station that sent it and by any reviewing user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, HTTPException, Path, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, TypeAdapter

from inspection import store
from inspection.api.deps import MetricsDep, PipelineDep, StationOrReviewer, StationToken
from inspection.core.domain import Inspection
from inspection.services import errors, ingest
from inspection.services.context import Pipeline

API = "/api/v1"
# Multipart framing and the form fields ride on top of the image bytes (the app sets the body limit
# of this router to settings.max_upload_bytes + this).
MULTIPART_OVERHEAD = 64 * 1024
PROBLEM_STATUS = {"unsupported": 415, "unusable": 422}

router = APIRouter(prefix=API, tags=["inspections"])

# Ids are 64-bit in the database: anything else is the client's mistake (422), never a driver overflow (500).
InspectionId = Annotated[int, Path(ge=1, le=2**63 - 1, description="inspection id")]

# The JSON of an inspection: the domain dataclass through pydantic (enums as their values).
_INSPECTION = TypeAdapter(Inspection)


class ProblemOut(BaseModel):
    """415 / 422: the upload was recorded for a person, and why the model could not look at it."""

    detail: str
    inspection: Inspection


def _own_item(pipeline: Pipeline, inspection_id: int, station: str) -> ingest.IngestResult:
    # Another station's items are invisible, not forbidden: ids must not leak across stations.
    result = ingest.get_inspection(pipeline, inspection_id=inspection_id)
    if result.inspection.station != station:
        raise errors.NotFound(f"inspection {inspection_id} not found")
    return result


def _answer(result: ingest.IngestResult) -> JSONResponse:
    headers = {} if result.created else {"Idempotent-Replayed": "true"}
    if result.problem is not None:
        problem = ProblemOut(detail=result.problem.reason, inspection=result.inspection)
        body: dict[str, Any] = problem.model_dump(mode="json")
        return JSONResponse(body, status_code=PROBLEM_STATUS[result.problem.kind], headers=headers)
    body = _INSPECTION.dump_python(result.inspection, mode="json")
    return JSONResponse(body, status_code=201 if result.created else 200, headers=headers)


@router.post(
    "/inspections",
    responses={
        201: {"model": Inspection},
        200: {"description": "Idempotent replay: the first result"},
        401: {"description": "missing or invalid token"},
        413: {"description": "upload over the size limit"},
        415: {"model": ProblemOut, "description": "not a supported image type (recorded for a person)"},
        422: {"description": "image recognised but unusable (recorded for a person), or bad form"},
    },
)
def post_inspection(
    token_station: StationToken,
    pipeline: PipelineDep,
    metrics: MetricsDep,
    image: Annotated[UploadFile, File(description="the phone image (JPEG, PNG, …)")],
    station: Annotated[str, Form(min_length=1, max_length=64)],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
) -> JSONResponse:
    """Ingest one image and return its decision (or its place in the review queue)."""
    if station.strip() != token_station:
        raise HTTPException(403, f"this token belongs to station {token_station!r}, not {station!r}")
    # Read at most one byte past the limit: the service refuses anything longer with 413.
    data = image.file.read(pipeline.settings.max_upload_bytes + 1)
    with metrics.instruments.ingest_latency.time():
        result = ingest.inspect(
            pipeline,
            data=data,
            station=station,
            source_name=image.filename,
            idempotency_key=idempotency_key,
            actor=f"station:{token_station}",
        )
    if result.created:
        metrics.count_item(
            station=result.inspection.station,
            route=result.inspection.route.value,
            model_error=result.model_error is not None,
        )
    return _answer(result)


@router.get("/inspections/{inspection_id}", response_model=Inspection)
def get_inspection(inspection_id: InspectionId, station: StationToken, pipeline: PipelineDep) -> Inspection:
    return _own_item(pipeline, inspection_id, station).inspection


@router.get("/inspections/{inspection_id}/image")
def get_image(inspection_id: InspectionId, station: StationOrReviewer, pipeline: PipelineDep) -> FileResponse:
    """The stored image: for the station that sent it, or for any user who reviews."""
    if station is not None:
        _own_item(pipeline, inspection_id, station)
    else:
        ingest.get_inspection(pipeline, inspection_id=inspection_id)  # NotFound → 404
    with pipeline.read() as session:
        row = store.get_inspection(session, inspection_id=inspection_id)
        assert row is not None
        img = store.get_image(session, image_id=row.image_id)
        assert img is not None
    return FileResponse(pipeline.resolve(img.path))
