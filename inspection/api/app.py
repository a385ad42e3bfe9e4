"""HTTP API (FastAPI): ingest for cameras/PLCs, review-queue endpoints for integrations, health and
Prometheus metrics.

Two kinds of caller: *stations* (cameras, PLCs) send `Authorization: Bearer <API token>` to post
images and read back their own decisions; *people* review. The review-queue endpoints (claim, label,
skip, undo) act for the authenticated user only: the web UI's session cookie or HTTP Basic
credentials of a stored user (`inspection users add`), never a station token, and the inspector
recorded is always that user. Missing or invalid credentials get 401.

`create_app(settings)` builds everything; nothing happens at import time. The returned app carries
its `Pipeline` in `app.state.pipeline`, so the UI can be mounted on it (`gr.mount_gradio_app`) and
call the same service functions.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspection import store
from inspection.config import Settings
from inspection.core.domain import PolicyError
from inspection.services import accounts, errors, ingest, review, tokens
from inspection.services.accounts import COOKIE_NAME, Permission, Sessions, User
from inspection.services.context import Pipeline, ScorerFactory

API = "/api/v1"
# Multipart framing and the form fields ride on top of the image bytes.
MULTIPART_OVERHEAD = 64 * 1024


# ---------------------------------------------------------------------------------------------
# Metrics (hand-written Prometheus text exposition: no extra dependency)
# ---------------------------------------------------------------------------------------------

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Request counters and a latency histogram per route template (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def observe(self, *, method: str, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, path, str(status))] += 1
            counts = self.buckets.setdefault(path, [0] * (len(LATENCY_BUCKETS) + 1))
            counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
            self.sums[path] += seconds
            self.counts[path] += 1

    def render(self, *, queue: list[store.QueueDepth], routes: list[tuple[str, str, int]], now: float) -> str:
        out: list[str] = []
        req, dur = "inspection_http_requests_total", "inspection_http_request_duration_seconds"
        with self._lock:
            out += _header(req, "counter", "HTTP requests by method, route and status.")
            for (method, path, status), n in sorted(self.requests.items()):
                out.append(_sample(req, {"method": method, "path": path, "status": status}, n))
            out += _header(dur, "histogram", "HTTP request latency.")
            for path, counts in sorted(self.buckets.items()):
                cum = 0
                for le, c in zip((*LATENCY_BUCKETS, math.inf), counts, strict=True):
                    cum += c
                    le_txt = "+Inf" if math.isinf(le) else f"{le:g}"
                    out.append(_sample(f"{dur}_bucket", {"path": path, "le": le_txt}, cum))
                out.append(_sample(f"{dur}_sum", {"path": path}, round(self.sums[path], 6)))
                out.append(_sample(f"{dur}_count", {"path": path}, self.counts[path]))
        depth, age = "inspection_queue_depth", "inspection_queue_oldest_age_seconds"
        out += _header(depth, "gauge", "Items waiting for (queued) or held by (claimed) a person.")
        for q in queue:
            out.append(_sample(depth, {"station": q.station, "status": q.status}, q.count))
        out += _header(age, "gauge", "Age of the oldest open item.")
        for q in queue:
            if q.oldest is not None:
                value = round(max(0.0, now - q.oldest.timestamp()), 3)
                out.append(_sample(age, {"station": q.station, "status": q.status}, value))
        items = "inspection_items_total"
        out += _header(items, "counter", "Inspections stored, by station and route.")
        for station, route, n in routes:
            out.append(_sample(items, {"station": station, "route": route}, n))
        return "\n".join(out) + "\n"


def _header(name: str, kind: str, help_text: str) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _sample(name: str, labels: dict[str, str], value: float) -> str:
    inner = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value}"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request under its route template (not the
    raw path, so that ids do not explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(
                method=scope.get("method", ""), path=path, status=status, seconds=time.perf_counter() - start
            )


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------


class RegionOut(BaseModel):
    x: int
    y: int
    w: int
    h: int
    score: float


class InspectionOut(BaseModel):
    id: int
    station: str
    route: str
    score: float | None
    decided_by: str | None
    label: str | None
    reason: str
    model_version: str | None = None
    policy_version: int | None = None
    image_hash: str = ""
    regions: list[RegionOut] = []


# The inspector is the authenticated user. `inspector` in a body is optional and only checked: a
# name other than the caller's is refused (403), never used.
INSPECTOR_FIELD = Field(
    default=None, max_length=64, description="optional; if given, must be the authenticated user's name"
)


class ClaimIn(BaseModel):
    order: Literal["oldest", "uncertain"] = "oldest"
    station: str | None = Field(default=None, min_length=1, max_length=64, description="only this station")
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
    station: str | None = Field(default=None, min_length=1, max_length=64, description="only this station")
    inspector: str | None = INSPECTOR_FIELD


class TaskOut(BaseModel):
    inspection_id: int
    station: str
    image_url: str
    received_at: str
    lease_until: str | None
    show_model: bool
    audit: bool
    score: float | None = None
    model_version: str | None = None
    regions: list[RegionOut] = []
    reason: str = ""
    error: str | None = None


class LabelOut(BaseModel):
    inspection_id: int
    review_id: int
    label: str
    created: bool


def _task_out(t: review.ReviewTask) -> TaskOut:
    return TaskOut(
        inspection_id=t.inspection_id,
        station=t.station,
        image_url=f"{API}/inspections/{t.inspection_id}/image",
        received_at=t.received_at.isoformat(),
        lease_until=t.lease_until.isoformat() if t.lease_until else None,
        show_model=t.show_model,
        audit=t.audit,
        score=t.score,
        model_version=t.model_version,
        regions=[RegionOut(x=r.x, y=r.y, w=r.w, h=r.h, score=r.score) for r in t.regions],
        reason=t.reason,
        error=t.error,
    )


# ---------------------------------------------------------------------------------------------
# App factory
# ---------------------------------------------------------------------------------------------

PROBLEM_STATUS = {"unsupported": 415, "unusable": 422}


def station_of_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The station whose API token is in `Authorization: Bearer …`; 401 otherwise."""
    ctx: Pipeline = request.app.state.pipeline
    scheme, _, token = (authorization or "").partition(" ")
    station = tokens.authenticate_token(ctx, token=token.strip()) if scheme.lower() == "bearer" else None
    if station is None:
        raise HTTPException(
            401, "a valid API token is required (Authorization: Bearer …)", {"WWW-Authenticate": "Bearer"}
        )
    return station


