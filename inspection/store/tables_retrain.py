"""Tables of automatic candidates (issue 14): retrain trigger settings and retrain runs.

A module of its own because tables.py is at its size limit; the rows join the same SQLModel
metadata (store/__init__.py imports this module, so migrations' env and compare_metadata see them).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

_ACTIVE = sa.text("status IN ('queued', 'running')")


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # a better candidate was built and started (shadow or ramp)
    FAILED = "failed"  # training or evaluation raised; the reason is in outcome_reason
    REJECTED = "rejected"  # the candidate was not better than production: kept out


ACTIVE_RUN = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


class RetrainTriggerRow(SQLModel, table=True):
    """A station's retrain trigger, versioned like policy_versions; the latest version is in force."""

    __tablename__ = "retrain_triggers"
    __table_args__ = (sa.UniqueConstraint("station", "version", name="uq_retrain_triggers_station_version"),)

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    version: int
    enabled: bool = False
    on_labels: int | None = None  # start after this many new blind labels (None: never on labels)
    every_hours: float | None = None  # start when the last run is this old (None: no schedule)
    on_drift: bool = False  # start when a drift alarm is open on the station
    deploy_as: str = Field(default="shadow", max_length=16)  # shadow | ramp (the engineer allowed a ramp)
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)  # training options (epochs, ...)
    created_by: str = Field(max_length=64)
    created_at: datetime
    reason: str
    old: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # previous values; None for v1


class RetrainRunRow(SQLModel, table=True):
    """One retrain run: why it started, how far it is, and what came of it."""

    __tablename__ = "retrain_runs"
    __table_args__ = (
        sa.Index("ix_retrain_runs_station_id", "station", "id"),
        sa.Index("uq_retrain_runs_active", "station", unique=True, sqlite_where=_ACTIVE, postgresql_where=_ACTIVE),
    )

    id: int | None = Field(default=None, primary_key=True)
    station: str = Field(max_length=64)
    trigger: str = Field(max_length=16)  # labels | schedule | drift | manual
    trigger_detail: str = ""
    status: str = Field(default=RunStatus.QUEUED.value, max_length=16)
    progress: float = 0.0  # 0..1
    message: str = ""
    requested_by: str = Field(max_length=64)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime  # a heartbeat: a running run that stops updating is stale (its process died)
    last_review_id: int = 0  # blind labels after this id count as new for the next run
    production_version: str | None = Field(default=None, max_length=128)
    candidate_version: str | None = Field(default=None, max_length=128)
    metrics: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # candidate vs production
    outcome: str | None = Field(default=None, max_length=16)  # shadow | ramp | kept_out | failed
    outcome_reason: str | None = None
