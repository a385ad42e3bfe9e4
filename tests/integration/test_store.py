"""Schema, engine and repository behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from inspection import store

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str):
    eng = store.make_engine(database_url)
    store.upgrade_database(eng)
    yield eng
    eng.dispose()


def test_migration_builds_every_table_on_an_empty_database(database_url: str) -> None:
    eng = store.make_engine(database_url)
    try:
        assert store.current_revision(eng) is None
        store.upgrade_database(eng)
        store.upgrade_database(eng)  # a second start finds the schema at head and does nothing
        assert store.current_revision(eng) == "0001_initial"
        names = set(sa.inspect(eng).get_table_names())
        expected = {
            "images", "inspections", "predictions", "reviews", "skips", "policy_versions",
            "events", "users", "api_tokens", "deployments",
        }  # fmt: skip
        assert expected <= names
        with eng.connect() as conn:
            # The hand-written migration and the SQLModel tables describe the same schema.
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), store.METADATA
            )
        assert diff == []
        queue_indexes = {ix["name"] for ix in sa.inspect(eng).get_indexes("inspections")}
        assert {"ix_inspections_queue_station", "ix_inspections_station_received"} <= queue_indexes
    finally:
        eng.dispose()


def test_upgrade_accepts_a_url(database_url: str) -> None:
    store.upgrade_database(database_url)
    eng = store.make_engine(database_url)
    assert store.current_revision(eng) == "0001_initial"
    eng.dispose()


def test_sqlite_engine_uses_wal_busy_timeout_and_foreign_keys(tmp_path) -> None:
    eng = store.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with eng.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    eng.dispose()


def _image(sha: str = "a" * 64) -> store.ImageRow:
    return store.ImageRow(
        sha256=sha, path=f"images/{sha[:2]}/{sha}.png", size_bytes=10, first_station="s1", received_at=NOW
    )


def test_an_image_is_stored_once(engine) -> None:
    with store.write_session(engine) as s:
        first = store.get_or_add_image(s, image=_image())
    with store.write_session(engine) as s:
        again = store.get_or_add_image(s, image=_image())
        assert again.id == first.id
        assert s.execute(sa.select(sa.func.count()).select_from(store.ImageRow)).scalar() == 1


def test_foreign_keys_are_enforced(engine) -> None:
    with pytest.raises(IntegrityError), store.write_session(engine) as s:
        store.add_prediction(
            s,
            row=store.PredictionRow(
                inspection_id=12345, model_version="m", role="production", created_at=NOW
            ),
        )


def _inspection(image_id: int, **kw: object) -> store.InspectionRow:
    values: dict[str, object] = {
        "image_id": image_id, "station": "s1", "received_at": NOW, "policy_version": 1, "level": "partial",
        "route": "review", "reason": "", "status": "queued",
    }  # fmt: skip
    return store.InspectionRow(**(values | kw))


def test_database_refuses_a_second_live_label(engine) -> None:
    with store.write_session(engine) as s:
        img = store.get_or_add_image(s, image=_image())
        row = store.add_inspection(s, row=_inspection(img.id))
        s.add(store.ReviewRow(inspection_id=row.id, inspector="ann", label="ok", created_at=NOW))
    with pytest.raises(IntegrityError), store.write_session(engine) as s:
        s.add(store.ReviewRow(inspection_id=row.id, inspector="bob", label="scratch", created_at=NOW))
        s.flush()
    # An undone label does not count: a new live one is allowed next to it.
    with store.write_session(engine) as s:
        s.execute(sa.update(store.ReviewRow).values(undone_at=NOW))
        s.add(store.ReviewRow(inspection_id=row.id, inspector="bob", label="scratch", created_at=NOW))


def test_idempotency_key_is_unique_per_station(engine) -> None:
    with store.write_session(engine) as s:
        img = store.get_or_add_image(s, image=_image())
        store.add_inspection(s, row=_inspection(img.id, idempotency_key="k1"))
        store.add_inspection(s, row=_inspection(img.id, station="s2", idempotency_key="k1"))
        store.add_inspection(s, row=_inspection(img.id))  # NULL keys never collide
        store.add_inspection(s, row=_inspection(img.id))
    with pytest.raises(IntegrityError), store.write_session(engine) as s:
        store.add_inspection(s, row=_inspection(img.id, idempotency_key="k1"))


def test_datetimes_round_trip_as_aware_utc(engine) -> None:
    with store.write_session(engine) as s:
        img = store.get_or_add_image(s, image=_image())
        iid = store.add_inspection(s, row=_inspection(img.id)).id
    with store.read_session(engine) as s:
        row = store.get_inspection(s, inspection_id=iid)
        assert row is not None and row.received_at == NOW and row.received_at.tzinfo is not None


def test_policy_versions_and_current_policies(engine) -> None:
    with store.write_session(engine) as s:
        for station, version in (("a", 1), ("a", 2), ("b", 1)):
            store.add_policy_version(
                s,
                row=store.PolicyVersionRow(
                    station=station, version=version, level="partial", pass_below=0.1, reject_above=0.9,
                    audit_rate=0.0, created_by="eve", created_at=NOW, reason="r",
                ),
            )  # fmt: skip
    with store.read_session(engine) as s:
        current = {(p.station, p.version) for p in store.current_policies(s)}
        assert current == {("a", 2), ("b", 1)}
        assert store.current_policy(s, station="a").version == 2  # type: ignore[union-attr]
        assert store.current_policy(s, station="zzz") is None
