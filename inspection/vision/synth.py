"""Synthetic phone photos: a phone lying face-up on a matte grey inspection table, seen from straight
above under diffuse light, with optional scratches on the glass (label ``scratch``) and look-alike
marks that are not scratches (oil drops, smudges, dust, lint, edge reflections).

All randomness comes from numpy Generators seeded per image from (seed, index), so an image depends
only on (seed, index, label, size): never on the worker count or the order of generation.
Sizes are in pixels of the rendered frame; "reference" sizes are for a 1920x1080 frame and scale
with ``min(W / 1920, H / 1080)``.

The drawing lives in `scene` (table, phone, camera) and `defects` (scratches, look-alikes), on the
primitives of `drawing`; this module renders one image from its seeded streams and writes datasets.
"""

from __future__ import annotations

import csv
import multiprocessing
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from inspection.vision import scene, setups
from inspection.vision.defects import DISTRACTORS, distractor_types, draw_marks
from inspection.vision.drawing import Rng
from inspection.vision.setups import SETUPS

__all__ = ["DISTRACTORS", "FORMATS", "SETUPS", "Sample", "SynthReport", "distractor_types", "generate", "render",
           "scratch_labels"]

REF_W, REF_H = 1920, 1080
MIN_SIDE = 64
JPEG_QUALITY = 95
MANIFEST_COLUMNS = ("file", "mask", "label", "seed", "index", "width", "height", "drawn", "phone_box", "setup",
                    "phone_mask", "glass_mask")
FORMATS = ("jpg", "png", "mix")  # mix: a seeded half of the images as PNG

# Entropy tags keep the per-image streams and the label permutation apart.
_TAG_IMAGE, _TAG_LABELS, _TAG_LOOK, _TAG_FORMAT = 1, 2, 3, 4


@dataclass(frozen=True)
class Sample:
    """One rendered image with its ground truth."""

    image: np.ndarray  # HxWx3 uint8 BGR
    mask: np.ndarray  # HxW uint8 {0,255}: 255 where a scratch was drawn
    label: str  # "scratch" | "ok"
    drawn: tuple[str, ...]  # e.g. ("scratch:w2:len310:contrast45", "oil_drop", "dust")
    phone_box: tuple[int, int, int, int]  # x, y, w, h of the phone's axis-aligned bounding box
    glass: np.ndarray  # HxW uint8 {0,255}: the phone's glass area (within the frame)
    phone: np.ndarray  # HxW uint8 {0,255}: the whole phone (body, rim and glass; within the frame)
    setup: str = "lab"  # see setups.SETUPS
    jpeg_quality: int = 95  # quality the dataset writer encodes this image's JPEG with


@dataclass(frozen=True)
class SynthReport:
    count: int
    positives: int
    seconds: float
    images_per_second: float
    out: Path



# ----------------------------------------------------------------------------------------------
# rendering


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = int(size[0]), int(size[1])
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValueError(f"size must be at least {MIN_SIDE}x{MIN_SIDE}, got {width}x{height}")
    return width, height


def _streams(seed: int, index: int) -> list[Rng]:
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    children = np.random.SeedSequence([_TAG_IMAGE, index, seed]).spawn(5)
    return [np.random.default_rng(s) for s in children]



