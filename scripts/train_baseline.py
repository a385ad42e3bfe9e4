"""Reproduce the shipped baseline: synthetic training images from the `lab` and `varied` setups
(seeds 1 and 3) -> `inspection train` -> evaluate on unseen test sets of both setups (seed 777).
Fixed seeds throughout; the same command gives the same artifact.

Why a mix: `varied` spans the line's setups (table colours near-black to white, phone bodies, rotation,
scale, exposure, blur; issue 9) and `lab` keeps the original scene's numbers. The domain gate's ranges
and the monitoring reference come from these training images (`train` writes them).

    .venv/bin/python scripts/train_baseline.py [--out models/baseline] [--lab-count 1000]
        [--varied-count 2000] [--test-count 1000]

Writes the artifact and stores the test metrics (and training time) in its model.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from inspection.vision.artifact import update_metrics
from inspection.vision.evaluate import evaluate
from inspection.vision.input_scale import choose_input
from inspection.vision.predictor import load_predictor
from inspection.vision.synth import generate
from inspection.vision.train import TrainConfig, train

# (setup, seed) of each training part; seed 2 is build_domain_reference's, 777 the tests', 4100 bench_gate's
TRAIN_PARTS = (("lab", 1), ("varied", 3))


def ensure(folder: Path, *, count: int, seed: int, setup: str) -> Path:
    """Generate `folder` unless a finished one (its manifest written last) is already there."""
    if not (folder / "manifest.csv").is_file():
        report = generate(folder, count=count, seed=seed, workers=2, setup=setup)
        print(f"generated {report.count} {setup} images in {report.seconds:.0f} s ({report.images_per_second:.1f}/s)")
    return folder


def merge(parts: list[Path], out: Path) -> Path:
    """One ImageFolder of hard links to the parts' images and masks (names differ by seed: s<seed>_<i>)."""
    if (out / ".complete").is_file():
        return out
    for part in parts:
        for sub in ("scratch", "ok", "masks", "regions"):
            (out / sub).mkdir(parents=True, exist_ok=True)
            for f in sorted((part / sub).iterdir()):
                if not (out / sub / f.name).exists():
                    os.link(f, out / sub / f.name)
    (out / ".complete").write_text("\n".join(str(p) for p in parts) + "\n")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("models/baseline"))
    ap.add_argument("--work", type=Path, default=Path("data/synth"))
    ap.add_argument("--lab-count", type=int, default=1000)
    ap.add_argument("--varied-count", type=int, default=2000)
    ap.add_argument("--test-count", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=12)
    args = ap.parse_args()

    counts = {"lab": args.lab_count, "varied": args.varied_count}
    parts = [ensure(args.work / f"train-{setup}-seed{seed}", count=counts[setup], seed=seed, setup=setup)
             for setup, seed in TRAIN_PARTS if counts[setup] > 0]
    train_dir = merge(parts, args.work / ("train-mix-" + "-".join(f"{s}{counts[s]}" for s, _ in TRAIN_PARTS)))
    tests = {setup: ensure(args.work / f"test-{setup}-seed777", count=args.test_count, seed=777, setup=setup)
             for setup in ("lab", "varied")}

    t0 = time.perf_counter()
    spec = choose_input(train_dir, positive="scratch", mode="phone").preprocess
    result = train(train_dir, args.out, config=TrainConfig(epochs=args.epochs, seed=0, preprocess=spec),
                   version="baseline")
    train_seconds = time.perf_counter() - t0
    print(f"trained in {train_seconds:.0f} s: val AUROC {result.val_auroc:.4f}, "
          f"ECE {result.ece_before:.4f} -> {result.ece_after:.4f}")

    predictor = load_predictor(args.out)
    results: dict[str, object] = {"train_seconds_here": round(train_seconds)}
    for setup, folder in tests.items():
        metrics = evaluate(predictor, folder)
        metrics.pop("errors")
        key = "synthetic_test_seed777" if setup == "lab" else f"synthetic_{setup}_seed777"
        results[key] = metrics
        print(setup, json.dumps(metrics, indent=2))
    update_metrics(args.out, results)


if __name__ == "__main__":
    main()
