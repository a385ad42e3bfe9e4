"""Simulate a drift and the retrain trigger recovering from it with inspectors' labels only (issue 14).

1. A production model is trained on generated `lab` phone photos (grey matte table, the lab's lamp).
2. The line drifts (`--drift`, a generator setup, see inspection/vision/setups.py): ``lab-dark-table`` (the
   default, the issue's example: the lab scene, same phones, poses, scratches and camera, on a near-black mat),
   ``lab-blue-mat``, ``lab-dim-light`` (a weaker, warmer lamp), ``lab-dark-dim`` (mat and lamp), or ``varied``
   (every table, phone body, pose, scale and camera at once: the hard case). Production's AUROC is measured
   on held-out drifted photos (before) and on their lab twins (the same phones as the lab would have shot
   them: for a lab-* drift, before vs lab is the drift's own effect).
3. Drifted items are ingested at station s1 (human_only) and inspectors label them blind through the
   real store and review path (claim, submit label; the true label stands for a careful inspector).
4. The station's trigger (on N new blind labels) fires in `check_trigger`; the run trains a candidate in
   the background worker process from the stored labels only (fine-tuning production's weights, or from
   ImageNet's with --from-imagenet), compares it with production on its held-out labels (a fifth of the
   labels), and puts it in shadow only if better.
5. The candidate's AUROC on the same held-out drifted photos (after) and on the lab twins. Prints JSON.

Measured on 2 shared CPU cores with the defaults (160 lab photos for production, 320 labels, 200 held-out
photos, 10 epochs, 640x360 frames, a 256x128 canvas): AUROC on the 200 held-out photos.

| --drift        | seed | lab twins | before | after, warm | after, ImageNet | seconds   |
|----------------|------|-----------|--------|-------------|-----------------|-----------|
| lab-dark-table | 7    | 0.965     | 0.941  | 0.978       | 0.979           | 228 / 105 |
| lab-dark-table | 8    | 0.958     | 0.823  | 0.986 ‡     |                 | 109       |
| lab-dark-dim   | 7    | 0.965     | 0.937  | 0.970       | 0.965           | 224 / 229 |
| lab-dark-dim   | 8    | 0.958     | 0.801  | 0.972       |                 | 110       |
| lab-dim-light  | 7    | 0.965     | 0.962  | 0.969 †     |                 | 228       |
| varied         | 7    | 0.982 *   | 0.824  | 0.867       |                 | 179       |

* on 200 other lab photos (seed 10), not twins. † kept out: not better than production on the run's held-out
labels. ‡ kept out: 1 vs 0 escapes of 32 held-out scratches at pass_below, though its AUROC recovered.
A new table colour costs the lab model 0.02-0.14 of AUROC (its crop's margin and rounded corners show the
table; the crops themselves agree with the lab's within 1-3 px), and 320 labels bring it back to the lab
level; the lamp alone costs nothing, so its candidate is rightly kept out. ``varied`` is far beyond one drift
(even the shipped baseline, trained on 2,000 varied photos, reaches 0.971 there): the small simulation
recovers part of it.
Commands: ``python scripts/sim_retrain_drift.py [--drift D] [--seed S] [--from-imagenet]``; the seconds vary
with the machine's other load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from inspection.config import Settings
from inspection.core.retrain_trigger import auroc
from inspection.services import deploy, ingest, retrain_trigger, review
from inspection.services.context import Pipeline
from inspection.vision.images import read_image_file
from inspection.vision.predictor import load_predictor
from inspection.vision.preprocess import PreprocessSpec
from inspection.vision.setups import DRIFTS
from inspection.vision.synth import generate
from inspection.vision.train import TrainConfig, train

SIZE = (640, 360)  # default frame (width, height) in pixels; --size changes it
CANVAS = (256, 128)  # default phone canvas (height, width) the model sees; --canvas changes it
DRIFT_CHOICES = (*DRIFTS, "varied")  # the lab scene with one change, or every table, phone, pose and camera


def _files(root: Path) -> list[tuple[Path, str]]:
    return [(p, cls) for cls in ("scratch", "ok") for p in sorted((root / cls).glob("*.*"))]


def _auroc(model: Path, files: list[tuple[Path, str]]) -> float | None:
    predictor = load_predictor(model, threads=2)
    labels, scores = [], []
    for start in range(0, len(files), 16):
        chunk = files[start : start + 16]
        out = predictor.score([read_image_file(p) for p, _ in chunk])
        for (_, cls), s in zip(chunk, out, strict=True):
            if s.prediction.valid and s.prediction.score is not None:
                labels.append(cls == "scratch")
                scores.append(float(s.prediction.score))
    return auroc(labels, scores)


def _label_all(app: Pipeline, truth: dict[int, str]) -> int:
    """Inspectors claim and label every queued item blind (human_only: they never see the model)."""
    n = 0
    while (task := review.claim_next(app, inspector="ines", station="s1")) is not None:
        review.submit_label(app, inspection_id=task.inspection_id, inspector="ines", label=truth[task.inspection_id])
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/sim-retrain-drift"))
    ap.add_argument("--base", type=int, default=160, help="lab photos production is trained on")
    ap.add_argument("--labels", type=int, default=320, help="drifted items the inspectors label")
    ap.add_argument("--heldout", type=int, default=200,
                    help="held-out photos for the AUROCs: as many drifted ones and as many lab ones")
    ap.add_argument("--drift", choices=DRIFT_CHOICES, default="lab-dark-table", help="what the line drifts to")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--size", type=int, nargs=2, default=SIZE, metavar=("W", "H"), help="frame size")
    ap.add_argument("--canvas", type=int, nargs=2, default=CANVAS, metavar=("H", "W"), help="phone canvas")
    ap.add_argument("--from-imagenet", action="store_true",
                    help="the candidate starts from ImageNet's weights, not production's (the trigger's default)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)
    w = args.work
    size = (int(args.size[0]), int(args.size[1]))
    spec = PreprocessSpec(mode="phone", canvas_h=int(args.canvas[0]), canvas_w=int(args.canvas[1]))
    generate(w / "lab", count=args.base, seed=args.seed, size=size, progress=False)
    # the held-out drifted photos' lab twins (a lab-* drift changes only the table or the light of the same scene)
    generate(w / "lab-heldout", count=args.heldout, seed=args.seed + 2, size=size, progress=False)
    generate(w / "new", count=args.labels, seed=args.seed + 1, size=size, progress=False, setup=args.drift)
    generate(w / "new-heldout", count=args.heldout, seed=args.seed + 2, size=size, progress=False, setup=args.drift)
    models = w / "models"
    cfg = TrainConfig(epochs=args.epochs, seed=args.seed, preprocess=spec, patience=args.epochs)
    train(w / "lab", models / "prod", config=cfg, version="prod", log=lambda _m: None)
    heldout, lab_heldout = _files(w / "new-heldout"), _files(w / "lab-heldout")
    # production's own-domain AUROC on lab photos it never saw (for a lab-* drift: the very phones of the drifted
    # held-out photos, so before vs lab is the drift's own effect): the level a recovered candidate should reach
    result: dict[str, Any] = {"drift": args.drift, "production_auroc_lab": _auroc(models / "prod", lab_heldout),
                              "before_auroc_new": _auroc(models / "prod", heldout)}  # fmt: skip

    settings = Settings(data_dir=w / "data", models_dir=models, default_model="prod", database_url="")
    with Pipeline.create(settings) as app:
        trigger = {"enabled": True, "on_labels": args.labels, "on_drift": False, "epochs": args.epochs,
                   "min_per_class": 20, "warm_start": not args.from_imagenet}  # fmt: skip
        retrain_trigger.set_trigger(app, station="s1", settings=trigger, by="sim", reason="drift simulation")
        truth = {}
        for path, cls in _files(w / "new"):
            res = ingest.inspect(app, data=path.read_bytes(), station="s1", actor="camera")
            truth[res.inspection.id] = cls
        result["labelled"] = _label_all(app, truth)
        check = retrain_trigger.check_trigger(app, station="s1")
        if check.run is None:
            print(json.dumps({"error": f"trigger did not start: {check.reason}"}), file=sys.stderr)
            return 1
        run = retrain_trigger.wait_run(app, run_id=check.run.id, timeout=1200)
        state = deploy.current_state(app)
    m = run.metrics or {}
    result |= {
        "trigger": check.reason,
        "run": {"status": run.status, "outcome": run.outcome, "reason": run.outcome_reason},
        "run_heldout_labels": {"candidate": m.get("candidate"), "production": m.get("production")},
        "deployment": {"production": state.production, "mode": state.mode, "candidate": state.candidate},
    }
    if run.candidate_version:
        result["after_auroc_new"] = _auroc(models / run.candidate_version, heldout)
        result["after_auroc_lab"] = _auroc(models / run.candidate_version, lab_heldout)  # what it kept of the lab
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["command"] = "python scripts/sim_retrain_drift.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
