"""The review queue: claim, label, skip, undo, and what an inspector sees."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from inspection import store
from inspection.core.domain import (
    Label,
    Region,
)
from inspection.services import marks as marks_service
from inspection.services import quality
from inspection.services.context import Pipeline
from inspection.services.errors import InputError, NotFound
from inspection.services.ingest import regions_from_json
from inspection.services.validation import parse_label, validate_name, validate_station
from inspection.store import QueueConflict, QueueOrder
from inspection.store import inspector as records

# Why an inspector passes on an item (the screen's keys 1-4); stored with the skip.
SKIP_REASONS: dict[str, str] = {
    "unclear_image": "unclear image",
    "second_opinion": "need a second opinion",
    "not_a_phone": "not a phone",
    "other": "other",
}

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
    highlight: bool = False  # the station's default: open the item with the model's outlines shown


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
    display = records.get_display(session, station=row.station)
    preds = store.predictions_for(session, inspection_id=row.id)
    decision = next((p for p in preds if p.model_version == row.model_version and p.role != "shadow"), None)
    return replace(
        task,
        score=row.score,
        model_version=row.model_version,
        regions=regions_from_json(decision.regions) if decision else (),
        heatmap_path=app.resolve(decision.heatmap_path) if decision and decision.heatmap_path else None,
        reason=row.reason,
        highlight=display is not None and display.highlight,
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
    marks: Sequence[Mapping[str, object]] | None = None,
) -> LabelResult:
    """Store one label. `marks` (optional): where the defect is, as boxes or strokes in frame pixels
    (services.marks), stored with the label in the same transaction; `note`: free text (<= 500)."""
    inspector = validate_name(inspector, "inspector")
    lab = parse_label(label)
    if seconds_taken is not None and not (math.isfinite(seconds_taken) and seconds_taken >= 0):
        raise InputError("seconds_taken must be a non-negative number")
    note = (note or "").strip() or None
    if note is not None and len(note) > 500:
        raise InputError("a note is at most 500 characters")
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
            if marks and out.created and item is not None:
                _store_marks(session, out.review, item, marks, now=app.clock())
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


def _store_marks(
    session: store.Session, review: store.ReviewRow, item: store.InspectionRow, raw: Sequence[Mapping[str, object]],
    *, now: datetime,
) -> None:  # fmt: skip
    image = store.get_image(session, image_id=item.image_id)
    frame = (image.width, image.height) if image is not None and image.width and image.height else None
    parsed = marks_service.parse_marks(raw, frame_wh=frame)
    assert review.id is not None and item.id is not None
    records.add_marks(session, review_id=review.id, inspection_id=item.id, inspector=review.inspector,
                      marks=[m.to_json() for m in parsed], now=now)  # fmt: skip


def skip_reason(reason: str | None) -> str | None:
    """A skip reason as stored: one of SKIP_REASONS' keys (the screen), or free text from the API."""
    text = (reason or "").strip()
    if not text:
        return None
    if len(text) > 200 or not text.isprintable():
        raise InputError("a skip reason is at most 200 printable characters")
    return text


def skip(app: Pipeline, *, inspection_id: int, inspector: str, reason: str | None = None) -> None:
    """Pass on a claimed item with a reason; it goes to the others first (store.queue._skipped_by)."""
    inspector = validate_name(inspector, "inspector")
    reason = skip_reason(reason)
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
    return undo(app, inspector=inspector, station=station).task


@dataclass(frozen=True)
class Undone:
    task: ReviewTask  # the item, handed back claimed
    label: str  # the withdrawn label
    labelled_at: datetime


def undo(app: Pipeline, *, inspector: str, station: str | None = None) -> Undone:
    """`undo_last` that also says which label was withdrawn (the screen shows it)."""
    inspector = validate_name(inspector, "inspector")
    with app.write() as session:
        out = store.undo_last(
            session,
            inspector=inspector,
            station=station,
            now=app.clock(),
            window_seconds=app.settings.undo_window_seconds,
            lease_seconds=app.settings.lease_seconds,
        )
        return Undone(_task(app, session, out.inspection), out.review.label, out.review.created_at)


def highlight_default(app: Pipeline, *, station: str) -> bool:
    """Whether the review screen opens the station's items with the model's outlines shown."""
    station = validate_station(station)
    with app.read() as session:
        row = records.get_display(session, station=station)
    return row is not None and row.highlight


def set_highlight_default(app: Pipeline, *, station: str, on: bool, by: str, reason: str) -> bool:
    """Engineers: the station's highlight default; an event records who, why and the old value.
    Returns the old value."""
    station, by = validate_station(station), validate_name(by, "by")
    why = (reason or "").strip()
    if not why:
        raise InputError("a reason is required: say why the highlight default changes")
    if len(why) > 500:
        raise InputError("a reason is at most 500 characters")
    with app.write() as session:
        row = records.get_display(session, station=station)
        old = row is not None and row.highlight
        records.set_display(session, station=station, highlight=bool(on), by=by, now=app.clock())
        store.add_event(session, kind="review.display_changed", at=app.clock(), actor=by, station=station,
                        detail={"highlight": bool(on), "old": old, "reason": why})  # fmt: skip
    return old


@dataclass(frozen=True)
class DisplayChange:
    at: datetime
    by: str
    highlight: bool
    old: bool | None  # None: recorded before the old value was
    reason: str


def highlight_changes(app: Pipeline, *, station: str, limit: int = 20) -> list[DisplayChange]:
    """Who switched the station's highlight default, when and why; newest first (from the events)."""
    station = validate_station(station)
    with app.read() as session:
        rows = store.list_events(session, kind="review.display_changed", station=station, limit=limit)
    return [
        DisplayChange(r.at, r.actor or "", bool(r.detail.get("highlight")), r.detail.get("old"),
                      str(r.detail.get("reason") or ""))
        for r in rows
    ]  # fmt: skip


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


def peek_open(app: Pipeline, *, inspector: str, limit: int = 2) -> list[tuple[int, bool]]:
    """`peek_queue` with each item's show_model flag (pre-render the highlight only where there is one)."""
    inspector = validate_name(inspector, "inspector")
    if not 0 <= limit <= 100:
        raise InputError(f"limit must be between 0 and 100, got {limit}")
    with app.read() as session:
        return store.peek_next_open(session, inspector=inspector, limit=limit)


@dataclass(frozen=True)
class InspectorStats:
    labelled_today: int  # own live labels in the last 12 h (one shift)
    last_hour: int
    queue: int  # items waiting for anyone
    for_me: int = 0  # items this inspector would be offered (0 exactly when their screen says "Queue empty")
    skipped: int = 0  # items they skipped that wait for the others first


def inspector_stats(app: Pipeline, *, inspector: str) -> InspectorStats:
    """Own live labels in the last 12 h and the last hour, and items waiting for anyone."""
    inspector = validate_name(inspector, "inspector")
    now = app.clock()
    with app.read() as session:
        today = store.count_labels(session, inspector=inspector, since=now - timedelta(hours=12))
        recent = store.count_labels(session, inspector=inspector, since=now - timedelta(hours=1))
        waiting = sum(q.count for q in store.queue_depth(session) if q.status == store.Status.QUEUED)
        mine = store.count_open(session, inspector=inspector)
    return InspectorStats(labelled_today=today, last_hour=recent, queue=waiting, for_me=mine.mine,
                          skipped=mine.skipped)  # fmt: skip


