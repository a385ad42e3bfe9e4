"""Server-side browser sessions: stored by token hash, so that logout, idle expiry and revocation
hold in every process sharing the database."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inspection.store.tables import UserSessionRow

__all__ = ["add_user_session", "live_user_session", "revoke_user_sessions", "touch_user_session"]


def add_user_session(session: Session, *, row: UserSessionRow) -> UserSessionRow:
    session.add(row)
    session.flush()
    return row


def live_user_session(
    session: Session, *, token_hash: str, now: datetime, idle_since: datetime
) -> UserSessionRow | None:
    """The session of `token_hash` when not revoked, not past its end and seen after `idle_since`
    (compared in SQL: SQLite hands back naive datetimes)."""
    stmt = select(UserSessionRow).where(
        UserSessionRow.token_hash == token_hash,
        col(UserSessionRow.revoked_at).is_(None),
        col(UserSessionRow.expires_at) > now,
        col(UserSessionRow.last_seen_at) > idle_since,
    )
    return session.exec(stmt).first()


def touch_user_session(session: Session, *, session_id: int, now: datetime, older_than: datetime) -> None:
    """Record activity, only when the last record is older than `older_than` (few writes)."""
    session.execute(
        sa.update(UserSessionRow)
        .where(col(UserSessionRow.id) == session_id, col(UserSessionRow.last_seen_at) < older_than)
        .values(last_seen_at=now)
    )


def revoke_user_sessions(session: Session, *, token_hash: str, now: datetime) -> int:
    """End the session of `token_hash` (logout); how many were live (0 or 1)."""
    stmt = (
        sa.update(UserSessionRow)
        .where(col(UserSessionRow.token_hash) == token_hash, col(UserSessionRow.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
