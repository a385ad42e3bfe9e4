"""How training sees a dataset: phone crops or whole images, and for whole images ("resize") the network's
input scale, chosen from the data itself (`choose_input`).

A defect is found by the cells it crosses: the network scores 16 x 16 canvas pixels per cell, so a scratch
shrunk below a cell's size leaves a mark of a pixel or two that the pretrained features barely see. The
goggles lenses (1333 x 800, scratch boxes of median extent 35 px, 1-3 px wide) resized to 224 px keep ~6 px
of a scratch, a third of a cell; at their own size they span two cells. So the canvas keeps the camera's
pixels whenever the defects are small, and shrinks only as far as the median defect still covers
`TARGET_EXTENT` canvas pixels. Aluminum (scratches of median length ~200 px, 5-10 px wide, at 640 x 480),
5-fold: shrunk to 224 x 304 (96 px target) AUROC 0.9865, pointing game 0.85; at 448 x 592 (192 px) 0.9918
and 1.0 -- a scratch's width, not its length, is what the features must resolve.

Training a large canvas is costly (an epoch's cost grows with the pixels), so above `TILE_PX` per side the
training samples windows of the cached features (vision.tiles): every window of a positive holds part of its
scratch, which needs ground truth for every positive. Scoring always runs on the whole canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection.vision.dataset import Example, list_imagefolder, truth_mask
from inspection.vision.images import ImageError, image_size, read_image_file
from inspection.vision.model import CELL
from inspection.vision.preprocess import PreprocessError, PreprocessSpec, locate_phone

TARGET_EXTENT = 192.0  # canvas px: the median defect spans ~12 cells (see above: 96 lost aluminum's width)
MIN_SIDE = 224  # canvas px: the ImageNet scale; smaller canvases lose the backbone's context
MAX_LONG_SIDE = 1344  # canvas px: ~1 Mpx at 16:10, ~70 ms per forward pass here
NO_TRUTH_LONG_SIDE = 640  # canvas px when no ground truth says how small the defects are
TILE_PX = 320  # canvas px: training windows on canvases larger than this on both sides
SAMPLE = 60  # images read to measure frame and defect sizes (seeded)


@dataclass(frozen=True)
class InputScale:
    canvas_h: int
    canvas_w: int
    tile: int  # training window side in canvas px; 0 = whole canvases
    median_frame_wh: tuple[int, int]
    median_defect_px: float | None  # long extent of a defect in frame px (None: no ground truth)
    why: str


def defect_extents(root: Path, examples: Sequence[Example]) -> tuple[list[float], bool]:
    """Long extents (frame px) of every connected ground-truth region of the sampled positives, and whether
    every positive of the data has ground truth (windowed training needs it)."""
    positives = [e for e in examples if e.label]
    extents: list[float] = []
    all_truth = True
    for i, ex in enumerate(positives):
        try:
            wh = _frame_wh(ex.path)
        except ImageError:
            continue
        mask = truth_mask(root, ex, wh)
        if mask is None or not mask.any():
            all_truth = False
            break
        if i < SAMPLE:
            n, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8))
            extents += [float(max(stats[k, 2], stats[k, 3])) for k in range(1, n) if stats[k, 4] >= 4]
    return extents, all_truth


def _frame_wh(path: Path) -> tuple[int, int]:
    """(width, height) from the file's header: no pixels decoded."""
    try:
        return image_size(path.read_bytes())
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _round_cell(v: float) -> int:
    return max(CELL, int(round(v / CELL)) * CELL)


def choose_input_scale(root: Path, examples: Sequence[Example]) -> InputScale:
    rng = np.random.default_rng(0)
    picks = rng.choice(len(examples), size=min(SAMPLE, len(examples)), replace=False)
    sizes = []
    for i in picks:
        try:
            sizes.append(_frame_wh(examples[int(i)].path))
        except ImageError:
            continue
    if not sizes:
        raise ImageError("no readable image to measure the input scale on")
    w, h = (int(np.median([s[k] for s in sizes])) for k in (0, 1))
    extents, all_truth = defect_extents(root, examples)
    long_frame = max(w, h)
    if extents:
        defect = float(np.median(extents))
        long_side = long_frame * min(1.0, TARGET_EXTENT / defect)
        why = f"median defect {defect:.0f} px in {w}x{h} frames"
    else:
        defect, long_side = None, min(long_frame, NO_TRUTH_LONG_SIDE)
        why = f"no ground truth for the defect size: {w}x{h} frames at up to {NO_TRUTH_LONG_SIDE} px"
    aspect = long_frame / min(w, h)
    long_side = min(max(long_side, MIN_SIDE * aspect), MAX_LONG_SIDE)  # the short side stays >= MIN_SIDE
    short_side = max(MIN_SIDE, long_side / aspect)
    ch, cw = (long_side, short_side) if h >= w else (short_side, long_side)
    canvas_h, canvas_w = _round_cell(ch), _round_cell(cw)
    if defect is not None:
        why += f", ~{defect * max(canvas_h, canvas_w) / long_frame:.0f} px on the canvas"
    tile = TILE_PX if all_truth and extents and min(canvas_h, canvas_w) > TILE_PX else 0
    if tile:
        why += f"; trained on {tile} px windows (every positive has ground truth)"
    return InputScale(canvas_h, canvas_w, tile, (w, h), defect, why)


