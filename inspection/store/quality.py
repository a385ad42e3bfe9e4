"""Quality control of the inspectors: gold items and their blind plants, per-station QC rates, the
double labels of an item, and the engineer's adjudication of a disagreement.

Every label stays a row of `reviews`, told apart by `kind` (label, second, gold, adjudication); the one
with `is_final` is the item's label of record, the only one history, reports and exports read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from inspection.store.db import AlreadyExists
from inspection.store.events import add_event
from inspection.store.inspections import get_inspection
from inspection.store.tables import (
    GoldItemRow,
    GoldPlantRow,
    ImageRow,
    InspectionRow,
    QcSettingRow,
    ReviewKind,
    ReviewRow,
    Status,
)

__all__ = [
    "DoubleLabelRow",
    "GoldAnswer",
    "ShiftLabel",
    "add_gold",
    "adjudicate",
    "double_labels",
    "get_gold",
    "get_qc_setting",
    "gold_answers",
    "gold_candidates",
    "is_plant",
    "list_gold",
    "pending_first",
    "plant_gold",
    "remove_gold",
    "reviews_of",
    "set_qc_setting",
    "shift_labels",
]


def _live() -> Any:
    return col(ReviewRow.undone_at).is_(None)


# Gold items


def get_gold(session: Session, *, inspection_id: int) -> GoldItemRow | None:
    """The active gold entry of an item."""
    stmt = select(GoldItemRow).where(GoldItemRow.inspection_id == inspection_id, col(GoldItemRow.removed_at).is_(None))
    return session.exec(stmt).first()


def add_gold(session: Session, *, inspection_id: int, label: str, by: str, reason: str, now: datetime) -> GoldItemRow:
    """Mark a stored item as gold with its known label. Raises LookupError for an unknown item or a
    planted copy, AlreadyExists when it is gold already."""
    row = get_inspection(session, inspection_id=inspection_id)
    if row is None or is_plant(session, inspection_id=inspection_id):
        raise LookupError(f"inspection {inspection_id} not found")
    if get_gold(session, inspection_id=inspection_id) is not None:
        raise AlreadyExists(f"inspection {inspection_id} is a gold item already")
    gold = GoldItemRow(inspection_id=inspection_id, label=label, created_by=by, created_at=now, reason=reason)
    session.add(gold)
    session.flush()
    detail = {"label": label, "reason": reason, "gold_id": gold.id}
    add_event(session, kind="qc.gold_added", at=now, actor=by, station=row.station, inspection_id=inspection_id,
              detail=detail)  # fmt: skip
    return gold


def remove_gold(session: Session, *, inspection_id: int, by: str, now: datetime) -> GoldItemRow | None:
    """Stop planting an item (its past answers still count); None when it was not gold."""
    gold = get_gold(session, inspection_id=inspection_id)
    if gold is None:
        return None
    gold.removed_at, gold.removed_by = now, by
    session.add(gold)
    add_event(session, kind="qc.gold_removed", at=now, actor=by, inspection_id=inspection_id, detail={})
    session.flush()
    return gold


def list_gold(session: Session, *, include_removed: bool = False) -> list[tuple[GoldItemRow, str]]:
    """Gold items with their station, oldest first."""
    stmt = sa.select(GoldItemRow, col(InspectionRow.station)).join(
        InspectionRow, col(InspectionRow.id) == col(GoldItemRow.inspection_id)
    )
    if not include_removed:
        stmt = stmt.where(col(GoldItemRow.removed_at).is_(None))
    return [(g, str(s)) for g, s in session.execute(stmt.order_by(col(GoldItemRow.id))).all()]


def is_plant(session: Session, *, inspection_id: int) -> bool:
    return session.get(GoldPlantRow, inspection_id) is not None


def gold_candidates(session: Session, *, inspector: str, station: str | None, limit: int = 50) -> list[GoldItemRow]:
    """Active gold items `inspector` has never been planted, of `station` when given."""
    planted = sa.exists().where(
        col(GoldPlantRow.gold_id) == col(GoldItemRow.id), col(GoldPlantRow.inspector) == inspector
    )
    stmt = select(GoldItemRow).where(col(GoldItemRow.removed_at).is_(None), ~planted)
    if station is not None:
        stmt = stmt.join(InspectionRow, col(InspectionRow.id) == col(GoldItemRow.inspection_id)).where(
            InspectionRow.station == station
        )
    return list(session.exec(stmt.order_by(col(GoldItemRow.id)).limit(limit)).all())


def plant_gold(
    session: Session,
    *,
    gold: GoldItemRow,
    inspector: str,
    now: datetime,
    lease_seconds: int,
    level: str,
    policy_version: int,
) -> InspectionRow:
    """A blind copy of the gold item, claimed by `inspector`: to them it is one more item of the station."""
    source = get_inspection(session, inspection_id=gold.inspection_id)
    assert source is not None and gold.id is not None  # foreign key
    copy = InspectionRow(
        image_id=source.image_id, station=source.station, received_at=now, policy_version=policy_version,
        level=level, route="review", show_model=False, audit=False, reason="", status=Status.CLAIMED,
        claimed_by=inspector, claimed_at=now, lease_until=now + timedelta(seconds=lease_seconds),
    )  # fmt: skip
    session.add(copy)
    session.flush()
    assert copy.id is not None
    session.add(GoldPlantRow(inspection_id=copy.id, gold_id=gold.id, inspector=inspector, planted_at=now))
    add_event(session, kind="qc.gold_planted", at=now, actor=inspector, station=copy.station, inspection_id=copy.id,
              detail={"gold_id": gold.id, "gold_item": gold.inspection_id})  # fmt: skip
    session.flush()
    return copy


# QC rates per station


def get_qc_setting(session: Session, *, station: str) -> QcSettingRow | None:
    return session.get(QcSettingRow, station)


def set_qc_setting(
    session: Session, *, station: str, gold_rate: float | None, double_rate: float | None, by: str, reason: str,
    now: datetime,
) -> QcSettingRow:  # fmt: skip
    row = session.get(QcSettingRow, station)
    old = None if row is None else {"gold_rate": row.gold_rate, "double_rate": row.double_rate}
    row = row or QcSettingRow(station=station, updated_by=by, updated_at=now, reason=reason)
    row.gold_rate, row.double_rate, row.updated_by, row.updated_at, row.reason = gold_rate, double_rate, by, now, reason
    session.add(row)
    detail = {"gold_rate": gold_rate, "double_rate": double_rate, "old": old, "reason": reason}
    add_event(session, kind="qc.rates_set", at=now, actor=by, station=station, detail=detail)
    session.flush()
    return row


# Double labels and adjudication


def reviews_of(session: Session, *, inspection_id: int) -> list[ReviewRow]:
    """The live reviews of an item, oldest first."""
    stmt = select(ReviewRow).where(ReviewRow.inspection_id == inspection_id, _live()).order_by(col(ReviewRow.id))
    return list(session.exec(stmt).all())


def pending_first(session: Session, *, inspection_id: int) -> ReviewRow | None:
    """The live first label of a double-labelled item (kind label), final or not."""
    for r in reviews_of(session, inspection_id=inspection_id):
        if r.kind == ReviewKind.LABEL:
            return r
    return None


@dataclass(frozen=True)
class DoubleLabelRow:
    inspection_id: int
    station: str
    status: str
    first: str
    first_label: str
    second: str
    second_label: str
    at: datetime  # of the second label
    final_label: str | None  # the item's label of record (None while an engineer must decide)
    adjudicated_by: str | None


def double_labels(
    session: Session, *, station: str | None = None, since: datetime | None = None, status: str | None = None
) -> list[DoubleLabelRow]:
    """Items with a live first and second label, oldest second label first."""
    first: Any = aliased(ReviewRow)
    second: Any = aliased(ReviewRow)
    final: Any = aliased(ReviewRow)
    stmt = (
        sa.select(
            second.inspection_id, col(InspectionRow.station), col(InspectionRow.status), first.inspector, first.label,
            second.inspector, second.label, second.created_at, final.label, final.kind, final.inspector,
        )
        .join(first, sa.and_(first.inspection_id == second.inspection_id, first.kind == ReviewKind.LABEL,
                             first.undone_at.is_(None)))
        .join(InspectionRow, col(InspectionRow.id) == second.inspection_id)
        .outerjoin(final, sa.and_(final.inspection_id == second.inspection_id, final.is_final.is_(True),
                                  final.undone_at.is_(None)))
        .where(second.kind == ReviewKind.SECOND, second.undone_at.is_(None))
        .order_by(second.created_at, second.id)
    )  # fmt: skip
    if station is not None:
        stmt = stmt.where(col(InspectionRow.station) == station)
    if since is not None:
        stmt = stmt.where(second.created_at >= since)
    if status is not None:
        stmt = stmt.where(col(InspectionRow.status) == status)
    return [
        DoubleLabelRow(int(i), s, st, a, la, b, lb, at, fl, who if kind == ReviewKind.ADJUDICATION else None)
        for i, s, st, a, la, b, lb, at, fl, kind, who in session.execute(stmt).all()
    ]


def adjudicate(
    session: Session, *, inspection_id: int, engineer: str, label: str, reason: str, now: datetime
) -> ReviewRow:
    """The engineer's label of a disagreement becomes the item's final label. Raises LookupError for an
    unknown item, ValueError when it waits for no adjudication or the engineer labelled it."""
    row = get_inspection(session, inspection_id=inspection_id, lock=True)
    if row is None:
        raise LookupError(f"inspection {inspection_id} not found")
    if row.status != Status.ADJUDICATION:
        raise ValueError(f"inspection {inspection_id} waits for no adjudication")
    labels = reviews_of(session, inspection_id=inspection_id)
    if any(r.inspector == engineer for r in labels):
        raise ValueError(f"{engineer} labelled inspection {inspection_id}: another engineer must decide")
    review = ReviewRow(
        inspection_id=inspection_id, inspector=engineer, label=label, note=reason or None, blind=not row.show_model,
        audit=row.audit, created_at=now, kind=ReviewKind.ADJUDICATION, is_final=True,
    )  # fmt: skip
    session.add(review)
    row.status = Status.DONE
    if not row.audit:
        row.final_label, row.decided_by, row.decided_at = label, "inspector", now
    session.add(row)
    session.flush()
    given = {r.inspector: r.label for r in labels}
    detail = {"label": label, "reason": reason, "review_id": review.id, "labels": given}
    add_event(session, kind="qc.adjudicated", at=now, actor=engineer, station=row.station, inspection_id=inspection_id,
              detail=detail)  # fmt: skip
    return review


# What the report reads


@dataclass(frozen=True)
class GoldAnswer:
    inspector: str
    gold_item: int  # the gold item's inspection id
    copy_id: int  # the planted copy the inspector labelled
    station: str
    answer: str
    truth: str
    at: datetime
    seconds: float | None
    image_path: str

    @property
    def correct(self) -> bool:
        return self.answer == self.truth


def gold_answers(
    session: Session, *, station: str | None = None, since: datetime | None = None, inspector: str | None = None
) -> list[GoldAnswer]:
    """Live answers to planted gold items (reviews of kind gold) with the known label, oldest first."""
    stmt = (
        sa.select(
            col(ReviewRow.inspector), col(GoldItemRow.inspection_id), col(ReviewRow.inspection_id),
            col(InspectionRow.station), col(ReviewRow.label), col(GoldItemRow.label), col(ReviewRow.created_at),
            col(ReviewRow.seconds_taken), col(ImageRow.path),
        )
        .join(GoldPlantRow, col(GoldPlantRow.inspection_id) == col(ReviewRow.inspection_id))
        .join(GoldItemRow, col(GoldItemRow.id) == col(GoldPlantRow.gold_id))
        .join(InspectionRow, col(InspectionRow.id) == col(ReviewRow.inspection_id))
        .join(ImageRow, col(ImageRow.id) == col(InspectionRow.image_id))
        .where(col(ReviewRow.kind) == ReviewKind.GOLD, _live())
        .order_by(col(ReviewRow.created_at), col(ReviewRow.id))
    )  # fmt: skip
    if station is not None:
        stmt = stmt.where(col(InspectionRow.station) == station)
    if since is not None:
        stmt = stmt.where(col(ReviewRow.created_at) >= since)
    if inspector is not None:
        stmt = stmt.where(col(ReviewRow.inspector) == inspector)
    return [GoldAnswer(*r) for r in session.execute(stmt).all()]


@dataclass(frozen=True)
class ShiftLabel:
    inspector: str
    at: datetime
    seconds: float | None
    kind: str
    copy_id: int


def shift_labels(session: Session, *, station: str | None = None, since: datetime | None = None) -> list[ShiftLabel]:
    """Every live label inspectors gave from the queue (kinds label, second, gold), oldest first."""
    kinds = [ReviewKind.LABEL, ReviewKind.SECOND, ReviewKind.GOLD]
    stmt = (
        sa.select(col(ReviewRow.inspector), col(ReviewRow.created_at), col(ReviewRow.seconds_taken),
                  col(ReviewRow.kind), col(ReviewRow.inspection_id))
        .where(_live(), col(ReviewRow.kind).in_(kinds))
        .order_by(col(ReviewRow.created_at), col(ReviewRow.id))
    )  # fmt: skip
    if station is not None:
        stmt = stmt.join(InspectionRow, col(InspectionRow.id) == col(ReviewRow.inspection_id)).where(
            col(InspectionRow.station) == station
        )
    if since is not None:
        stmt = stmt.where(col(ReviewRow.created_at) >= since)
    return [ShiftLabel(*r) for r in session.execute(stmt).all()]
