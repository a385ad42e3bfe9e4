"""The review queue: claim, label, skip, undo, and what an inspector sees."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from inspection import store
from inspection.core.domain import (
    Label,
    Region,
)
from inspection.services import quality
from inspection.services.context import Pipeline
from inspection.services.errors import InputError, NotFound
from inspection.services.ingest import regions_from_json
from inspection.services.validation import parse_label, validate_name, validate_station
from inspection.store import QueueConflict, QueueOrder

# Review queue


@dataclass(frozen=True)
class ReviewTask:
    """What an inspector's screen shows for one claimed item. For blind items (shadow, audit,
    human_only, fail-safe) nothing of the model's call is included: no score, regions or reason."""

    inspection_id: int
    station: str
    image_path: Path
    received_at: datetime
    lease_until: datetime | None
    show_model: bool
    audit: bool
    score: float | None = None
    model_version: str | None = None
    regions: tuple[Region, ...] = ()
    heatmap_path: Path | None = None
    reason: str = ""
    error: str | None = None  # why there is no model output (undecodable …); never the model's call


def _task(app: Pipeline, session: store.Session, row: store.InspectionRow) -> ReviewTask:
    image = store.get_image(session, image_id=row.image_id)
    assert image is not None and row.id is not None
    task = ReviewTask(
        inspection_id=row.id,
        station=row.station,
        image_path=app.resolve(image.path),
        received_at=row.received_at,
        lease_until=row.lease_until,
        show_model=row.show_model,
        audit=row.audit,
        error=row.error if row.error and row.score is None else None,
    )
    if not row.show_model:
        return task
    preds = store.predictions_for(session, inspection_id=row.id)
    decision = next((p for p in preds if p.model_version == row.model_version and p.role != "shadow"), None)
    return replace(
        task,
        score=row.score,
        model_version=row.model_version,
        regions=regions_from_json(decision.regions) if decision else (),
        heatmap_path=app.resolve(decision.heatmap_path) if decision and decision.heatmap_path else None,
        reason=row.reason,
    )


def claim_next(
    app: Pipeline, *, inspector: str, station: str | None = None, order: QueueOrder = "oldest"
) -> ReviewTask | None:
    """The next item for `inspector` (their current one if they hold a live claim), or None."""
    inspector = validate_name(inspector, "inspector")
    station = validate_station(station) if station is not None else None
    if order not in ("oldest", "uncertain"):
        raise InputError(f"order must be 'oldest' or 'uncertain', got {order!r}")
    with app.write() as session:
        # Quality control: now and then a gold item planted blind instead of the next one.
        planted = quality.plant_for(app, session, inspector=inspector, station=station, now=app.clock())
        if planted is not None:
            return _task(app, session, planted)
        row = store.claim_next(
            session,
            station=station,
            inspector=inspector,
            now=app.clock(),
            lease_seconds=app.settings.lease_seconds,
            order=order,
        )
        return None if row is None else _task(app, session, row)


@dataclass(frozen=True)
class LabelResult:
    inspection_id: int
    review_id: int
    label: Label
    created: bool  # False when this exact label had already been stored (double submit)


def submit_label(
    app: Pipeline,
    *,
    inspection_id: int,
    inspector: str,
    label: str | Label,
    note: str | None = None,
    seconds_taken: float | None = None,
) -> LabelResult:
    inspector = validate_name(inspector, "inspector")
    lab = parse_label(label)
    if seconds_taken is not None and not (math.isfinite(seconds_taken) and seconds_taken >= 0):
        raise InputError("seconds_taken must be a non-negative number")
    try:
        with app.write() as session:
            item = store.get_inspection(session, inspection_id=inspection_id)
            double = item is not None and quality.wants_double(app, session, station=item.station,
                                                                inspection_id=inspection_id)  # fmt: skip
            out = store.store_label(
                session,
                double=double,
                inspection_id=inspection_id,
                inspector=inspector,
                label=lab.value,
                note=(note or None),
                seconds_taken=seconds_taken,
                now=app.clock(),
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except IntegrityError:
        # The partial unique index caught a concurrent second label; report what is stored.
        with app.read() as session:
            existing = store.active_review(session, inspection_id=inspection_id)
        if existing is not None and existing.inspector == inspector and existing.label == lab.value:
            assert existing.id is not None
            return LabelResult(inspection_id, existing.id, lab, created=False)
        raise QueueConflict(f"inspection {inspection_id} was labelled concurrently") from None
    assert out.review.id is not None
    return LabelResult(inspection_id, out.review.id, lab, created=out.created)


def skip(app: Pipeline, *, inspection_id: int, inspector: str, reason: str | None = None) -> None:
    inspector = validate_name(inspector, "inspector")
    try:
        with app.write() as session:
            store.skip_item(
                session, inspection_id=inspection_id, inspector=inspector, reason=reason, now=app.clock()
            )
    except LookupError as exc:
        raise NotFound(str(exc)) from None


def undo_last(app: Pipeline, *, inspector: str, station: str | None = None) -> ReviewTask:
    """Withdraw the inspector's own last label (within settings.undo_window_seconds); the item is
    handed back to them claimed. Raises QueueConflict when there is nothing to undo."""
    inspector = validate_name(inspector, "inspector")
    with app.write() as session:
        row = store.undo_last_label(
            session,
            inspector=inspector,
            station=station,
            now=app.clock(),
            window_seconds=app.settings.undo_window_seconds,
            lease_seconds=app.settings.lease_seconds,
        )
        return _task(app, session, row)


def queue_depth(app: Pipeline) -> list[store.QueueDepth]:
    with app.read() as session:
        return store.queue_depth(session)


def queue_stations(app: Pipeline) -> list[str]:
    """Stations whose queue gauges exist even when empty: those with a policy or any inspection."""
    with app.read() as session:
        return store.known_stations(session)


def peek_queue(app: Pipeline, *, inspector: str, limit: int = 2) -> list[int]:
    """Ids of the items `inspector` would most likely get next (oldest queued, not skipped by them).
    A hint for pre-rendering only: claiming stays with `claim_next`."""
    inspector = validate_name(inspector, "inspector")
    if not 0 <= limit <= 100:
        raise InputError(f"limit must be between 0 and 100, got {limit}")
    with app.read() as session:
        return store.peek_next_items(session, inspector=inspector, limit=limit)


@dataclass(frozen=True)
class InspectorStats:
    labelled_today: int  # own live labels in the last 12 h (one shift)
    last_hour: int
    queue: int  # items waiting for anyone


def inspector_stats(app: Pipeline, *, inspector: str) -> InspectorStats:
    """Own live labels in the last 12 h and the last hour, and items waiting for anyone."""
    inspector = validate_name(inspector, "inspector")
    now = app.clock()
    with app.read() as session:
        today = store.count_labels(session, inspector=inspector, since=now - timedelta(hours=12))
        recent = store.count_labels(session, inspector=inspector, since=now - timedelta(hours=1))
        waiting = sum(q.count for q in store.queue_depth(session) if q.status == store.Status.QUEUED)
    return InspectorStats(labelled_today=today, last_hour=recent, queue=waiting)


