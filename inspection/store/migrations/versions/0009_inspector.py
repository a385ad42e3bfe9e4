"""The inspector screen (issue 11): marks drawn with a label, the defect book, per-station display
defaults (highlight on or off when an item opens).

Revision ID: 0009_inspector
Revises: 0008_retrain_trigger
Create Date: 2025-05-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_inspector"
down_revision = "0008_retrain_trigger"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "label_marks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("review_id", sa.Integer(), sa.ForeignKey("reviews.id"), nullable=False),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("inspector", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("points", sa.JSON(), nullable=False),
        sa.Column("width", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_label_marks_review_id", "label_marks", ["review_id"])
    op.create_index("ix_label_marks_inspection_id", "label_marks", ["inspection_id"])
    op.create_table(
        "defect_book",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("defect_class", sa.String(16), nullable=False),
        sa.Column("caption", sa.String(), nullable=False),
        sa.Column("added_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("removed_at", TS, nullable=True),
        sa.Column("removed_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_defect_book_class", "defect_book", ["defect_class", "removed_at"])
    op.create_table(
        "station_display",
        sa.Column("station", sa.String(64), primary_key=True),
        sa.Column("highlight", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("station_display")
    op.drop_index("ix_defect_book_class", table_name="defect_book")
    op.drop_table("defect_book")
    op.drop_index("ix_label_marks_inspection_id", table_name="label_marks")
    op.drop_index("ix_label_marks_review_id", table_name="label_marks")
    op.drop_table("label_marks")
