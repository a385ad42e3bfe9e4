"""Retrain triggers (versioned per station) and retrain runs; the blind-label count that starts them."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from inspection.store.db import AlreadyExists
from inspection.store.tables import InspectionRow, ReviewRow
from inspection.store.tables_retrain import ACTIVE_RUN, RetrainRunRow, RetrainTriggerRow

__all__ = [
    "active_run",
    "add_retrain_run",
    "add_trigger_version",
    "blind_labels_after",
    "current_trigger",
    "enabled_trigger_stations",
    "get_retrain_run",
    "last_retrain_run",
    "list_retrain_runs",
    "max_review_id",
    "stale_runs",
    "trigger_history",
]


def current_trigger(session: Session, *, station: str) -> RetrainTriggerRow | None:
    stmt = (
        select(RetrainTriggerRow)
        .where(RetrainTriggerRow.station == station)
        .order_by(col(RetrainTriggerRow.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def trigger_history(session: Session, *, station: str, limit: int = 20) -> list[RetrainTriggerRow]:
    stmt = (
        select(RetrainTriggerRow)
        .where(RetrainTriggerRow.station == station)
        .order_by(col(RetrainTriggerRow.version).desc())
        .limit(limit)
    )
    return list(session.exec(stmt).all())


def add_trigger_version(session: Session, *, row: RetrainTriggerRow) -> RetrainTriggerRow:
    """Insert the next version; AlreadyExists when another writer took that version number first."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(f"trigger version {row.version} of {row.station!r} already exists") from None
    return row


def enabled_trigger_stations(session: Session) -> list[str]:
    """Stations whose latest trigger version is enabled."""
    latest = (
        sa.select(col(RetrainTriggerRow.station), sa.func.max(col(RetrainTriggerRow.version)).label("v"))
        .group_by(col(RetrainTriggerRow.station))
        .subquery()
    )
    same = sa.and_(col(RetrainTriggerRow.station) == latest.c.station, col(RetrainTriggerRow.version) == latest.c.v)
    stmt = (
        sa.select(col(RetrainTriggerRow.station))
        .join(latest, same)
        .where(col(RetrainTriggerRow.enabled).is_(True))
        .order_by(col(RetrainTriggerRow.station))
    )
    return [str(s) for s in session.execute(stmt).scalars().all()]


def add_retrain_run(session: Session, *, row: RetrainRunRow) -> RetrainRunRow:
    """Insert a run; AlreadyExists when the station has a queued or running run (a unique partial
    index: two server processes checking the trigger at once start one run, not two)."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(f"a retrain run of {row.station!r} is in progress") from None
    return row


def get_retrain_run(session: Session, *, run_id: int) -> RetrainRunRow | None:
    return session.get(RetrainRunRow, run_id)


def active_run(session: Session, *, station: str) -> RetrainRunRow | None:
    stmt = select(RetrainRunRow).where(RetrainRunRow.station == station, col(RetrainRunRow.status).in_(ACTIVE_RUN))
    return session.exec(stmt).first()


def stale_runs(session: Session, *, updated_before: datetime) -> list[RetrainRunRow]:
    """Queued or running runs that stopped updating (their process died)."""
    stmt = select(RetrainRunRow).where(
        col(RetrainRunRow.status).in_(ACTIVE_RUN), col(RetrainRunRow.updated_at) < updated_before
    )
    return list(session.exec(stmt).all())


def last_retrain_run(session: Session, *, station: str) -> RetrainRunRow | None:
    stmt = select(RetrainRunRow).where(RetrainRunRow.station == station).order_by(col(RetrainRunRow.id).desc())
    return session.exec(stmt.limit(1)).first()


def list_retrain_runs(session: Session, *, station: str | None = None, limit: int = 20) -> list[RetrainRunRow]:
    stmt = select(RetrainRunRow)
    if station is not None:
        stmt = stmt.where(RetrainRunRow.station == station)
    return list(session.exec(stmt.order_by(col(RetrainRunRow.id).desc()).limit(limit)).all())


def max_review_id(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.max(col(ReviewRow.id)))).scalar() or 0)


def blind_labels_after(session: Session, *, station: str, after_review_id: int) -> int:
    """Live final blind labels (the inspector did not see the model's call) of the station's items
    stored after review `after_review_id`: the unbiased labels a retrain learns most from."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(ReviewRow)
        .join(InspectionRow, col(InspectionRow.id) == col(ReviewRow.inspection_id))
        .where(
            col(InspectionRow.station) == station,
            col(ReviewRow.id) > after_review_id,
            col(ReviewRow.blind).is_(True),
            col(ReviewRow.is_final).is_(True),
            col(ReviewRow.undone_at).is_(None),
            col(ReviewRow.label).in_(("scratch", "ok")),
        )
    )
    return int(session.execute(stmt).scalar() or 0)
