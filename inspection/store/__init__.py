"""Durable storage: SQLModel tables and keyword-only repository functions, including the review queue.

Same code on SQLite (one machine, WAL) and PostgreSQL (many stations). Functions take a Session and
never commit: the caller (a services module) owns the transaction, so one use case is one transaction.

SQLite note: every transaction opened through `write_session` starts with BEGIN IMMEDIATE, so
writers queue on the busy timeout instead of failing with "database is locked" when a deferred
reader tries to upgrade; read-only work uses `read_session` (plain BEGIN, readers never block).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlmodel import JSON, Field, Session, SQLModel, col, select

QueueOrder = Literal["oldest", "uncertain"]


class Status(enum.StrEnum):
    QUEUED = "queued"  # waiting for a person
    CLAIMED = "claimed"  # held by one inspector until lease_until
    DONE = "done"  # nothing left for a person to do


class PredictionRole(enum.StrEnum):
    PRODUCTION = "production"
    SHADOW = "shadow"  # candidate scored, never used
    CANARY = "canary"  # candidate decided this item


class DeploymentMode(enum.StrEnum):
    NONE = "none"
    SHADOW = "shadow"
    CANARY = "canary"


# ---------------------------------------------------------------------------------------------
# Tables. Enumerations are stored as plain strings: new values need no ALTER TYPE migration.
# ---------------------------------------------------------------------------------------------


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
        # At most one live label per item: the database itself refuses a second one.
        sa.Index(
            "uq_reviews_one_active",
            "inspection_id",
            unique=True,
            sqlite_where=sa.text("undone_at IS NULL"),
            postgresql_where=sa.text("undone_at IS NULL"),
        ),
        sa.Index("ix_reviews_inspector_created", "inspector", "created_at"),
        sa.Index("ix_reviews_created", "created_at"),
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


METADATA = SQLModel.metadata

# ---------------------------------------------------------------------------------------------
# Engine, sessions, migrations
# ---------------------------------------------------------------------------------------------

_READONLY = "inspection_readonly"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout, foreign keys and BEGIN IMMEDIATE."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it would defer it) and emit our own below.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        # NORMAL is durable across application crashes in WAL mode; only an OS crash can lose the
        # last transactions, and it never corrupts the database.
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        readonly = conn.get_execution_options().get(_READONLY, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One transaction that writes: committed on success, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work (plain BEGIN on SQLite so that it never waits for writers)."""
    ro = engine.execution_options(**{_READONLY: True})
    with Session(ro, expire_on_commit=False) as session, session.begin():
        yield session


MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def upgrade_database(url_or_engine: str | Engine, *, revision: str = "head") -> None:
    """Run `alembic upgrade <revision>` programmatically (no alembic.ini needed)."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.connect() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
            connection.commit()
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# ---------------------------------------------------------------------------------------------
# Upsert helper
# ---------------------------------------------------------------------------------------------


def _insert_ignore(session: Session, table: sa.Table, values: dict[str, Any], *, conflict: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING on both dialects (two writers may race on a unique key)."""
    ins = pg.insert(table) if is_postgres(session) else sqlite_dialect.insert(table)
    session.execute(ins.values(**values).on_conflict_do_nothing(index_elements=conflict))


# ---------------------------------------------------------------------------------------------
# Images, inspections, predictions
# ---------------------------------------------------------------------------------------------


def get_or_add_image(session: Session, *, image: ImageRow) -> ImageRow:
    """The row for image.sha256, inserted if new. Content-addressed: an image is stored once."""
    values = image.model_dump(exclude={"id"})
    _insert_ignore(session, ImageRow.__table__, values, conflict=["sha256"])  # type: ignore[attr-defined]
    row = session.exec(select(ImageRow).where(ImageRow.sha256 == image.sha256)).one()
    return row


def get_image(session: Session, *, image_id: int) -> ImageRow | None:
    return session.get(ImageRow, image_id)


def add_inspection(session: Session, *, row: InspectionRow) -> InspectionRow:
    session.add(row)
    session.flush()
    return row