Station = Annotated[str, Depends(station_of_token)]

USER_CREDENTIALS = "log in: the session cookie of the web UI or HTTP Basic credentials of a user"


def reviewing_user(request: Request, authorization: Annotated[str | None, Header()] = None) -> User:
    """The user (session cookie, else HTTP Basic) allowed to review; 401 without one, 403 without the
    permission. A station token is not a user: it gets 401 here."""
    sessions: Sessions = request.app.state.sessions
    user = accounts.authenticate(
        request.app.state.pipeline, sessions, cookie=request.cookies.get(COOKIE_NAME), authorization=authorization
    )
    if user is None:
        raise HTTPException(401, f"{USER_CREDENTIALS} (station tokens cannot review)", {"WWW-Authenticate": "Basic"})
    try:
        return accounts.require(user, Permission.REVIEW)
    except accounts.AuthError as exc:
        raise HTTPException(exc.status, str(exc)) from None


Reviewer = Annotated[User, Depends(reviewing_user)]


def station_or_reviewer(request: Request, authorization: Annotated[str | None, Header()] = None) -> str | None:
    """For reads both kinds of caller need (an item's image): the station of a Bearer token, or None
    for a reviewing user; 401 when neither."""
    if (authorization or "").partition(" ")[0].lower() == "bearer":
        return station_of_token(request, authorization)
    reviewing_user(request, authorization)
    return None


