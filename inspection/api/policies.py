"""Station policies over HTTP (engineers): the current policy of every station, one station's
history, and a new version (a reason is required)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from inspection.api.deps import EngineerUser, PipelineDep
from inspection.core.domain import Policy
from inspection.services import policies

API = "/api/v1"

router = APIRouter(prefix=f"{API}/policies", tags=["policies"])


class PolicyIn(BaseModel):
    """Fields left out keep their current values."""

    level: Literal["human_only", "shadow", "ai_assist", "partial", "full"] | None = None
    pass_below: float | None = Field(default=None, ge=0, le=1)
    reject_above: float | None = Field(default=None, ge=0, le=1)
    audit_rate: float | None = Field(default=None, ge=0, le=1)
    reason: str = Field(min_length=1, max_length=2000)


# The policy's own fields, flat, with who/when/why of the version beside them (subclasses of the
# domain dataclass, so the policy's fields are declared once).
@dataclass(frozen=True)
class PolicyVersionOut(Policy):
    created_by: str = ""
    created_at: str = ""
    reason: str = ""

    @classmethod
    def of(cls, rec: policies.PolicyRecord) -> PolicyVersionOut:
        return cls(**_who_when_why(rec))


@dataclass(frozen=True)
class PolicyChangeOut(PolicyVersionOut):
    old: dict[str, Any] | None = None  # the values this version replaced

    @classmethod
    def of(cls, rec: policies.PolicyRecord) -> PolicyChangeOut:
        return cls(**_who_when_why(rec), old=rec.old)


def _who_when_why(rec: policies.PolicyRecord) -> dict[str, Any]:
    return {
        **asdict(rec.policy),
        "created_by": rec.created_by,
        "created_at": rec.created_at.isoformat(),
        "reason": rec.reason,
    }


class PolicyHistoryOut(BaseModel):
    current: Policy
    history: list[PolicyChangeOut]  # newest first


@router.get("", response_model=list[PolicyVersionOut])
def list_station_policies(user: EngineerUser, pipeline: PipelineDep) -> list[PolicyVersionOut]:
    return [PolicyVersionOut.of(rec) for rec in policies.list_policies(pipeline)]


@router.get("/{station}")
def get_policy(station: str, user: EngineerUser, pipeline: PipelineDep) -> PolicyHistoryOut:
    current = policies.get_policy(pipeline, station=station)
    history = [PolicyChangeOut.of(rec) for rec in reversed(policies.list_policies(pipeline, station=station))]
    return PolicyHistoryOut(current=current, history=history)


@router.put("/{station}", response_model=Policy)
def put_policy(station: str, body: PolicyIn, user: EngineerUser, pipeline: PipelineDep) -> Policy:
    return policies.set_policy(pipeline, station=station, by=user.name, **body.model_dump())
