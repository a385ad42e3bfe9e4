"""Monitoring: the per-item samples, versioned alarm rules and station reference windows, alarms,
and each station's last evaluation.

An alarm is opened with INSERT … ON CONFLICT DO NOTHING against the partial unique index
`uq_alarms_one_open` (station, rule WHERE cleared_at IS NULL): when two server processes evaluate the
same station at once, exactly one of them opens it (and only that one notifies and demotes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlmodel import Session, col, select

from inspection.store.db import is_postgres
from inspection.store.tables import (
    AlarmRow,
    AlarmRuleSetRow,
    EventRow,
    ImageRow,
    InspectionRow,
    MonitorSampleRow,
    MonitorStateRow,
    StationReferenceRow,
)

__all__ = [
    "add_reference",
    "add_rule_set",
    "add_sample",
    "clear_alarm",
    "current_reference",
    "current_rule_set",
    "get_alarm",
    "latest_sample_ids",
    "list_alarms",
    "monitor_states",
    "monitored_stations",
    "open_alarm",
    "open_alarms",
    "recent_samples",
    "rule_set_history",
    "sample_image_paths",
    "sample_image_paths_before",
    "samples_after",
    "samples_in_range",
    "monitor_events",
    "save_monitor_state",
]


# Samples


def add_sample(session: Session, *, values: dict[str, Any]) -> None:
    """One sample (column values by name) as a plain INSERT: ingest's hot path skips the ORM's
    object construction and unit of work."""
    session.execute(_INSERT_SAMPLE, values)


# Built once: the statement is compiled once and cached, each call only binds its parameters.
_INSERT_SAMPLE = sa.insert(MonitorSampleRow.__table__)  # type: ignore[attr-defined]


def recent_samples(
    session: Session, *, station: str, limit: int, up_to_id: int | None = None
) -> list[MonitorSampleRow]:
    """The last `limit` samples of a station (up to sample id `up_to_id`), oldest first."""
    stmt = select(MonitorSampleRow).where(MonitorSampleRow.station == station)
    if up_to_id is not None:
        stmt = stmt.where(col(MonitorSampleRow.id) <= up_to_id)
    rows = list(session.exec(stmt.order_by(col(MonitorSampleRow.id).desc()).limit(limit)).all())
    rows.reverse()
    return rows


def samples_in_range(
    session: Session,
    *,
    station: str | None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int,
    newest: bool = False,
    model_version: str | None = None,
) -> list[MonitorSampleRow]:
    """Samples received in [since, until) (of one deciding model version, if given), oldest first: the
    first `limit` of them, or with `newest` the last `limit`."""
    stmt = select(MonitorSampleRow)
    if station is not None:
        stmt = stmt.where(MonitorSampleRow.station == station)
    if model_version is not None:
        stmt = stmt.where(MonitorSampleRow.model_version == model_version)
    if since is not None:
        stmt = stmt.where(col(MonitorSampleRow.at) >= since)
    if until is not None:
        stmt = stmt.where(col(MonitorSampleRow.at) < until)
    order = col(MonitorSampleRow.id).desc() if newest else col(MonitorSampleRow.id)
    rows = list(session.exec(stmt.order_by(order).limit(limit)).all())
    if newest:
        rows.reverse()
    return rows


def samples_after(session: Session, *, station: str, after_id: int, limit: int) -> list[MonitorSampleRow]:
    """The station's samples with id > after_id, oldest first, at most `limit`."""
    stmt = select(MonitorSampleRow).where(MonitorSampleRow.station == station, col(MonitorSampleRow.id) > after_id)
    return list(session.exec(stmt.order_by(col(MonitorSampleRow.id)).limit(limit)).all())


def latest_sample_ids(session: Session) -> dict[str, int]:
    """The newest sample id of every station with samples (the monitor loop's "anything new?")."""
    stmt = sa.select(col(MonitorSampleRow.station), sa.func.max(MonitorSampleRow.id)).group_by(
        col(MonitorSampleRow.station)
    )
    return {str(station): int(top) for station, top in session.execute(stmt).all()}


