"""The review queue: claim with a lease, label exactly once, skip, undo, and what is waiting.

Queue transitions run inside the caller's write transaction and write their own events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inspection.store.events import add_event
from inspection.store.inspections import get_inspection
from inspection.store.quality import is_plant, pending_first, reviews_of
from inspection.store.tables import InspectionRow, QueueOrder, ReviewKind, ReviewRow, SkipRow, Status

__all__ = [
    "LabelOutcome",
    "OpenCount",
    "UndoOutcome",
    "QueueConflict",
    "QueueDepth",
    "active_review",
    "claim_next",
    "count_labels",
    "count_open",
    "holds_claim",
    "next_item_query",
    "peek_next_items",
    "peek_next_open",
    "queue_depth",
    "release_expired",
    "skip_item",
    "store_label",
    "undo_last",
]


def release_expired(session: Session, *, now: datetime) -> list[int]:
    """Return items whose lease ran out to the queue; their ids (an event is written for each)."""
    expired = (
        select(InspectionRow.id)
        .where(InspectionRow.status == Status.CLAIMED, col(InspectionRow.lease_until) < now)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(InspectionRow)
        .where(col(InspectionRow.id).in_(expired.scalar_subquery()))
        .values(status=Status.QUEUED, claimed_by=None, claimed_at=None, lease_until=None)
        .returning(col(InspectionRow.id))
        .execution_options(synchronize_session=False)
    )
    ids = [int(i) for i in session.execute(stmt).scalars().all()]
    for iid in ids:
        add_event(session, kind="queue.lease_expired", at=now, inspection_id=iid)
    return ids


def _skipped_by(inspector: str) -> Any:
    """EXISTS: `inspector` skipped the item and nobody else has passed on it since. A skipped item goes
    to the others first; once another inspector skipped it too, everyone has had a chance and it may
    come back to the first skipper (otherwise an item nobody wants would wait forever)."""
    mine, other = sa.orm.aliased(SkipRow), sa.orm.aliased(SkipRow)
    later = sa.exists().where(
        col(other.inspection_id) == col(mine.inspection_id),
        col(other.inspector) != inspector,
        col(other.id) > col(mine.id),  # skipped after them (ids grow; clocks may tie)
    )
    return sa.exists().where(col(mine.inspection_id) == col(InspectionRow.id), col(mine.inspector) == inspector, ~later)


def _open_items(*, station: str | None, inspector: str) -> Any:
    skipped = _skipped_by(inspector)
    # A double-labelled item comes back for a second inspector: never to the one who labelled it.
    labelled = sa.exists().where(
        col(ReviewRow.inspection_id) == col(InspectionRow.id),
        col(ReviewRow.inspector) == inspector,
        col(ReviewRow.undone_at).is_(None),
    )
    stmt = select(InspectionRow.id).where(InspectionRow.status == Status.QUEUED, ~skipped, ~labelled)
    if station is not None:
        stmt = stmt.where(InspectionRow.station == station)
    return stmt


def next_item_query(*, station: str | None, inspector: str, order: QueueOrder = "oldest") -> Any:
    """SELECT id of the next open item for `inspector`, LIMIT 1 FOR UPDATE SKIP LOCKED.

    Each order has an index with exactly its ORDER BY keys behind the equality on status (and
    station): ix_inspections_queue_{station,any} and ix_inspections_queue_{station,any}_uncertain,
    so the database reads one index entry instead of sorting the queue, whatever its statistics.
    """
    pick = _open_items(station=station, inspector=inspector)
    if order == "uncertain":
        pick = pick.order_by(col(InspectionRow.priority), col(InspectionRow.received_at), col(InspectionRow.id))
    elif order == "oldest":
        pick = pick.order_by(col(InspectionRow.received_at), col(InspectionRow.id))
    else:
        raise ValueError(f"unknown queue order {order!r} (use 'oldest' or 'uncertain')")
    return pick.limit(1).with_for_update(skip_locked=True)


def holds_claim(session: Session, *, inspector: str, station: str | None, now: datetime) -> bool:
    """Whether `inspector` holds a live claim (`claim_next` would give that item back)."""
    stmt = select(InspectionRow.id).where(
        InspectionRow.status == Status.CLAIMED,
        InspectionRow.claimed_by == inspector,
        col(InspectionRow.lease_until) >= now,
    )
    if station is not None:
        stmt = stmt.where(InspectionRow.station == station)
    return session.exec(stmt.limit(1)).first() is not None


def claim_next(
    session: Session,
    *,
    station: str | None,
    inspector: str,
    now: datetime,
    lease_seconds: int,
    order: QueueOrder = "oldest",
) -> InspectionRow | None:
    """Give `inspector` one item with a lease, or None when the queue is empty.

    An inspector who already holds a live claim gets that item back (a reloaded page must not
    strand it). Otherwise one atomic UPDATE … WHERE id = (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING claims the next item: on PostgreSQL concurrent claimers skip each other's locked
    rows; on SQLite the statement runs inside BEGIN IMMEDIATE, i.e. claimers are serialised.
    """
    until = now + timedelta(seconds=lease_seconds)
    held = select(InspectionRow).where(
        InspectionRow.status == Status.CLAIMED,
        InspectionRow.claimed_by == inspector,
        col(InspectionRow.lease_until) >= now,
    )
    if station is not None:
        held = held.where(InspectionRow.station == station)
    mine = session.exec(held.order_by(col(InspectionRow.id)).limit(1).with_for_update()).first()
    if mine is not None:
        mine.lease_until = until
        session.add(mine)
        session.flush()
        return mine

    release_expired(session, now=now)
    pick = next_item_query(station=station, inspector=inspector, order=order)
    stmt = (
        sa.update(InspectionRow)
        .where(col(InspectionRow.id) == pick.scalar_subquery())
        .values(status=Status.CLAIMED, claimed_by=inspector, claimed_at=now, lease_until=until)
        .returning(col(InspectionRow.id))
        .execution_options(synchronize_session=False)
    )
    claimed = session.execute(stmt).scalar_one_or_none()
    if claimed is None:
        return None
    add_event(session, kind="queue.claimed", at=now, actor=inspector, inspection_id=claimed)
    return get_inspection(session, inspection_id=claimed)


class QueueConflict(Exception):
    """The queue state does not allow this action (someone else holds the item, nothing to undo…)."""


@dataclass(frozen=True)
class LabelOutcome:
    review: ReviewRow
    inspection: InspectionRow
    created: bool  # False: the same label was already stored (a double submit), nothing written


def active_review(session: Session, *, inspection_id: int) -> ReviewRow | None:
    """The item's live final label (its label of record), if any."""
    stmt = select(ReviewRow).where(
        ReviewRow.inspection_id == inspection_id, col(ReviewRow.undone_at).is_(None), col(ReviewRow.is_final).is_(True)
    )
    return session.exec(stmt).first()


def store_label(
    session: Session,
    *,
    inspection_id: int,
    inspector: str,
    label: str,
    note: str | None,
    seconds_taken: float | None,
    now: datetime,
    double: bool = False,
) -> LabelOutcome:
    """Record an inspector's label exactly once.

    Quality control: on a planted gold copy the label is a gold answer (never the item's label of
    record); with `double` a first label is not final and the item goes back to the queue for a
    second inspector, whose label finishes it when both agree and sends it to an engineer otherwise.

    Accepted only when this inspector holds the item's claim (`claim_next` gave it to them): a
    hand-made request cannot label an item it was never given. A late label after the lease ran out
    is kept while nobody else took the item (a late label is still a real label). A repeat of the
    same label by the same inspector returns the stored review (double click, network retry).
    """
    row = get_inspection(session, inspection_id=inspection_id, lock=True)
    if row is None:
        raise LookupError(f"inspection {inspection_id} not found")
    live = reviews_of(session, inspection_id=inspection_id)
    own = next((r for r in live if r.inspector == inspector), None)
    if own is not None and own.label == label:
        return LabelOutcome(own, row, created=False)
    existing = active_review(session, inspection_id=inspection_id) or own
    if existing is not None:
        raise QueueConflict(
            f"inspection {inspection_id} is already labelled {existing.label!r} by {existing.inspector}"
            + ("; use undo to change it" if existing.inspector == inspector else "")
        )
    if row.status == Status.DONE:
        raise QueueConflict(f"inspection {inspection_id} needs no review (decided by {row.decided_by})")
    if row.status == Status.ADJUDICATION:
        raise QueueConflict(f"inspection {inspection_id} waits for an engineer to adjudicate")
    lease_live = row.lease_until is not None and row.lease_until >= now
    if row.status == Status.CLAIMED and row.claimed_by != inspector and lease_live:
        raise QueueConflict(f"inspection {inspection_id} is claimed by {row.claimed_by}")
    if row.status != Status.CLAIMED or row.claimed_by != inspector:
        raise QueueConflict(f"inspection {inspection_id} is not assigned to {inspector}: take it from the queue first")

    if seconds_taken is None and row.claimed_at is not None and row.claimed_by == inspector:
        seconds_taken = max(0.0, (now - row.claimed_at).total_seconds())
    first = pending_first(session, inspection_id=inspection_id)
    kind = ReviewKind.GOLD if is_plant(session, inspection_id=inspection_id) else (
        ReviewKind.SECOND if first is not None else ReviewKind.LABEL
    )  # fmt: skip
    final = kind == ReviewKind.LABEL and not double
    review = ReviewRow(
        inspection_id=inspection_id,
        inspector=inspector,
        label=label,
        note=note,
        seconds_taken=seconds_taken,
        blind=not row.show_model,
        audit=row.audit,
        created_at=now,
        kind=kind,
        is_final=final,
    )
    session.add(review)
    row.claimed_by, row.claimed_at, row.lease_until = inspector, None, None
    row.status = _after_label(session, row, review, first, now)
    session.add(row)
    session.flush()
    detail = {"label": label, "audit": row.audit, "review_id": review.id, "kind": kind.value}
    _review_event(session, "review.labelled", row, inspector, now, detail)
    return LabelOutcome(review, row, created=True)


def _after_label(
    session: Session, row: InspectionRow, review: ReviewRow, first: ReviewRow | None, now: datetime
) -> Status:
    """The item's status after `review`, and its label of record when that is settled."""
    if review.kind == ReviewKind.GOLD:
        return Status.DONE  # a gold answer measures the inspector; the copy is closed
    if review.kind == ReviewKind.LABEL and not review.is_final:
        row.claimed_by = None
        return Status.QUEUED  # the first of two labels: the item waits for a second inspector
    if review.kind == ReviewKind.SECOND:
        assert first is not None
        if first.label != review.label:
            return Status.ADJUDICATION
        first.is_final = True  # agreement: the first label is the label of record
        session.add(first)
    if not row.audit:
        # An audit label measures the model; the model's automatic decision stays as it was.
        row.final_label, row.decided_by, row.decided_at = review.label, "inspector", now
    return Status.DONE


def _review_event(
    session: Session, kind: str, row: InspectionRow, inspector: str, now: datetime, detail: dict[str, Any]
) -> None:
    """The event an inspector's action on one item leaves (label, skip, undo)."""
    add_event(session, kind=kind, at=now, actor=inspector, station=row.station, inspection_id=row.id, detail=detail)


def skip_item(
    session: Session, *, inspection_id: int, inspector: str, reason: str | None, now: datetime
) -> InspectionRow:
    """Give a claimed item back to the queue; this inspector will not be offered it again."""
    row = get_inspection(session, inspection_id=inspection_id, lock=True)
    if row is None:
        raise LookupError(f"inspection {inspection_id} not found")
    if row.status != Status.CLAIMED or row.claimed_by != inspector:
        raise QueueConflict(f"inspection {inspection_id} is not claimed by {inspector}")
    session.add(SkipRow(inspection_id=inspection_id, inspector=inspector, reason=reason, created_at=now))
    row.status, row.claimed_by, row.claimed_at, row.lease_until = Status.QUEUED, None, None, None
    if is_plant(session, inspection_id=inspection_id):
        row.status = Status.DONE  # a skipped gold copy is withdrawn, not offered to the others
    session.add(row)
    _review_event(session, "review.skipped", row, inspector, now, {"reason": reason})
    session.flush()
    return row


@dataclass(frozen=True)
class UndoOutcome:
    inspection: InspectionRow
    review: ReviewRow  # the withdrawn label (its label and time say what was undone)


def undo_last(
    session: Session,
    *,
    inspector: str,
    now: datetime,
    window_seconds: int,
    lease_seconds: int,
    station: str | None = None,
) -> UndoOutcome:
    """Withdraw the inspector's most recent live label if it is recent enough; the item comes back
    to the same inspector (claimed, fresh lease) so that it can be labelled again at once. Returns the
    item and the withdrawn review (the screen says what it was)."""
    stmt = (
        select(ReviewRow)
        .join(InspectionRow, col(InspectionRow.id) == col(ReviewRow.inspection_id))
        .where(ReviewRow.inspector == inspector, col(ReviewRow.undone_at).is_(None))
        .where(col(ReviewRow.kind) != ReviewKind.ADJUDICATION)
        .where(True if station is None else InspectionRow.station == station)
        .order_by(col(ReviewRow.created_at).desc(), col(ReviewRow.id).desc())
        .limit(1)
    )
    review = session.exec(stmt).first()
    if review is None or review.created_at < now - timedelta(seconds=window_seconds):
        raise QueueConflict(f"{inspector} has no label from the last {window_seconds} s to undo")
    row = get_inspection(session, inspection_id=review.inspection_id, lock=True)
    assert row is not None  # foreign key
    _check_undo(session, row, review, now)
    review.undone_at = now
    if review.kind == ReviewKind.SECOND:
        first = pending_first(session, inspection_id=review.inspection_id)
        if first is not None and first.is_final:
            first.is_final = False  # the agreement is withdrawn: the item waits for a second label again
            session.add(first)
    session.add(review)
    session.flush()  # the one-final-label index must see both changes before the row's
    row.status, row.claimed_by, row.claimed_at = Status.CLAIMED, inspector, now
    row.lease_until = now + timedelta(seconds=lease_seconds)
    if not row.audit:
        row.final_label, row.decided_by, row.decided_at = None, None, None
    session.add(row)
    _review_event(session, "review.undone", row, inspector, now, {"review_id": review.id, "label": review.label})
    session.flush()
    return UndoOutcome(row, review)


def _check_undo(session: Session, row: InspectionRow, review: ReviewRow, now: datetime) -> None:
    """Refuse an undo that would take a double-labelled item from under another person."""
    others = [r for r in reviews_of(session, inspection_id=review.inspection_id) if r.id != review.id]
    if any(r.kind == ReviewKind.ADJUDICATION for r in others):
        raise QueueConflict(f"inspection {row.id} was adjudicated by an engineer: its label cannot be undone")
    if review.kind == ReviewKind.LABEL and any(r.kind == ReviewKind.SECOND for r in others):
        raise QueueConflict(f"inspection {row.id} has a second inspector's label too: ask an engineer")
    held = row.status == Status.CLAIMED and row.lease_until is not None and row.lease_until >= now
    if held and row.claimed_by != review.inspector:
        raise QueueConflict(f"inspection {row.id} is claimed by {row.claimed_by}")


@dataclass(frozen=True)
class QueueDepth:
    station: str
    status: str
    count: int
    oldest: datetime | None


def queue_depth(session: Session) -> list[QueueDepth]:
    stmt = (
        select(
            InspectionRow.station,
            InspectionRow.status,
            sa.func.count(),
            sa.func.min(InspectionRow.received_at),
        )
        .where(col(InspectionRow.status).in_([Status.QUEUED, Status.CLAIMED]))
        .group_by(col(InspectionRow.station), col(InspectionRow.status))
    )
    return [QueueDepth(s, st, int(n), oldest) for s, st, n, oldest in session.exec(stmt).all()]


def peek_next_items(session: Session, *, inspector: str, station: str | None = None, limit: int = 2) -> list[int]:
    """Ids of the open items `inspector` would most likely be offered next, oldest first (not
    skipped by them). Reads only: no lock and no claim, so another inspector may take them first."""
    stmt = (
        _open_items(station=station, inspector=inspector)
        .order_by(col(InspectionRow.received_at), col(InspectionRow.id))
        .limit(limit)
    )
    return [int(i) for i in session.execute(stmt).scalars().all()]


def peek_next_open(
    session: Session, *, inspector: str, station: str | None = None, limit: int = 2
) -> list[tuple[int, bool]]:
    """`peek_next_items` with each item's show_model flag: (id, show_model), so that a screen can
    pre-render the highlight of the items that have one (and never of blind ones)."""
    stmt = (
        select(InspectionRow.id, InspectionRow.show_model)
        .where(col(InspectionRow.id).in_(_open_items(station=station, inspector=inspector).scalar_subquery()))
        .order_by(col(InspectionRow.received_at), col(InspectionRow.id))
        .limit(limit)
    )
    return [(int(i), bool(show)) for i, show in session.execute(stmt).all()]


@dataclass(frozen=True)
class OpenCount:
    mine: int  # items `inspector` would be offered (what "Queue empty" means when 0)
    skipped: int  # queued items they skipped that wait for the others first


def count_open(session: Session, *, inspector: str, station: str | None = None) -> OpenCount:
    """How many queued items are open to `inspector`, and how many they skipped wait for others."""
    open_ids = _open_items(station=station, inspector=inspector).subquery()
    mine = session.execute(select(sa.func.count()).select_from(open_ids)).scalar_one()
    skipped = select(sa.func.count()).where(InspectionRow.status == Status.QUEUED, _skipped_by(inspector))
    if station is not None:
        skipped = skipped.where(InspectionRow.station == station)
    return OpenCount(int(mine), int(session.execute(skipped).scalar_one()))


def count_labels(session: Session, *, inspector: str, since: datetime) -> int:
    """Live (not undone) labels `inspector` gave at or after `since`."""
    stmt = select(sa.func.count()).where(
        ReviewRow.inspector == inspector,
        col(ReviewRow.created_at) >= since,
        col(ReviewRow.undone_at).is_(None),
    )
    return int(session.exec(stmt).one())
