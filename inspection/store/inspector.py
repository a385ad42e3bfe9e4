"""The inspector screen's own records (issue 11): marks drawn with a label, the defect book, and each
station's display defaults.

A module of its own because tables.py is at its size limit; the rows join the same SQLModel metadata
(store/__init__.py imports this module, so the migrations' env and compare_metadata see them).
Functions take a Session and never commit: the caller (a services module) owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, Session, SQLModel, col, select

from inspection.store.tables import ImageRow, InspectionRow, ReviewRow

__all__ = [
    "BookEntryRow",
    "LabelMarkRow",
    "StationDisplayRow",
    "add_book_entry",
    "add_marks",
    "book_entries",
    "get_display",
    "marks_of",
    "marks_of_items",
    "remove_book_entry",
    "set_display",
]


class LabelMarkRow(SQLModel, table=True):
    """Where an inspector marked the defect when labelling: a box or a stroke, in original-frame pixels.
    A mask source for retraining (services.review.marks_for); undone labels keep their marks, which
    readers drop by the review's undone_at."""

    __tablename__ = "label_marks"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="reviews.id", index=True)
    inspection_id: int = Field(foreign_key="inspections.id", index=True)
    inspector: str = Field(max_length=64)
    kind: str = Field(max_length=8)  # box: two corners; stroke: a polyline
    points: list[list[float]] = Field(default_factory=list, sa_type=JSON)  # [[x, y], ...] frame pixels
    width: float = 0.0  # a stroke's width in frame pixels (0 for boxes)
    created_at: datetime


class BookEntryRow(SQLModel, table=True):
    """A reference image in the defect book: a stored item an engineer filed under a class."""

    __tablename__ = "defect_book"
    __table_args__ = (sa.Index("ix_defect_book_class", "defect_class", "removed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspections.id")
    defect_class: str = Field(max_length=16)  # scratch / lint / reflection / oil / other
    caption: str
    added_by: str = Field(max_length=64)
    created_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=64)


class StationDisplayRow(SQLModel, table=True):
    """How the review screen opens a station's items (no row: the defaults, highlight off)."""

    __tablename__ = "station_display"

    station: str = Field(primary_key=True, max_length=64)
    highlight: bool = False  # outlines of the model's regions shown when an item opens
    updated_by: str = Field(max_length=64)
    updated_at: datetime


# Marks


@dataclass(frozen=True)
class StoredMark:
    inspection_id: int
    review_id: int
    inspector: str
    label: str
    kind: str
    points: tuple[tuple[float, float], ...]
    width: float


def add_marks(
    session: Session, *, review_id: int, inspection_id: int, inspector: str, marks: list[dict[str, Any]], now: datetime
) -> int:
    """Store validated marks ({"kind", "points", "width"}) with a review; how many were stored."""
    for mark in marks:
        session.add(
            LabelMarkRow(
                review_id=review_id,
                inspection_id=inspection_id,
                inspector=inspector,
                kind=str(mark["kind"]),
                points=[[float(x), float(y)] for x, y in mark["points"]],
                width=float(mark.get("width") or 0.0),
                created_at=now,
            )
        )
    session.flush()
    return len(marks)


def marks_of(session: Session, *, inspection_id: int, include_undone: bool = False) -> list[StoredMark]:
    """The marks drawn on an item, oldest first, with the label they came with; by default only those
    of live (not undone) labels."""
    stmt = (
        select(LabelMarkRow, ReviewRow)
        .join(ReviewRow, col(ReviewRow.id) == col(LabelMarkRow.review_id))
        .where(LabelMarkRow.inspection_id == inspection_id)
        .order_by(col(LabelMarkRow.id))
    )
    if not include_undone:
        stmt = stmt.where(col(ReviewRow.undone_at).is_(None))
    return [
        StoredMark(m.inspection_id, m.review_id, m.inspector, r.label, m.kind,
                   tuple((float(p[0]), float(p[1])) for p in m.points), m.width)
        for m, r in session.exec(stmt).all()
    ]  # fmt: skip


_CHUNK = 500  # ids per IN (...) list: far below every database's bound parameter limit


def marks_of_items(
    session: Session, *, inspection_ids: Sequence[int]
) -> dict[int, tuple[tuple[int, int] | None, list[StoredMark]]]:
    """For retraining: the live marks of many items at once, each item's with its frame size (width,
    height of the stored image; None when unknown). Items without marks are left out."""
    out: dict[int, tuple[tuple[int, int] | None, list[StoredMark]]] = {}
    ids = sorted(set(inspection_ids))
    for start in range(0, len(ids), _CHUNK):
        stmt = (
            select(LabelMarkRow, ReviewRow, ImageRow.width, ImageRow.height)
            .join(ReviewRow, col(ReviewRow.id) == col(LabelMarkRow.review_id))
            .join(InspectionRow, col(InspectionRow.id) == col(LabelMarkRow.inspection_id))
            .join(ImageRow, col(ImageRow.id) == col(InspectionRow.image_id))
            .where(col(LabelMarkRow.inspection_id).in_(ids[start : start + _CHUNK]))
            .where(col(ReviewRow.undone_at).is_(None))
            .order_by(col(LabelMarkRow.id))
        )
        for m, r, width, height in session.exec(stmt).all():
            frame = (int(width), int(height)) if width and height else None
            mark = StoredMark(m.inspection_id, m.review_id, m.inspector, r.label, m.kind,
                              tuple((float(p[0]), float(p[1])) for p in m.points), m.width)  # fmt: skip
            out.setdefault(m.inspection_id, (frame, []))[1].append(mark)
    return out


# Defect book


def add_book_entry(
    session: Session, *, inspection_id: int, defect_class: str, caption: str, by: str, now: datetime
) -> BookEntryRow:
    row = BookEntryRow(inspection_id=inspection_id, defect_class=defect_class, caption=caption, added_by=by,
                       created_at=now)  # fmt: skip
    session.add(row)
    session.flush()
    return row


def book_entries(session: Session, *, defect_class: str | None = None) -> list[BookEntryRow]:
    """Live entries (not removed), by class then oldest first."""
    stmt = select(BookEntryRow).where(col(BookEntryRow.removed_at).is_(None))
    if defect_class is not None:
        stmt = stmt.where(BookEntryRow.defect_class == defect_class)
    return list(session.exec(stmt.order_by(col(BookEntryRow.defect_class), col(BookEntryRow.id))).all())


def remove_book_entry(session: Session, *, entry_id: int, by: str, now: datetime) -> BookEntryRow | None:
    row = session.get(BookEntryRow, entry_id)
    if row is None or row.removed_at is not None:
        return None
    row.removed_at, row.removed_by = now, by
    session.add(row)
    session.flush()
    return row


# Display defaults


def get_display(session: Session, *, station: str) -> StationDisplayRow | None:
    return session.get(StationDisplayRow, station)


def set_display(session: Session, *, station: str, highlight: bool, by: str, now: datetime) -> StationDisplayRow:
    row = session.get(StationDisplayRow, station) or StationDisplayRow(station=station, updated_by=by, updated_at=now)
    row.highlight, row.updated_by, row.updated_at = highlight, by, now
    session.add(row)
    session.flush()
    return row
