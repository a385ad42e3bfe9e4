"""Engineer reports over HTTP: blind-audit escape / false-reject rates, and model vs inspectors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from inspection.api.deps import EngineerUser, PipelineDep
from inspection.services import reports

API = "/api/v1"

router = APIRouter(prefix=f"{API}/reports", tags=["reports"])


@router.get("/audit")
def audit(user: EngineerUser, pipeline: PipelineDep, station: str | None = None) -> dict[str, Any]:
    return reports.audit_report(pipeline, station=station).to_dict()


@router.get("/shadow")
def shadow(
    user: EngineerUser, pipeline: PipelineDep, station: str | None = None, max_escape: float = 0.002
) -> dict[str, Any]:
    return reports.shadow_report(pipeline, station=station, max_escape=max_escape).to_dict()
