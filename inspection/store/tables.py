"""SQLModel tables and the enumerations stored in them.

Enumerations are stored as plain strings: new values need no ALTER TYPE migration.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

QueueOrder = Literal["oldest", "uncertain"]


class Status(enum.StrEnum):
    QUEUED = "queued"  # waiting for a person
    CLAIMED = "claimed"  # held by one inspector until lease_until
    DONE = "done"  # nothing left for a person to do
    ADJUDICATION = "adjudication"  # two inspectors disagreed: an engineer decides (quality control)


class PredictionRole(enum.StrEnum):
    PRODUCTION = "production"
    SHADOW = "shadow"  # candidate scored, never used
    CANARY = "canary"  # candidate decided this item


class DeploymentMode(enum.StrEnum):
    NONE = "none"
    SHADOW = "shadow"
    CANARY = "canary"


class ImageRow(SQLModel, table=True):
    __tablename__ = "images"
    __table_args__ = (sa.UniqueConstraint("sha256", name="uq_images_sha256"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64)
    path: str  # relative to settings.data_dir, posix
    size_bytes: int
    width: int | None = None
    height: int | None = None
    format: str | None = Field(default=None, max_length=16)
    first_station: str = Field(max_length=64)
    received_at: datetime
    source_name: str | None = Field(default=None, max_length=255)  # client's file name: display only
    # Input metrics for drift monitoring; None when the image could not be decoded.
    brightness: float | None = None
    contrast: float | None = None
    sharpness: float | None = None


class InspectionRow(SQLModel, table=True):
    """One received image event and its decision; also the review-queue entry."""

    __tablename__ = "inspections"
    __table_args__ = (
        sa.UniqueConstraint("station", "idempotency_key", name="uq_inspections_station_idempotency"),
        sa.Index("ix_inspections_queue_station", "status", "station", "received_at", "id"),
        sa.Index("ix_inspections_queue_any", "status", "received_at", "id"),
        # "Most uncertain first": the claim's full ORDER BY, id included (migration 0002).
        sa.Index("ix_inspections_queue_station_uncertain", "status", "station", "priority", "received_at", "id"),
        sa.Index("ix_inspections_queue_any_uncertain", "status", "priority", "received_at", "id"),
        sa.Index("ix_inspections_lease", "status", "lease_until"),
        sa.Index("ix_inspections_station_received", "station", "received_at"),
        sa.Index("ix_inspections_received", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(foreign_key="images.id", index=True)
    station: str = Field(max_length=64)
    received_at: datetime
    policy_version: int
    level: str = Field(max_length=16)
    route: str = Field(max_length=16)
    show_model: bool = False
    audit: bool = False
    final_label: str | None = Field(default=None, max_length=16)
    decided_by: str | None = Field(default=None, max_length=16)  # model / inspector / NULL pending
    decided_at: datetime | None = None
    model_version: str | None = Field(default=None, max_length=128)  # model the decision used
    score: float | None = None
    reason: str = ""
    error: str | None = None  # why no valid model output (undecodable, model error, time-out)
    status: str = Field(max_length=16)
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = None
    lease_until: datetime | None = None
    # |score - 0.5|: lower is more uncertain; 0 when there is no score (a person must look anyway).
    priority: float = 0.0
    idempotency_key: str | None = Field(default=None, max_length=255)
    # The audit rate this item was drawn at when it differs from its policy version's (a ramp audits
    # the candidate's decisions more often); None: the policy's. Audit weights read it (migration 0007).
    audit_rate: float | None = None


class PredictionRow(SQLModel, table=True):
    __tablename__ = "predictions"
    __table_args__ = (sa.Index("ix_predictions_version_created", "model_version", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspections.id", index=True)
    model_version: str = Field(max_length=128)
    role: str = Field(max_length=16)
    score: float | None = None
    regions: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    heatmap_path: str | None = None  # relative to settings.data_dir
    latency_ms: float = 0.0
    error: str | None = None
    created_at: datetime


class ReviewRow(SQLModel, table=True):
    __tablename__ = "reviews"
    __table_args__ = (
        # At most one live final label per item: the database itself refuses a second one (migration
        # 0006: a double-labelled item has two live labels, only one of them, or an adjudication, final).
        sa.Index(
            "uq_reviews_one_active",
            "inspection_id",
            unique=True,
            sqlite_where=sa.text("undone_at IS NULL AND is_final"),
            postgresql_where=sa.text("undone_at IS NULL AND is_final"),
        ),
        sa.Index("ix_reviews_inspector_created", "inspector", "created_at"),
        sa.Index("ix_reviews_created", "created_at"),
        sa.Index("ix_reviews_inspection_inspector", "inspection_id", "inspector"),
    )

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspections.id")
    inspector: str = Field(max_length=64)
    label: str = Field(max_length=16)
    note: str | None = None
    seconds_taken: float | None = None
    blind: bool = False  # the inspector did not see the model's output
    audit: bool = False  # blind check of an automatic decision
    created_at: datetime
    undone_at: datetime | None = None
    # ReviewKind: label (an ordinary or first label), second (the independent second label of a
    # double-labelled item), gold (an answer to a planted gold item), adjudication (an engineer's).
    kind: str = Field(default="label", max_length=16, sa_column_kwargs={"server_default": "label"})
    # The item's label of record: the one history, reports and exports read. False for gold answers,
    # second labels, and a first label still waiting for its second (or outvoted by an adjudication).
    is_final: bool = Field(default=True, sa_column_kwargs={"server_default": sa.true()})


class ReviewKind(enum.StrEnum):
    LABEL = "label"
    SECOND = "second"
    GOLD = "gold"
    ADJUDICATION = "adjudication"


class SkipRow(SQLModel, table=True):
    """An inspector passed on an item; it goes back to the queue for the others."""

    __tablename__ = "skips"
    __table_args__ = (sa.Index("ix_skips_inspector_item", "inspector", "inspection_id"),)

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspections.id", index=True)
    inspector: str = Field(max_length=64)
    reason: str | None = None
    created_at: datetime


class PolicyVersionRow(SQLModel, table=True):
    __tablename__ = "policy_versions"
    __table_args__ = (sa.UniqueConstraint("station", "version", name="uq_policy_station_version"),)

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    version: int
    level: str = Field(max_length=16)
    pass_below: float
    reject_above: float
    audit_rate: float
    audit_seed: int = 0
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str
    old: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # previous values; None for v1


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_at", "at"),
        sa.Index("ix_events_kind_at", "kind", "at"),
        sa.Index("ix_events_station_at", "station", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    kind: str = Field(max_length=64)
    actor: str | None = Field(default=None, max_length=64)
    station: str | None = Field(default=None, max_length=64)
    inspection_id: int | None = Field(default=None, index=True)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class UserRow(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_users_name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    role: str = Field(max_length=16)
    password_hash: str  # argon2
    created_at: datetime
    active: bool = True


class ApiTokenRow(SQLModel, table=True):
    __tablename__ = "api_tokens"
    __table_args__ = (sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64, index=True)
    token_hash: str = Field(max_length=64)  # sha256 of the token; the token is never stored
    prefix: str = Field(max_length=16)  # first characters, to tell tokens apart in listings
    created_by: str | None = Field(default=None, max_length=64)
    created_at: datetime
    revoked_at: datetime | None = None


class DeploymentRow(SQLModel, table=True):
    """Deployment history; the latest row is the current state."""

    __tablename__ = "deployments"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    production_version: str = Field(max_length=128)
    candidate_version: str | None = Field(default=None, max_length=128)
    mode: str = Field(default=DeploymentMode.NONE, max_length=16)
    canary_fraction: float = 0.0
    actor: str = Field(max_length=64)
    reason: str = ""


class LoginFailureRow(SQLModel, table=True):
    """One failed login (any way in): the throttle counts these per address and per account."""

    __tablename__ = "login_failures"
    __table_args__ = (
        sa.Index("ix_login_failures_address_at", "address", "at"),
        sa.Index("ix_login_failures_name_at", "name", "at"),
        sa.Index("ix_login_failures_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    name: str = Field(max_length=64)  # as typed (maybe no such user), cut to 64
    address: str = Field(max_length=64)  # client address


class AccountLockRow(SQLModel, table=True):
    """An account locked after many failures from many addresses, until `locked_until`."""

    __tablename__ = "account_locks"

    name: str = Field(primary_key=True, max_length=64)
    locked_at: datetime
    locked_until: datetime


class UserSessionRow(SQLModel, table=True):
    """A browser session: the cookie carries a random token, only its hash is stored."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        sa.UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
        sa.Index("ix_user_sessions_user_name", "user_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64)  # sha256 of the token
    user_name: str = Field(max_length=64)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute end
    revoked_at: datetime | None = None  # logout


class MonitorSampleRow(SQLModel, table=True):
    """One ingested item as monitoring sees it (frame metrics, route flags, score, features): written in
    ingest's own transaction, read by the drift checks and the monitoring report."""

    __tablename__ = "monitor_samples"
    __table_args__ = (
        sa.Index("ix_monitor_samples_station_id", "station", "id"),
        sa.Index("ix_monitor_samples_station_at", "station", "at"),
        sa.Index("ix_monitor_samples_at", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int | None = None  # no foreign key: monitoring never blocks deleting an item
    station: str = Field(max_length=64)
    model_version: str | None = Field(default=None, max_length=128)
    at: datetime
    brightness: float | None = None  # frame metrics (vision.images.image_metrics); None: undecodable
    contrast: float | None = None
    sharpness: float | None = None
    colour_cast: float | None = None
    width: int | None = None
    height: int | None = None
    unreadable: bool = False  # the bytes did not decode
    unjudgeable: bool = False  # the domain gate refused (no phone found, out of range)
    to_people: bool = False
    auto_pass: bool = False
    auto_reject: bool = False
    audit: bool = False
    score: float | None = None
    n_regions: int | None = None
    latency_ms: float | None = None  # time to decide the item (decode + score + route)
    features: list[float] = Field(default_factory=list, sa_type=JSON)  # the deciding model's, may be empty


class AlarmRuleSetRow(SQLModel, table=True):
    """A station's alarm rules, versioned like policies; the latest version is in force."""

    __tablename__ = "alarm_rule_sets"
    __table_args__ = (sa.UniqueConstraint("station", "version", name="uq_alarm_rule_sets_station_version"),)

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    version: int
    rules: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # core.alarms.AlarmRuleSet.to_json()
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str
    old: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # the rules replaced; None for v1


class AlarmRow(SQLModel, table=True):
    """A rule that fired: open until `cleared_at`. At most one open alarm per station and rule."""

    __tablename__ = "alarms"
    __table_args__ = (
        # The database itself refuses a second open alarm of one rule (two evaluating processes race).
        sa.Index(
            "uq_alarms_one_open",
            "station",
            "rule",
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        ),
        sa.Index("ix_alarms_station_opened", "station", "opened_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    rule: str = Field(max_length=64)
    metric: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    opened_at: datetime
    cleared_at: datetime | None = None
    evidence: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # the test result that fired it
    first_sample_id: int | None = None  # the drifted window (monitor_samples ids), for example images
    last_sample_id: int | None = None


class StationReferenceRow(SQLModel, table=True):
    """A station's own reference window (versioned); without one the production model's reference holds."""

    __tablename__ = "station_references"
    __table_args__ = (sa.UniqueConstraint("station", "version", name="uq_station_references_station_version"),)

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    version: int
    spec: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # first N after a date, or a date range
    reference: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # core.drift.Reference.to_json()
    n: int
    first_sample_id: int | None = None  # the window's samples, for reference example images
    last_sample_id: int | None = None
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str


class MonitorStateRow(SQLModel, table=True):
    """Per station: the last evaluation (which samples it saw, its drift results): the Prometheus
    gauges and every server process read it here."""

    __tablename__ = "monitor_states"

    station: str = Field(primary_key=True, max_length=64)
    evaluated_at: datetime
    last_sample_id: int  # the newest sample the evaluation saw
    n_seen: int  # the station's samples so far: rules look every `step` of them
    results: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)


class StationSetupRow(SQLModel, table=True):
    """A station's setup, versioned like policy_versions: how the inspected region is found, the
    engineer's gate overrides, and the score recalibration. The latest version is in force."""

    __tablename__ = "station_setups"
    __table_args__ = (sa.UniqueConstraint("station", "version", name="uq_station_setups_station_version"),)

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    version: int
    localisation: str = Field(default="auto", max_length=16)  # auto / roi / frame
    roi: list[float] | None = Field(default=None, sa_type=JSON)  # [x, y, w, h] fractions; roi mode only
    gate: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # metric -> {"lo", "hi"} override
    temperature: float | None = None  # None: no recalibration
    ece_before: float | None = None
    ece_after: float | None = None
    n_labels: int | None = None
    calibration_model: str | None = Field(default=None, max_length=128)  # the version it was fitted for
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str
    old: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # previous values; None for v1


class GoldItemRow(SQLModel, table=True):
    """A stored item whose label is known for sure, used to test inspectors (quality control)."""

    __tablename__ = "gold_items"
    __table_args__ = (
        # One active gold entry per item; a removed one may be marked again.
        sa.Index(
            "uq_gold_items_active",
            "inspection_id",
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: int = Field(foreign_key="inspections.id")
    label: str = Field(max_length=16)
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=64)


class GoldPlantRow(SQLModel, table=True):
    """A gold item planted blind in one inspector's queue: a copy of the item (its own inspection row,
    same image, no model output) whose answer is stored as a review of kind gold."""

    __tablename__ = "gold_plants"
    __table_args__ = (sa.Index("ix_gold_plants_inspector_gold", "inspector", "gold_id"),)

    inspection_id: int = Field(primary_key=True, foreign_key="inspections.id")  # the copy
    gold_id: int = Field(foreign_key="gold_items.id", index=True)
    inspector: str = Field(max_length=64)  # whose queue it was planted in
    planted_at: datetime


class QcSettingRow(SQLModel, table=True):
    """A station's quality-control rates (None: the server setting)."""

    __tablename__ = "qc_settings"

    station: str = Field(primary_key=True, max_length=64)
    gold_rate: float | None = None  # share of an inspector's claims that get a planted gold item
    double_rate: float | None = None  # share of labelled items that a second inspector labels too
    updated_by: str = Field(max_length=64)
    updated_at: datetime
    reason: str


class RampRow(SQLModel, table=True):
    """A gradual ramp of a candidate model (plan, who/why, where it stands); changes are events."""

    __tablename__ = "ramps"

    id: int | None = Field(default=None, primary_key=True)
    candidate_version: str = Field(max_length=128)
    production_version: str = Field(max_length=128)  # where a rollback goes
    plan: dict[str, Any] = Field(sa_type=JSON)  # core.ramp.RampPlan.to_json()
    status: str = Field(max_length=16, index=True)  # running | paused | completed | rolled_back | aborted
    step: int = 0
    step_started_at: datetime
    first_inspection_id: int = 0  # items after this one count as the ramp's
    step_first_inspection_id: int = 0  # items after this one count for the current step
    forced: bool = False  # the canary steps were allowed although the held-out comparison objected
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str = ""
    updated_at: datetime
    ended_at: datetime | None = None
    last_evidence: dict[str, Any] | None = Field(default=None, sa_type=JSON)


METADATA = SQLModel.metadata