StationOrReviewer = Annotated[str | None, Depends(station_or_reviewer)]


def acting_inspector(user: User, named: str | None) -> str:
    """The inspector to record: always the authenticated user; a different name in the body is 403."""
    if named is not None and named.strip() != user.name:
        raise HTTPException(403, f"authenticated as {user.name!r}: cannot act as inspector {named!r}")
    return user.name


def create_app(
    settings: Settings,
    *,
    scorer_factory: ScorerFactory | None = None,
    pipeline: Pipeline | None = None,
) -> FastAPI:
    """Build the API. Pass `pipeline` to share one with other front ends (it is then not closed
    here); otherwise one is created from `settings` (schema upgraded to head) and closed on shutdown."""
    owned = pipeline is None
    ctx = pipeline or Pipeline.create(settings, scorer_factory=scorer_factory)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            ctx.close()

    app = FastAPI(title="Smartphone scratch inspection", version="1", lifespan=lifespan)
    app.state.pipeline = ctx
    app.state.sessions = Sessions(ctx)  # shared with inspection.api.users (same signing key as the UI)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_error_handlers(app)
    app.include_router(_router(ctx, metrics))
    return app


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status: int) -> Any:
        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handle

    # Most specific first: UploadTooLarge is an InputError.
    app.add_exception_handler(errors.UploadTooLarge, handler(413))
    app.add_exception_handler(errors.InputError, handler(422))
    app.add_exception_handler(PolicyError, handler(422))
    app.add_exception_handler(errors.IdempotencyConflict, handler(409))
    app.add_exception_handler(errors.QueueConflict, handler(409))
    app.add_exception_handler(errors.NotFound, handler(404))


