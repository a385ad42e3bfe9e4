"""Reproduce the shipped baseline: synthetic training images (seed 1) -> `inspection train` -> evaluate
on an unseen synthetic test set (seed 777). Fixed seeds throughout.

    .venv/bin/python scripts/train_baseline.py [--out models/baseline] [--train-count 2400] [--test-count 1000]

Writes the artifact and stores the test metrics (and training time) in its model.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from inspection.vision.artifact import update_metrics
from inspection.vision.evaluate import evaluate
from inspection.vision.predictor import load_predictor
from inspection.vision.synth import generate
from inspection.vision.train import TrainConfig, choose_preprocess, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("models/baseline"))
    ap.add_argument("--work", type=Path, default=Path("data/synth"))
    ap.add_argument("--train-count", type=int, default=2400)
    ap.add_argument("--test-count", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()

    train_dir, test_dir = args.work / "train-seed1", args.work / "test-seed777"
    for folder, count, seed in ((train_dir, args.train_count, 1), (test_dir, args.test_count, 777)):
        if not (folder / "manifest.csv").is_file():
            report = generate(folder, count=count, seed=seed, workers=2)
            print(f"generated {report.count} images in {report.seconds:.0f} s ({report.images_per_second:.1f}/s)")

    t0 = time.perf_counter()
    spec = choose_preprocess(train_dir, positive="scratch", mode="phone")
    result = train(train_dir, args.out, config=TrainConfig(epochs=args.epochs, seed=0, preprocess=spec),
                   version="baseline")
    train_seconds = time.perf_counter() - t0
    print(f"trained in {train_seconds:.0f} s: val AUROC {result.val_auroc:.4f}, "
          f"ECE {result.ece_before:.4f} -> {result.ece_after:.4f}")

    metrics = evaluate(load_predictor(args.out), test_dir)
    metrics.pop("errors")
    update_metrics(args.out, {"synthetic_test_seed777": metrics, "train_seconds_here": round(train_seconds)})
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
