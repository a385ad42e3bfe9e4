"""User management over HTTP (admin only)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from inspection.api.deps import AdminUser, PipelineDep
from inspection.api.session import UserOut
from inspection.services import accounts
from inspection.services.accounts import UserInfo

API = "/api/v1"

router = APIRouter(prefix=API, tags=["users"])


class UserIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Literal["inspector", "engineer", "admin"]
    password: str = Field(min_length=8, max_length=1024)


@router.get("/users", response_model=list[UserInfo])
def list_users(user: AdminUser, pipeline: PipelineDep) -> list[UserInfo]:
    return accounts.list_users(pipeline)


@router.post("/users", status_code=201)
def add_user(body: UserIn, user: AdminUser, pipeline: PipelineDep) -> UserOut:
    created = accounts.add_user(pipeline, name=body.name, role=body.role, password=body.password, by=user.name)
    return UserOut.of(created)
