"""`inspection train` + `inspection evaluate` on the same folds as `scripts/anchor_linear_probe.py`.
Prints one JSON line (fold AUROCs, mean, pointing game where ground truth exists, seconds).

    .venv/bin/python scripts/kfold_train.py ../shared/datasets/goggles/images --groups '^([^_]+)_'

Each fold is an ImageFolder of symbolic links (train part and test part; `masks/` and `annotations/` beside
the class folders are linked too, so ground truth still supervises and scores the heatmap). Extra arguments
after `--` go to `inspection train` unchanged, e.g. `-- --epochs 8 --canvas 448x768`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from inspection.vision.dataset import NOT_CLASSES, Example, list_imagefolder
from inspection.vision.folds import kfold_splits

CLI = [str(Path(sys.executable).parent / "inspection")]  # the console script of this venv


def link_folder(root: Path, source: Path, examples: Sequence[Example]) -> Path:
    for e in examples:
        (root / e.cls).mkdir(parents=True, exist_ok=True)
        (root / e.cls / e.path.name).symlink_to(e.path.resolve())
    for extra in NOT_CLASSES:  # ground truth beside the class folders or one level above
        for where in (source / extra, source.parent / extra):
            if where.is_dir() and not (root / extra).exists():
                (root / extra).symlink_to(where.resolve())
    return root


def run_fold(work: Path, source: Path, train: list[Example], test: list[Example], extra: list[str],
             positive: str, groups: str | None) -> dict[str, float]:
    model = work / "model"
    grouped = ["--groups", groups] if groups else []  # training's own validation split keeps groups whole too
    subprocess.run([*CLI, "train", str(link_folder(work / "train", source, train)), "--out", str(model),
                    "--positive", positive, "--version", work.name, *grouped, *extra], check=True, stdout=sys.stderr)
    done = subprocess.run([*CLI, "evaluate", str(model), str(link_folder(work / "test", source, test)),
                           "--positive", positive, "--json"], check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--positive", default="scratch")
    parser.add_argument("--groups", default=None, help="regex on the file name giving the group (grouped folds)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("train_args", nargs="*", help="after --: passed to `inspection train`")
    args = parser.parse_args()
    t0 = time.perf_counter()
    examples = list_imagefolder(args.data, positive=args.positive)
    results = []
    with tempfile.TemporaryDirectory(prefix="kfold-") as tmp:
        for i, (tr, te) in enumerate(kfold_splits(examples, k=args.folds, seed=0, groups=args.groups)):
            print(f"fold {i + 1}/{args.folds}: train {len(tr)}, test {len(te)}", file=sys.stderr)
            results.append(run_fold(Path(tmp) / f"fold{i}", args.data, [examples[j] for j in tr],
                                    [examples[j] for j in te], args.train_args, args.positive, args.groups))
    aurocs = [float(r["auroc"]) for r in results]
    pointing = [float(r["pointing_game"]) for r in results if r.get("pointing_game") is not None]
    print(json.dumps({
        "method": "kfold_train", "data": str(args.data), "n": len(examples), "groups": args.groups,
        "folds": args.folds, "train_args": args.train_args, "fold_auroc": [round(a, 4) for a in aurocs],
        "mean_auroc": round(float(np.mean(aurocs)), 4), "std_auroc": round(float(np.std(aurocs)), 4),
        "pointing_game": round(float(np.mean(pointing)), 4) if pointing else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }))


if __name__ == "__main__":
    main()
