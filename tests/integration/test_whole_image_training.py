"""Whole-image data (lenses, sheet metal, steel textures) is trained at a scale chosen from its own frames and
defects, on windows of canvases too large to train whole, in four orientations, and it learns."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inspection.vision.dataset import Example
from inspection.vision.evaluate import evaluate
from inspection.vision.folds import holdout_split
from inspection.vision.input_scale import choose_input
from inspection.vision.predictor import load_predictor
from inspection.vision.train import TrainConfig, train

pytestmark = pytest.mark.slow

FRAME_WH = (448, 352)  # px: larger than a training window (320 px) on both sides


def surface(rng: np.random.Generator) -> np.ndarray:
    """A mottled grey surface with dust specks everywhere: the look-alikes every image carries."""
    w, h = FRAME_WH
    base = cv2.GaussianBlur(rng.normal(120, 25, (h // 8, w // 8)).astype(np.float32), (0, 0), 1.5)
    frame = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC) + rng.normal(0, 4, (h, w))
    for _ in range(12):
        cv2.circle(frame, (int(rng.integers(w)), int(rng.integers(h))), int(rng.integers(1, 4)), 200, -1)
    return np.clip(frame, 0, 255).astype(np.uint8)


def write_surfaces(root: Path, *, n: int, seed: int) -> Path:
    """`n` images per class; positives carry one thin 20-40 px scratch, drawn in masks/ too."""
    rng = np.random.default_rng(seed)
    (root / "masks").mkdir(parents=True)
    for cls in ("scratch", "ok"):
        (root / cls).mkdir()
        for i in range(n):
            frame = surface(rng)
            if cls == "scratch":
                x, y = int(rng.integers(40, FRAME_WH[0] - 40)), int(rng.integers(40, FRAME_WH[1] - 40))
                angle, length = rng.uniform(0, np.pi), rng.uniform(20, 40)
                end = (int(x + length * np.cos(angle)), int(y + length * np.sin(angle)))
                cv2.line(frame, (x, y), end, 215, 1, cv2.LINE_AA)
                mask = np.zeros(frame.shape, np.uint8)
                cv2.line(mask, (x, y), end, 255, 3)
                cv2.imwrite(str(root / "masks" / f"{cls}_{seed}_{i}.png"), mask)
            cv2.imwrite(str(root / cls / f"{cls}_{seed}_{i}.png"), cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    return root


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("surfaces")
    write_surfaces(root / "train", n=40, seed=1)
    write_surfaces(root / "holdout", n=20, seed=2)
    return root


def test_phone_frames_are_cropped_to_the_phone(tiny_data: Path) -> None:
    chosen = choose_input(tiny_data / "train", positive="scratch")
    assert chosen.preprocess.mode == "phone"
    assert (chosen.tile, chosen.orientations, chosen.select) == (0, 1, "loss")


def test_surfaces_are_judged_whole_at_the_cameras_scale_on_windows_in_four_orientations(surfaces: Path) -> None:
    chosen = choose_input(surfaces / "train", positive="scratch")
    assert chosen.preprocess.mode == "resize"
    assert (chosen.preprocess.canvas_h, chosen.preprocess.canvas_w) == (352, 448)
    assert (chosen.tile, chosen.orientations, chosen.select) == (320, 4, "auroc")
    assert "median defect" in chosen.why


def test_windowed_training_on_whole_images_learns(surfaces: Path, tmp_path: Path) -> None:
    chosen = choose_input(surfaces / "train", positive="scratch")
    config = TrainConfig(epochs=8, patience=8, val_fraction=0.2, preprocess=chosen.preprocess, tile=chosen.tile,
                         orientations=chosen.orientations, select=chosen.select)
    report = train(surfaces / "train", tmp_path / "model", config=config, log=lambda _: None)
    assert report.n_train == 64 * 4  # every training image in four orientations
    result = evaluate(load_predictor(tmp_path / "model"), surfaces / "holdout")
    assert result["n"] == 40 and result["n_errors"] == 0
    assert result["auroc"] >= 0.8, result
    assert result["pointing_game"] >= 0.6, result  # the heatmap points at the scratch, not a speck


@pytest.mark.parametrize(("names", "pattern"), [
    ([f"lens{g}_{v}.png" for g in range(10) for v in range(4)], r"^([^_]+)_"),
    ([f"{g}-view{v}.png" for g in "abcdefghij" for v in range(4)], r"^[a-j]"),
])
def test_a_grouped_validation_split_never_divides_a_group(names: list[str], pattern: str) -> None:
    examples = [Example(Path(n), int(i % 8 < 4), "x") for i, n in enumerate(names)]
    rest, held = holdout_split(examples, fraction=0.25, seed=0, groups=pattern)
    assert sorted(rest + held) == list(range(len(names)))
    group = [n[: n.index("_")] if "_" in n else n[0] for n in names]
    assert not {group[i] for i in rest} & {group[i] for i in held}
    assert {examples[i].label for i in held} == {0, 1}
