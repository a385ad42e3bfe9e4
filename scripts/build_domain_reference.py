"""Regenerate an existing artifact's derived files from its weights: `model.onnx` (re-exported, with the
pooled `features` output), and the `domain` (the domain gate's ranges, `ood` included) and `monitor`
(reference distributions for monitoring) blocks of model.json. The weights are never touched.

New models get all of this from `inspection train` (from their validation images); the shipped baseline
predates it, so this renders fresh images like its validation images: synthetic lab photos from the
same generator as `scripts/train_baseline.py` (1920x1080, JPEG quality 95, half scratched) but from a seed
no training, test or benchmark uses (default 2: the baseline trained on seed 1, is tested on 777,
bench_gate uses 4100), and measures them exactly as ingest does (decode the JPEG, frame metrics,
localise, warp, score). Reproducible: the same command gives the same model.json.

    .venv/bin/python scripts/build_domain_reference.py models/baseline [--count 300 --seed 2]

With `--data DIR` (the ImageFolder the model was trained on) it repeats instead what `inspection train`
does at its end: the gate's ranges from every usable image of DIR, and the features basis, the `ood`
limit and the monitor's samples from the same validation split `train` held out (seed 0, 15 %); used
when the reference rules change after a model was trained (e.g. the gate's false-stop budget):

    .venv/bin/python scripts/build_domain_reference.py models/baseline --data data/synth/train-mix-lab1000-varied2000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from inspection.vision.artifact import ONNX, export_onnx, load_artifact
from inspection.vision.artifact_meta import update_domain
from inspection.vision.dataset import list_imagefolder, stratified_split
from inspection.vision.images import decode_image
from inspection.vision.predictor import Predictor, load_predictor
from inspection.vision.reference import build_blocks, measure
from inspection.vision.synth import JPEG_QUALITY, render
from inspection.vision.train import TrainConfig, with_references


def lab_frames(*, count: int, seed: int) -> Iterator[np.ndarray]:
    """Decoded synthetic lab photos, through a JPEG round trip as a camera delivers them."""
    for i in range(count):
        sample = render(seed, i, scratch=i % 2 == 0)
        ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        assert ok
        yield decode_image(buf.tobytes())


def from_training(model_dir: Path, data: Path, *, threads: int) -> None:
    """train's reference step (vision.train.with_references) on the model's own training data."""
    net, meta = load_artifact(model_dir)
    examples = list_imagefolder(data, positive=meta.positive)
    _, held = stratified_split([e.label for e in examples], fraction=TrainConfig().val_fraction, seed=0)
    predictor = Predictor(net, meta, threads=threads)
    qualities = [p.quality for p in (predictor.prepare_file(e.path) for e in tqdm(examples, desc="measuring"))
                 if p.warped is not None]
    meta = with_references(net, meta, [examples[i].path for i in held], qualities, data=data, threads=threads,
                           log=print)
    update_domain(model_dir, meta.domain, monitor=meta.monitor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2, help="synth seed (unused by training, test and benchmarks)")
    ap.add_argument("--margin", type=float, default=0.15)
    ap.add_argument("--data", type=Path, help="the training ImageFolder: repeat train's reference step on it")
    args = ap.parse_args()
    t0 = time.perf_counter()
    net, meta = load_artifact(args.model_dir)
    export_onnx(net, meta, args.model_dir / ONNX)  # the features output; same weights, same scores
    if args.data is not None:
        from_training(args.model_dir, args.data, threads=2)
        print(f"{args.model_dir}: ONNX re-exported; domain and monitor blocks from {args.data} "
              f"in {time.perf_counter() - t0:.0f} s")
        return
    predictor = load_predictor(args.model_dir, threads=2)
    measured = measure(predictor, lab_frames(count=args.count, seed=args.seed))
    if not measured.rows:
        sys.exit("no image could be measured")
    source = f"synth lab images seed {args.seed}, 1920x1080, JPEG q{JPEG_QUALITY}, {len(measured.rows)} measured"
    domain, monitor = build_blocks(measured, source=source, margin=args.margin)
    update_domain(args.model_dir, domain, monitor=monitor)
    print(f"{args.model_dir}: ONNX re-exported; domain and monitor blocks from {len(measured.rows)} images "
          f"({measured.unjudgeable} not judgeable) in {time.perf_counter() - t0:.0f} s")
    for name, rng in domain.get("ranges", {}).items():
        print(f"  {name:>12}: {rng}")


if __name__ == "__main__":
    main()
