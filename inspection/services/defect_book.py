"""The defect book: reference images per class (a scratch and each look-alike), curated by engineers
from stored items and shown to inspectors one key away on the review screen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from inspection import store
from inspection.services.accounts import Permission, User, require
from inspection.services.context import Pipeline
from inspection.services.errors import InputError, NotFound
from inspection.store import inspector as records

# Class -> what an inspector reads as its heading (scratch first: the defect; then its look-alikes).
CLASSES: dict[str, str] = {
    "scratch": "Scratch (reject)",
    "lint": "Lint / dust (OK: wipe-off)",
    "reflection": "Reflection (OK)",
    "oil": "Oil / smudge (OK)",
    "other": "Other look-alikes",
}


@dataclass(frozen=True)
class BookEntry:
    id: int
    inspection_id: int
    defect_class: str
    caption: str
    added_by: str
    created_at: datetime


def _entry(row: records.BookEntryRow) -> BookEntry:
    assert row.id is not None
    return BookEntry(row.id, row.inspection_id, row.defect_class, row.caption, row.added_by, row.created_at)


def parse_class(value: str) -> str:
    key = (value or "").strip().lower()
    if key not in CLASSES:
        raise InputError(f"defect class must be one of {list(CLASSES)}, got {value!r}")
    return key


def add_entry(app: Pipeline, *, user: User, inspection_id: int, defect_class: str, caption: str) -> BookEntry:
    """Engineers: file stored item `inspection_id` under `defect_class` with a caption (what to look at)."""
    require(user, Permission.ENGINEER)
    klass = parse_class(defect_class)
    text = (caption or "").strip()
    if not 3 <= len(text) <= 300:
        raise InputError("a caption of 3-300 characters says what the inspector should see")
    with app.write() as session:
        if store.get_inspection(session, inspection_id=inspection_id) is None:
            raise NotFound(f"inspection {inspection_id} not found")
        row = records.add_book_entry(session, inspection_id=inspection_id, defect_class=klass, caption=text,
                                     by=user.name, now=app.clock())  # fmt: skip
        store.add_event(session, kind="book.added", at=app.clock(), actor=user.name, inspection_id=inspection_id,
                        detail={"class": klass, "entry": row.id})  # fmt: skip
        return _entry(row)


def remove_entry(app: Pipeline, *, user: User, entry_id: int) -> None:
    require(user, Permission.ENGINEER)
    with app.write() as session:
        row = records.remove_book_entry(session, entry_id=entry_id, by=user.name, now=app.clock())
        if row is None:
            raise NotFound(f"defect book entry {entry_id} not found")
        store.add_event(session, kind="book.removed", at=app.clock(), actor=user.name,
                        inspection_id=row.inspection_id, detail={"entry": entry_id})  # fmt: skip


def entries(app: Pipeline, *, defect_class: str | None = None) -> list[BookEntry]:
    """Live entries, by class (CLASSES order) then oldest first."""
    klass = None if defect_class is None else parse_class(defect_class)
    with app.read() as session:
        rows = records.book_entries(session, defect_class=klass)
    order = list(CLASSES)
    return sorted((_entry(r) for r in rows), key=lambda e: (order.index(e.defect_class), e.id))


def book(app: Pipeline) -> dict[str, list[BookEntry]]:
    """Every class (empty ones too, so the screen shows the whole book) with its entries."""
    out: dict[str, list[BookEntry]] = {k: [] for k in CLASSES}
    for e in entries(app):
        out[e.defect_class].append(e)
    return out
