"""Deployment history (the latest row is the current state) and the candidate-vs-production pairs
that shadow and canary deployments leave in the predictions table."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from inspection.store.tables import DeploymentRow, ImageRow, InspectionRow, PredictionRole, PredictionRow, ReviewRow

__all__ = ["ScorePair", "add_deployment", "current_deployment", "deployment_history", "score_pairs"]


def current_deployment(session: Session) -> DeploymentRow | None:
    stmt = select(DeploymentRow).order_by(col(DeploymentRow.at).desc(), col(DeploymentRow.id).desc()).limit(1)
    return session.exec(stmt).first()


def deployment_history(session: Session) -> list[DeploymentRow]:
    """Every deployment row, oldest first."""
    stmt = select(DeploymentRow).order_by(col(DeploymentRow.at), col(DeploymentRow.id))
    return list(session.exec(stmt).all())


def add_deployment(session: Session, *, row: DeploymentRow) -> DeploymentRow:
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ScorePair:
    """One item scored by a candidate (shadow or canary role) and by production."""

    inspection_id: int
    candidate_score: float
    production_score: float
    production_version: str
    station: str
    image_path: str  # relative to data_dir
    human_label: str | None  # the live (not undone) review label, if any


def score_pairs(
    session: Session, *, candidate_versions: Collection[str], station: str | None = None
) -> list[ScorePair]:
    """Items that `candidate_versions` (the names one model goes by) scored as shadow or canary and
    production scored too, both with a score, in inspection-id order."""
    cand: Any = aliased(PredictionRow)
    prod: Any = aliased(PredictionRow)
    ins: Any = InspectionRow
    img: Any = ImageRow
    rev: Any = ReviewRow
    live_label = (
        sa.select(rev.label)
        .where(rev.inspection_id == cand.inspection_id, rev.undone_at.is_(None), rev.is_final.is_(True))
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        sa.select(cand.inspection_id, cand.score, prod.score, prod.model_version, ins.station, img.path, live_label)
        .join(prod, sa.and_(prod.inspection_id == cand.inspection_id, prod.role == PredictionRole.PRODUCTION))
        .join(ins, ins.id == cand.inspection_id)
        .join(img, img.id == ins.image_id)
        .where(
            cand.model_version.in_(set(candidate_versions)),
            cand.role.in_([PredictionRole.SHADOW, PredictionRole.CANARY]),
            cand.score.is_not(None),
            prod.score.is_not(None),
        )
        .order_by(cand.inspection_id)
    )
    if station is not None:
        stmt = stmt.where(ins.station == station)
    return [
        ScorePair(int(r[0]), float(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5]), r[6])
        for r in session.execute(stmt).all()
    ]
