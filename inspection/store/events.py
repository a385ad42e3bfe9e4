"""The event log: one row per thing that happened (label, policy change, deployment, export …)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from inspection.store.tables import EventRow

__all__ = ["add_event", "list_events"]


def add_event(
    session: Session,
    *,
    kind: str,
    at: datetime,
    actor: str | None = None,
    station: str | None = None,
    inspection_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        EventRow(
            at=at, kind=kind, actor=actor, station=station, inspection_id=inspection_id, detail=detail or {}
        )
    )


def list_events(
    session: Session, *, kind: str | None = None, station: str | None = None, limit: int = 100
) -> list[EventRow]:
    stmt = select(EventRow)
    if kind is not None:
        stmt = stmt.where(EventRow.kind == kind)
    if station is not None:
        stmt = stmt.where(EventRow.station == station)
    return list(session.exec(stmt.order_by(col(EventRow.id).desc()).limit(limit)).all())
