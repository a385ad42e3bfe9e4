"""Queue indexes for "most uncertain first" that match the claim's ORDER BY exactly.

The claim orders by (priority, received_at, id). The 0001 indexes stopped at received_at, so
PostgreSQL had to sort the rows it read; when its statistics were stale (e.g. right after a bulk
load, before autovacuum's ANALYZE) it estimated one waiting row, chose a full Sort over every queued
item of the station, and a claim took ~40 ms at 100,000 waiting items instead of well under 1 ms.
With `id` as the last key the index yields rows already in claim order: Limit 1 reads one entry,
whatever the statistics say. (SQLite appends the rowid to every index, so it was unaffected.)

Revision ID: 0002_queue_uncertain_index
Revises: 0001_initial
Create Date: 2025-03-01
"""

from __future__ import annotations

from alembic import op

revision = "0002_queue_uncertain_index"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_inspections_queue_station_uncertain",
        "inspections",
        ["status", "station", "priority", "received_at", "id"],
    )
    op.create_index(
        "ix_inspections_queue_any_uncertain", "inspections", ["status", "priority", "received_at", "id"]
    )
    op.drop_index("ix_inspections_queue_station_priority", table_name="inspections")
    op.drop_index("ix_inspections_queue_any_priority", table_name="inspections")


def downgrade() -> None:
    op.create_index(
        "ix_inspections_queue_station_priority",
        "inspections",
        ["status", "station", "priority", "received_at"],
    )
    op.create_index("ix_inspections_queue_any_priority", "inspections", ["status", "priority", "received_at"])
    op.drop_index("ix_inspections_queue_station_uncertain", table_name="inspections")
    op.drop_index("ix_inspections_queue_any_uncertain", table_name="inspections")
