"""Small reads for health checks and monitoring."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session


def ping(session: Session) -> None:
    """One round trip to the database; raises when it is unreachable."""
    session.execute(sa.text("SELECT 1"))