def render(
    seed: int,
    index: int,
    *,
    scratch: bool,
    size: tuple[int, int] = (REF_W, REF_H),
    draw_scratches: bool = True,
    setup: str = "lab",
) -> Sample:
    """Render image `index` of dataset `seed`. `size` is (width, height) in px; `setup` one of
    `setups.SETUPS` (``lab``: the original scene, byte for byte; ``lab-*``: it with one drift).

    draw_scratches=False renders the identical scene with the scratches left out of the image (the
    mask and `drawn` still describe them): tests use it to check where a scratch changes pixels."""
    width, height = _check_size(size)
    if setup not in setups.SETUPS:
        raise ValueError(f"unknown setup {setup!r}: choose one of {', '.join(setups.SETUPS)}")
    scale = min(width / REF_W, height / REF_H)
    r_pose, r_scene, r_scratch, r_marks, r_camera = _streams(seed, index)
    look = None
    # a drift and a look have their own streams: the five lab streams keep their meaning
    drift = setups.sample_drift(np.random.default_rng([_TAG_LOOK, index, seed]), setup) if setup in setups.DRIFTS \
        else None
    if setup == "lab" or drift is not None:
        phone = scene.pose(r_pose, width, height)
        image = scene.table(r_scene, width, height, phone)
        if drift is not None:
            image = setups.retable(image, drift)
        frame = scene.place_phone(image, phone, *scene.phone_canvas(r_scene, phone))
    else:
        look = setups.sample_look(np.random.default_rng([_TAG_LOOK, index, seed]), setup, width, height)
        phone = setups.pose(r_pose, look, width, height)
        image = setups.table(r_scene, look, width, height, scene.frame_outline(phone), phone.u)
        frame = scene.place_phone(image, phone, *scene.phone_canvas_look(r_scene, phone, look))
    mask = np.zeros((height, width), np.uint8)
    streams = (r_scratch, r_marks)
    drawn = draw_marks(frame, mask, phone, scale, scratch=scratch, streams=streams, draw_scratches=draw_scratches)
    x0, y0, x1, y1 = frame.box
    image[y0:y1, x0:x1] = np.clip(frame.roi + 0.5, 0, 255).astype(np.uint8)
    if drift is not None:
        image = setups.relight(image, drift)
    image = scene.camera(r_camera, image) if look is None else setups.camera(r_camera, look, image, scale)
    return Sample(
        image=np.ascontiguousarray(image),
        mask=mask,
        label="scratch" if scratch else "ok",
        drawn=tuple(drawn),
        phone_box=scene.phone_box(phone, width, height),
        glass=_frame_mask(frame.glass_u8, frame.box, width, height),
        phone=_frame_mask(frame.body_u8, frame.box, width, height),
        setup=setup,
        jpeg_quality=JPEG_QUALITY if look is None else look.jpeg_quality,
    )


def _frame_mask(part: np.ndarray | None, box: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """A frame-sized {0,255} mask from a coverage map of the phone's box."""
    out = np.zeros((height, width), np.uint8)
    if part is not None:
        x0, y0, x1, y1 = box
        out[y0:y1, x0:x1] = np.where(part >= 128, 255, 0).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------
# dataset generation


def scratch_labels(seed: int, count: int, scratch_fraction: float) -> npt.NDArray[np.bool_]:
    """Exactly round(count * fraction) positives, placed by a seeded permutation."""
    positives = round(count * scratch_fraction)
    perm = np.random.default_rng(np.random.SeedSequence([_TAG_LABELS, 0, seed])).permutation(count)
    labels = np.zeros(count, bool)
    labels[perm[:positives]] = True
    return labels


@dataclass(frozen=True)
class _Task:
    out: Path
    seed: int
    index: int
    scratch: bool
    size: tuple[int, int]
    setup: str = "lab"
    image_format: str = "jpg"


def _name(seed: int, index: int) -> str:
    return f"s{seed}_{index:05d}"


def _write_one(task: _Task) -> dict[str, str]:
    """Render, encode and write one image and its mask; returns its manifest row."""
    sample = render(task.seed, task.index, scratch=task.scratch, size=task.size, setup=task.setup)
    name = _name(task.seed, task.index)
    ext = _extension(task)
    rel = f"{sample.label}/{name}.{ext}"
    # Masks are mostly zero: no PNG filtering and light deflate is ~4x faster than the default.
    png_args = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    encoded = {
        rel: cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, sample.jpeg_quality])
        if ext == "jpg" else cv2.imencode(".png", sample.image, [cv2.IMWRITE_PNG_COMPRESSION, 3]),
        f"masks/{name}.png": cv2.imencode(".png", sample.mask, png_args),
        f"regions/{name}_phone.png": cv2.imencode(".png", sample.phone, png_args),
        f"regions/{name}_glass.png": cv2.imencode(".png", sample.glass, png_args),
    }
    for path, (ok, data) in encoded.items():
        if not ok:
            raise RuntimeError(f"could not encode {path}")
        (task.out / path).write_bytes(data.tobytes())
    return {
        "file": rel,
        "mask": f"masks/{name}.png",
        "label": sample.label,
        "seed": str(task.seed),
        "index": str(task.index),
        "width": str(task.size[0]),
        "height": str(task.size[1]),
        "drawn": ";".join(sample.drawn),
        "phone_box": ",".join(str(v) for v in sample.phone_box),
        "setup": task.setup,
        "phone_mask": f"regions/{name}_phone.png",
        "glass_mask": f"regions/{name}_glass.png",
    }


