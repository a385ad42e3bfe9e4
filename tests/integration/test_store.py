"""Schema, engine and repository behaviour on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from inspection import store
from tests.fakes import enqueue

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HEAD = "0009_inspector"  # the newest migration (… 0007 ramp, 0008 retrain trigger, 0009 inspector screen)


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
        assert store.current_revision(eng) == HEAD
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


def _index_columns(eng: sa.Engine) -> dict[str, list[str]]:
    return {str(ix["name"]): [str(c) for c in ix["column_names"]] for ix in sa.inspect(eng).get_indexes("inspections")}


def test_0002_upgrades_a_0001_database_in_place_and_downgrades(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    eng = store.make_engine(database_url)
    try:
        store.upgrade_database(eng, revision="0001_initial")
        (item,) = enqueue(eng, n=1)
        assert "ix_inspections_queue_station_priority" in _index_columns(eng)
        store.upgrade_database(eng)
        assert store.current_revision(eng) == HEAD
        indexes = _index_columns(eng)
        uncertain = ["status", "priority", "received_at", "id"]
        assert indexes["ix_inspections_queue_station_uncertain"] == ["status", "station", *uncertain[1:]]
        assert indexes["ix_inspections_queue_any_uncertain"] == uncertain
        assert not {"ix_inspections_queue_station_priority", "ix_inspections_queue_any_priority"} & set(indexes)
        with store.read_session(eng) as s:
            assert store.get_inspection(s, inspection_id=item) is not None  # data kept
        cfg = Config()
        cfg.set_main_option("script_location", str(store.MIGRATIONS_DIR))
        with eng.connect() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001_initial")
            conn.commit()
        assert store.current_revision(eng) == "0001_initial"
        assert "ix_inspections_queue_any_priority" in _index_columns(eng)
    finally:
        eng.dispose()


@pytest.mark.parametrize("order", ["oldest", "uncertain"])
@pytest.mark.parametrize("station", [None, "s1"])
def test_claim_reads_the_queue_in_index_order_without_statistics(
    engine: sa.Engine, order: store.QueueOrder, station: str | None
) -> None:
    """No sort step in the claim's plan, even before ANALYZE (the cause of slow 'uncertain' claims
    on PostgreSQL right after a bulk load)."""
    for st in ("s0", "s1", "s2"):
        enqueue(engine, n=2000, station=st, scores=[(i % 97) / 97 for i in range(2000)])
    pick = store.next_item_query(station=station, inspector="ann", order=order)
    sql = str(pick.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        if store.is_postgres(engine):
            plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql).scalars())
            assert "Sort" not in plan, plan
        else:
            plan = "\n".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "TEMP B-TREE" not in plan, plan
    index = "ix_inspections_queue_" + ("station" if station else "any") + ("_uncertain" if order == "uncertain" else "")
    assert index in plan, plan


def test_peek_next_items_is_oldest_first_without_skips_or_claims(engine: sa.Engine) -> None:
    a, b, c, d = enqueue(engine, n=4)
    (other,) = enqueue(engine, n=1, station="s2", start=NOW - timedelta(hours=2))  # the oldest
    with store.write_session(engine) as s:
        s.add(store.SkipRow(inspection_id=a, inspector="ann", created_at=NOW))
        s.execute(sa.update(store.InspectionRow).where(col(store.InspectionRow.id) == c).values(status="claimed"))
    with store.read_session(engine) as s:
        assert store.peek_next_items(s, inspector="ann", limit=3) == [other, b, d]
        assert store.peek_next_items(s, inspector="bob", limit=2) == [other, a]
        assert store.peek_next_items(s, inspector="ann", station="s1", limit=5) == [b, d]
        assert store.peek_next_items(s, inspector="ann", limit=0) == []
    with store.read_session(engine) as s:  # peeking claims nothing
        assert store.get_inspection(s, inspection_id=b).status == "queued"  # type: ignore[union-attr]


def test_count_labels_counts_live_labels_of_one_inspector_since_a_time(engine: sa.Engine) -> None:
    ids = enqueue(engine, n=4)
    with store.write_session(engine) as s:
        for iid, who, minutes, undone in (
            (ids[0], "ann", 90, False), (ids[1], "ann", 10, False), (ids[2], "ann", 5, True), (ids[3], "bob", 5, False),
        ):  # fmt: skip
            at = NOW - timedelta(minutes=minutes)
            undone_at = at if undone else None
            s.add(store.ReviewRow(inspection_id=iid, inspector=who, label="ok", created_at=at, undone_at=undone_at))
    with store.read_session(engine) as s:
        assert store.count_labels(s, inspector="ann", since=NOW - timedelta(hours=12)) == 2
        assert store.count_labels(s, inspector="ann", since=NOW - timedelta(hours=1)) == 1
        assert store.count_labels(s, inspector="bob", since=NOW - timedelta(hours=1)) == 1
        assert store.count_labels(s, inspector="cy", since=NOW - timedelta(hours=12)) == 0


def test_upgrade_accepts_a_url(database_url: str) -> None:
    store.upgrade_database(database_url)
    eng = store.make_engine(database_url)
    assert store.current_revision(eng) == HEAD
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


def test_labelled_history_reads_live_labels_with_their_audit_weight_and_scores(engine: sa.Engine) -> None:
    a, b, c = enqueue(engine, n=3)
    (d,) = enqueue(engine, n=1, station="s2", audit=True, start=NOW)
    with store.write_session(engine) as s:
        store.add_policy_version(
            s,
            row=store.PolicyVersionRow(
                station="s2", version=1, level="full", pass_below=0.2, reject_above=0.8, audit_rate=0.25,
                created_by="t", created_at=NOW, reason="t",
            ),
        )  # fmt: skip
        for iid, label, audit in ((a, "ok", False), (b, "scratch", False), (d, "scratch", True)):
            s.add(store.ReviewRow(inspection_id=iid, inspector="ann", label=label, audit=audit, created_at=NOW))
        s.add(store.ReviewRow(inspection_id=c, inspector="ann", label="ok", created_at=NOW, undone_at=NOW))
        for iid, score, error in ((a, 0.1, None), (b, None, "time-out")):
            store.add_prediction(
                s,
                row=store.PredictionRow(
                    inspection_id=iid, model_version="m", role="production", score=score, error=error, created_at=NOW
                ),
            )
    with store.read_session(engine) as s:
        rows = store.labelled_history(s)  # the undone label of c is not history
        weights = [(r.inspection_id, r.label, r.weight) for r in rows]
        assert weights == [(a, "ok", 1.0), (b, "scratch", 1.0), (d, "scratch", 4.0)]
        assert [r.inspection_id for r in store.labelled_history(s, audit=True)] == [d]
        assert [r.inspection_id for r in store.labelled_history(s, station="s1", inspection_ids=[d, b])] == [b]
        scored = store.labelled_history(s, scores=store.ScoreFilter())
        assert [(r.inspection_id, r.model_version, r.score) for r in scored] == [(a, "m", 0.1), (b, "m", None)]
        assert [r.inspection_id for r in store.labelled_history(s, scores=store.ScoreFilter(valid_only=True))] == [a]
        assert store.labelled_history(s, scores=store.ScoreFilter(versions={"other"})) == []
