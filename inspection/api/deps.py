"""Dependencies of the routers (FastAPI full-stack template style: `Annotated` aliases).

Two kinds of caller: *stations* (cameras, PLCs) send `Authorization: Bearer <API token>`; *people*
send the web UI's session cookie or HTTP Basic credentials of a stored user. A station token is
never a user, and a user is never a station. Missing or invalid credentials get 401, a role without
the permission 403. Everything shared (the `Pipeline`, the session signer, the metrics) lives on
`app.state`, set once by `inspection.api.app.create_app`.

The aliases must stay module-level names: with postponed annotations FastAPI resolves them from the
router module's globals, and a local alias would silently become a query parameter.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from inspection.api.metrics import ApiMetrics
from inspection.services import accounts, tokens
from inspection.services.accounts import COOKIE_NAME, Permission, Sessions, User
from inspection.services.context import Pipeline
from inspection.services.throttle import TooManyAttempts

# The queue's 401 says why a station token does not work there (integrators try that first).
REVIEWER_CREDENTIALS = (
    "log in: the session cookie of the web UI or HTTP Basic credentials of a user (station tokens cannot review)"
)


def get_pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline  # type: ignore[no-any-return]


def get_sessions(request: Request) -> Sessions:
    return request.app.state.sessions  # type: ignore[no-any-return]


def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


def _is_bearer(request: Request) -> bool:
    return request.headers.get("authorization", "").partition(" ")[0].lower() == "bearer"


def station_of_token(request: Request, pipeline: PipelineDep) -> str:
    """The station whose API token is in `Authorization: Bearer …`; 401 otherwise."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    station = tokens.authenticate_token(pipeline, token=token.strip()) if scheme.lower() == "bearer" else None
    if station is None:
        raise HTTPException(
            401, "a valid API token is required (Authorization: Bearer …)", {"WWW-Authenticate": "Bearer"}
        )
    return station


def client_address(request: Request) -> str | None:
    """The caller's address for the login throttle (behind a proxy, uvicorn's `--proxy-headers`
    puts the forwarded client here when the proxy is trusted; a client cannot pick it)."""
    return request.client.host if request.client is not None else None


def _user_with(request: Request, permission: Permission, *, anonymous: str | None = None) -> User:
    """The user of the session cookie (else HTTP Basic) when they hold `permission`; 401 with
    `WWW-Authenticate: Basic` without a user (message `anonymous` if given), 403 without the role,
    429 with Retry-After when HTTP Basic tries are throttled."""
    try:
        user = accounts.authenticate(
            get_pipeline(request),
            get_sessions(request),
            cookie=request.cookies.get(COOKIE_NAME),
            authorization=request.headers.get("authorization"),
            address=client_address(request),
        )
    except TooManyAttempts as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    try:
        return accounts.require(user, permission)
    except accounts.AuthError as exc:
        if exc.status == 401:
            raise HTTPException(401, anonymous or str(exc), {"WWW-Authenticate": "Basic"}) from None
        raise HTTPException(exc.status, str(exc)) from None


def current_user(request: Request) -> User:
    """Any logged-in user (every role may review)."""
    return _user_with(request, Permission.REVIEW)


def reviewing_user(request: Request) -> User:
    """The user acting on the review queue (same rule as `current_user`, with the queue's 401 text)."""
    return _user_with(request, Permission.REVIEW, anonymous=REVIEWER_CREDENTIALS)


def engineer_user(request: Request) -> User:
    return _user_with(request, Permission.ENGINEER)


def admin_user(request: Request) -> User:
    return _user_with(request, Permission.ADMIN)


def station_or_reviewer(request: Request) -> str | None:
    """For reads both kinds of caller need (an item's image): the station of a Bearer token, or None
    for a reviewing user; 401 when neither."""
    if _is_bearer(request):
        return station_of_token(request, get_pipeline(request))
    reviewing_user(request)
    return None


StationToken = Annotated[str, Depends(station_of_token)]
CurrentUser = Annotated[User, Depends(current_user)]
Reviewer = Annotated[User, Depends(reviewing_user)]
EngineerUser = Annotated[User, Depends(engineer_user)]
AdminUser = Annotated[User, Depends(admin_user)]
StationOrReviewer = Annotated[str | None, Depends(station_or_reviewer)]
