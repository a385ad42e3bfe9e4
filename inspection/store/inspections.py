"""Images, inspections and predictions: what was received and how it was decided."""

from __future__ import annotations

from sqlmodel import Session, col, select

from inspection.store.db import insert_ignore
from inspection.store.tables import ImageRow, InspectionRow, PredictionRow

__all__ = [
    "add_inspection",
    "add_prediction",
    "find_by_idempotency_key",
    "get_image",
    "get_inspection",
    "get_or_add_image",
    "predictions_for",
]


def get_or_add_image(session: Session, *, image: ImageRow) -> ImageRow:
    """The row for image.sha256, inserted if new. Content-addressed: an image is stored once."""
    values = image.model_dump(exclude={"id"})
    insert_ignore(session, ImageRow.__table__, values, conflict=["sha256"])  # type: ignore[attr-defined]
    row = session.exec(select(ImageRow).where(ImageRow.sha256 == image.sha256)).one()
    return row


def get_image(session: Session, *, image_id: int) -> ImageRow | None:
    return session.get(ImageRow, image_id)


def add_inspection(session: Session, *, row: InspectionRow) -> InspectionRow:
    session.add(row)
    session.flush()
    return row


def get_inspection(session: Session, *, inspection_id: int, lock: bool = False) -> InspectionRow | None:
    stmt = select(InspectionRow).where(InspectionRow.id == inspection_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.exec(stmt.execution_options(populate_existing=True)).first()


def find_by_idempotency_key(session: Session, *, station: str, key: str) -> InspectionRow | None:
    stmt = select(InspectionRow).where(InspectionRow.station == station, InspectionRow.idempotency_key == key)
    return session.exec(stmt).first()


def add_prediction(session: Session, *, row: PredictionRow) -> PredictionRow:
    session.add(row)
    session.flush()
    return row


def predictions_for(session: Session, *, inspection_id: int) -> list[PredictionRow]:
    stmt = (
        select(PredictionRow)
        .where(PredictionRow.inspection_id == inspection_id)
        .order_by(col(PredictionRow.id))
    )
    return list(session.exec(stmt).all())