def monitored_stations(session: Session) -> list[str]:
    """Stations with samples, rules or alarms, sorted."""
    stmt = sa.union(
        sa.select(col(MonitorSampleRow.station)).distinct(),
        sa.select(col(AlarmRuleSetRow.station)),
        sa.select(col(AlarmRow.station)),
    )
    return sorted(str(s) for s in session.execute(stmt).scalars().all())


def _sample_paths(station: str) -> Any:
    """Image paths (relative to data_dir) of the station's decodable samples, by sample id."""
    return (
        sa.select(col(ImageRow.path))
        .select_from(MonitorSampleRow)
        .join(InspectionRow, col(InspectionRow.id) == col(MonitorSampleRow.inspection_id))
        .join(ImageRow, col(ImageRow.id) == col(InspectionRow.image_id))
        .where(col(MonitorSampleRow.station) == station, col(MonitorSampleRow.unreadable).is_(False))
    )


def _spread(paths: list[str], n: int) -> list[str]:
    """At most `n` of `paths`, evenly spaced, in order."""
    if len(paths) <= n:
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


def sample_image_paths(session: Session, *, station: str, first_id: int, last_id: int, n: int) -> list[str]:
    """Image paths (relative to data_dir) of up to `n` decodable samples with ids in [first_id, last_id],
    spread evenly over the range."""
    stmt = _sample_paths(station).where(col(MonitorSampleRow.id) >= first_id, col(MonitorSampleRow.id) <= last_id)
    return _spread([str(p) for p in session.execute(stmt.order_by(col(MonitorSampleRow.id))).scalars().all()], n)


def sample_image_paths_before(session: Session, *, station: str, before_id: int, n: int, span: int) -> list[str]:
    """Image paths of up to `n` decodable samples of the station spread evenly over the `span` samples
    just before sample id `before_id` (oldest first)."""
    stmt = _sample_paths(station).where(col(MonitorSampleRow.id) < before_id)
    stmt = stmt.order_by(col(MonitorSampleRow.id).desc()).limit(span)
    return _spread([str(p) for p in session.execute(stmt).scalars().all()][::-1], n)


# Rules and references (versioned per station; the latest version holds)


def current_rule_set(session: Session, *, station: str) -> AlarmRuleSetRow | None:
    stmt = select(AlarmRuleSetRow).where(AlarmRuleSetRow.station == station)
    return session.exec(stmt.order_by(col(AlarmRuleSetRow.version).desc()).limit(1)).first()


def rule_set_history(session: Session, *, station: str) -> list[AlarmRuleSetRow]:
    stmt = select(AlarmRuleSetRow).where(AlarmRuleSetRow.station == station)
    return list(session.exec(stmt.order_by(col(AlarmRuleSetRow.version))).all())


def add_rule_set(session: Session, *, row: AlarmRuleSetRow) -> AlarmRuleSetRow:
    session.add(row)
    session.flush()  # a concurrent writer of the same version fails here (unique station, version)
    return row


def current_reference(session: Session, *, station: str) -> StationReferenceRow | None:
    stmt = select(StationReferenceRow).where(StationReferenceRow.station == station)
    return session.exec(stmt.order_by(col(StationReferenceRow.version).desc()).limit(1)).first()


def add_reference(session: Session, *, row: StationReferenceRow) -> StationReferenceRow:
    session.add(row)
    session.flush()
    return row


# Alarms


