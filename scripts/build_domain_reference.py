"""Write the domain gate's accepted ranges (`domain` block of model.json) for an existing artifact.

New models get the block from `inspection train` (from their training and validation images); the
shipped baseline predates it, so this regenerates images like the ones it was trained on (synthetic
lab photos, `scripts/train_baseline.py`: seed 1, 1920x1080, JPEG quality 95, half scratched), measures
them exactly as ingest does (decode, localise, warp: Predictor.prepare_image) and stores the ranges.
Only model.json changes; weights and ONNX are untouched.

    .venv/bin/python scripts/build_domain_reference.py models/baseline [--count 300 --seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

from inspection.vision.artifact_meta import update_domain
from inspection.vision.images import decode_image
from inspection.vision.predictor import Predictor, load_predictor
from inspection.vision.quality import domain_block
from inspection.vision.synth import JPEG_QUALITY, render


def measure(predictor: Predictor, *, count: int, seed: int) -> tuple[list[dict[str, float]], int]:
    """Gate metrics of `count` lab images; also how many could not be localised (left out)."""
    rows: list[dict[str, float]] = []
    unusable = 0
    for i in range(count):
        sample = render(seed, i, scratch=i % 2 == 0)
        ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        prepared = predictor.prepare_image(decode_image(buf.tobytes()))
        if prepared.warped is None:
            unusable += 1
            continue
        rows.append(prepared.quality)
    return rows, unusable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1, help="synth seed (the baseline was trained on seed 1)")
    ap.add_argument("--margin", type=float, default=0.15)
    args = ap.parse_args()
    t0 = time.perf_counter()
    predictor = load_predictor(args.model_dir, threads=2)
    rows, unusable = measure(predictor, count=args.count, seed=args.seed)
    if not rows:
        sys.exit("no image could be measured")
    source = f"synth lab images seed {args.seed}, 1920x1080, JPEG q{JPEG_QUALITY}, {len(rows)} measured"
    block = domain_block(rows, source=source, margin=args.margin)
    update_domain(args.model_dir, block)
    print(f"{args.model_dir}: domain ranges from {len(rows)} images ({unusable} not localised) "
          f"in {time.perf_counter() - t0:.0f} s")
    for name, rng in block["ranges"].items():
        print(f"  {name:>12}: {rng}")


if __name__ == "__main__":
    main()
