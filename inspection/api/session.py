"""Log in and out (the session cookie the web UI also uses), and who am I."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from inspection.api.deps import CurrentUser, PipelineDep, SessionsDep, client_address
from inspection.services import accounts
from inspection.services.accounts import COOKIE_NAME, Permission, User
from inspection.services.throttle import TooManyAttempts

API = "/api/v1"

router = APIRouter(prefix=API, tags=["session"])


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    name: str
    role: str

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(name=user.name, role=user.role.value)


class MeOut(UserOut):
    permissions: list[str]


@router.post("/session")
def create_session(
    body: LoginIn, request: Request, response: Response, pipeline: PipelineDep, sessions: SessionsDep
) -> UserOut:
    try:
        user = accounts.attempt_login(
            pipeline, name=body.name, password=body.password, address=client_address(request)
        )
    except TooManyAttempts as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(exc.retry_after)}) from None
    if user is None:
        raise HTTPException(401, "wrong user name or password")
    options = accounts.cookie_options(
        pipeline, scheme=request.url.scheme, forwarded_proto=request.headers.get("x-forwarded-proto")
    )
    response.set_cookie(COOKIE_NAME, sessions.issue(user), max_age=sessions.seconds, **options)
    return UserOut.of(user)


@router.delete("/session", status_code=204)
def delete_session(request: Request, response: Response, sessions: SessionsDep) -> Response:
    """Log out: the session ends on the server, for every client holding the cookie."""
    sessions.end(request.cookies.get(COOKIE_NAME))
    response.delete_cookie(COOKIE_NAME, path="/")
    response.status_code = 204
    return response


@router.get("/me")
def me(user: CurrentUser) -> MeOut:
    permissions = sorted(p.value for p in Permission if user.can(p))
    return MeOut(name=user.name, role=user.role.value, permissions=permissions)
