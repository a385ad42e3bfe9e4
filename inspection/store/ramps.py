"""Gradual ramps of candidate models, and the items a ramp's candidate scored or decided."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inspection.store.history import audit_weight, live_review, policy_in_force
from inspection.store.tables import InspectionRow, PolicyVersionRow, PredictionRole, PredictionRow, RampRow, ReviewRow

__all__ = ["ACTIVE_RAMP", "RampItem", "active_ramp", "add_ramp", "last_inspection_id", "latest_ramps", "ramp_items"]

ACTIVE_RAMP = ("running", "paused")


def active_ramp(session: Session) -> RampRow | None:
    """The ramp running or paused now (at most one: services.ramp refuses a second)."""
    stmt = select(RampRow).where(col(RampRow.status).in_(ACTIVE_RAMP)).order_by(col(RampRow.id).desc()).limit(1)
    return session.exec(stmt).first()


def latest_ramps(session: Session, *, limit: int = 10) -> list[RampRow]:
    stmt = select(RampRow).order_by(col(RampRow.id).desc()).limit(limit)
    return list(session.exec(stmt).all())


def add_ramp(session: Session, *, row: RampRow) -> RampRow:
    """Insert or update (the row is the ramp's current state; its history is in events)."""
    session.add(row)
    session.flush()
    return row


def last_inspection_id(session: Session) -> int:
    return int(session.execute(sa.select(sa.func.max(col(InspectionRow.id)))).scalar() or 0)


@dataclass(frozen=True)
class RampItem:
    inspection_id: int
    role: str  # shadow | canary (the candidate decided it)
    candidate_score: float
    route: str  # auto_pass / auto_reject / review
    label: str | None  # the live final label, if any
    weight: float  # 1 / audit rate for a blind audit label, else 1


def ramp_items(session: Session, *, candidate_versions: Collection[str], after_id: int) -> list[RampItem]:
    """Items after `after_id` that the candidate scored (shadow) or decided (canary) with a score,
    each with its live label and audit weight, in inspection-id order."""
    ins, pred, rev, pol = InspectionRow, PredictionRow, ReviewRow, PolicyVersionRow
    stmt = (
        sa.select(
            col(pred.inspection_id),
            col(pred.role),
            col(pred.score),
            col(ins.route),
            col(rev.label),
            col(rev.audit),
            sa.func.coalesce(col(ins.audit_rate), col(pol.audit_rate)),
        )  # fmt: skip
        .select_from(pred)
        .join(ins, col(ins.id) == col(pred.inspection_id))
        .outerjoin(rev, live_review())
        .outerjoin(pol, policy_in_force())
        .where(
            col(pred.model_version).in_(set(candidate_versions)),
            col(pred.role).in_([PredictionRole.SHADOW, PredictionRole.CANARY]),
            col(pred.score).is_not(None),
            col(pred.inspection_id) > after_id,
        )
        .order_by(col(pred.inspection_id))
    )
    return [
        RampItem(int(r[0]), str(r[1]), float(r[2]), str(r[3]), r[4], audit_weight(bool(r[5]), r[6]))
        for r in session.execute(stmt).all()
    ]
