"""Real data: NEU-DET steel surface defects, `scratches` vs the five other defect types.

    .venv/bin/python scripts/eval_neu.py ../shared/datasets/neu-det [--folds 5] [--epochs 12]

Builds stratified folds as symlink ImageFolders (the images are never copied into the repo), trains
with the same code as `inspection train` on each training part, evaluates on the held-out part, and
prints per-fold and mean metrics, including the pointing game from the VOC boxes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from inspection.vision.dataset import list_imagefolder
from inspection.vision.evaluate import evaluate
from inspection.vision.input_scale import choose_input
from inspection.vision.predictor import load_predictor
from inspection.vision.train import TrainConfig, train


def link_split(root: Path, examples: list, out: Path) -> None:
    for ex in examples:
        target = out / ex.cls / ex.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(ex.path.resolve())
    (out / "annotations").symlink_to((root / "annotations").resolve())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--only-fold", type=int, default=-1, help="run a single fold (0-based)")
    args = ap.parse_args()

    images = args.root / "images"
    examples = list_imagefolder(images, positive="scratches")
    rng = np.random.default_rng(0)
    fold_of = np.zeros(len(examples), int)
    for y in (0, 1):  # stratified: deal each class's shuffled items round-robin into folds
        idx = [i for i, e in enumerate(examples) if e.label == y]
        rng.shuffle(idx)
        for k, i in enumerate(idx):
            fold_of[i] = k % args.folds
    results = []
    folds = [args.only_fold] if args.only_fold >= 0 else list(range(args.folds))
    for fold in folds:
        with tempfile.TemporaryDirectory() as tmp:
            tr, te = Path(tmp) / "train", Path(tmp) / "test"
            link_split(args.root, [e for e, f in zip(examples, fold_of, strict=True) if f != fold], tr)
            link_split(args.root, [e for e, f in zip(examples, fold_of, strict=True) if f == fold], te)
            chosen = choose_input(tr, positive="scratches", mode="auto", orientations=2)
            spec = chosen.preprocess
            cfg = TrainConfig(epochs=args.epochs, seed=fold, orientations=chosen.orientations, tile=chosen.tile,
                              select=chosen.select, preprocess=spec)
            report = train(tr, Path(tmp) / "model", positive="scratches", config=cfg, version=f"neu-fold{fold}")
            metrics = evaluate(load_predictor(Path(tmp) / "model"), te, positive="scratches")
            metrics.pop("errors")
            metrics["train_seconds"] = round(report.seconds, 1)
            metrics["preprocess"] = spec.mode
            print(f"fold {fold}: {json.dumps(metrics)}", flush=True)
            results.append(metrics)
    keys = ["auroc", "average_precision", "accuracy", "ece", "pointing_game", "train_seconds"]
    mean = {k: round(float(np.mean([r[k] for r in results if k in r])), 5) for k in keys}
    mean["coverage_at_risk_0.01"] = round(float(np.mean([r["coverage_at_risk"]["0.01"] for r in results])), 5)
    print("mean over folds:", json.dumps(mean))


if __name__ == "__main__":
    main()
