"""Station setups per station, versioned: the latest version of a station is its setup in force."""

from __future__ import annotations

from sqlmodel import Session, col, select

from inspection.store.tables import ImageRow, InspectionRow, StationSetupRow

__all__ = ["add_station_setup", "current_station_setup", "latest_image_path", "station_setup_history"]


def current_station_setup(session: Session, *, station: str) -> StationSetupRow | None:
    stmt = (
        select(StationSetupRow)
        .where(StationSetupRow.station == station)
        .order_by(col(StationSetupRow.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def station_setup_history(session: Session, *, station: str) -> list[StationSetupRow]:
    stmt = select(StationSetupRow).where(StationSetupRow.station == station)
    return list(session.exec(stmt.order_by(col(StationSetupRow.version))).all())


def add_station_setup(session: Session, *, row: StationSetupRow) -> StationSetupRow:
    """Insert a new version; a concurrent writer of the same version fails on the unique key."""
    session.add(row)
    session.flush()
    return row


def latest_image_path(session: Session, *, station: str) -> str | None:
    """The stored path (relative to data_dir) of the station's newest decodable image, or None."""
    stmt = (
        select(ImageRow.path)
        .join(InspectionRow, col(InspectionRow.image_id) == col(ImageRow.id))
        .where(InspectionRow.station == station, col(ImageRow.width).is_not(None))
        .order_by(col(InspectionRow.received_at).desc(), col(InspectionRow.id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()
