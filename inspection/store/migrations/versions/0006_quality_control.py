"""Quality control of the inspectors: gold items and their blind plants, per-station QC rates, and the
review kinds (label, second, gold, adjudication) with the one final label per item.

Revision ID: 0006_quality_control
Revises: 0005_station_setup
Create Date: 2025-05-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_quality_control"
down_revision = "0005_station_setup"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _one_live_index(where: str) -> None:
    op.create_index(
        "uq_reviews_one_active",
        "reviews",
        ["inspection_id"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    # Existing reviews are ordinary final labels: the server defaults say so.
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="label"))
        batch.add_column(sa.Column("is_final", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.drop_index("uq_reviews_one_active", table_name="reviews")
    _one_live_index("undone_at IS NULL AND is_final")
    op.create_index("ix_reviews_inspection_inspector", "reviews", ["inspection_id", "inspector"])
    op.create_table(
        "gold_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.Column("removed_by", sa.String(64), nullable=True),
    )
    op.create_index(
        "uq_gold_items_active",
        "gold_items",
        ["inspection_id"],
        unique=True,
        sqlite_where=sa.text("removed_at IS NULL"),
        postgresql_where=sa.text("removed_at IS NULL"),
    )
    op.create_table(
        "gold_plants",
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), primary_key=True),
        sa.Column("gold_id", sa.Integer(), sa.ForeignKey("gold_items.id"), nullable=False),
        sa.Column("inspector", sa.String(64), nullable=False),
        sa.Column("planted_at", TS, nullable=False),
    )
    op.create_index("ix_gold_plants_gold_id", "gold_plants", ["gold_id"])
    op.create_index("ix_gold_plants_inspector_gold", "gold_plants", ["inspector", "gold_id"])
    op.create_table(
        "qc_settings",
        sa.Column("station", sa.String(64), primary_key=True),
        sa.Column("gold_rate", sa.Float(), nullable=True),
        sa.Column("double_rate", sa.Float(), nullable=True),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
    )


def downgrade() -> None:
    for table in ("qc_settings", "gold_plants", "gold_items"):
        op.drop_table(table)
    op.drop_index("ix_reviews_inspection_inspector", table_name="reviews")
    op.drop_index("uq_reviews_one_active", table_name="reviews")
    # Only final labels survive a downgrade as live labels (the old index allows one per item).
    op.execute("UPDATE reviews SET undone_at = created_at WHERE undone_at IS NULL AND NOT is_final")
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("is_final")
        batch.drop_column("kind")
    _one_live_index("undone_at IS NULL")
