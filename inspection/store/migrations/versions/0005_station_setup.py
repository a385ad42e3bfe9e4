"""Station setup: per-station localisation (auto / fixed region / whole frame), domain-gate overrides
and score recalibration, versioned like policy_versions (who, when, why, previous values).

Revision ID: 0005_station_setup
Revises: 0004_monitoring
Create Date: 2025-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_station_setup"
down_revision = "0004_monitoring"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "station_setups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("localisation", sa.String(16), nullable=False),
        sa.Column("roi", sa.JSON(), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("ece_before", sa.Float(), nullable=True),
        sa.Column("ece_after", sa.Float(), nullable=True),
        sa.Column("n_labels", sa.Integer(), nullable=True),
        sa.Column("calibration_model", sa.String(128), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.UniqueConstraint("station", "version", name="uq_station_setups_station_version"),
    )


def downgrade() -> None:
    op.drop_table("station_setups")