def get_inspection(session: Session, *, inspection_id: int, lock: bool = False) -> InspectionRow | None:
    stmt = select(InspectionRow).where(InspectionRow.id == inspection_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.exec(stmt.execution_options(populate_existing=True)).first()


def find_by_idempotency_key(session: Session, *, station: str, key: str) -> InspectionRow | None:
    stmt = select(InspectionRow).where(InspectionRow.station == station, InspectionRow.idempotency_key == key)
    return session.exec(stmt).first()


def add_prediction(session: Session, *, row: PredictionRow) -> PredictionRow:
    session.add(row)
    session.flush()
    return row


def predictions_for(session: Session, *, inspection_id: int) -> list[PredictionRow]:
    stmt = (
        select(PredictionRow)
        .where(PredictionRow.inspection_id == inspection_id)
        .order_by(col(PredictionRow.id))
    )
    return list(session.exec(stmt).all())


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


def add_event(
    session: Session,
    *,
    kind: str,
    at: datetime,
    actor: str | None = None,
    station: str | None = None,
    inspection_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        EventRow(
            at=at, kind=kind, actor=actor, station=station, inspection_id=inspection_id, detail=detail or {}
        )
    )


def list_events(
    session: Session, *, kind: str | None = None, station: str | None = None, limit: int = 100
) -> list[EventRow]:
    stmt = select(EventRow)
    if kind is not None:
        stmt = stmt.where(EventRow.kind == kind)
    if station is not None:
        stmt = stmt.where(EventRow.station == station)
    return list(session.exec(stmt.order_by(col(EventRow.id).desc()).limit(limit)).all())


# ---------------------------------------------------------------------------------------------
# Review queue
# ---------------------------------------------------------------------------------------------


def release_expired(session: Session, *, now: datetime) -> list[int]:
    """Return items whose lease ran out to the queue; their ids (an event is written for each)."""
    expired = (
        select(InspectionRow.id)
        .where(InspectionRow.status == Status.CLAIMED, col(InspectionRow.lease_until) < now)
        .with_for_update(skip_locked=True)
    )
    stmt = (
        sa.update(InspectionRow)
        .where(col(InspectionRow.id).in_(expired.scalar_subquery()))
        .values(status=Status.QUEUED, claimed_by=None, claimed_at=None, lease_until=None)
        .returning(col(InspectionRow.id))
        .execution_options(synchronize_session=False)
    )
    ids = [int(i) for i in session.execute(stmt).scalars().all()]
    for iid in ids:
        add_event(session, kind="queue.lease_expired", at=now, inspection_id=iid)
    return ids


def _open_items(*, station: str | None, inspector: str) -> Any:
    skipped = sa.exists().where(
        col(SkipRow.inspection_id) == col(InspectionRow.id), col(SkipRow.inspector) == inspector
    )
    stmt = select(InspectionRow.id).where(InspectionRow.status == Status.QUEUED, ~skipped)
    if station is not None:
        stmt = stmt.where(InspectionRow.station == station)
    return stmt


def next_item_query(*, station: str | None, inspector: str, order: QueueOrder = "oldest") -> Any:
    """SELECT id of the next open item for `inspector`, LIMIT 1 FOR UPDATE SKIP LOCKED.

    Each order has an index with exactly its ORDER BY keys behind the equality on status (and
    station): ix_inspections_queue_{station,any} and ix_inspections_queue_{station,any}_uncertain,
    so the database reads one index entry instead of sorting the queue, whatever its statistics.
    """
    pick = _open_items(station=station, inspector=inspector)
    if order == "uncertain":
        pick = pick.order_by(col(InspectionRow.priority), col(InspectionRow.received_at), col(InspectionRow.id))
    elif order == "oldest":
        pick = pick.order_by(col(InspectionRow.received_at), col(InspectionRow.id))
    else:
        raise ValueError(f"unknown queue order {order!r} (use 'oldest' or 'uncertain')")
    return pick.limit(1).with_for_update(skip_locked=True)


def claim_next(
    session: Session,
    *,
    station: str | None,
    inspector: str,
    now: datetime,
    lease_seconds: int,
    order: QueueOrder = "oldest",
) -> InspectionRow | None:
    """Give `inspector` one item with a lease, or None when the queue is empty.

    An inspector who already holds a live claim gets that item back (a reloaded page must not
    strand it). Otherwise one atomic UPDATE … WHERE id = (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING claims the next item: on PostgreSQL concurrent claimers skip each other's locked
    rows; on SQLite the statement runs inside BEGIN IMMEDIATE, i.e. claimers are serialised.
    """
    until = now + timedelta(seconds=lease_seconds)
    held = select(InspectionRow).where(
        InspectionRow.status == Status.CLAIMED,
        InspectionRow.claimed_by == inspector,
        col(InspectionRow.lease_until) >= now,
    )
    if station is not None:
        held = held.where(InspectionRow.station == station)
    mine = session.exec(held.order_by(col(InspectionRow.id)).limit(1).with_for_update()).first()
    if mine is not None:
        mine.lease_until = until
        session.add(mine)
        session.flush()
        return mine

    release_expired(session, now=now)
    pick = next_item_query(station=station, inspector=inspector, order=order)
    stmt = (
        sa.update(InspectionRow)
        .where(col(InspectionRow.id) == pick.scalar_subquery())
        .values(status=Status.CLAIMED, claimed_by=inspector, claimed_at=now, lease_until=until)
        .returning(col(InspectionRow.id))
        .execution_options(synchronize_session=False)
    )
    claimed = session.execute(stmt).scalar_one_or_none()
    if claimed is None:
        return None
    add_event(session, kind="queue.claimed", at=now, actor=inspector, inspection_id=claimed)
    return get_inspection(session, inspection_id=claimed)


class QueueConflict(Exception):
    """The queue state does not allow this action (someone else holds the item, nothing to undo…)."""


@dataclass(frozen=True)
class LabelOutcome:
    review: ReviewRow
    inspection: InspectionRow
    created: bool  # False: the same label was already stored (a double submit), nothing written


def active_review(session: Session, *, inspection_id: int) -> ReviewRow | None:
    stmt = select(ReviewRow).where(
        ReviewRow.inspection_id == inspection_id, col(ReviewRow.undone_at).is_(None)
    )
    return session.exec(stmt).first()


def store_label(
    session: Session,
    *,
    inspection_id: int,
    inspector: str,
    label: str,
    note: str | None,
    seconds_taken: float | None,
    now: datetime,
) -> LabelOutcome:
    """Record an inspector's label exactly once.

    Accepted when the item is queued, claimed by this inspector, or its lease has run out (a late
    label is still a real label: never throw one away). A repeat of the same label by the same
    inspector returns the stored review (double click, network retry).
    """
    row = get_inspection(session, inspection_id=inspection_id, lock=True)
    if row is None:
        raise LookupError(f"inspection {inspection_id} not found")
    existing = active_review(session, inspection_id=inspection_id)
    if existing is not None:
        if existing.inspector == inspector and existing.label == label:
            return LabelOutcome(existing, row, created=False)
        raise QueueConflict(
            f"inspection {inspection_id} is already labelled {existing.label!r} by {existing.inspector}"
            + ("; use undo to change it" if existing.inspector == inspector else "")
        )
    if row.status == Status.DONE:
        raise QueueConflict(f"inspection {inspection_id} needs no review (decided by {row.decided_by})")
    lease_live = row.lease_until is not None and row.lease_until >= now
    if row.status == Status.CLAIMED and row.claimed_by != inspector and lease_live:
        raise QueueConflict(f"inspection {inspection_id} is claimed by {row.claimed_by}")

    if seconds_taken is None and row.claimed_at is not None and row.claimed_by == inspector:
        seconds_taken = max(0.0, (now - row.claimed_at).total_seconds())
    review = ReviewRow(
        inspection_id=inspection_id,
        inspector=inspector,
        label=label,
        note=note,
        seconds_taken=seconds_taken,
        blind=not row.show_model,
        audit=row.audit,
        created_at=now,
    )
    session.add(review)
    row.status = Status.DONE
    row.claimed_by, row.claimed_at, row.lease_until = inspector, None, None
    if not row.audit:
        # An audit label measures the model; the model's automatic decision stays as it was.
        row.final_label, row.decided_by, row.decided_at = label, "inspector", now
    session.add(row)
    session.flush()
    add_event(
        session,
        kind="review.labelled",
        at=now,
        actor=inspector,
        station=row.station,
        inspection_id=inspection_id,
        detail={"label": label, "audit": row.audit, "review_id": review.id},
    )
    return LabelOutcome(review, row, created=True)


def skip_item(
    session: Session, *, inspection_id: int, inspector: str, reason: str | None, now: datetime
) -> InspectionRow:
    """Give a claimed item back to the queue; this inspector will not be offered it again."""
    row = get_inspection(session, inspection_id=inspection_id, lock=True)
    if row is None:
        raise LookupError(f"inspection {inspection_id} not found")
    if row.status != Status.CLAIMED or row.claimed_by != inspector:
        raise QueueConflict(f"inspection {inspection_id} is not claimed by {inspector}")
    session.add(SkipRow(inspection_id=inspection_id, inspector=inspector, reason=reason, created_at=now))
    row.status, row.claimed_by, row.claimed_at, row.lease_until = Status.QUEUED, None, None, None
    session.add(row)
    add_event(
        session,
        kind="review.skipped",
        at=now,
        actor=inspector,
        station=row.station,
        inspection_id=inspection_id,
        detail={"reason": reason},
    )
    session.flush()
    return row


def undo_last_label(
    session: Session,
    *,
    inspector: str,
    now: datetime,
    window_seconds: int,
    lease_seconds: int,
    station: str | None = None,
) -> InspectionRow:
    """Withdraw the inspector's most recent live label if it is recent enough; the item comes back
    to the same inspector (claimed, fresh lease) so that it can be labelled again at once."""
    stmt = (
        select(ReviewRow)
        .join(InspectionRow, col(InspectionRow.id) == col(ReviewRow.inspection_id))
        .where(ReviewRow.inspector == inspector, col(ReviewRow.undone_at).is_(None))
        .where(True if station is None else InspectionRow.station == station)
        .order_by(col(ReviewRow.created_at).desc(), col(ReviewRow.id).desc())
        .limit(1)
    )
    review = session.exec(stmt).first()
    if review is None or review.created_at < now - timedelta(seconds=window_seconds):
        raise QueueConflict(f"{inspector} has no label from the last {window_seconds} s to undo")
    row = get_inspection(session, inspection_id=review.inspection_id, lock=True)
    assert row is not None  # foreign key
    review.undone_at = now
    session.add(review)
    row.status, row.claimed_by, row.claimed_at = Status.CLAIMED, inspector, now
    row.lease_until = now + timedelta(seconds=lease_seconds)
    if not row.audit:
        row.final_label, row.decided_by, row.decided_at = None, None, None
    session.add(row)
    add_event(
        session,
        kind="review.undone",
        at=now,
        actor=inspector,
        station=row.station,
        inspection_id=row.id,
        detail={"review_id": review.id, "label": review.label},
    )
    session.flush()
    return row


@dataclass(frozen=True)
class QueueDepth:
    station: str
    status: str
    count: int
    oldest: datetime | None


def queue_depth(session: Session) -> list[QueueDepth]:
    stmt = (
        select(
            InspectionRow.station,
            InspectionRow.status,
            sa.func.count(),
            sa.func.min(InspectionRow.received_at),
        )
        .where(col(InspectionRow.status).in_([Status.QUEUED, Status.CLAIMED]))
        .group_by(col(InspectionRow.station), col(InspectionRow.status))
    )
    return [QueueDepth(s, st, int(n), oldest) for s, st, n, oldest in session.exec(stmt).all()]


def peek_next_items(session: Session, *, inspector: str, station: str | None = None, limit: int = 2) -> list[int]:
    """Ids of the open items `inspector` would most likely be offered next, oldest first (not
    skipped by them). Reads only: no lock and no claim, so another inspector may take them first."""
    stmt = (
        _open_items(station=station, inspector=inspector)
        .order_by(col(InspectionRow.received_at), col(InspectionRow.id))
        .limit(limit)
    )
    return [int(i) for i in session.execute(stmt).scalars().all()]


def count_labels(session: Session, *, inspector: str, since: datetime) -> int:
    """Live (not undone) labels `inspector` gave at or after `since`."""
    stmt = select(sa.func.count()).where(
        ReviewRow.inspector == inspector,
        col(ReviewRow.created_at) >= since,
        col(ReviewRow.undone_at).is_(None),
    )
    return int(session.exec(stmt).one())


def route_counts(session: Session) -> list[tuple[str, str, int]]:
    """(station, route, count) over all inspections (for /metrics)."""
    stmt = select(InspectionRow.station, InspectionRow.route, sa.func.count()).group_by(
        col(InspectionRow.station), col(InspectionRow.route)
    )
    return [(s, r, int(n)) for s, r, n in session.exec(stmt).all()]


# ---------------------------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------------------------


def current_policy(session: Session, *, station: str) -> PolicyVersionRow | None:
    stmt = (
        select(PolicyVersionRow)
        .where(PolicyVersionRow.station == station)
        .order_by(col(PolicyVersionRow.version).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def current_policies(session: Session) -> list[PolicyVersionRow]:
    latest = (
        select(PolicyVersionRow.station, sa.func.max(PolicyVersionRow.version).label("v"))
        .group_by(col(PolicyVersionRow.station))
        .subquery()
    )
    stmt = (
        select(PolicyVersionRow)
        .join(
            latest,
            sa.and_(
                col(PolicyVersionRow.station) == latest.c.station, col(PolicyVersionRow.version) == latest.c.v
            ),
        )
        .order_by(col(PolicyVersionRow.station))
    )
    return list(session.exec(stmt).all())


def policy_history(session: Session, *, station: str) -> list[PolicyVersionRow]:
    stmt = select(PolicyVersionRow).where(PolicyVersionRow.station == station)
    return list(session.exec(stmt.order_by(col(PolicyVersionRow.version))).all())


def add_policy_version(session: Session, *, row: PolicyVersionRow) -> PolicyVersionRow:
    session.add(row)
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------
# Tokens, users, deployments
# ---------------------------------------------------------------------------------------------


def add_token(session: Session, *, row: ApiTokenRow) -> ApiTokenRow:
    session.add(row)
    session.flush()
    return row


def find_token(session: Session, *, token_hash: str) -> ApiTokenRow | None:
    stmt = select(ApiTokenRow).where(
        ApiTokenRow.token_hash == token_hash, col(ApiTokenRow.revoked_at).is_(None)
    )
    return session.exec(stmt).first()


def list_tokens(session: Session, *, station: str | None = None) -> list[ApiTokenRow]:
    stmt = select(ApiTokenRow)
    if station is not None:
        stmt = stmt.where(ApiTokenRow.station == station)
    return list(session.exec(stmt.order_by(col(ApiTokenRow.id))).all())


def revoke_token(session: Session, *, token_id: int, now: datetime) -> ApiTokenRow | None:
    row = session.get(ApiTokenRow, token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = now
        session.add(row)
        session.flush()
    return row


def add_user(session: Session, *, row: UserRow) -> UserRow:
    session.add(row)
    session.flush()
    return row


def get_user(session: Session, *, name: str) -> UserRow | None:
    return session.exec(select(UserRow).where(UserRow.name == name)).first()


def current_deployment(session: Session) -> DeploymentRow | None:
    stmt = select(DeploymentRow).order_by(col(DeploymentRow.at).desc(), col(DeploymentRow.id).desc()).limit(1)
    return session.exec(stmt).first()


def add_deployment(session: Session, *, row: DeploymentRow) -> DeploymentRow:
    session.add(row)
    session.flush()
    return row


# ---------------------------------------------------------------------------------------------
# Report queries
# ---------------------------------------------------------------------------------------------


def audit_labels(
    session: Session, *, station: str | None = None, since: datetime | None = None
) -> list[tuple[str, str]]:
    """(route of the automatic decision, auditor's label) for every live blind audit review."""
    stmt = (
        select(InspectionRow.route, ReviewRow.label)
        .join(ReviewRow, col(ReviewRow.inspection_id) == col(InspectionRow.id))
        .where(ReviewRow.audit == True, col(ReviewRow.undone_at).is_(None))  # noqa: E712
    )
    if station is not None:
        stmt = stmt.where(InspectionRow.station == station)
    if since is not None:
        stmt = stmt.where(col(InspectionRow.received_at) >= since)
    return [(r, lab) for r, lab in session.exec(stmt).all()]


def pending_audits(session: Session, *, station: str | None = None) -> int:
    """Audit reviews queued or claimed but not labelled yet."""
    stmt = select(sa.func.count()).where(
        InspectionRow.audit == True,  # noqa: E712
        col(InspectionRow.status).in_([Status.QUEUED, Status.CLAIMED]),
    )
    if station is not None:
        stmt = stmt.where(InspectionRow.station == station)
    return int(session.exec(stmt).one())


def scored_reviews(
    session: Session,
    *,
    levels: Sequence[str],
    station: str | None = None,
    model_version: str | None = None,
    roles: Sequence[str] = (PredictionRole.PRODUCTION,),
) -> list[tuple[float, str]]:
    """(model score, inspector label) for live non-audit reviews of items decided under `levels`
    that have a valid prediction (of `model_version` if given, else of the given roles)."""
    stmt = (
        select(PredictionRow.score, ReviewRow.label)
        .join(InspectionRow, col(InspectionRow.id) == col(ReviewRow.inspection_id))
        .join(PredictionRow, col(PredictionRow.inspection_id) == col(InspectionRow.id))
        .where(
            col(ReviewRow.undone_at).is_(None),
            ReviewRow.audit == False,  # noqa: E712
            col(InspectionRow.level).in_(list(levels)),
            col(PredictionRow.score).is_not(None),
            col(PredictionRow.error).is_(None),
        )
    )
    if model_version is not None:
        stmt = stmt.where(PredictionRow.model_version == model_version)
    else:
        stmt = stmt.where(col(PredictionRow.role).in_(list(roles)))
    if station is not None:
        stmt = stmt.where(InspectionRow.station == station)
    return [(float(s), lab) for s, lab in session.exec(stmt).all() if s is not None]
