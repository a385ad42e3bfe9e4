"""Small reads for health checks and monitoring."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col

from inspection.store.tables import InspectionRow, PolicyVersionRow


def ping(session: Session) -> None:
    """One round trip to the database; raises when it is unreachable."""
    session.execute(sa.text("SELECT 1"))


def known_stations(session: Session) -> list[str]:
    """Every station with a policy or any inspection, sorted (gauges exist for them at 0 too)."""
    stmt = sa.union(sa.select(col(PolicyVersionRow.station)), sa.select(col(InspectionRow.station)))
    return sorted(str(s) for s in session.execute(stmt).scalars().all())
