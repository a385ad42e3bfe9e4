"""Failed logins and account locks: what the login throttle reads and writes (shared by every
process through the database)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from inspection.store.tables import AccountLockRow, LoginFailureRow

__all__ = [
    "FailureCount",
    "account_failures",
    "account_lock",
    "add_login_failure",
    "address_failures",
    "clear_login_failures",
    "lock_account",
    "prune_login_failures",
]


@dataclass(frozen=True)
class FailureCount:
    failures: int
    last_at: datetime | None  # the latest failure (UTC)
    addresses: int  # distinct client addresses among them


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes: they were stored as UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _count(session: Session, where: sa.ColumnElement[bool]) -> FailureCount:
    stmt = select(
        func.count(col(LoginFailureRow.id)),
        func.max(col(LoginFailureRow.at)),
        func.count(sa.distinct(col(LoginFailureRow.address))),
    ).where(where)
    n, last, addresses = session.exec(stmt).one()
    return FailureCount(int(n), _utc(last), int(addresses))


def add_login_failure(session: Session, *, name: str, address: str, at: datetime) -> None:
    session.add(LoginFailureRow(at=at, name=name, address=address))
    session.flush()


def address_failures(session: Session, *, address: str, since: datetime) -> FailureCount:
    """Failures from one client address (any account) since `since`."""
    return _count(session, sa.and_(col(LoginFailureRow.address) == address, col(LoginFailureRow.at) >= since))


def account_failures(session: Session, *, name: str, since: datetime) -> FailureCount:
    """Failures on one account name (from any address) since `since`."""
    return _count(session, sa.and_(col(LoginFailureRow.name) == name, col(LoginFailureRow.at) >= since))


def clear_login_failures(session: Session, *, name: str, address: str) -> None:
    """Forget one address's failures on one account (it has just logged in)."""
    session.execute(
        sa.delete(LoginFailureRow).where(col(LoginFailureRow.name) == name, col(LoginFailureRow.address) == address)
    )


def prune_login_failures(session: Session, *, before: datetime) -> None:
    session.execute(sa.delete(LoginFailureRow).where(col(LoginFailureRow.at) < before))


def account_lock(session: Session, *, name: str) -> AccountLockRow | None:
    """The account's latest lock (live or run out), or None; its times in UTC."""
    row = session.get(AccountLockRow, name)
    if row is not None:
        row.locked_at, row.locked_until = _utc(row.locked_at), _utc(row.locked_until)  # type: ignore[assignment]
    return row


def lock_account(session: Session, *, name: str, now: datetime, until: datetime) -> None:
    row = session.get(AccountLockRow, name) or AccountLockRow(name=name, locked_at=now, locked_until=until)
    row.locked_at, row.locked_until = now, until
    session.add(row)
    session.flush()
