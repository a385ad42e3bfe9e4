"""The input scale of whole-image data follows the frames' and the defects' sizes; windows and oriented copies
keep features and cell targets in register."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from inspection.vision.dataset import list_imagefolder
from inspection.vision.input_scale import MAX_LONG_SIDE, MIN_SIDE, NO_TRUTH_LONG_SIDE, TILE_PX, choose_input_scale
from inspection.vision.tiles import cut_windows, oriented, window_offsets


def texture_folder(root: Path, *, size: tuple[int, int], defect: int | None, n: int = 6) -> Path:
    """Grey noise frames (w, h); positives carry a `defect`-px line, with a mask when `defect` is given."""
    w, h = size
    rng = np.random.default_rng(0)
    for cls in ("scratch", "ok"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            frame = rng.integers(90, 140, (h, w, 3), dtype=np.uint8)
            if cls == "scratch":
                length = defect or 40
                cv2.line(frame, (w // 4, h // 2), (w // 4 + length, h // 2), (230, 230, 230), 2)
                if defect is not None:
                    (root / "masks").mkdir(exist_ok=True)
                    mask = np.zeros((h, w), np.uint8)
                    cv2.line(mask, (w // 4, h // 2), (w // 4 + length, h // 2), 255, 3)
                    cv2.imwrite(str(root / "masks" / f"{cls}_{i}.png"), mask)
            cv2.imwrite(str(root / cls / f"{cls}_{i}.png"), frame)
    return root


@pytest.mark.parametrize(("size", "defect", "canvas", "tile"), [
    # small scratches on large frames keep the camera's pixels, trained on windows
    ((1200, 800), 30, (800, 1200), TILE_PX),
    # large defects: shrunk until the median one spans ~192 canvas px
    ((1200, 800), 400, (384, 576), TILE_PX),
    # and never a side below the ImageNet scale
    ((1200, 800), 1000, (224, 336), 0),
    # texture patches smaller than the ImageNet scale are enlarged to it
    ((200, 200), 150, (MIN_SIDE, MIN_SIDE), 0),
    # no ground truth: the frame's size up to a cap, whole canvases (a window might miss the scratch)
    ((1200, 800), None, (432, NO_TRUTH_LONG_SIDE), 0),
    # portrait frames give a portrait canvas
    ((800, 1200), 30, (1200, 800), TILE_PX),
])
def test_the_canvas_follows_the_frames_and_the_defects(
    tmp_path: Path, size: tuple[int, int], defect: int | None, canvas: tuple[int, int], tile: int
) -> None:
    root = texture_folder(tmp_path, size=size, defect=defect)
    scale = choose_input_scale(root, list_imagefolder(root))
    assert (scale.canvas_h, scale.canvas_w) == canvas
    assert scale.tile == tile
    assert scale.canvas_h % 16 == 0 and scale.canvas_w % 16 == 0


def test_the_canvas_never_grows_past_its_cap(tmp_path: Path) -> None:
    root = texture_folder(tmp_path, size=(3000, 1000), defect=20, n=2)
    scale = choose_input_scale(root, list_imagefolder(root))
    assert max(scale.canvas_h, scale.canvas_w) == MAX_LONG_SIDE
    assert scale.canvas_h == 448  # the frames' aspect is kept


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_an_oriented_copy_moves_the_cell_targets_with_the_pixels(k: int) -> None:
    canvas = np.zeros((64, 96, 3), np.uint8)
    canvas[16:32, 48:64] = 255  # cell (1, 3) of a 4 x 6 grid
    cells = np.zeros((4, 6), np.float32)
    cells[1, 3] = 1
    c, t = oriented(canvas, cells, k)
    (row,), (col,) = np.nonzero(t)
    assert c[row * 16 : (row + 1) * 16, col * 16 : (col + 1) * 16].min() == 255
    assert int(c.sum()) == int(canvas.sum())


def test_a_positives_window_always_holds_one_of_its_scratch_cells() -> None:
    cells = torch.zeros(2, 50, 83)
    cells[0, 40, 80] = 1  # near a corner: the window must still fit inside the canvas
    labels = torch.tensor([1.0, 0.0])
    rng = np.random.default_rng(0)
    feats = torch.arange(2 * 100 * 166, dtype=torch.float32).reshape(2, 1, 100, 166)
    for _ in range(50):
        idx = torch.tensor([0, 1])
        offsets = window_offsets(cells, labels, idx, 20, rng)
        f, c = cut_windows(feats, cells, idx, offsets, 20)
        assert f.shape == (2, 1, 40, 40) and c.shape == (2, 20, 20)
        assert c[0].sum() == 1 and c[1].sum() == 0
        oy, ox = offsets[0]
        assert f[0, 0, 0, 0] == feats[0, 0, 2 * oy, 2 * ox]  # features and cells cut at the same place
