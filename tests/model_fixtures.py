"""A tiny real model trained once per test session on generated 640x360 phone photos (~30 s here),
shared by every test that needs a real model. Import the fixtures into a conftest to use them."""

from __future__ import annotations

from pathlib import Path

import pytest

from inspection.vision.preprocess import PreprocessSpec
from inspection.vision.synth import generate
from inspection.vision.train import TrainConfig, train

TINY_SIZE = (640, 360)
TINY_SPEC = PreprocessSpec(mode="phone", canvas_h=256, canvas_w=128)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny-data")
    generate(root / "train", count=96, seed=21, size=TINY_SIZE, progress=False)
    generate(root / "holdout", count=48, seed=22, size=TINY_SIZE, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_model(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model artifact directory named `tiny`."""
    out = tmp_path_factory.mktemp("tiny-models") / "tiny"
    config = TrainConfig(epochs=8, val_fraction=0.25, preprocess=TINY_SPEC, patience=8)
    train(tiny_data / "train", out, config=config, log=lambda _: None)
    return out
