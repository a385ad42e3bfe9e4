"""Assembles the server: the HTTP API (one router per resource), health and metrics, and the web UI
mounted on top.

    create_app(settings)       the API: stations (ingest), people (session, queue, policies,
                               reports, users), /healthz, /metrics
    create_web_app(settings)   the same app with the Gradio UI and its login pages mounted (`inspection serve`)

Nothing happens at import time. The app carries its `Pipeline` in `app.state.pipeline` (with the
session signer and the metrics beside it), which every route reaches through `inspection.api.deps`,
so the UI mounted on it calls the same service functions on the same database.

Several worker processes: `PROMETHEUS_MULTIPROC_DIR=<empty dir> uvicorn --workers 4 --factory
inspection.api.app:web_app_from_env` (see `inspection.api.metrics`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from inspection.api import health, inspections, policies, queue, reports, session, users
from inspection.api.metrics import ApiMetrics, MetricsMiddleware
from inspection.config import Settings
from inspection.core.domain import PolicyError
from inspection.services import errors
from inspection.services.accounts import Sessions
from inspection.services.context import Pipeline, ScorerFactory

# Use-case errors and their status codes. Most specific first: UploadTooLarge is an InputError.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (errors.UploadTooLarge, 413),
    (errors.InputError, 422),
    (PolicyError, 422),
    (errors.IdempotencyConflict, 409),
    (errors.QueueConflict, 409),
    (errors.NotFound, 404),
)


def _error_handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handle


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

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            ctx.close()

    app = FastAPI(title="Smartphone scratch inspection", version="1", lifespan=lifespan)
    app.state.pipeline = ctx
    app.state.sessions = Sessions(ctx)  # same signing key as the UI's login
    app.state.metrics = ApiMetrics(ctx)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    for exc_type, status in ERROR_STATUS:
        app.add_exception_handler(exc_type, _error_handler(status))
    body_limit = ctx.settings.max_upload_bytes + inspections.MULTIPART_OVERHEAD
    app.include_router(inspections.router, max_body_size=body_limit)
    for module in (queue, session, policies, reports, users, health):
        app.include_router(module.router)
    return app


def create_web_app(settings: Settings, *, scorer_factory: ScorerFactory | None = None) -> FastAPI:
    """The whole server: the API of `create_app`, the login pages and both UI screens."""
    # Imported here: gradio is a heavy import (seconds) that API-only servers and tests never need.
    from ui.app import mount_ui

    app = create_app(settings, scorer_factory=scorer_factory)
    mount_ui(app, app.state.pipeline)
    return app


def web_app_from_env() -> FastAPI:
    """`uvicorn --factory` entry point: settings from the environment (INSPECTION_*)."""
    return create_web_app(Settings())
