"""Durable storage: SQLModel tables and keyword-only repository functions, one module per aggregate.

tables (rows, enumerations), db (engine, sessions, migrations), inspections (images, inspections,
predictions), queue (the review queue), policies, accounts (users, tokens), deployments, events,
history (the labelled history every report and tuning reads), exports (the export's paged read).

This package re-exports the public names so that callers write `store.X`. Functions take a Session
and never commit: the caller (a services module) owns the transaction.
"""

from __future__ import annotations

from sqlmodel import Session, select

from inspection.store.accounts import add_token, add_user, find_token, get_user, list_tokens, list_users, revoke_token
from inspection.store.db import (
    MIGRATIONS_DIR,
    AlreadyExists,
    current_revision,
    is_postgres,
    make_engine,
    read_session,
    upgrade_database,
    write_session,
)
from inspection.store.deployments import ScorePair, add_deployment, current_deployment, deployment_history, score_pairs
from inspection.store.events import add_event, list_events
from inspection.store.exports import ExportRow, ExportWhere, count_export_rows, export_page, export_regions
from inspection.store.history import (
    LabelledRow,
    ScoreFilter,
    audit_weight,
    labelled_history,
    pending_audits,
    unaudited_automatic,
)
from inspection.store.inspections import (
    add_inspection,
    add_prediction,
    find_by_idempotency_key,
    get_image,
    get_inspection,
    get_or_add_image,
    predictions_for,
    route_counts,
)
from inspection.store.metrics import ping
from inspection.store.policies import add_policy_version, current_policies, current_policy, policy_history
from inspection.store.queue import (
    LabelOutcome,
    QueueConflict,
    QueueDepth,
    active_review,
    claim_next,
    count_labels,
    next_item_query,
    peek_next_items,
    queue_depth,
    release_expired,
    skip_item,
    store_label,
    undo_last_label,
)
from inspection.store.tables import (
    METADATA,
    ApiTokenRow,
    DeploymentMode,
    DeploymentRow,
    EventRow,
    ImageRow,
    InspectionRow,
    PolicyVersionRow,
    PredictionRole,
    PredictionRow,
    QueueOrder,
    ReviewRow,
    SkipRow,
    Status,
    UserRow,
)

__all__ = [
    "METADATA",
    "MIGRATIONS_DIR",
    "AlreadyExists",
    "ApiTokenRow",
    "DeploymentMode",
    "DeploymentRow",
    "EventRow",
    "ExportRow",
    "ExportWhere",
    "ImageRow",
    "InspectionRow",
    "LabelOutcome",
    "LabelledRow",
    "PolicyVersionRow",
    "PredictionRole",
    "PredictionRow",
    "QueueConflict",
    "QueueDepth",
    "QueueOrder",
    "ReviewRow",
    "ScoreFilter",
    "ScorePair",
    "Session",
    "SkipRow",
    "Status",
    "UserRow",
    "active_review",
    "add_deployment",
    "add_event",
    "add_inspection",
    "add_policy_version",
    "add_prediction",
    "add_token",
    "add_user",
    "audit_weight",
    "claim_next",
    "count_export_rows",
    "count_labels",
    "current_deployment",
    "current_policies",
    "current_policy",
    "current_revision",
    "deployment_history",
    "export_page",
    "export_regions",
    "find_by_idempotency_key",
    "find_token",
    "get_image",
    "get_inspection",
    "get_or_add_image",
    "get_user",
    "is_postgres",
    "labelled_history",
    "list_events",
    "list_tokens",
    "list_users",
    "make_engine",
    "next_item_query",
    "peek_next_items",
    "pending_audits",
    "ping",
    "policy_history",
    "predictions_for",
    "queue_depth",
    "read_session",
    "release_expired",
    "revoke_token",
    "route_counts",
    "score_pairs",
    "select",
    "skip_item",
    "store_label",
    "unaudited_automatic",
    "undo_last_label",
    "upgrade_database",
    "write_session",
]
