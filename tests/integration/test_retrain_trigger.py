"""The retrain trigger end to end with a real database and real (tiny) models: N blind labels start a run
in a background worker process; its better candidate goes into shadow (never promoted); a candidate that
is not better, and a run that fails, are kept out with the reason; every run is an event with metrics."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from inspection import store
from inspection.config import Settings
from inspection.services import deploy, retrain_trigger
from inspection.services.context import Pipeline
from tests.engineer_fixtures import (  # noqa: F401  (pytest fixtures)
    ingest_labelled,
    phone_photos,
    photo_files,
    png_bytes,
    two_model_settings,
    two_models,
    varied,
)

FLIP = {"scratch": "ok", "ok": "scratch"}
# From ImageNet's weights: the same labels and recipe then rebuild an identical candidate (the second run
# below); a warm start would fine-tune the promoted candidate further instead.
SETTINGS = {"enabled": True, "on_labels": 30, "on_drift": False, "epochs": 2, "min_per_class": 15, "warm_start": False}


def _events(app: Pipeline, kind: str) -> list[store.EventRow]:
    with app.read() as session:
        return store.list_events(session, kind=kind, limit=100)


@pytest.mark.slow
def test_n_blind_labels_start_a_run_whose_better_candidate_goes_to_shadow_and_a_no_better_one_is_kept_out(
    two_model_settings: Settings,  # noqa: F811
    phone_photos: Path,  # noqa: F811
) -> None:
    with Pipeline.create(two_model_settings) as app:
        retrain_trigger.set_trigger(app, station="s1", settings=SETTINGS, by="erin", reason="retrain on labels")
        idle = retrain_trigger.check_trigger(app, station="s1")
        assert not idle.start and "0/30 new blind labels" in idle.reason
        # The line's inspectors now call scratch what the production model calls ok and the other way
        # round (a changed defect definition): production ranks the held-out labels backwards.
        files = photo_files(phone_photos)
        ingest_labelled(app, [(varied(p, i), FLIP[cls]) for i, (p, cls) in enumerate(files)])

        check = retrain_trigger.check_trigger(app, station="s1")  # the real background worker process
        assert check.start and check.run is not None and check.run.trigger == "labels"
        again = retrain_trigger.check_trigger(app, station="s1")
        assert not again.start and "in progress" in again.reason  # at most one run per station
        run = retrain_trigger.wait_run(app, run_id=check.run.id, timeout=300)

        assert (run.status, run.outcome) == ("done", "shadow"), run.outcome_reason
        assert run.progress == 1.0 and run.started_at is not None and run.finished_at is not None
        m = run.metrics or {}
        assert m["candidate"]["auroc"] > m["production"]["auroc"] and m["production"]["version"] == "model-a"
        assert m["candidate"]["n"] == m["production"]["n"] == len(m["heldout_ids"]) > 0
        state = deploy.current_state(app)
        assert (state.production, state.mode, state.candidate) == ("model-a", "shadow", run.candidate_version)
        assert _events(app, "retrain.run_started")[0].detail["run_id"] == run.id
        finished = _events(app, "retrain.run_finished")[0].detail
        assert finished["outcome"] == "shadow" and finished["metrics"]["candidate"]["auroc"] == m["candidate"]["auroc"]
        assert not retrain_trigger.check_trigger(app, station="s1").start  # counts restart from this run

        # An engineer promotes it; the same labels and recipe then build an identical candidate: no better.
        assert run.candidate_version is not None
        deploy.promote(app, version=run.candidate_version, by="erin", reason="better on the new definition")
        second = retrain_trigger.run_now(app, station="s1", by="erin", reason="again")
        second = retrain_trigger.wait_run(app, run_id=second.id, timeout=300)
        assert (second.status, second.outcome) == ("rejected", "kept_out")
        assert second.outcome_reason and "not higher than production" in second.outcome_reason
        after = deploy.current_state(app)
        assert (after.production, after.mode) == (run.candidate_version, "none")  # never deployed
        assert _events(app, "retrain.run_finished")[0].detail["status"] == "rejected"


def test_a_failed_run_is_kept_out_with_the_reason(db_settings: Settings) -> None:
    from tests.engineer_fixtures import fake_pipeline

    with fake_pipeline(db_settings, ["v1"]) as app:
        ingest_labelled(app, [(png_bytes(200, seed=i), "scratch") for i in range(3)])
        run = retrain_trigger.run_now(app, station="s1", by="erin", runner=retrain_trigger.inline_runner)
        assert (run.status, run.outcome) == ("failed", "failed")
        assert run.outcome_reason and "too few labels to retrain" in run.outcome_reason
        assert deploy.current_state(app).mode == "none"
        assert [r.id for r in retrain_trigger.list_runs(app, station="s1")] == [run.id]


@pytest.mark.parametrize(("epochs", "lines", "progress"), [
    (None, ["5 epochs (fine-tuning v1)", "epoch 1: train loss 0.40"], 0.1 + 0.7 / 5),  # the schedule's total
    (2, ["epoch 1: train loss 0.40"], 0.1 + 0.7 / 2),  # the trigger's own
    (None, ["epoch 1: train loss 0.40"], None),  # no total known yet: no made-up progress
])
def test_a_runs_progress_counts_epochs_against_the_schedules_total_when_the_trigger_sets_none(
    db_settings: Settings, epochs: int | None, lines: list[str], progress: float | None
) -> None:
    from inspection.services.retrain_run import _progress_log
    from tests.engineer_fixtures import fake_pipeline

    with fake_pipeline(db_settings, ["v1"]) as app:
        run = retrain_trigger.run_now(app, station="s1", by="erin", runner=lambda _app, _run_id: None)
        log = _progress_log(app, run.id, epochs)
        for line in lines:
            log(line)
        expected = run.progress if progress is None else progress
        assert retrain_trigger.get_run(app, run_id=run.id).progress == pytest.approx(expected)


def test_trigger_settings_are_versioned_with_who_and_why(db_settings: Settings) -> None:
    from tests.engineer_fixtures import fake_pipeline

    with fake_pipeline(db_settings, ["v1"]) as app:
        assert retrain_trigger.get_trigger(app, station="s1").version == 0
        one = retrain_trigger.set_trigger(app, station="s1", settings={"enabled": True}, by="erin", reason="on")
        two = retrain_trigger.set_trigger(app, station="s1", settings={"every_hours": 12}, by="max", reason="daily")
        assert (one.version, two.version) == (1, 2) and two.settings["enabled"] and two.settings["every_hours"] == 12
        assert two.created_by == "max" and two.reason == "daily"
        with pytest.raises(ValueError):
            retrain_trigger.set_trigger(app, station="s1", settings={"on_labels": 0}, by="erin", reason="bad")
        with pytest.raises(ValueError, match="why"):
            retrain_trigger.set_trigger(app, station="s1", settings={}, by="erin", reason="")


class _EndedWorker:
    """A worker process that has already ended (killed: exit code -9)."""

    exitcode = -9

    def join(self) -> None:
        return None


def test_a_worker_that_ends_while_the_database_is_out_of_reach_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "gone"
    app = Pipeline.create(Settings(data_dir=home, models_dir=tmp_path / "models"))
    app.close()
    shutil.rmtree(home)  # the SQLite file and its folder: no connection can open
    with caplog.at_level(logging.WARNING, logger="inspection.retrain_trigger"):
        retrain_trigger._watch(app, _EndedWorker(), 7)
    assert "retrain run 7: its worker ended (exit code -9) but the database could not be reached" in caplog.text
