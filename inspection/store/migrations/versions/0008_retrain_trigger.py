"""Automatic candidates: per-station retrain trigger settings (versioned with who/why) and the
retrain runs they start (status, progress, candidate vs production metrics, outcome).

Revision ID: 0008_retrain_trigger
Revises: 0007_ramp
Create Date: 2025-05-12
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_retrain_trigger"
down_revision = "0007_ramp"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ACTIVE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    op.create_table(
        "retrain_triggers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("on_labels", sa.Integer(), nullable=True),
        sa.Column("every_hours", sa.Float(), nullable=True),
        sa.Column("on_drift", sa.Boolean(), nullable=False),
        sa.Column("deploy_as", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.UniqueConstraint("station", "version", name="uq_retrain_triggers_station_version"),
    )
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("trigger_detail", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("last_review_id", sa.Integer(), nullable=False),
        sa.Column("production_version", sa.String(128), nullable=True),
        sa.Column("candidate_version", sa.String(128), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("outcome_reason", sa.String(), nullable=True),
    )
    op.create_index("ix_retrain_runs_station_id", "retrain_runs", ["station", "id"])
    # At most one queued or running run per station, even with several server processes.
    op.create_index(
        "uq_retrain_runs_active",
        "retrain_runs",
        ["station"],
        unique=True,
        sqlite_where=ACTIVE,
        postgresql_where=ACTIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_retrain_runs_active", table_name="retrain_runs")
    op.drop_index("ix_retrain_runs_station_id", table_name="retrain_runs")
    op.drop_table("retrain_runs")
    op.drop_table("retrain_triggers")
