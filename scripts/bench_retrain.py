"""Benchmark retraining from stored labels: generate phone photos, ingest and label them through the
service (as inspectors would), then `inspection.services.retrain.retrain` end to end.

Usage: .venv/bin/python scripts/bench_retrain.py [--n 2000] [--size 640x360] [--epochs N]
           [--canvas 512x240] [--production models/baseline] [--from-imagenet] [--caching-only]

First, in the same run, the frozen backbone part that training caches once per image, through eager torch
(before) and ONNX Runtime (what training uses): ms per image on 16 canvases (--caching-only stops there).

By default the candidate fine-tunes production's weights, as the retrain trigger does (issue 14), for the
schedule's ~40 optimiser steps (inspection/core/schedule.py), as `inspection retrain --warm-start` does;
--from-imagenet starts from ImageNet's weights (6 or 12 epochs by the set's size, with the early stop), as
`inspection retrain` does by default. --epochs overrides either.

Prints the time of each stage; the retrain time includes dataset links, training, the held-out
evaluation of the candidate and (when a production artifact is given or models/baseline exists)
of production on the same items, and registration.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from inspection.config import Settings
from inspection.services import ingest, retrain, review
from inspection.services.context import Pipeline


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--epochs", type=int, default=None, help="default: the retrain service's for the start")
    ap.add_argument("--canvas", default="", help="HxW network input (default: production's, else auto)")
    ap.add_argument("--production", type=Path, default=Path("models/baseline"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--from-imagenet", action="store_true", help="start from ImageNet, not production's weights")
    ap.add_argument("--caching-only", action="store_true", help="only the feature-caching comparison")
    args = ap.parse_args()
    caching(args.canvas, threads=2)
    if args.caching_only:
        return
    w, h = (int(v) for v in args.size.lower().split("x"))

    from inspection.vision.input_scale import choose_input
    from inspection.vision.synth import generate

    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        root = Path(tmp)
        models = root / "models"
        models.mkdir()
        production = "none"
        if (args.production / "model.json").is_file():
            production = args.production.name
            shutil.copytree(args.production, models / production)
        settings = Settings(data_dir=root / "data", models_dir=models, default_model=production)

        t = time.perf_counter()
        photos = root / "photos"
        generate(photos, count=args.n, seed=5, size=(w, h), workers=args.workers, progress=False)
        print(f"generate {args.n} photos at {w}x{h}                 {time.perf_counter() - t:7.1f} s")

        with Pipeline.create(settings) as app:
            t = time.perf_counter()
            truth: dict[int, str] = {}
            for cls in ("scratch", "ok"):
                for p in sorted((photos / cls).iterdir()):
                    res = ingest.inspect(app, data=p.read_bytes(), station="bench", actor="bench")
                    truth[res.inspection.id] = cls
            print(f"ingest {len(truth)} images (human_only)               {time.perf_counter() - t:7.1f} s")
            t = time.perf_counter()
            while (task := review.claim_next(app, inspector="ines", station="bench")) is not None:
                review.submit_label(
                    app, inspection_id=task.inspection_id, inspector="ines", label=truth[task.inspection_id]
                )
            print(f"label {len(truth)} items (claim + label)             {time.perf_counter() - t:7.1f} s")

            spec = choose_input(photos, positive="scratch", canvas=args.canvas).preprocess if args.canvas else None
            t = time.perf_counter()
            epochs_log: list[str] = []
            result = retrain.retrain(app, by="bench", epochs=args.epochs, preprocess=spec,
                                     warm_start=not args.from_imagenet, log=epochs_log.append)
            secs = time.perf_counter() - t
            c, prod = result.candidate, result.production
            start = "from ImageNet" if args.from_imagenet else f"fine-tuning {production}"
            print(
                f"retrain on {result.n_train + result.n_test} stored labels ({result.n_train} train, "
                f"{result.n_test} held out, {start})  {secs:7.1f} s"
            )
            for line in epochs_log:  # the training log: caching, each epoch's time, early stop
                print(f"    {line}")
            print(
                f"  candidate held-out AUROC {c.get('auroc')}  production ({production}) "
                f"{prod.get('auroc') if prod else 'not evaluated'}; verdict: {result.verdict}"
            )
            meta = (result.path / "model.json").read_text()
            print(f"  registered {result.version} ({len(meta)} bytes of model.json); notes: {result.notes}")


def caching(canvas: str, *, threads: int) -> None:
    """ms per image of the frozen part (what training caches) through eager torch and ONNX Runtime."""
    import numpy as np
    import torch

    from inspection.vision.model import NetConfig, ScratchNet, load_imagenet_backbone
    from inspection.vision.preprocess import PreprocessSpec
    from inspection.vision.train import FROZEN_BLOCKS, frozen_part, onnx_frozen_part

    torch.set_num_threads(threads)
    h, w = (int(v) for v in canvas.lower().split("x")) if canvas else (512, 240)
    net = ScratchNet(NetConfig())
    load_imagenet_backbone(net)
    net.eval()
    batch = np.random.default_rng(0).normal(0.0, 1.0, (16, 3, h, w)).astype(np.float32)
    runner = onnx_frozen_part(net, FROZEN_BLOCKS, PreprocessSpec(canvas_h=h, canvas_w=w), threads=threads)

    def eager() -> None:
        with torch.inference_mode():
            frozen_part(net, torch.from_numpy(batch))

    def onnx() -> None:
        runner(batch)

    timings: dict[str, list[float]] = {"eager torch": [], "ONNX Runtime": []}
    for _ in range(3):  # alternate, so a drifting machine load biases neither
        for name, fn in (("eager torch", eager), ("ONNX Runtime", onnx)):
            t = time.perf_counter()
            fn()
            timings[name].append((time.perf_counter() - t) / len(batch) * 1000)
    best = {name: min(v[1:]) for name, v in timings.items()}  # the first round warms up
    print(f"feature caching ({h}x{w}, {threads} threads): eager torch {best['eager torch']:.1f} ms/img, "
          f"ONNX Runtime {best['ONNX Runtime']:.1f} ms/img ({best['eager torch'] / best['ONNX Runtime']:.1f}x)")


if __name__ == "__main__":
    main()
