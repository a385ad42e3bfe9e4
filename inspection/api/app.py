"""Assembles the server: the HTTP API (one router per resource), health and metrics, and the web UI
mounted on top.

    create_app(settings)       the API: stations (ingest), people (session, queue, policies,
                               reports, users), /healthz, /metrics
    create_web_app(settings)   the same app with the Gradio UI and its login pages mounted (`inspection serve`)

Nothing happens at import time. The app carries its `Pipeline` in `app.state.pipeline` (with the
session signer and the metrics beside it), which every route reaches through `inspection.api.deps`,
so the UI mounted on it calls the same service functions on the same database.

Several worker processes: `inspection serve --workers 4`, or by hand `PROMETHEUS_MULTIPROC_DIR=<empty dir>
uvicorn --workers 4 --factory inspection.api.app:web_app_from_env` (see `inspection.api.metrics`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError

from inspection.api import health, inspections, monitoring, policies, queue, ramp, reports, session, users
from inspection.api.csrf import CsrfMiddleware
from inspection.api.metrics import ApiMetrics, MetricsMiddleware, ServedBy, multiprocess_dir
from inspection.api.security import ExposureGuard, SecurityHeaders
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

log = logging.getLogger("inspection.api")
# Seconds a client is told to wait after an infrastructure failure (database, disk).
RETRY_AFTER_SECONDS = 5
# Disk full, read-only file system, permission denied: the data dir cannot take the write. Other
# OSErrors are bugs and stay 500 with their traceback.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOTDIR}


def _error_handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handle


def _unavailable(request: Request, what: str, cause: str, retry_after: int) -> JSONResponse:
    # One line, no traceback: the cause is outside the program (the operator fixes the database or the disk).
    log.error("503 %s %s: %s unavailable: %s", request.method, request.url.path, what, cause)
    return JSONResponse(
        {"detail": f"{what} unavailable, retry later"},
        status_code=503,
        headers={"Retry-After": str(retry_after)},
    )


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.Overloaded)
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    if isinstance(exc, DataError):
        # A value the database refuses (NUL byte in text on PostgreSQL, number out of range): the client's.
        return JSONResponse({"detail": f"value refused by the database: {_first_line(exc.orig)}"}, status_code=422)
    if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
        return _unavailable(request, "database", _first_line(exc.orig), RETRY_AFTER_SECONDS)
    raise exc  # an integrity or programming error is a bug: 500 with its traceback


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OSError)
    if exc.errno not in _STORAGE_ERRNOS:
        raise exc
    return _unavailable(request, "storage", f"{exc.strerror} ({exc.filename})", RETRY_AFTER_SECONDS)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "").strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _add_error_handlers(app: FastAPI) -> None:
    for exc_type, status in ERROR_STATUS:
        app.add_exception_handler(exc_type, _error_handler(status))
    app.add_exception_handler(errors.Overloaded, _overloaded)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OSError, _storage_error)


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
        # Monitoring evaluates in the background; INSPECTION_MONITORING=0 turns it off with the samples.
        monitor = monitoring.MonitorLoop(ctx).start() if ctx.settings.monitoring else None
        yield
        if monitor is not None:
            monitor.stop()
        app.state.metrics.close()
        if owned:
            ctx.close()

    app = FastAPI(title="Smartphone scratch inspection", version="1", lifespan=lifespan)
    app.state.pipeline = ctx
    app.state.sessions = Sessions(ctx)  # stored in the database: the UI's login shares them
    app.state.metrics = ApiMetrics(ctx)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if multiprocess_dir() is not None:  # several worker processes: say which one answered
        app.add_middleware(ServedBy)
    app.add_middleware(CsrfMiddleware, settings=ctx.settings)
    app.add_middleware(ExposureGuard, settings=ctx.settings)
    app.add_middleware(SecurityHeaders)
    _add_error_handlers(app)
    body_limit = ctx.settings.max_upload_bytes + inspections.MULTIPART_OVERHEAD
    app.include_router(inspections.router, max_body_size=body_limit)
    for module in (queue, session, policies, reports, monitoring, ramp, users, health):
        app.include_router(module.router)
    return app


def create_web_app(settings: Settings, *, scorer_factory: ScorerFactory | None = None) -> FastAPI:
    """The whole server: the API of `create_app`, the login pages and both UI screens."""
    # Imported here: gradio is a heavy import (seconds) that API-only servers and tests never need.
    from ui.app import mount_ui

    app = create_app(settings, scorer_factory=scorer_factory)
    mount_ui(app, app.state.pipeline)
    # mount_ui added its own middleware outside ours: move the headers back to the outside, so that
    # its redirects and login pages carry them too.
    app.user_middleware = [m for m in app.user_middleware if m.cls is not SecurityHeaders]
    app.add_middleware(SecurityHeaders)
    return app


def web_app_from_env() -> FastAPI:
    """`uvicorn --factory` entry point: settings from the environment (INSPECTION_*)."""
    return create_web_app(Settings())


# The UI's own paths: with several workers they live in the one UI process (Settings.ui_port).
UI_PREFIXES = ("/review", "/engineer", "/login", "/logout", "/media")


def api_app_from_env() -> FastAPI:
    """`serve --workers N`: each worker serves the API, /healthz and /metrics; the UI's pages are
    redirected (307, same host name) to the single UI process on `ui_port`."""
    settings = Settings()
    app = create_app(settings)
    ui_port = settings.ui_port or settings.port + 1

    async def to_ui(request: Request) -> RedirectResponse:
        return RedirectResponse(str(request.url.replace(port=ui_port)), status_code=307)

    app.add_api_route("/", to_ui, methods=["GET"], include_in_schema=False)
    for prefix in UI_PREFIXES:
        app.add_api_route(prefix + "{rest:path}", to_ui, methods=["GET", "POST"], include_in_schema=False)
    return app
