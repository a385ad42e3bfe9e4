"""The event log as people read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inspection import store
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.validation import validate_station


@dataclass(frozen=True)
class EventRecord:
    id: int
    at: datetime
    kind: str
    actor: str | None
    station: str | None
    inspection_id: int | None
    detail: dict[str, Any]


def list_events(
    app: Pipeline, *, station: str | None = None, kind: str | None = None, limit: int = 100
) -> list[EventRecord]:
    """The event log, newest first, optionally for one station and/or one kind."""
    station = validate_station(station) if station is not None else None
    if not 1 <= limit <= 10_000:
        raise InputError(f"limit must be between 1 and 10000, got {limit}")
    with app.read() as session:
        rows = store.list_events(session, kind=kind, station=station, limit=limit)
        return [
            EventRecord(
                id=int(r.id or 0),
                at=r.at,
                kind=r.kind,
                actor=r.actor,
                station=r.station,
                inspection_id=r.inspection_id,
                detail=dict(r.detail or {}),
            )
            for r in rows
        ]