@dataclass(frozen=True)
class TrainingInput:
    """How training sees the data: the canvas, windows on it, cached copies, and why (for the log)."""

    preprocess: PreprocessSpec
    tile: int = 0
    orientations: int = 1
    why: str = ""
    select: str = "loss"  # TrainConfig.select


def choose_input(
    data: Path, *, positive: str, mode: str = "auto", canvas: str = "", orientations: int = 0
) -> TrainingInput:
    """Phone crop for camera frames where a phone is found; the whole image otherwise (texture patches such
    as NEU-DET, lenses, sheet metal), at a scale chosen from the frames' and the defects' sizes
    (choose_input_scale) unless `canvas` names one. `orientations` 0 chooses: 4 for whole images (a surface
    defect has no up or left, and small real datasets need the copies), 1 for phone crops (straightened, so
    the copies would be views the line never shows)."""
    if mode not in ("auto", "phone", "resize"):
        raise ValueError(f"unknown preprocessing mode {mode!r} (auto, phone or resize)")
    if orientations not in (0, 1, 2, 4):
        raise ValueError(f"orientations must be 1, 2 or 4 (0 chooses), got {orientations}")
    examples = list_imagefolder(data, positive=positive)
    if mode == "auto":
        mode = "phone" if looks_like_phone_frames(examples) else "resize"
    orientations = orientations or (4 if mode == "resize" else 1)
    if canvas:
        h, w = parse_canvas(canvas)
        spec = PreprocessSpec(mode=mode, canvas_h=h, canvas_w=w)
        return TrainingInput(spec, 0, orientations, f"canvas {h}x{w} given",
                             select="auroc" if mode == "resize" else "loss")
    if mode == "phone":
        return TrainingInput(PreprocessSpec(mode=mode), 0, orientations, "phone crops at 512x240")
    scale = choose_input_scale(data, examples)
    spec = PreprocessSpec(mode=mode, canvas_h=scale.canvas_h, canvas_w=scale.canvas_w)
    why = f"whole images at {scale.canvas_h}x{scale.canvas_w}: {scale.why}"
    return TrainingInput(spec, scale.tile, orientations, why, select="auroc")


def parse_canvas(canvas: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in canvas.lower().split("x"))
    except ValueError:
        raise ValueError(f"canvas must look like 512x240, got {canvas!r}") from None
    if h % CELL or w % CELL or h < 64 or w < 64:
        raise ValueError(f"canvas sides must be multiples of {CELL} and >= 64, got {canvas!r}")
    return h, w


# long side / short side of a whole phone, bezel included: 16:9 bodies (~1.8) to 21:9 (~2.4), with slack for
# the fitted rectangle. A lens, a sheet-metal patch or a texture also yields a region, but rarely this shape.
PHONE_ASPECT = (1.6, 2.7)


def looks_like_phone_frames(examples: Sequence[Example], *, sample: int = 12) -> bool:
    """Most sampled frames hold a found region shaped like a phone. Measured: generated lab and varied
    frames 12 of 12; goggles lenses 7 of 12 (regions of aspect 1.3-2.1 in a patterned backlight), aluminum
    sheet 1 of 12 (~1.0)."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(examples), size=min(sample, len(examples)), replace=False)
    found = 0
    for i in picks:
        try:
            image = read_image_file(examples[int(i)].path, reduce=2)
            if image.shape[1] * 2 >= 640:
                fit = locate_phone(image)
                found += PHONE_ASPECT[0] <= fit.size[1] / max(fit.size[0], 1.0) <= PHONE_ASPECT[1]
        except (ImageError, PreprocessError):
            continue
    return found >= 0.8 * len(picks)
