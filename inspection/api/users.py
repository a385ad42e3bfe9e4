"""HTTP API for people (not stations): log in, and the engineer actions of the UI over HTTP.

Same rules as the UI: a user is identified by the session cookie the login sets (or HTTP Basic
credentials, for scripts), the role is read from the database on every request, and engineer
actions need the engineer (or admin) role: 401 without a user, 403 with the wrong role.

    POST   /api/v1/session                          {"name", "password"} → sets the session cookie
    DELETE /api/v1/session                          log out
    GET    /api/v1/me                               who am I
    GET    /api/v1/policies                         current policy of every station     (engineer)
    GET    /api/v1/policies/{station}               current policy and history          (engineer)
    PUT    /api/v1/policies/{station}               new policy version, reason required (engineer)
    GET    /api/v1/reports/audit?station=           blind-audit escape / false-reject   (engineer)
    GET    /api/v1/reports/shadow?station=          model vs inspectors                 (engineer)
    GET    /api/v1/users                            list users                          (admin)
    POST   /api/v1/users                            add a user                          (admin)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, Field

from inspection.services import accounts, policies, reports
from inspection.services.accounts import COOKIE_NAME, Permission, Sessions, User
from inspection.services.context import Pipeline

API = "/api/v1"


class LoginIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PolicyIn(BaseModel):
    level: Literal["human_only", "shadow", "ai_assist", "partial", "full"] | None = None
    pass_below: float | None = Field(default=None, ge=0, le=1)
    reject_above: float | None = Field(default=None, ge=0, le=1)
    audit_rate: float | None = Field(default=None, ge=0, le=1)
    reason: str = Field(min_length=1, max_length=2000)


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["inspector", "engineer", "admin"]
    password: str = Field(min_length=8, max_length=1024)


def cookie_of(request: Request) -> str | None:
    return request.cookies.get(COOKIE_NAME)


def router(pipeline: Pipeline, sessions: Sessions) -> APIRouter:
    r = APIRouter(prefix=API, tags=["users"])

    def current_user(request: Request) -> User | None:
        return accounts.authenticate(
            pipeline, sessions, cookie=cookie_of(request), authorization=request.headers.get("authorization")
        )

    def needs(permission: Permission) -> Any:
        def dependency(request: Request) -> User:
            try:
                return accounts.require(current_user(request), permission)
            except accounts.AuthError as exc:
                headers = {"WWW-Authenticate": "Basic"} if exc.status == 401 else None
                raise HTTPException(exc.status, str(exc), headers) from None

        return Depends(dependency)

    # Plain defaults, not local Annotated aliases: with postponed annotations FastAPI resolves names
    # from module globals only, and a local alias would silently become a query parameter.
    engineer = needs(Permission.ENGINEER)
    admin = needs(Permission.ADMIN)
    anyone = needs(Permission.REVIEW)

    @r.post("/session")
    def create_session(body: LoginIn, response: Response) -> dict[str, str]:
        user = accounts.login(pipeline, name=body.name, password=body.password)
        if user is None:
            raise HTTPException(401, "wrong user name or password")
        response.set_cookie(
            COOKIE_NAME,
            sessions.issue(user),
            max_age=sessions.seconds,
            httponly=True,
            samesite="lax",
            path="/",
        )
        return {"name": user.name, "role": user.role.value}

    @r.delete("/session", status_code=204)
    def delete_session(response: Response) -> Response:
        response.delete_cookie(COOKIE_NAME, path="/")
        response.status_code = 204
        return response

    @r.get("/me")
    def me(user: User = anyone) -> dict[str, Any]:
        return {
            "name": user.name,
            "role": user.role.value,
            "permissions": sorted(p.value for p in Permission if user.can(p)),
        }

    @r.get("/policies")
    def list_station_policies(user: User = engineer) -> list[dict[str, Any]]:
        return [
            {
                **policies.policy_to_dict(rec.policy),
                "created_by": rec.created_by,
                "created_at": rec.created_at.isoformat(),
                "reason": rec.reason,
            }
            for rec in policies.list_policies(pipeline)
        ]

    @r.get("/policies/{station}")
    def get_policy(station: str, user: User = engineer) -> dict[str, Any]:
        current = policies.get_policy(pipeline, station=station)
        history = [
            {
                **policies.policy_to_dict(rec.policy),
                "created_by": rec.created_by,
                "created_at": rec.created_at.isoformat(),
                "reason": rec.reason,
                "old": rec.old,
            }
            for rec in reversed(policies.list_policies(pipeline, station=station))
        ]
        return {"current": policies.policy_to_dict(current), "history": history}

    @r.put("/policies/{station}")
    def put_policy(station: str, body: PolicyIn, user: User = engineer) -> dict[str, Any]:
        new = policies.set_policy(
            pipeline,
            station=station,
            by=user.name,
            reason=body.reason,
            level=body.level,
            pass_below=body.pass_below,
            reject_above=body.reject_above,
            audit_rate=body.audit_rate,
        )
        return policies.policy_to_dict(new)

    @r.get("/reports/audit")
    def audit(user: User = engineer, station: str | None = None) -> dict[str, Any]:
        return reports.audit_report(pipeline, station=station).to_dict()

    @r.get("/reports/shadow")
    def shadow(user: User = engineer, station: str | None = None, max_escape: float = 0.002) -> dict[str, Any]:
        return reports.shadow_report(pipeline, station=station, max_escape=max_escape).to_dict()

    @r.get("/users")
    def users(user: User = admin) -> list[dict[str, Any]]:
        return [asdict(u) for u in accounts.list_users(pipeline)]

    @r.post("/users", status_code=201)
    def add_user(body: UserIn, user: User = admin) -> dict[str, str]:
        created = accounts.add_user(
            pipeline, name=body.name, role=body.role, password=body.password, by=user.name
        )
        return {"name": created.name, "role": created.role.value}

    return r


def install(app: FastAPI, sessions: Sessions | None = None) -> Sessions:
    """Add the user routes to an app made by `inspection.api.app.create_app` (uses its pipeline)."""
    pipeline: Pipeline = app.state.pipeline
    sessions = sessions or getattr(app.state, "sessions", None) or Sessions(pipeline)
    app.include_router(router(pipeline, sessions))
    return sessions
