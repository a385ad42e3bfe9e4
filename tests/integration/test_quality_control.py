"""Quality control of the inspectors (issue 11) on both databases: gold items planted blind and counted
into accuracy, double labelling with adjudication, and gold/duplicate labels never counted twice in
escape-rate estimates, retraining history or exports."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from inspection import store
from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import context, errors, export, labelstudio, quality, reports, retrain, review
from inspection.services.history import labelled_history
from tests.fakes import FakeClock, Models, enqueue


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(db_settings: Settings, clock: FakeClock):
    ctx = context.Pipeline.create(db_settings, scorer_factory=Models(), clock=clock)
    yield ctx
    ctx.close()


def _label(app: context.Pipeline, inspector: str, label: str) -> int:
    task = review.claim_next(app, inspector=inspector)
    assert task is not None
    review.submit_label(app, inspection_id=task.inspection_id, inspector=inspector, label=label)
    return task.inspection_id


def _gold(app: context.Pipeline, label: str = "scratch") -> int:
    """One item labelled by a trusted engineer and marked gold."""
    item = _label(app, "vera", label)
    quality.mark_gold(app, inspection_id=item, by="erin", reason="checked under the microscope")
    return item


def _set_rates(app: context.Pipeline, *, gold: float | None = None, double: float | None = None) -> None:
    quality.set_rates(app, station="s1", gold_rate=gold, double_rate=double, by="erin", reason="test")


def test_a_planted_gold_item_is_blind_and_a_wrong_answer_is_a_listed_miss(app: context.Pipeline) -> None:
    enqueue(app.engine, n=4)
    gold = _gold(app, "scratch")
    _set_rates(app, gold=1.0)
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.inspection_id != gold
    # Blind and ordinary-looking: the same image, no model output, not an audit.
    assert not task.show_model and task.score is None and task.regions == () and not task.audit
    with app.read() as s:
        original = store.get_inspection(s, inspection_id=gold)
        copy = store.get_inspection(s, inspection_id=task.inspection_id)
        assert original is not None and copy is not None and copy.image_id == original.image_id
    review.submit_label(app, inspection_id=task.inspection_id, inspector="ann", label="ok")  # wrong
    rep = quality.qc_report(app)
    ann = next(q for q in rep.inspectors if q.inspector == "ann")
    assert (ann.gold.events, ann.gold.trials) == (0, 1) and ann.gold.high > 0.5
    assert [(m.gold_item, m.answer, m.truth) for m in ann.misses] == [(gold, "ok", "scratch")]
    assert review.inspector_stats(app, inspector="ann").labelled_today == 1  # counted as work like any label
    # The next claim is real work: the same gold item is never planted twice for one inspector.
    nxt = review.claim_next(app, inspector="ann")
    assert nxt is not None and nxt.show_model
    review.submit_label(app, inspection_id=nxt.inspection_id, inspector="ann", label="scratch")
    rep = quality.qc_report(app)
    assert next(q for q in rep.inspectors if q.inspector == "ann").labels == 2


def test_correct_gold_answers_raise_accuracy_and_no_plant_when_the_queue_is_empty(app: context.Pipeline) -> None:
    enqueue(app.engine, n=3)
    golds = [_gold(app, "scratch"), _gold(app, "ok")]
    _set_rates(app, gold=1.0)
    answers = {}
    for _ in range(2):
        task = review.claim_next(app, inspector="bob")
        assert task is not None and not task.show_model
        with app.read() as s:
            plant = s.get(store.GoldPlantRow, task.inspection_id)
            assert plant is not None
            truth = s.get(store.GoldItemRow, plant.gold_id).label  # type: ignore[union-attr]
        review.submit_label(app, inspection_id=task.inspection_id, inspector="bob", label=truth)
        answers[plant.gold_id] = truth
    assert len(answers) == 2
    bob = next(q for q in quality.qc_report(app).inspectors if q.inspector == "bob")
    assert (bob.gold.events, bob.gold.trials) == (2, 2) and bob.misses == ()
    # Gold exhausted for bob: real work again; once it is gone, "queue empty" — never a lone plant.
    last = review.claim_next(app, inspector="bob")
    assert last is not None and last.show_model
    review.submit_label(app, inspection_id=last.inspection_id, inspector="bob", label="ok")
    assert review.claim_next(app, inspector="cid") is None
    assert sorted(g.inspection_id for g in quality.list_gold(app)) == sorted(golds)


def test_skipping_a_plant_withdraws_it_and_gold_can_be_removed(app: context.Pipeline) -> None:
    enqueue(app.engine, n=3)
    gold = _gold(app)
    _set_rates(app, gold=1.0)
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.inspection_id != gold
    review.skip(app, inspection_id=task.inspection_id, inspector="ann")
    _set_rates(app, gold=0.0)
    other = review.claim_next(app, inspector="bob")
    assert other is not None and other.inspection_id != task.inspection_id and other.show_model  # not offered on
    quality.unmark_gold(app, inspection_id=gold, by="erin")
    assert quality.list_gold(app) == []
    with pytest.raises(errors.NotFound):
        quality.unmark_gold(app, inspection_id=gold, by="erin")
    with pytest.raises(errors.InputError, match="no final human label"):
        quality.mark_gold(app, inspection_id=enqueue(app.engine, n=1)[0], by="erin", reason="r")


def test_double_labels_go_to_two_inspectors_and_agreement_finishes_the_item(app: context.Pipeline) -> None:
    (item,) = enqueue(app.engine, n=1)
    _set_rates(app, double=1.0)
    assert _label(app, "ann", "scratch") == item
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=item)
        assert row is not None and row.status == store.Status.QUEUED and row.final_label is None
    assert review.claim_next(app, inspector="ann") is None  # never the same inspector twice
    assert _label(app, "bob", "scratch") == item
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=item)
        assert row is not None and row.status == store.Status.DONE and row.final_label == "scratch"
        final = store.active_review(s, inspection_id=item)
        assert final is not None and final.inspector == "ann"
    rep = quality.qc_report(app)
    assert rep.double_items == 1 and rep.pending_adjudication == 0
    assert [(p.a, p.b, p.n, p.agreed) for p in rep.pairs] == [("ann", "bob", 1, 1)]
    # Bob withdraws his label: the agreement goes, the item waits for his second label again.
    review.undo_last(app, inspector="bob")
    with app.read() as s:
        assert store.active_review(s, inspection_id=item) is None
    with pytest.raises(errors.QueueConflict, match="claimed by bob"):
        review.undo_last(app, inspector="ann")  # bob holds the item again: ann cannot take it from him
    _label(app, "bob", "ok")  # now they disagree
    with pytest.raises(errors.QueueConflict, match="second inspector"):
        review.undo_last(app, inspector="ann")


def test_a_disagreement_is_adjudicated_and_the_engineers_label_is_final(app: context.Pipeline, tmp_path: Path) -> None:
    (item,) = enqueue(app.engine, n=1)
    _set_rates(app, double=1.0)
    _label(app, "ann", "scratch")
    _label(app, "bob", "ok")
    with app.read() as s:
        row = store.get_inspection(s, inspection_id=item)
        assert row is not None and row.status == store.Status.ADJUDICATION and row.final_label is None
    assert [i.inspection_id for i in quality.adjudication_queue(app)] == [item]
    assert quality.adjudication_queue(app)[0].labels == (("ann", "scratch"), ("bob", "ok"))
    assert export.count_records(app, export.ExportFilter()) == 0  # nothing final yet
    with pytest.raises(errors.QueueConflict, match="another engineer"):
        quality.adjudicate(app, inspection_id=item, label="ok", by="bob")
    quality.adjudicate(app, inspection_id=item, label="ok", by="erin", reason="lint, not a scratch")
    assert quality.adjudication_queue(app) == []
    with pytest.raises(errors.QueueConflict, match="waits for no adjudication"):
        quality.adjudicate(app, inspection_id=item, label="scratch", by="erin")
    with app.read() as s:
        rows = store.labelled_history(s)
    assert [(r.inspection_id, r.label) for r in rows] == [(item, "ok")]  # training and calibration read this
    export.export(app, out=tmp_path / "x", fmt="jsonl", progress=False)
    (rec,) = [json.loads(x) for x in (tmp_path / "x" / "inspections.jsonl").read_text().splitlines()]
    final = (rec["label"], rec["review_kind"], rec["labels_given"], rec["inspector"])
    assert final == ("ok", "adjudication", 2, "erin")
    rep = quality.qc_report(app)
    assert rep.pending_adjudication == 0 and rep.overall.agreed == 0 and rep.overall.n == 1
    with pytest.raises(errors.QueueConflict, match="adjudicated"):
        review.undo_last(app, inspector="bob")


def _labelstudio_file(path: Path, item: int, label: str) -> Path:
    task = {"id": 1, "data": {"inspection_id": item},
            "annotations": [{"completed_by": 7, "result": [
                {"from_name": "label", "type": "choices", "value": {"choices": [label]}}]}]}  # fmt: skip
    path.write_text(json.dumps([task]))
    return path


def test_a_label_studio_import_never_settles_an_adjudication(app: context.Pipeline, tmp_path: Path) -> None:
    (item,) = enqueue(app.engine, n=1)
    _set_rates(app, double=1.0)
    _label(app, "ann", "scratch")
    _label(app, "bob", "ok")
    waiting = labelstudio.import_labelstudio(app, path=_labelstudio_file(tmp_path / "a.json", item, "scratch"))
    assert waiting.imported == 0 and "waits for an engineer" in waiting.refused[0]
    assert [i.inspection_id for i in quality.adjudication_queue(app)] == [item]
    quality.adjudicate(app, inspection_id=item, label="ok", by="erin", reason="lint")
    settled = labelstudio.import_labelstudio(app, path=_labelstudio_file(tmp_path / "b.json", item, "scratch"))
    assert settled.imported == 0 and "adjudicated 'ok' by erin" in settled.refused[0]
    with app.read() as s:
        assert [(r.inspection_id, r.label) for r in store.labelled_history(s)] == [(item, "ok")]


def test_kappa_in_the_report_matches_scikit_learn(app: context.Pipeline, clock: FakeClock) -> None:
    firsts = ["scratch", "ok", "ok", "scratch", "ok", "ok"]
    seconds = ["scratch", "ok", "scratch", "scratch", "ok", "ok"]
    enqueue(app.engine, n=len(firsts))
    _set_rates(app, double=1.0)
    for a, b in zip(firsts, seconds, strict=True):
        _label(app, "ann", a)
        _label(app, "bob", b)
        clock.advance(30)
    rep = quality.qc_report(app)
    (pair,) = rep.pairs
    assert pair.kappa == pytest.approx(cohen_kappa_score(firsts, seconds))
    assert rep.overall.kappa == pytest.approx(cohen_kappa_score(firsts, seconds)) and rep.pending_adjudication == 1


def _automatic(app: context.Pipeline, n: int, route: str) -> list[int]:
    """n auto-passed items queued for a blind audit (as ingest stores them)."""
    ids = enqueue(app.engine, n=n, audit=True)
    with store.write_session(app.engine) as s:
        s.execute(
            sa.update(store.InspectionRow)
            .where(store.InspectionRow.id.in_(ids))  # type: ignore[attr-defined]
            .values(route=route, show_model=False, final_label="ok", decided_by="model")
        )
    return ids


def test_gold_and_second_labels_never_count_twice_in_the_escape_rate(app: context.Pipeline) -> None:
    ids = _automatic(app, 2, "auto_pass")
    _set_rates(app, double=1.0)
    _label(app, "ann", "scratch")  # first label of an audit: not final yet
    assert reports.audit_report(app).audits == 0
    _label(app, "bob", "scratch")  # agreement: one audit label, not two
    quality.mark_gold(app, inspection_id=ids[0], by="erin", reason="confirmed")
    _set_rates(app, gold=1.0, double=0.0)
    plant = review.claim_next(app, inspector="cid")
    assert plant is not None and plant.inspection_id not in ids
    review.submit_label(app, inspection_id=plant.inspection_id, inspector="cid", label="scratch")
    rep = reports.audit_report(app)
    assert rep.audits == 1 and (rep.escape.events, rep.escape.trials) == (1, 1)


def _own_images(app: context.Pipeline, ids: list[int]) -> None:
    """Give each item its own decodable-looking image (enqueue shares one): retraining keeps one label per image."""
    with store.write_session(app.engine) as s:
        for i in ids:
            row = store.get_inspection(s, inspection_id=i)
            assert row is not None
            img = store.get_or_add_image(
                s,
                image=store.ImageRow(sha256=f"{i:064x}"[::-1], path=f"images/{i}.png", size_bytes=1, width=64,
                                     height=64, first_station="s1", received_at=row.received_at),
            )  # fmt: skip
            row.image_id = img.id  # type: ignore[assignment]
            s.add(row)


def test_gold_and_second_labels_never_count_twice_in_the_retraining_history(app: context.Pipeline) -> None:
    _own_images(app, enqueue(app.engine, n=3))
    _set_rates(app, double=1.0)
    agreed = _label(app, "ann", "scratch")
    _label(app, "bob", "scratch")
    _set_rates(app, double=0.0)
    gold = _label(app, "vera", "ok")
    quality.mark_gold(app, inspection_id=gold, by="erin", reason="r")
    _set_rates(app, gold=1.0)
    plant = review.claim_next(app, inspector="cid")
    assert plant is not None
    # A wrong answer on the plant (same image as the gold item) must not become the image's training label.
    review.submit_label(app, inspection_id=plant.inspection_id, inspector="cid", label="scratch")
    with app.read() as s:
        ids = [r.inspection_id for r in store.labelled_history(s)]
    assert ids == [agreed, gold]
    items = retrain.labelled_items(app)
    assert [(i.inspection_id, i.label) for i in items] == [(agreed, "scratch"), (gold, "ok")]
    history, stats = labelled_history(app)
    assert stats.n == len(history)


def test_gold_and_second_labels_never_count_twice_in_exports(app: context.Pipeline, tmp_path: Path) -> None:
    enqueue(app.engine, n=3)
    _set_rates(app, double=1.0)
    agreed = _label(app, "ann", "ok")
    _label(app, "bob", "ok")
    _set_rates(app, double=0.0)
    gold = _gold(app, "scratch")
    _set_rates(app, gold=1.0)
    plant = review.claim_next(app, inspector="cid")
    assert plant is not None
    review.submit_label(app, inspection_id=plant.inspection_id, inspector="cid", label="ok")
    export.export(app, out=tmp_path / "csv", fmt="jsonl", progress=False)
    recs = [json.loads(x) for x in (tmp_path / "csv" / "inspections.jsonl").read_text().splitlines()]
    by_id = {r["inspection_id"]: r for r in recs}
    assert len(recs) == len(by_id) == 2 and plant.inspection_id not in by_id
    assert (by_id[agreed]["label"], by_id[agreed]["review_kind"], by_id[agreed]["labels_given"]) == ("ok", "label", 2)
    assert (by_id[gold]["label"], by_id[gold]["labels_given"]) == ("scratch", 1)


def test_shift_drift_is_reported_per_inspector(app: context.Pipeline, clock: FakeClock) -> None:
    enqueue(app.engine, n=6, start=clock.now - timedelta(hours=1))
    for i in range(6):
        task = review.claim_next(app, inspector="ann")
        assert task is not None
        review.submit_label(app, inspection_id=task.inspection_id, inspector="ann", label="ok",
                            seconds_taken=5.0 if i < 3 else 30.0)  # fmt: skip
        clock.advance(3 * 3600 if i == 2 else 60)
    ann = quality.qc_report(app).inspectors[0]
    assert ann.shift.days == 1 and ann.shift.first_hour.n == 3 and ann.shift.last_hour.n == 3
    assert (ann.shift.first_hour.seconds_median, ann.shift.last_hour.seconds_median) == (5.0, 30.0)


def test_rates_are_validated_and_fall_back_to_the_settings(app: context.Pipeline) -> None:
    assert quality.get_rates(app, station="s9").own is False
    with pytest.raises(errors.InputError, match="between 0 and 1"):
        quality.set_rates(app, station="s1", gold_rate=1.5, double_rate=None, by="erin", reason="r")
    r = quality.set_rates(app, station="s1", gold_rate=0.05, double_rate=None, by="erin", reason="r")
    assert (r.gold_rate, r.double_rate, r.own) == (0.05, app.settings.qc_double_rate, True)


@pytest.fixture
def cli(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(db_settings.models_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", db_settings.database_url)
    return build_app(scorer_factory=lambda _s: Models())


def _run(cli: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_qc_commands(cli: typer.Typer, app: context.Pipeline) -> None:
    enqueue(app.engine, n=2)
    vera = _label(app, "vera", "scratch")
    assert _run(cli, "qc", "gold", "add", "--id", str(vera), "--by", "erin", "--reason", "sure")[0] == 0
    code, out = _run(cli, "qc", "gold", "add", "--id", str(vera), "--by", "erin", "--reason", "sure")
    assert code == 2 and "already" in out
    code, out = _run(cli, "qc", "gold", "list", "--json")
    assert code == 0 and json.loads(out)[0]["label"] == "scratch"
    assert _run(cli, "qc", "set", "--station", "s1", "--double-rate", "1", "--by", "erin", "--reason", "t")[0] == 0
    _label(app, "ann", "scratch")
    _label(app, "bob", "ok")
    code, out = _run(cli, "qc", "adjudicate")
    assert code == 0 and "ann: scratch, bob: ok" in out
    item = int(out.split()[0].lstrip("#"))
    code, out = _run(cli, "qc", "adjudicate", "--id", str(item), "--label", "scratch", "--by", "erin")
    assert code == 0 and "adjudicated scratch" in out
    code, out = _run(cli, "qc", "report", "--json")
    rep = json.loads(out)
    assert code == 0 and rep["double_items"] == 1 and rep["pending_adjudication"] == 0
    assert {q["inspector"] for q in rep["inspectors"]} == {"vera", "ann", "bob"}
    code, out = _run(cli, "qc", "report")
    assert code == 0 and "ann vs bob: 0/1 agree" in out
    assert _run(cli, "qc", "gold", "remove", "--id", str(vera), "--by", "erin")[0] == 0
    assert _run(cli, "qc", "gold", "remove", "--id", str(vera), "--by", "erin")[0] == 2