def _extension(task: _Task) -> str:
    if task.image_format != "mix":
        return task.image_format
    coin = np.random.default_rng([_TAG_FORMAT, task.index, task.seed]).random()
    return "png" if coin < 0.5 else "jpg"


def _worker_init() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the processes; avoid oversubscribing cores


def _validate(
    out: Path, count: int, seed: int, scratch_fraction: float, size: tuple[int, int], workers: int
) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not (0.0 <= scratch_fraction <= 1.0):
        raise ValueError(f"scratch fraction must be within [0, 1], got {scratch_fraction}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _check_size(size)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output folder {out} exists and is not empty; choose a new one")


def generate(
    out: Path,
    *,
    count: int,
    seed: int,
    scratch_fraction: float = 0.5,
    size: tuple[int, int] = (REF_W, REF_H),
    workers: int = 1,
    progress: bool = True,
    setup: str = "lab",
    image_format: str = "jpg",
) -> SynthReport:
    """Write an ImageFolder (`out/scratch`, `out/ok`), and beside it for each image `<name>`:
    `masks/<name>.png` (255 where a scratch was drawn), `regions/<name>_phone.png` (the whole phone) and
    `regions/<name>_glass.png` (its glass: bezel and display), all {0,255} and clipped to the frame; and
    `out/manifest.csv` (MANIFEST_COLUMNS). `setup`: see `setups.SETUPS`; `image_format`: jpg, png or mix.
    Raises ValueError for bad arguments or a non-empty output folder."""
    out = Path(out)
    _validate(out, count, seed, scratch_fraction, size, workers)
    if setup not in setups.SETUPS:
        raise ValueError(f"unknown setup {setup!r}: choose one of {', '.join(setups.SETUPS)}")
    if image_format not in FORMATS:
        raise ValueError(f"unknown image format {image_format!r}: choose one of {', '.join(FORMATS)}")
    for sub in ("scratch", "ok", "masks", "regions"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    labels = scratch_labels(seed, count, scratch_fraction)
    dims = (int(size[0]), int(size[1]))
    tasks = [_Task(out, seed, i, bool(labels[i]), dims, setup, image_format) for i in range(count)]
    start = time.perf_counter()
    rows: list[dict[str, str]] = []
    with tqdm(total=count, disable=not progress, file=sys.stderr, unit="img", desc="synth") as bar:
        for row in _run(tasks, workers):
            rows.append(row)
            bar.update(1)
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    seconds = time.perf_counter() - start
    return SynthReport(
        count=count,
        positives=int(labels.sum()),
        seconds=seconds,
        images_per_second=count / seconds if seconds > 0 else float("inf"),
        out=out,
    )


def _run(tasks: list[_Task], workers: int) -> Iterator[dict[str, str]]:
    """Rows in index order; images do not depend on the worker count."""
    if workers == 1 or len(tasks) == 1:
        yield from map(_write_one, tasks)
        return
    # spawn, not fork: forking a process whose OpenCV thread pool already ran can deadlock.
    ctx: Any = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(tasks)), initializer=_worker_init) as pool:
        yield from pool.imap(_write_one, tasks, chunksize=4)
