"""Gradual ramps of candidate models, and the per-item audit rate (a ramp's boosted audits).

Revision ID: 0007_ramp
Revises: 0006_quality_control
Create Date: 2025-05-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_ramp"
down_revision = "0006_quality_control"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("audit_rate", sa.Float(), nullable=True))
    op.create_table(
        "ramps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("candidate_version", sa.String(128), nullable=False),
        sa.Column("production_version", sa.String(128), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", TS, nullable=False),
        sa.Column("first_inspection_id", sa.Integer(), nullable=False),
        sa.Column("step_first_inspection_id", sa.Integer(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("last_evidence", sa.JSON(), nullable=True),
    )
    op.create_index("ix_ramps_status", "ramps", ["status"])


def downgrade() -> None:
    op.drop_index("ix_ramps_status", table_name="ramps")
    op.drop_table("ramps")
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("audit_rate")
