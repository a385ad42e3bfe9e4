"""Users (people who log in) and API tokens (stations that send images)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from inspection.store.db import AlreadyExists
from inspection.store.tables import ApiTokenRow, InspectionRow, UserRow

__all__ = [
    "add_token",
    "add_user",
    "find_token",
    "get_user",
    "last_received",
    "list_tokens",
    "list_users",
    "revoke_token",
]


def add_token(session: Session, *, row: ApiTokenRow) -> ApiTokenRow:
    session.add(row)
    session.flush()
    return row


def find_token(session: Session, *, token_hash: str) -> ApiTokenRow | None:
    stmt = select(ApiTokenRow).where(
        ApiTokenRow.token_hash == token_hash, col(ApiTokenRow.revoked_at).is_(None)
    )
    return session.exec(stmt).first()


def list_tokens(session: Session, *, station: str | None = None) -> list[ApiTokenRow]:
    stmt = select(ApiTokenRow)
    if station is not None:
        stmt = stmt.where(ApiTokenRow.station == station)
    return list(session.exec(stmt.order_by(col(ApiTokenRow.id))).all())


def revoke_token(session: Session, *, token_id: int, now: datetime) -> ApiTokenRow | None:
    row = session.get(ApiTokenRow, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        session.flush()
    return row


def last_received(session: Session, *, station: str, since: datetime, until: datetime | None = None) -> datetime | None:
    """When the station's latest item received in [since, until] arrived (None: none). Items do not
    record which token sent them; a token belongs to one station, so this is its last use at best."""
    stmt = sa.select(sa.func.max(InspectionRow.received_at)).where(
        col(InspectionRow.station) == station, col(InspectionRow.received_at) >= since
    )
    if until is not None:
        stmt = stmt.where(col(InspectionRow.received_at) <= until)
    value = session.execute(stmt).scalar()
    return value if isinstance(value, datetime) else None


def add_user(session: Session, *, row: UserRow) -> UserRow:
    """Insert a user; AlreadyExists when the name is taken (the transaction is then spent)."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise AlreadyExists(f"user {row.name!r} already exists") from None
    return row


def get_user(session: Session, *, name: str) -> UserRow | None:
    return session.exec(select(UserRow).where(UserRow.name == name)).first()


def list_users(session: Session) -> list[UserRow]:
    """Every user, active or not, by name."""
    return list(session.exec(select(UserRow).order_by(col(UserRow.name))).all())
