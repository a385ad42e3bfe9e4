"""The labelled history: every item with a live human label, as one query.

Tuning (suggest, calibration), the engineer screen's what-if, the shadow and audit reports and
retraining all read it here, so they agree on what counts as a label and on how much it weighs:
- a live label is a review not undone and final (the item's label of record: quality control's gold
  answers and second labels never are, an adjudication is), labelled scratch or ok;
- an ordinary review (an item a person decided) weighs 1;
- a blind audit label of an automatic decision weighs 1 / audit_rate of the policy version in force
  for that item: it stands for the unreviewed automatic decisions it was drawn from.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col

from inspection.store.tables import (
    ImageRow,
    InspectionRow,
    PolicyVersionRow,
    PredictionRole,
    PredictionRow,
    ReviewRow,
    Status,
)

__all__ = [
    "HUMAN_LABELS",
    "LabelledRow",
    "ScoreFilter",
    "audit_weight",
    "labelled_history",
    "live_review",
    "pending_audits",
    "unaudited_automatic",
]

HUMAN_LABELS = ("scratch", "ok")
_CHUNK = 500  # inspection ids per IN (...) list: well inside every driver's parameter limit


def audit_weight(audit: bool, audit_rate: float | None) -> float:
    """Sampling weight of one labelled item (see the module doc)."""
    if audit and audit_rate is not None and audit_rate > 0:
        return 1.0 / audit_rate
    return 1.0


@dataclass(frozen=True)
class ScoreFilter:
    """Which model's scores to join to the labels (one row per matching prediction)."""

    versions: Collection[str] | None = None  # these versions in any role; None: select by `roles`
    roles: Sequence[str] | None = (PredictionRole.PRODUCTION,)  # None: every role
    valid_only: bool = False  # drop failed predictions (else kept, with score None)


@dataclass(frozen=True)
class LabelledRow:
    inspection_id: int
    station: str
    received_at: datetime
    level: str  # automation level the item was decided under
    route: str  # auto_pass / auto_reject / review
    label: str  # the person's label: scratch | ok
    audit: bool  # blind audit of an automatic decision
    blind: bool  # the person did not see the model's output
    audit_rate: float | None  # of the policy version in force for the item (None: no such version)
    image_sha256: str
    image_path: str  # relative to data_dir
    image_width: int | None  # None: the image could not be decoded
    model_version: str | None = None  # of the joined prediction (None without a ScoreFilter)
    score: float | None = None  # None: no valid model output

    @property
    def weight(self) -> float:
        return audit_weight(self.audit, self.audit_rate)


def live_review() -> Any:
    """Join condition: the live (not undone) final review of an inspection: its label of record. Gold
    answers, second labels and outvoted first labels are never final, so no item counts twice."""
    return sa.and_(
        col(ReviewRow.inspection_id) == col(InspectionRow.id),
        col(ReviewRow.undone_at).is_(None),
        col(ReviewRow.is_final).is_(True),
    )


def policy_in_force() -> Any:
    """Join condition: the policy version an inspection was decided under (shared by history and ramps)."""
    return sa.and_(
        col(PolicyVersionRow.station) == col(InspectionRow.station),
        col(PolicyVersionRow.version) == col(InspectionRow.policy_version),
    )


def labelled_history(
    session: Session,
    *,
    station: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    levels: Collection[str] | None = None,
    audit: bool | None = None,
    inspection_ids: Sequence[int] | None = None,
    scores: ScoreFilter | None = None,
) -> list[LabelledRow]:
    """Live human labels in (inspection id, review id) order, filtered by station, received time
    [since, until), automation level, audit or not, and inspection ids; with `scores`, each joined
    to the matching predictions (items without one are left out)."""
    stmt = _history_query(station=station, since=since, until=until, levels=levels, audit=audit, scores=scores)
    if inspection_ids is None:
        return list(_rows(session, stmt, scores))
    out: list[LabelledRow] = []
    for start in range(0, len(inspection_ids), _CHUNK):
        chunk = list(inspection_ids[start : start + _CHUNK])
        out += _rows(session, stmt.where(col(InspectionRow.id).in_(chunk)), scores)
    return out


