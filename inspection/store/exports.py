"""The export's read: every decided or labelled inspection with its image and live review, in
inspection-id pages (keyset pagination: the same SQL on SQLite and PostgreSQL, bounded memory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from inspection.store.history import live_review
from inspection.store.tables import ImageRow, InspectionRow, PredictionRole, PredictionRow, ReviewRow

__all__ = ["ExportRow", "ExportWhere", "count_export_rows", "export_page", "export_regions"]

@dataclass(frozen=True)
class ExportRow:
    """One inspection as stored, with its image and its live review (review_* None without one)."""

    inspection_id: int
    station: str
    received_at: datetime
    decided_at: datetime | None
    level: str
    policy_version: int
    model_version: str | None
    score: float | None
    route: str
    decided_by: str | None
    decision_label: str | None
    audit: bool
    reason: str
    error: str | None
    image_sha256: str
    image_path: str
    width: int | None
    height: int | None
    source_name: str | None
    inspector: str | None
    review_label: str | None
    reviewed_at: datetime | None
    review_seconds: float | None
    blind: bool | None
    review_audit: bool | None
    review_id: int | None


@dataclass(frozen=True)
class ExportWhere:
    """Which rows: by label source, station, received time [since, until) and deciding model."""

    source: str = "all"  # human (ordinary reviews) | audit (blind audits) | all (also model decisions)
    station: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    model_version: str | None = None


# In the order of ExportRow's fields.
_COLUMNS = (
    col(InspectionRow.id),
    col(InspectionRow.station),
    col(InspectionRow.received_at),
    col(InspectionRow.decided_at),
    col(InspectionRow.level),
    col(InspectionRow.policy_version),
    col(InspectionRow.model_version),
    col(InspectionRow.score),
    col(InspectionRow.route),
    col(InspectionRow.decided_by),
    col(InspectionRow.final_label),
    col(InspectionRow.audit),
    col(InspectionRow.reason),
    col(InspectionRow.error),
    col(ImageRow.sha256),
    col(ImageRow.path),
    col(ImageRow.width),
    col(ImageRow.height),
    col(ImageRow.source_name),
    col(ReviewRow.inspector),
    col(ReviewRow.label),
    col(ReviewRow.created_at),
    col(ReviewRow.seconds_taken),
    col(ReviewRow.blind),
    col(ReviewRow.audit),
    col(ReviewRow.id),
)


def _export_query(where: ExportWhere) -> Any:
    ins, img, rev = InspectionRow, ImageRow, ReviewRow
    stmt = (
        sa.select(*_COLUMNS)
        .select_from(ins)
        .join(img, col(img.id) == col(ins.image_id))
        .outerjoin(rev, live_review())
    )
    if where.source == "human":
        stmt = stmt.where(col(rev.id).is_not(None), col(rev.audit).is_(False))
    elif where.source == "audit":
        stmt = stmt.where(col(rev.id).is_not(None), col(rev.audit).is_(True))
    else:
        stmt = stmt.where(sa.or_(col(rev.id).is_not(None), col(ins.final_label).is_not(None)))
    if where.station is not None:
        stmt = stmt.where(col(ins.station) == where.station)
    if where.since is not None:
        stmt = stmt.where(col(ins.received_at) >= where.since)
    if where.until is not None:
        stmt = stmt.where(col(ins.received_at) < where.until)
    if where.model_version is not None:
        stmt = stmt.where(col(ins.model_version) == where.model_version)
    return stmt


def count_export_rows(session: Session, *, where: ExportWhere) -> int:
    sub = _export_query(where).subquery()
    return int(session.execute(sa.select(sa.func.count()).select_from(sub)).scalar_one())


def export_page(session: Session, *, where: ExportWhere, after_id: int, limit: int) -> list[ExportRow]:
    """Up to `limit` matching rows with inspection id > after_id, in id order."""
    ins_id = col(InspectionRow.id)
    rows = session.execute(_export_query(where).where(ins_id > after_id).order_by(ins_id).limit(limit)).all()
    return [ExportRow(*r) for r in rows]


def export_regions(session: Session, *, inspection_ids: list[int]) -> dict[tuple[int, str], list[dict[str, Any]]]:
    """Highlighted regions per (inspection id, model version) of the deciding predictions."""
    pred = PredictionRow
    stmt = sa.select(col(pred.inspection_id), col(pred.model_version), col(pred.regions)).where(
        col(pred.inspection_id).in_(inspection_ids), col(pred.role) != PredictionRole.SHADOW
    )
    return {(int(i), v): list(r or []) for i, v, r in session.execute(stmt)}
