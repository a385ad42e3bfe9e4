"""The export's read: every decided or labelled inspection with its image and live review, in
inspection-id pages (keyset pagination: the same SQL on SQLite and PostgreSQL, bounded memory);
and the import's write: a label made in a labelling tool, stored as the item's live review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from inspection.store.events import add_event
from inspection.store.history import live_review
from inspection.store.inspections import get_inspection
from inspection.store.queue import QueueConflict, active_review
from inspection.store.tables import (
    ImageRow,
    InspectionRow,
    PredictionRole,
    PredictionRow,
    ReviewKind,
    ReviewRow,
    Status,
)

__all__ = ["ExportRow", "ExportWhere", "count_export_rows", "export_page", "export_regions", "import_label"]


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
    review_kind: str | None  # of the final review: label (one inspector or two who agreed) | adjudication
    labels_given: int  # live inspector labels of the item (2 when double-labelled); it is exported once


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
    col(ReviewRow.kind),
)


def _labels_given() -> Any:
    """How many inspectors labelled the item from the queue (first and second labels, not gold answers)."""
    other: Any = aliased(ReviewRow)
    return (
        sa.select(sa.func.count())
        .where(
            other.inspection_id == col(InspectionRow.id),
            other.undone_at.is_(None),
            other.kind.in_([ReviewKind.LABEL, ReviewKind.SECOND]),
        )
        .scalar_subquery()
    )


def _export_query(where: ExportWhere) -> Any:
    ins, img, rev = InspectionRow, ImageRow, ReviewRow
    stmt = (
        sa.select(*_COLUMNS, _labels_given())
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


def import_label(
    session: Session,
    *,
    inspection_id: int,
    sha256: str | None,
    inspector: str,
    label: str,
    at: datetime,
    now: datetime,
    source: str,
) -> bool:
    """Store an imported label as the item's live review; False when it already has that label.

    Raises LookupError for an unknown item or one whose image is not `sha256`, QueueConflict for one
    awaiting or settled by an engineer's adjudication. A different live
    label is withdrawn (undone now) and replaced: the import is the later human word. As for a
    label given in the queue, the item is then done, and (unless it is an audit) decided by a person.
    """
    row = get_inspection(session, inspection_id=inspection_id, lock=True)
    if row is None:
        raise LookupError(f"inspection {inspection_id} not found")
    image = session.get(ImageRow, row.image_id)
    if sha256 is not None and (image is None or image.sha256 != sha256):
        raise LookupError(f"inspection {inspection_id} has another image than {sha256[:16]}…")
    # Quality control outranks an import: a disagreement waits for its engineer, and an engineer's
    # adjudication is the label of record (issue 11), so neither is settled by a file.
    if row.status == Status.ADJUDICATION:
        raise QueueConflict(f"inspection {inspection_id} waits for an engineer to adjudicate")
    existing = active_review(session, inspection_id=inspection_id)
    if existing is not None and existing.label == label:
        return False
    if existing is not None and existing.kind == ReviewKind.ADJUDICATION:
        raise QueueConflict(f"inspection {inspection_id} was adjudicated {existing.label!r} by {existing.inspector}")
    if existing is not None:
        existing.undone_at = now
        session.add(existing)
        session.flush()  # the one-live-review index must see it withdrawn before the new one
    review = ReviewRow(
        inspection_id=inspection_id,
        inspector=inspector,
        label=label,
        blind=not row.show_model,
        audit=row.audit,
        created_at=min(at, now),
    )
    session.add(review)
    row.status = Status.DONE
    row.claimed_by, row.claimed_at, row.lease_until = None, None, None
    if not row.audit:
        row.final_label, row.decided_by, row.decided_at = label, "inspector", min(at, now)
    session.add(row)
    session.flush()
    detail = {
        "label": label,
        "audit": row.audit,
        "review_id": review.id,
        "source": source,
        "replaced": None if existing is None else existing.label,
    }
    add_event(
        session,
        kind="review.imported",
        at=now,
        actor=inspector,
        station=row.station,
        inspection_id=row.id,
        detail=detail,
    )
    return True