def _router(ctx: Pipeline, metrics: Metrics) -> APIRouter:
    router = APIRouter()


    def own_item(inspection_id: int, station: str) -> ingest.IngestResult:
        # Another station's items are invisible, not forbidden: ids must not leak across stations.
        result = ingest.get_inspection(ctx, inspection_id=inspection_id)
        if result.inspection.station != station:
            raise errors.NotFound(f"inspection {inspection_id} not found")
        return result

    def answer(result: ingest.IngestResult) -> JSONResponse:
        body = ingest.inspection_to_dict(result.inspection)
        headers = {} if result.created else {"Idempotent-Replayed": "true"}
        if result.problem is not None:
            return JSONResponse(
                {"detail": result.problem.reason, "inspection": body},
                status_code=PROBLEM_STATUS[result.problem.kind],
                headers=headers,
            )
        return JSONResponse(body, status_code=201 if result.created else 200, headers=headers)

    @router.post(
        f"{API}/inspections",
        max_body_size=ctx.settings.max_upload_bytes + MULTIPART_OVERHEAD,
        responses={
            201: {"model": InspectionOut},
            200: {"description": "Idempotent replay: the first result"},
            401: {"description": "missing or invalid token"},
            413: {"description": "upload over the size limit"},
            415: {"description": "not a supported image type (recorded for a person)"},
            422: {"description": "image recognised but unusable (recorded for a person), or bad form"},
        },
    )
    def post_inspection(
        token_station: Station,
        image: Annotated[UploadFile, File(description="the phone image (JPEG, PNG, …)")],
        station: Annotated[str, Form(min_length=1, max_length=64)],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> JSONResponse:
        """Ingest one image and return its decision (or its place in the review queue)."""
        if station.strip() != token_station:
            raise HTTPException(403, f"this token belongs to station {token_station!r}, not {station!r}")
        # Read at most one byte past the limit: the service refuses anything longer with 413.
        data = image.file.read(ctx.settings.max_upload_bytes + 1)
        result = ingest.inspect(
            ctx,
            data=data,
            station=station,
            source_name=image.filename,
            idempotency_key=idempotency_key,
            actor=f"station:{token_station}",
        )
        return answer(result)

    @router.get(f"{API}/inspections/{{inspection_id}}", response_model=InspectionOut)
    def get_inspection(inspection_id: int, station: Station) -> dict[str, Any]:
        return ingest.inspection_to_dict(own_item(inspection_id, station).inspection)

    @router.get(f"{API}/inspections/{{inspection_id}}/image")
    def get_image(inspection_id: int, station: StationOrReviewer) -> FileResponse:
        """The stored image: for the station that sent it, or for any user who reviews."""
        if station is not None:
            own_item(inspection_id, station)
        else:
            ingest.get_inspection(ctx, inspection_id=inspection_id)  # NotFound → 404
        with ctx.read() as session:
            row = store.get_inspection(session, inspection_id=inspection_id)
            assert row is not None
            img = store.get_image(session, image_id=row.image_id)
            assert img is not None
        return FileResponse(ctx.resolve(img.path))

    queue_errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "no valid user credentials (session cookie or HTTP Basic)"},
        403: {"description": "the body names another inspector, or the user may not review"},
    }

    @router.post(
        f"{API}/queue/claim",
        response_model=TaskOut,
        responses={204: {"description": "queue empty"}, **queue_errors},
    )
    def claim(user: Reviewer, body: ClaimIn | None = None) -> Any:
        """Claim the next item (with a lease) for the authenticated user."""
        body = body or ClaimIn()
        inspector = acting_inspector(user, body.inspector)
        task = review.claim_next(ctx, inspector=inspector, station=body.station, order=body.order)
        return Response(status_code=204) if task is None else _task_out(task)

    @router.post(
        f"{API}/inspections/{{inspection_id}}/label",
        response_model=LabelOut,
        status_code=201,
        responses=queue_errors,
    )
    def label(inspection_id: int, body: LabelIn, user: Reviewer) -> Any:
        """Label an item as the authenticated user (a retried identical label is stored once: 200)."""
        out = review.submit_label(
            ctx,
            inspection_id=inspection_id,
            inspector=acting_inspector(user, body.inspector),
            label=body.label,
            note=body.note,
            seconds_taken=body.seconds_taken,
        )
        payload = LabelOut(
            inspection_id=out.inspection_id,
            review_id=out.review_id,
            label=out.label.value,
            created=out.created,
        )
        return JSONResponse(payload.model_dump(), status_code=201 if out.created else 200)

    @router.post(f"{API}/inspections/{{inspection_id}}/skip", status_code=204, responses=queue_errors)
    def skip(inspection_id: int, user: Reviewer, body: SkipIn | None = None) -> Response:
        """Give back an item the authenticated user holds; it is not offered to them again."""
        body = body or SkipIn()
        inspector = acting_inspector(user, body.inspector)
        review.skip(ctx, inspection_id=inspection_id, inspector=inspector, reason=body.reason)
        return Response(status_code=204)

    @router.post(f"{API}/queue/undo", response_model=TaskOut, responses=queue_errors)
    def undo(user: Reviewer, body: UndoIn | None = None) -> TaskOut:
        """Withdraw the authenticated user's own last label (within the undo window)."""
        body = body or UndoIn()
        inspector = acting_inspector(user, body.inspector)
        return _task_out(review.undo_last(ctx, inspector=inspector, station=body.station))

    @router.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with ctx.read() as session:
                session.execute(sa.text("SELECT 1"))
        except Exception as exc:  # report, never crash: the load balancer reads this
            return JSONResponse({"status": "error", "database": str(exc)[:200]}, status_code=503)
        return JSONResponse({"status": "ok", "database": "ok"})

    @router.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> PlainTextResponse:
        with ctx.read() as session:
            queue = store.queue_depth(session)
            routes = store.route_counts(session)
        text = metrics.render(queue=queue, routes=routes, now=time.time())
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return router
