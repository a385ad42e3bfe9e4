"""Liveness for the load balancer (`/healthz`) and Prometheus metrics (`/metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from inspection import store
from inspection.api.deps import MetricsDep, PipelineDep, engineer_user
from inspection.api.security import metrics_authorized
from inspection.services.context import Pipeline

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str
    database: str


def _may_see_details(request: Request, pipeline: Pipeline) -> bool:
    """The cause of a failure (it may name hosts, ports, users) is for the metrics scraper or an engineer."""
    if metrics_authorized(pipeline.settings, request.headers):
        return True
    try:
        engineer_user(request)
    except Exception:  # not an engineer, or the session cannot be checked (the database is down)
        return False
    return True


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def healthz(request: Request, pipeline: PipelineDep) -> JSONResponse:
    """`{"status": "ok", "database": "ok"}`, or 503 with "error"; the cause only for the metrics token
    or an engineer's session."""
    try:
        with pipeline.read() as session:
            store.ping(session)
    except Exception as exc:  # report, never crash: the load balancer reads this
        cause = str(exc)[:200] if _may_see_details(request, pipeline) else "error"
        down = HealthOut(status="error", database=cause)
        return JSONResponse(down.model_dump(), status_code=503, headers={"Retry-After": "5"})
    return JSONResponse(HealthOut(status="ok", database="ok").model_dump())


@router.get("/metrics", response_class=Response)
def prometheus(request: Request, metrics: MetricsDep) -> Response:
    """Prometheus text format (OpenMetrics when the scraper asks for it)."""
    metrics.before_scrape()
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics.registry), media_type=content_type)