# The columns `_rows` unpacks, in order.
_COLUMNS = (
    col(InspectionRow.id),
    col(InspectionRow.station),
    col(InspectionRow.received_at),
    col(InspectionRow.level),
    col(InspectionRow.route),
    col(ReviewRow.label),
    col(ReviewRow.audit),
    col(ReviewRow.blind),
    # the item's own audit rate (a ramp's boost) when it has one, else its policy version's
    sa.func.coalesce(col(InspectionRow.audit_rate), col(PolicyVersionRow.audit_rate)),
    col(ImageRow.sha256),
    col(ImageRow.path),
    col(ImageRow.width),
)


def _history_query(
    *,
    station: str | None,
    since: datetime | None,
    until: datetime | None,
    levels: Collection[str] | None,
    audit: bool | None,
    scores: ScoreFilter | None,
) -> Any:
    ins, rev, img, pol = InspectionRow, ReviewRow, ImageRow, PolicyVersionRow
    stmt = (
        sa.select(*_COLUMNS)
        .select_from(ins)
        .join(rev, live_review())
        .join(img, col(img.id) == col(ins.image_id))
        .outerjoin(pol, policy_in_force())
        .where(col(rev.label).in_(HUMAN_LABELS))
        .order_by(col(ins.id), col(rev.id))
    )
    if station is not None:
        stmt = stmt.where(col(ins.station) == station)
    if since is not None:
        stmt = stmt.where(col(ins.received_at) >= since)
    if until is not None:
        stmt = stmt.where(col(ins.received_at) < until)
    if levels is not None:
        stmt = stmt.where(col(ins.level).in_(list(levels)))
    if audit is not None:
        stmt = stmt.where(col(rev.audit).is_(audit))
    return stmt if scores is None else _with_scores(stmt, scores)


def _with_scores(stmt: Any, scores: ScoreFilter) -> Any:
    pred = PredictionRow
    stmt = stmt.add_columns(col(pred.model_version), col(pred.score), col(pred.error)).join(
        pred, col(pred.inspection_id) == col(InspectionRow.id)
    )
    if scores.versions is not None:
        stmt = stmt.where(col(pred.model_version).in_(list(scores.versions)))
    elif scores.roles is not None:
        stmt = stmt.where(col(pred.role).in_(list(scores.roles)))
    if scores.valid_only:
        stmt = stmt.where(col(pred.score).is_not(None), col(pred.error).is_(None))
    return stmt


def _rows(session: Session, stmt: Any, scores: ScoreFilter | None) -> Iterator[LabelledRow]:
    for r in session.execute(stmt).yield_per(10_000):
        iid, station, received, level, route, label, audit, blind, rate, sha, path, width = r[:12]
        version = score = None
        if scores is not None:
            version, raw, error = r[12:]
            score = float(raw) if raw is not None and error is None else None
        yield LabelledRow(
            int(iid), station, received, level, route, label, bool(audit), bool(blind),
            None if rate is None else float(rate), sha, path, width, version, score,
        )


def pending_audits(session: Session, *, station: str | None = None) -> int:
    """Audit reviews queued or claimed but not labelled yet."""
    stmt = sa.select(sa.func.count()).where(
        col(InspectionRow.audit).is_(True),
        col(InspectionRow.status).in_([Status.QUEUED, Status.CLAIMED]),
    )
    if station is not None:
        stmt = stmt.where(col(InspectionRow.station) == station)
    return int(session.execute(stmt).scalar_one())


def unaudited_automatic(session: Session, *, station: str | None = None) -> int:
    """Automatic decisions made under policy versions with audit_rate 0: no label stands for them."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(InspectionRow)
        .join(PolicyVersionRow, policy_in_force())
        .where(col(InspectionRow.route) != "review", col(PolicyVersionRow.audit_rate) <= 0)
    )
    if station is not None:
        stmt = stmt.where(col(InspectionRow.station) == station)
    return int(session.execute(stmt).scalar_one())
