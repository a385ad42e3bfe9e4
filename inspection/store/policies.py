"""Policy versions per station: the latest version of a station is its policy in force."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, select

from inspection.store.tables import PolicyVersionRow

__all__ = ["add_policy_version", "current_policies", "current_policy", "policy_history"]


def current_policy(session: Session, *, station: str) -> PolicyVersionRow | None:
    stmt = (
        select(PolicyVersionRow)
        .where(PolicyVersionRow.station == station)
        .order_by(col(PolicyVersionRow.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def current_policies(session: Session) -> list[PolicyVersionRow]:
    latest = (
        select(PolicyVersionRow.station, sa.func.max(PolicyVersionRow.version).label("v"))
        .group_by(col(PolicyVersionRow.station))
        .subquery()
    )
    stmt = (
        select(PolicyVersionRow)
        .join(
            latest,
            sa.and_(
                col(PolicyVersionRow.station) == latest.c.station, col(PolicyVersionRow.version) == latest.c.v
            ),
        )
        .order_by(col(PolicyVersionRow.station))
    )
    return list(session.exec(stmt).all())


def policy_history(session: Session, *, station: str) -> list[PolicyVersionRow]:
    stmt = select(PolicyVersionRow).where(PolicyVersionRow.station == station)
    return list(session.exec(stmt.order_by(col(PolicyVersionRow.version))).all())


def add_policy_version(session: Session, *, row: PolicyVersionRow) -> PolicyVersionRow:
    session.add(row)
    session.flush()
    return row
