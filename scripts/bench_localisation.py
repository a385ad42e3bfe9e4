"""Localisation on generated scenes of each setup: the lab localiser (Otsu, dark on light), the
geometry alone (`vision.localise`), the network alone (`vision.segment`, snapped) and the shipped
combination (`preprocess.locate_phone`: geometry kept where it agrees with the network's mask) side by
side on the same images.

Per setup and method: the share of images where a phone was found, the median IoU of the found
rectangle with the generator's glass mask (0 when nothing was found), the share with IoU >= 0.9, and
milliseconds per image (localisation only, decoded image in memory). Also the IoU of the two methods'
rectangles on the images both found (lab: the shipped model's crops must not move).

    .venv/bin/python scripts/bench_localisation.py --count 300 --size 960x540
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from collections.abc import Callable

import cv2
import numpy as np

from inspection.vision.preprocess import PhoneFit, PreprocessError, locate_phone, locate_phone_otsu
from inspection.vision.setups import SETUPS
from inspection.vision.synth import render

Locator = Callable[[np.ndarray], PhoneFit]
METHODS: dict[str, Locator] = {"old": locate_phone_otsu,
                               "geometry": functools.partial(locate_phone, method="geometry"),
                               "net": functools.partial(locate_phone, method="net"), "new": locate_phone}


def fit_mask(fit: PhoneFit, shape: tuple[int, int]) -> np.ndarray:
    """The fitted rectangle as a {0,255} mask of the frame."""
    rect = (fit.centre, fit.size, fit.angle)  # size is (short, long); angle: the long side's tilt
    pts = cv2.boxPoints(rect)
    out = np.zeros(shape, np.uint8)
    cv2.fillPoly(out, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_8, 4)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero((a > 0) & (b > 0))
    union = np.count_nonzero((a > 0) | (b > 0))
    return inter / union if union else 0.0


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def bench(setup: str, count: int, size: tuple[int, int], seed: int) -> dict[str, object]:
    ious: dict[str, list[float]] = {m: [] for m in METHODS}
    secs: dict[str, float] = {m: 0.0 for m in METHODS}
    agree: list[float] = []
    for i in range(count):
        sample = render(seed, i, scratch=i % 2 == 0, size=size, setup=setup)
        shape = sample.image.shape[:2]
        masks: dict[str, np.ndarray] = {}
        for name, locate in METHODS.items():
            t0 = time.perf_counter()
            try:
                fit = locate(sample.image)
            except PreprocessError:
                fit = None
            secs[name] += time.perf_counter() - t0
            if fit is None:
                ious[name].append(0.0)
                continue
            masks[name] = fit_mask(fit, shape)
            ious[name].append(iou(masks[name], sample.glass))
        if "old" in masks and "new" in masks:
            agree.append(iou(masks["old"], masks["new"]))
    row: dict[str, object] = {"setup": setup, "n": count}
    for name in METHODS:
        v = np.array(ious[name])
        row[name] = {"found": round(float(np.mean(v > 0)), 4), "iou_median": round(float(np.median(v)), 4),
                     "iou_ge_0.9": round(float(np.mean(v >= 0.9)), 4),
                     "ms": round(1000 * secs[name] / count, 2)}
    row["old_vs_new_iou_median"] = round(float(np.median(agree)), 4) if agree else None
    row["old_vs_new_iou_min"] = round(float(np.min(agree)), 4) if agree else None
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--size", type=_size, default=(960, 540), help="WxH, default 960x540")
    parser.add_argument("--seed", type=int, default=90210)
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--json", action="store_true", help="one JSON line per setup instead of the table")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"{'setup':8} {'method':8} {'found':>6} {'IoU med':>8} {'IoU>=.9':>8} {'ms/img':>7}   old~new IoU")
    for setup in args.setups.split(","):
        row = bench(setup, args.count, args.size, args.seed)
        if args.json:
            print(json.dumps(row))
            continue
        for name in METHODS:
            r = row[name]
            assert isinstance(r, dict)
            extra = f"   med {row['old_vs_new_iou_median']} min {row['old_vs_new_iou_min']}" if name == "new" else ""
            print(f"{setup:8} {name:8} {r['found']:6.1%} {r['iou_median']:8.3f} {r['iou_ge_0.9']:8.1%} "
                  f"{r['ms']:7.2f}{extra}", flush=True)


if __name__ == "__main__":
    main()
