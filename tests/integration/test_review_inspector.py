"""The inspector screen's services (issue 11) on both databases: skip reasons and who gets a skipped
item back, counts that agree with "Queue empty", undo naming the old label, marks stored with a label
(and their mask for retraining), the defect book, and the station's highlight default."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlmodel import col, select

from inspection import store
from inspection.config import Settings
from inspection.core.domain import Role
from inspection.services import context, defect_book, errors, marks, review
from inspection.services.accounts import AuthError, User
from tests.fakes import FakeClock, Models, enqueue


@pytest.fixture
def app(db_settings: Settings):
    ctx = context.Pipeline.create(db_settings, scorer_factory=Models(), clock=FakeClock())
    yield ctx
    ctx.close()


def _claim(app: context.Pipeline, who: str) -> int:
    task = review.claim_next(app, inspector=who)
    assert task is not None
    return task.inspection_id


def test_skip_reason_is_stored_and_the_item_goes_to_the_others_first(app: context.Pipeline) -> None:
    a, b = enqueue(app.engine, n=2)
    assert _claim(app, "ann") == a
    review.skip(app, inspection_id=a, inspector="ann", reason="second_opinion")
    with app.read() as s:
        (skip,) = s.exec(select(store.SkipRow)).all()
    assert (skip.inspection_id, skip.inspector, skip.reason) == (a, "ann", "second_opinion")
    stats = review.inspector_stats(app, inspector="ann")
    assert (stats.queue, stats.for_me, stats.skipped) == (2, 1, 1)
    assert _claim(app, "ann") == b  # not the skipped one
    review.submit_label(app, inspection_id=b, inspector="ann", label="ok")
    assert review.claim_next(app, inspector="ann") is None  # "Queue empty" ...
    assert review.inspector_stats(app, inspector="ann").for_me == 0  # ... and the count agrees
    # Another inspector gets it; once they passed on it too, everyone had a chance: it comes back.
    assert _claim(app, "bob") == a
    review.skip(app, inspection_id=a, inspector="bob", reason="unclear_image")
    assert review.inspector_stats(app, inspector="bob").for_me == 0
    assert review.inspector_stats(app, inspector="ann").for_me == 1
    assert _claim(app, "ann") == a


def test_skip_reason_is_checked(app: context.Pipeline) -> None:
    (a,) = enqueue(app.engine, n=1)
    _claim(app, "ann")
    with pytest.raises(errors.InputError):
        review.skip(app, inspection_id=a, inspector="ann", reason="x" * 201)
    assert set(review.SKIP_REASONS) == {"unclear_image", "second_opinion", "not_a_phone", "other"}


def test_undo_names_the_label_it_withdrew(app: context.Pipeline) -> None:
    (a,) = enqueue(app.engine, n=1)
    _claim(app, "ann")
    review.submit_label(app, inspection_id=a, inspector="ann", label="scratch")
    undone = review.undo(app, inspector="ann")
    assert (undone.task.inspection_id, undone.label) == (a, "scratch")
    with pytest.raises(errors.QueueConflict):
        review.undo(app, inspector="ann")


def test_marks_are_stored_with_the_label_and_give_a_mask(app: context.Pipeline) -> None:
    a, b = enqueue(app.engine, n=2)
    _claim(app, "ann")
    drawn = [{"kind": "box", "points": [[10, 20], [50, 40]]}, {"kind": "stroke", "points": [[100, 100], [140, 100]],
                                                                "width": 4}]  # fmt: skip
    review.submit_label(app, inspection_id=a, inspector="ann", label="scratch", marks=drawn, note="top left")
    got = marks.marks_for(app, inspection_id=a)
    assert [(m.kind, m.label, m.inspector) for m in got] == [("box", "scratch", "ann"), ("stroke", "scratch", "ann")]
    assert got[0].points == ((10.0, 20.0), (50.0, 40.0))
    with app.read() as s:
        note = s.exec(select(store.ReviewRow.note).where(col(store.ReviewRow.inspection_id) == a)).one()
    assert note == "top left"
    mask = marks.mark_mask(got, (200, 120))
    assert mask.shape == (120, 200) and mask[30, 30] == 255 and mask[100, 120] == 255 and mask[5, 5] == 0
    assert int(np.count_nonzero(marks.mark_mask(got, (200, 120), step=8))) > 0
    # An undone label's marks are no mask source; bad marks are refused and nothing is stored.
    review.undo(app, inspector="ann")
    assert marks.marks_for(app, inspection_id=a) == []
    with pytest.raises(errors.InputError):
        review.submit_label(app, inspection_id=a, inspector="ann", label="ok", marks=[{"kind": "blob", "points": []}])
    with app.read() as s:
        assert store.active_review(s, inspection_id=a) is None
    assert b


def test_defect_book_is_curated_by_engineers_only(app: context.Pipeline) -> None:
    a, b = enqueue(app.engine, n=2)
    eng, insp = User("erin", Role.ENGINEER), User("ann", Role.INSPECTOR)
    entry = defect_book.add_entry(app, user=eng, inspection_id=a, defect_class="Lint", caption="dust on the glass")
    defect_book.add_entry(app, user=eng, inspection_id=b, defect_class="scratch", caption="thin line, top left")
    with pytest.raises(AuthError):
        defect_book.add_entry(app, user=insp, inspection_id=a, defect_class="oil", caption="smudge")
    with pytest.raises(errors.InputError):
        defect_book.add_entry(app, user=eng, inspection_id=a, defect_class="crack", caption="not a class")
    with pytest.raises(errors.NotFound):
        defect_book.add_entry(app, user=eng, inspection_id=999_999, defect_class="oil", caption="missing item")
    book = defect_book.book(app)
    assert list(book) == ["scratch", "lint", "reflection", "oil", "other"]
    assert [e.inspection_id for e in book["scratch"]] == [b] and book["lint"][0].caption == "dust on the glass"
    defect_book.remove_entry(app, user=eng, entry_id=entry.id)
    assert defect_book.book(app)["lint"] == []


def test_highlight_default_is_a_station_setting(app: context.Pipeline) -> None:
    enqueue(app.engine, n=1)
    assert review.highlight_default(app, station="s1") is False
    review.set_highlight_default(app, station="s1", on=True, by="erin", reason="thin scratches missed")
    assert review.highlight_default(app, station="s1") is True
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.show_model and task.highlight
    with app.read() as s:
        assert store.list_events(s, kind="review.display_changed")[0].actor == "erin"
    assert app.clock() - timedelta(seconds=1) < app.clock()
