"""A real, small training run on generated phone photos: it must learn, calibrate, save and load."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from inspection.core.metrics import expected_calibration_error
from inspection.vision.artifact import load_artifact, read_meta
from inspection.vision.evaluate import evaluate
from inspection.vision.predictor import Predictor, load_predictor
from inspection.vision.preprocess import PreprocessSpec
from inspection.vision.synth import generate
from inspection.vision.train import TrainConfig, TrainingError, fit_temperature, sigmoid, train
from tests.model_fixtures import TINY_SIZE, TINY_SPEC

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def trained(tiny_model: Path, tiny_data: Path) -> tuple[Path, Path]:
    return tiny_model, tiny_data / "holdout"


def test_training_learns_clearly_above_chance_on_its_holdout(trained: tuple[Path, Path]) -> None:
    model_dir, holdout = trained
    report = evaluate(load_predictor(model_dir), holdout)
    assert report["n"] == 48 and report["n_errors"] == 0
    assert report["auroc"] >= 0.8, report
    assert "pointing_game" in report  # the holdout has masks


def test_artifact_round_trip_gives_identical_scores(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, holdout = trained
    net, meta = load_artifact(model_dir)
    files = sorted(holdout.glob("*/*.jpg"))[:6]
    first = [s.prediction.score for s in Predictor(net, meta).score_files(files)]
    again = [s.prediction.score for s in load_predictor(model_dir, backend="torch").score_files(files)]
    assert first == again
    fast = load_predictor(model_dir)  # ONNX Runtime, the serving path: same network, same scores
    assert fast.backend == "onnx"
    assert [s.prediction.score for s in fast.score_files(files)] == pytest.approx(first, abs=1e-4)
    data = json.loads((model_dir / "model.json").read_text())
    assert data["version"] == "tiny" and len(data["data_hash"]) == 64
    assert data["preprocess"]["canvas_h"] == 256
    assert {"val_auroc", "val_ece_before_calibration", "val_ece_after_calibration"} <= set(data["metrics"])
    assert len(data["training"]["history"]) == data["training"]["epochs_run"]
    assert (model_dir / "training.png").stat().st_size > 1000  # the learning curves, plotted


def test_training_stores_reference_distributions_from_its_validation_images(trained: tuple[Path, Path]) -> None:
    model_dir, holdout = trained
    data = json.loads((model_dir / "model.json").read_text())
    monitor = data["monitor"]
    assert monitor["n"] == data["metrics"]["n_val"]
    assert (monitor["features"]["dim"], monitor["features"]["k"]) == (112, 8)
    assert {"brightness", "colour_cast", "score", "n_regions", "f0", "f7"} <= set(monitor["reference"]["values"])
    # an ood limit needs MIN_REFERENCE (50) validation images; fewer: the gate checks the others only
    assert ("ood" in data["domain"]["ranges"]) == (monitor["n"] >= 50)
    [scored] = load_predictor(model_dir).score_files(sorted(holdout.glob("*/*.jpg"))[:1])
    assert len(scored.features) == 8 and scored.quality["ood"] > 0


def test_weights_file_holds_tensors_only(trained: tuple[Path, Path]) -> None:
    from safetensors import safe_open

    model_dir, _ = trained
    with safe_open(str(model_dir / "weights.safetensors"), framework="pt") as f:
        assert all(isinstance(f.get_tensor(k), torch.Tensor) for k in f.keys())  # noqa: SIM118
    assert read_meta(model_dir).temperature > 0


def test_temperature_scaling_lowers_ece_of_overconfident_scores() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, 4000)
    labels = (rng.random(4000) < sigmoid(true_logits)).astype(np.float64)  # calibrated by construction
    overconfident = true_logits * 4.0  # a network that is 4x too sure of itself
    t = fit_temperature(overconfident, labels)
    before = expected_calibration_error(sigmoid(overconfident), labels)
    after = expected_calibration_error(sigmoid(overconfident / t), labels)
    assert 3.0 < t < 5.0
    assert after < before / 3


def test_training_refuses_a_dataset_too_small_to_validate(tmp_path: Path) -> None:
    generate(tmp_path / "d", count=4, seed=1, size=TINY_SIZE, progress=False)
    with pytest.raises(TrainingError, match="too few"):
        train(tmp_path / "d", tmp_path / "m", config=TrainConfig(epochs=1, preprocess=TINY_SPEC))


def _head_distance(a: Path, b: Path) -> float:
    wa, wb = load_artifact(a)[0].head.state_dict(), load_artifact(b)[0].head.state_dict()
    return float(sum(torch.sum((wa[k].float() - wb[k].float()) ** 2) for k in wa) ** 0.5)


def test_fine_tuning_starts_from_the_given_model_not_imagenet(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, holdout = trained
    # A tiny learning rate: one epoch barely moves the weights, so the result shows where training began.
    base = TrainConfig(epochs=1, lr=1e-6, val_fraction=0.25, preprocess=TINY_SPEC, patience=1)
    warm = train(holdout, tmp_path / "warm", config=replace(base, init_from=model_dir), log=lambda _: None)
    cold = train(holdout, tmp_path / "cold", config=base, log=lambda _: None)
    assert _head_distance(warm.out, model_dir) < 0.05 * _head_distance(cold.out, model_dir)
    assert evaluate(load_predictor(warm.out), holdout)["auroc"] >= 0.8  # it kept what the model knew


def test_fine_tuning_refuses_a_model_with_other_preprocessing(trained: tuple[Path, Path], tmp_path: Path) -> None:
    model_dir, holdout = trained
    other = PreprocessSpec(mode="phone", canvas_h=128, canvas_w=64)
    with pytest.raises(TrainingError, match="preprocessing differs"):
        train(holdout, tmp_path / "x", config=TrainConfig(epochs=1, preprocess=other, init_from=model_dir),
              log=lambda _: None)
