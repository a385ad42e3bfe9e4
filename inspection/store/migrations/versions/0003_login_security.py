"""Login security: failed logins (throttle per address and account), account locks, server-side
browser sessions (the cookie carries a random token; logout and expiry hold in every process).

Revision ID: 0003_login_security
Revises: 0002_queue_uncertain_index
Create Date: 2025-04-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_login_security"
down_revision = "0002_queue_uncertain_index"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
    )
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])
    op.create_index("ix_login_failures_name_at", "login_failures", ["name", "at"])
    op.create_index("ix_login_failures_at", "login_failures", ["at"])
    op.create_table(
        "account_locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("locked_at", TS, nullable=False),
        sa.Column("locked_until", TS, nullable=False),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_seen_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
    )
    op.create_index("ix_user_sessions_user_name", "user_sessions", ["user_name"])


def downgrade() -> None:
    for table in ("user_sessions", "account_locks", "login_failures"):
        op.drop_table(table)
