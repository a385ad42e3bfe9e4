"""Liveness for the load balancer (`/healthz`) and Prometheus metrics (`/metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from inspection import store
from inspection.api.deps import MetricsDep, PipelineDep

router = APIRouter(tags=["health"])


class HealthOut(BaseModel):
    status: str
    database: str


@router.get("/healthz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def healthz(pipeline: PipelineDep) -> JSONResponse:
    try:
        with pipeline.read() as session:
            store.ping(session)
    except Exception as exc:  # report, never crash: the load balancer reads this
        down = HealthOut(status="error", database=str(exc)[:200])
        return JSONResponse(down.model_dump(), status_code=503)
    return JSONResponse(HealthOut(status="ok", database="ok").model_dump())


@router.get("/metrics", response_class=Response)
def prometheus(request: Request, metrics: MetricsDep) -> Response:
    """Prometheus text format (OpenMetrics when the scraper asks for it)."""
    metrics.before_scrape()
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encode(metrics.registry), media_type=content_type)