def open_alarm(session: Session, *, row: AlarmRow) -> AlarmRow | None:
    """Open `row` unless its station already has an open alarm of the same rule: the stored row, or
    None when one is open (decided by the database, so concurrent evaluators agree)."""
    values: dict[str, Any] = {
        "station": row.station,
        "rule": row.rule,
        "metric": row.metric,
        "severity": row.severity,
        "opened_at": row.opened_at,
        "cleared_at": None,
        "evidence": row.evidence,
        "first_sample_id": row.first_sample_id,
        "last_sample_id": row.last_sample_id,
    }
    table = AlarmRow.__table__  # type: ignore[attr-defined]
    ins = pg.insert(table) if is_postgres(session) else sqlite_dialect.insert(table)
    stmt = (
        ins.values(**values)
        .on_conflict_do_nothing(index_elements=["station", "rule"], index_where=sa.text("cleared_at IS NULL"))
        .returning(table.c.id)
    )
    new_id = session.execute(stmt).scalar_one_or_none()
    if new_id is None:
        return None
    return session.get(AlarmRow, int(new_id))


def clear_alarm(session: Session, *, alarm_id: int, at: datetime, evidence: dict[str, Any]) -> bool:
    """Clear an open alarm (its evidence gains the clearing result under "cleared"); False when it
    was cleared already (by another process)."""
    row = session.get(AlarmRow, alarm_id, with_for_update=True)
    if row is None or row.cleared_at is not None:
        return False
    row.cleared_at = at
    row.evidence = {**(row.evidence or {}), "cleared": evidence}
    session.add(row)
    session.flush()
    return True


def open_alarms(session: Session, *, station: str | None = None) -> list[AlarmRow]:
    stmt = select(AlarmRow).where(col(AlarmRow.cleared_at).is_(None))
    if station is not None:
        stmt = stmt.where(AlarmRow.station == station)
    return list(session.exec(stmt.order_by(col(AlarmRow.id))).all())


def list_alarms(
    session: Session, *, station: str | None = None, since: datetime | None = None, limit: int = 200
) -> list[AlarmRow]:
    """Alarms open now or opened since `since`, newest first."""
    stmt = select(AlarmRow)
    if station is not None:
        stmt = stmt.where(AlarmRow.station == station)
    if since is not None:
        stmt = stmt.where(sa.or_(col(AlarmRow.opened_at) >= since, col(AlarmRow.cleared_at).is_(None)))
    return list(session.exec(stmt.order_by(col(AlarmRow.id).desc()).limit(limit)).all())


def get_alarm(session: Session, *, alarm_id: int) -> AlarmRow | None:
    return session.get(AlarmRow, alarm_id)


# The last evaluation per station


def monitor_states(session: Session, *, stations: Sequence[str] | None = None) -> list[MonitorStateRow]:
    stmt = select(MonitorStateRow)
    if stations is not None:
        stmt = stmt.where(col(MonitorStateRow.station).in_(list(stations)))
    return list(session.exec(stmt.order_by(col(MonitorStateRow.station))).all())


def save_monitor_state(session: Session, *, row: MonitorStateRow) -> None:
    """Insert or replace the station's last evaluation (an upsert: two processes may race)."""
    values: dict[str, Any] = {
        "station": row.station,
        "evaluated_at": row.evaluated_at,
        "last_sample_id": row.last_sample_id,
        "n_seen": row.n_seen,
        "results": row.results,
    }
    table = MonitorStateRow.__table__  # type: ignore[attr-defined]
    ins = pg.insert(table) if is_postgres(session) else sqlite_dialect.insert(table)
    update = {k: v for k, v in values.items() if k != "station"}
    session.execute(ins.values(**values).on_conflict_do_update(index_elements=["station"], set_=update))


def monitor_events(
    session: Session, *, kinds: Sequence[str], station: str | None = None, limit: int = 100
) -> list[EventRow]:
    """Events of these kinds (alarm.*, interlock.*), newest first."""
    stmt = select(EventRow).where(col(EventRow.kind).in_(list(kinds)))
    if station is not None:
        stmt = stmt.where(EventRow.station == station)
    return list(session.exec(stmt.order_by(col(EventRow.id).desc()).limit(limit)).all())
