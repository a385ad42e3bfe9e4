"""Initial schema: images, inspections (decisions + review queue), predictions, reviews, skips,
policy versions, events, users, API tokens, deployments.

Revision ID: 0001_initial
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(16), nullable=True),
        sa.Column("first_station", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("source_name", sa.String(255), nullable=True),
        sa.Column("brightness", sa.Float(), nullable=True),
        sa.Column("contrast", sa.Float(), nullable=True),
        sa.Column("sharpness", sa.Float(), nullable=True),
        sa.UniqueConstraint("sha256", name="uq_images_sha256"),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("route", sa.String(16), nullable=False),
        sa.Column("show_model", sa.Boolean(), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("final_label", sa.String(16), nullable=True),
        sa.Column("decided_by", sa.String(16), nullable=True),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("model_version", sa.String(128), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.UniqueConstraint("station", "idempotency_key", name="uq_inspections_station_idempotency"),
    )
    op.create_index("ix_inspections_image_id", "inspections", ["image_id"])
    op.create_index("ix_inspections_queue_station", "inspections", ["status", "station", "received_at", "id"])
    op.create_index("ix_inspections_queue_any", "inspections", ["status", "received_at", "id"])
    op.create_index(
        "ix_inspections_queue_station_priority",
        "inspections",
        ["status", "station", "priority", "received_at"],
    )
    op.create_index("ix_inspections_queue_any_priority", "inspections", ["status", "priority", "received_at"])
    op.create_index("ix_inspections_lease", "inspections", ["status", "lease_until"])
    op.create_index("ix_inspections_station_received", "inspections", ["station", "received_at"])
    op.create_index("ix_inspections_received", "inspections", ["received_at"])

    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("model_version", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("heatmap_path", sa.String(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_predictions_inspection_id", "predictions", ["inspection_id"])
    op.create_index("ix_predictions_version_created", "predictions", ["model_version", "created_at"])

    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("inspector", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("seconds_taken", sa.Float(), nullable=True),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("undone_at", TS, nullable=True),
    )
    # At most one live label per item, enforced by the database (partial unique index).
    op.create_index(
        "uq_reviews_one_active",
        "reviews",
        ["inspection_id"],
        unique=True,
        sqlite_where=sa.text("undone_at IS NULL"),
        postgresql_where=sa.text("undone_at IS NULL"),
    )
    op.create_index("ix_reviews_inspector_created", "reviews", ["inspector", "created_at"])
    op.create_index("ix_reviews_created", "reviews", ["created_at"])

    op.create_table(
        "skips",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("inspection_id", sa.Integer(), sa.ForeignKey("inspections.id"), nullable=False),
        sa.Column("inspector", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_skips_inspection_id", "skips", ["inspection_id"])
    op.create_index("ix_skips_inspector_item", "skips", ["inspector", "inspection_id"])

    op.create_table(
        "policy_versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("pass_below", sa.Float(), nullable=False),
        sa.Column("reject_above", sa.Float(), nullable=False),
        sa.Column("audit_rate", sa.Float(), nullable=False),
        sa.Column("audit_seed", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.UniqueConstraint("station", "version", name="uq_policy_station_version"),
    )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("inspection_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_at", "events", ["at"])
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])
    op.create_index("ix_events_station_at", "events", ["station", "at"])
    op.create_index("ix_events_inspection_id", "events", ["inspection_id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_station", "api_tokens", ["station"])

    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("production_version", sa.String(128), nullable=False),
        sa.Column("candidate_version", sa.String(128), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("canary_fraction", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
    )
    op.create_index("ix_deployments_at", "deployments", ["at"])


def downgrade() -> None:
    for table in (
        "deployments", "api_tokens", "users", "events", "policy_versions",
        "skips", "reviews", "predictions", "inspections", "images",
    ):  # fmt: skip
        op.drop_table(table)
