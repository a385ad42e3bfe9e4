"""Monitoring: one sample per inspection, versioned alarm rules, alarms (at most one open per station
and rule), station reference windows, and each station's last evaluation.

Revision ID: 0004_monitoring
Revises: 0003_login_security
Create Date: 2025-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_monitoring"
down_revision = "0003_login_security"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    _samples()
    op.create_table(
        "alarm_rule_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.UniqueConstraint("station", "version", name="uq_alarm_rule_sets_station_version"),
    )
    _alarms()
    op.create_table(
        "station_references",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("first_sample_id", sa.Integer(), nullable=True),
        sa.Column("last_sample_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.UniqueConstraint("station", "version", name="uq_station_references_station_version"),
    )
    op.create_table(
        "monitor_states",
        sa.Column("station", sa.String(64), primary_key=True),
        sa.Column("evaluated_at", TS, nullable=False),
        sa.Column("last_sample_id", sa.Integer(), nullable=False),
        sa.Column("n_seen", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
    )


def _samples() -> None:
    op.create_table(
        "monitor_samples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), nullable=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("at", TS, nullable=False),
        *(
            sa.Column(name, sa.Float(), nullable=True)
            for name in ("brightness", "contrast", "sharpness", "colour_cast")
        ),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        *(
            sa.Column(name, sa.Boolean(), nullable=False)
            for name in ("unreadable", "unjudgeable", "to_people", "auto_pass", "auto_reject", "audit")
        ),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("n_regions", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
    )
    op.create_index("ix_monitor_samples_station_id", "monitor_samples", ["station", "id"])
    op.create_index("ix_monitor_samples_station_at", "monitor_samples", ["station", "at"])
    op.create_index("ix_monitor_samples_at", "monitor_samples", ["at"])


def _alarms() -> None:
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("cleared_at", TS, nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("first_sample_id", sa.Integer(), nullable=True),
        sa.Column("last_sample_id", sa.Integer(), nullable=True),
    )
    op.create_index(
        "uq_alarms_one_open",
        "alarms",
        ["station", "rule"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_index("ix_alarms_station_opened", "alarms", ["station", "opened_at"])


def downgrade() -> None:
    for table in ("monitor_states", "station_references", "alarms", "alarm_rule_sets", "monitor_samples"):
        op.drop_table(table)
