"""Retraining from stored labels: refusal on too few labels, a real candidate trained, evaluated
with production on the same held-out items, registered with its data snapshot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspection import store
from inspection.config import Settings
from inspection.services import deploy, retrain
from inspection.services.context import Pipeline
from tests.engineer_fixtures import (  # noqa: F401  (pytest fixtures)
    fake_pipeline,
    ingest_labelled,
    phone_photos,
    photo_files,
    png_bytes,
    tiny_spec,
    two_model_settings,
    two_models,
    varied,
)


def test_retrain_refuses_too_few_labels_and_says_how_many_more(db_settings: Settings) -> None:
    with fake_pipeline(db_settings, ["v1"]) as app:
        ingest_labelled(
            app,
            [(png_bytes(200, seed=i), "scratch") for i in range(3)]
            + [(png_bytes(20, seed=50 + i), "ok") for i in range(25)],
        )
        with pytest.raises(retrain.NotEnoughLabels) as err:
            retrain.retrain(app, by="erin")
    assert err.value.counts == {"scratch": 3, "ok": 25}
    assert err.value.needed == {"scratch": 17, "ok": 0}
    assert "need at least 20 of each class" in str(err.value) and "label 17 more scratch" in str(err.value)
    assert not any(db_settings.models_dir.glob("cand-*"))


def test_holdout_split_is_stratified_and_stable_per_image() -> None:
    items = [
        retrain.LabelledItem(i, f"{i:064x}", f"images/{i}.png", "scratch" if i % 3 else "ok", False, "s")
        for i in range(60)
    ]
    train, test = retrain.holdout_split(items, fraction=0.2)
    assert {i.inspection_id for i in train}.isdisjoint({i.inspection_id for i in test})
    assert sum(i.label == "ok" for i in test) == 4 and sum(i.label == "scratch" for i in test) == 8
    _, test_again = retrain.holdout_split(list(reversed(items)), fraction=0.2)
    assert test_again == test


@pytest.mark.slow
def test_retrain_registers_a_candidate_compared_with_production_on_the_same_held_out_items(
    two_model_settings: Settings,  # noqa: F811
    phone_photos: Path,  # noqa: F811
) -> None:
    settings = two_model_settings
    files = photo_files(phone_photos)
    with Pipeline.create(settings) as app:
        ids = ingest_labelled(app, [(varied(p, i), cls) for i, (p, cls) in enumerate(files)])
        result = retrain.retrain(
            app,
            by="erin",
            epochs=1,
            min_per_class=15,
            preprocess=tiny_spec(),
            base_data=phone_photos,
            log=lambda _m: None,
        )
        assert result.version.startswith("cand-") and result.path == settings.models_dir / result.version
        meta = json.loads((result.path / "model.json").read_text())
        assert meta["version"] == result.version
        snap = meta["metrics"]["retrain"]["data"]
        assert sorted(snap["train_ids"] + snap["test_ids"]) == ids
        assert set(snap["train_ids"]).isdisjoint(snap["test_ids"]) and len(snap["hash"]) == 64
        assert snap["n_base"] == len(files)
        held = meta["metrics"]["retrain"]["heldout"]
        assert held["production"]["version"] == "model-a"
        assert held["candidate"]["n"] == held["production"]["n"] == len(snap["test_ids"])
        with app.read() as session:
            events = store.list_events(session, kind="model.registered")
        assert events[0].actor == "erin" and events[0].detail["version"] == result.version
        assert not list(settings.data_dir.glob(".retrain-*")) and not list(settings.models_dir.glob(".tmp-*"))

        # Promotion follows the stored held-out verdict.
        problem = deploy.worse_than_production(held["candidate"], held["production"])
        if problem:
            with pytest.raises(deploy.DeployError, match="refused"):
                deploy.promote(app, version=result.version, by="erin")
        else:
            assert deploy.promote(app, version=result.version, by="erin").state.production == result.version


@pytest.mark.slow
def test_a_fine_tune_without_epochs_runs_the_schedules_short_run_from_productions_weights(
    two_model_settings: Settings,  # noqa: F811
    phone_photos: Path,  # noqa: F811
) -> None:
    from inspection.core.schedule import default_epochs

    files = photo_files(phone_photos)
    logs: list[str] = []
    with Pipeline.create(two_model_settings) as app:
        ingest_labelled(app, [(varied(p, i), cls) for i, (p, cls) in enumerate(files)])
        result = retrain.retrain(app, by="erin", min_per_class=15, warm_start=True, log=logs.append)
    epochs = default_epochs(result.n_train, fine_tune=True)
    assert f"{epochs} epochs (fine-tuning model-a)" in logs
    meta = json.loads((result.path / "model.json").read_text())
    assert meta["metrics"]["retrain"]["warm_start_from"] == "model-a"
    assert meta["training"]["config"]["epochs"] == epochs and meta["training"]["epochs_run"] <= epochs
