"""The review queue: exactly-once labelling, leases, skip, undo, order, concurrency (both databases)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import sqlalchemy as sa

from inspection import store
from inspection.config import Settings
from inspection.services import context, errors, review
from tests.fakes import FakeClock, Models, enqueue


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(db_settings: Settings, clock: FakeClock):
    settings = db_settings.model_copy(update={"lease_seconds": 60, "undo_window_seconds": 120})
    ctx = context.Pipeline.create(settings, scorer_factory=Models(), clock=clock)
    yield ctx
    ctx.close()


def _live_reviews(app: context.Pipeline) -> list[tuple[int, str]]:
    with app.read() as s:
        rows = s.execute(
            sa.select(store.ReviewRow.inspection_id, store.ReviewRow.inspector).where(
                store.ReviewRow.undone_at.is_(None)  # type: ignore[union-attr]
            )
        ).all()
    return [(int(i), str(who)) for i, who in rows]


def test_two_inspectors_never_hold_the_same_item(app: context.Pipeline) -> None:
    a, b = enqueue(app.engine, n=2)
    ta = review.claim_next(app, inspector="ann")
    tb = review.claim_next(app, inspector="bob")
    assert ta is not None and tb is not None
    assert {ta.inspection_id, tb.inspection_id} == {a, b}
    assert review.claim_next(app, inspector="cid") is None


def test_claim_returns_the_item_already_held(app: context.Pipeline) -> None:
    enqueue(app.engine, n=3)
    first = review.claim_next(app, inspector="ann")
    again = review.claim_next(app, inspector="ann")
    assert first is not None and again is not None and again.inspection_id == first.inspection_id


def test_default_order_is_oldest_first_and_uncertain_is_available(app: context.Pipeline) -> None:
    ids = enqueue(app.engine, n=4, scores=[0.9, 0.2, 0.52, 0.7])
    oldest = review.claim_next(app, inspector="ann")
    assert oldest is not None and oldest.inspection_id == ids[0]
    uncertain = review.claim_next(app, inspector="bob", order="uncertain")
    assert uncertain is not None and uncertain.inspection_id == ids[2]  # |0.52 - 0.5| is smallest


def test_expired_lease_returns_the_item(app: context.Pipeline, clock: FakeClock) -> None:
    (item,) = enqueue(app.engine, n=1)
    assert review.claim_next(app, inspector="ann") is not None
    clock.advance(59)
    assert review.claim_next(app, inspector="bob") is None  # lease still live
    clock.advance(2)
    task = review.claim_next(app, inspector="bob")
    assert task is not None and task.inspection_id == item
    with pytest.raises(errors.QueueConflict, match="claimed by bob"):
        review.submit_label(app, inspection_id=item, inspector="ann", label="ok")
    with app.read() as s:
        kinds = [e.kind for e in store.list_events(s, kind="queue.lease_expired")]
    assert kinds == ["queue.lease_expired"]


def test_a_late_label_after_lease_expiry_is_kept_if_nobody_else_took_the_item(
    app: context.Pipeline, clock: FakeClock
) -> None:
    (item,) = enqueue(app.engine, n=1)
    review.claim_next(app, inspector="ann")
    clock.advance(600)
    out = review.submit_label(app, inspection_id=item, inspector="ann", label="scratch")
    assert out.created


def test_double_submit_is_stored_once(app: context.Pipeline) -> None:
    (item,) = enqueue(app.engine, n=1)
    review.claim_next(app, inspector="ann")
    first = review.submit_label(app, inspection_id=item, inspector="ann", label="scratch", note="edge")
    second = review.submit_label(app, inspection_id=item, inspector="ann", label="scratch", note="edge")
    assert first.created and not second.created and first.review_id == second.review_id
    assert _live_reviews(app) == [(item, "ann")]
    with pytest.raises(errors.QueueConflict, match="use undo"):
        review.submit_label(app, inspection_id=item, inspector="ann", label="ok")
    with pytest.raises(errors.QueueConflict, match="already labelled"):
        review.submit_label(app, inspection_id=item, inspector="bob", label="ok")
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=item)
    assert row is not None and (row.status, row.final_label, row.decided_by) == (
        "done",
        "scratch",
        "inspector",
    )


def test_bad_labels_and_unknown_items_are_refused(app: context.Pipeline) -> None:
    (item,) = enqueue(app.engine, n=1)
    with pytest.raises(errors.InputError, match="label must be one of"):
        review.submit_label(app, inspection_id=item, inspector="ann", label="maybe")
    with pytest.raises(errors.NotFound):
        review.submit_label(app, inspection_id=999_999, inspector="ann", label="ok")
    with pytest.raises(errors.InputError, match="inspector"):
        review.claim_next(app, inspector="  ")


def test_skip_hands_the_item_to_someone_else(app: context.Pipeline) -> None:
    (item,) = enqueue(app.engine, n=1)
    review.claim_next(app, inspector="ann")
    review.skip(app, inspection_id=item, inspector="ann", reason="blurry")
    assert review.claim_next(app, inspector="ann") is None  # not offered again to who skipped it
    task = review.claim_next(app, inspector="bob")
    assert task is not None and task.inspection_id == item
    with pytest.raises(errors.QueueConflict):
        review.skip(app, inspection_id=item, inspector="ann")


def test_undo_own_last_label_within_window(app: context.Pipeline, clock: FakeClock) -> None:
    a, b = enqueue(app.engine, n=2)
    review.claim_next(app, inspector="ann")
    review.submit_label(app, inspection_id=a, inspector="ann", label="ok")
    clock.advance(30)
    task = review.undo_last(app, inspector="ann")
    assert task.inspection_id == a  # back with ann, claimed
    assert _live_reviews(app) == []
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=a)
    assert row is not None and row.status == "claimed" and row.claimed_by == "ann" and row.final_label is None
    review.submit_label(app, inspection_id=a, inspector="ann", label="scratch")
    assert _live_reviews(app) == [(a, "ann")]
    with pytest.raises(errors.QueueConflict, match="no label"):
        review.undo_last(app, inspector="bob")  # only one's own labels
    clock.advance(121)
    with pytest.raises(errors.QueueConflict, match="no label from the last 120 s"):
        review.undo_last(app, inspector="ann")


def test_audit_label_keeps_the_model_decision(app: context.Pipeline) -> None:
    (item,) = enqueue(app.engine, n=1, audit=True)
    with app.write() as s:
        s.execute(
            sa.update(store.InspectionRow).values(
                route="auto_pass", final_label="ok", decided_by="model", show_model=False
            )
        )
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.audit and not task.show_model and task.score is None
    review.submit_label(app, inspection_id=item, inspector="ann", label="scratch")
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=item)
        active = store.active_review(s, inspection_id=item)
    assert row is not None and (row.final_label, row.decided_by, row.status) == ("ok", "model", "done")
    assert active is not None and active.audit and active.blind


def test_peek_queue_hints_the_next_items_without_claiming(app: context.Pipeline) -> None:
    a, b, c = enqueue(app.engine, n=3)
    assert review.peek_queue(app, inspector="ann") == [a, b]
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.inspection_id == a  # peeking reserved nothing
    review.skip(app, inspection_id=a, inspector="ann")
    assert review.peek_queue(app, inspector="ann", limit=5) == [b, c]  # not what ann skipped
    assert review.peek_queue(app, inspector="bob", limit=5) == [a, b, c]
    with pytest.raises(errors.InputError, match="inspector"):
        review.peek_queue(app, inspector=" ")
    with pytest.raises(errors.InputError, match="limit"):
        review.peek_queue(app, inspector="ann", limit=-1)


def _claim_and_label(app: context.Pipeline, iid: int, inspector: str, label: str) -> None:
    task = review.claim_next(app, inspector=inspector)
    assert task is not None and task.inspection_id == iid
    review.submit_label(app, inspection_id=iid, inspector=inspector, label=label)


def test_inspector_stats_count_own_live_labels_and_the_waiting_queue(
    app: context.Pipeline, clock: FakeClock
) -> None:
    ids = enqueue(app.engine, n=5)
    assert review.inspector_stats(app, inspector="ann") == review.InspectorStats(0, 0, 5, for_me=5)
    for iid in ids[:2]:
        _claim_and_label(app, iid, "ann", "ok")
    clock.advance(2 * 3600)  # those two are now older than an hour, still within the shift
    _claim_and_label(app, ids[2], "ann", "scratch")
    _claim_and_label(app, ids[3], "ann", "ok")
    review.undo_last(app, inspector="ann")  # an undone label does not count (ids[3] is ann's again)
    _claim_and_label(app, ids[4], "bob", "ok")
    assert review.inspector_stats(app, inspector="ann") == review.InspectorStats(
        labelled_today=3, last_hour=1, queue=0
    )
    clock.advance(11 * 3600)  # the first two fell out of the 12 h window
    assert review.inspector_stats(app, inspector="ann").labelled_today == 1
    assert review.inspector_stats(app, inspector="bob") == review.InspectorStats(1, 0, 0)


@pytest.mark.slow
def test_eight_inspectors_drain_2000_items_exactly_once(db_settings: Settings) -> None:
    settings = db_settings.model_copy(update={"lease_seconds": 300})
    app = context.Pipeline.create(settings, scorer_factory=Models())
    try:
        ids = enqueue(app.engine, n=2000)
        claimed: dict[str, list[int]] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def inspector(name: str) -> None:
            mine: list[int] = claimed.setdefault(name, [])
            try:
                start.wait()
                while (task := review.claim_next(app, inspector=name)) is not None:
                    mine.append(task.inspection_id)
                    out = review.submit_label(
                        app, inspection_id=task.inspection_id, inspector=name, label="ok"
                    )
                    assert out.created
            except BaseException as exc:  # surfaced below: a thread must not swallow a failure
                errors.append(exc)

        threads = [threading.Thread(target=inspector, args=(f"insp{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not errors, errors[:3]
        all_claims = [i for mine in claimed.values() for i in mine]
        assert sorted(all_claims) == ids  # none lost, none twice
        assert sum(1 for mine in claimed.values() if mine) >= 2  # the work really was shared
        reviews = _live_reviews(app)
        assert len(reviews) == 2000
        assert Counter(i for i, _ in reviews) == Counter(ids)
        with app.read() as s:
            open_items = s.execute(
                sa.select(sa.func.count()).where(store.InspectionRow.status != "done")  # type: ignore[arg-type]
            ).scalar()
        assert open_items == 0
    finally:
        app.close()
