"""Inference speed on 1920x1080 JPEGs, decoding and preprocessing included, vs the forward pass alone.

    .venv/bin/python scripts/bench_inference.py [--model models/baseline] [--n 64] [--threads 2]
        [--rounds 3] [--workers 1] [--spinning]

Every figure comes from the same run on the same images; the modes alternate for --rounds rounds (the
median is printed), so a machine whose load drifts biases none of them:
- forward alone: the model on ready tensors, the faster of batch 16 and batch 1 (the hardware's best);
- sequential end-to-end: decode + preprocess all, then score (no overlap);
- pipelined end-to-end: Predictor.score_stream, decoding the next images while the model runs;
- single image: decode + preprocess + score of one image at a time (latency percentiles);
- CPU budget: each stage on one thread (decode, the rest of preparing, the model's forward pass and its
  post-processing), and the most any schedule of that work could reach on this machine's cores.
Target (issue 13): pipelined end-to-end >= 0.7x forward alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from inspection.vision.images import decode_image, image_size
from inspection.vision.predictor import BATCH, Predictor, load_predictor, tensor_batch
from inspection.vision.synth import generate


def _rate(n: int, run: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    run()
    return n / (time.perf_counter() - t0)


def measure(predictor: Predictor, blobs: list[bytes], *, rounds: int, workers: int) -> dict[str, float]:
    """Median images/s per mode over `rounds` alternating rounds."""
    canvases = [p.warped.canvas for p in map(predictor.prepare_bytes, blobs) if p.warped is not None]
    x = tensor_batch(canvases)
    n = len(blobs)

    def forward() -> None:  # batches of 16 and single images alternate; the faster counts (below)
        for i in range(0, len(x), BATCH):
            predictor.forward(x[i : i + BATCH])

    def forward_single() -> None:
        for i in range(len(x)):
            predictor.forward(x[i : i + 1])

    def sequential() -> None:
        predictor.score_prepared([predictor.prepare_bytes(b) for b in blobs])

    def pipelined() -> None:
        for _ in predictor.score_stream(blobs, workers=workers):
            pass

    modes = {"forward": (len(x), forward), "forward_single": (len(x), forward_single),
             "sequential": (n, sequential), "pipelined": (n, pipelined)}  # fmt: skip
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for name, (count, run) in modes.items():
            rates[name].append(_rate(count, run))
    out = {m: statistics.median(r) for m, r in rates.items()}
    out["forward"] = max(out["forward"], out.pop("forward_single"))  # the model at its best batch size
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("models/baseline"))
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="decode/preprocess threads beside the model")
    ap.add_argument("--spinning", action="store_true", help="let ONNX Runtime's idle threads spin")
    ap.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    args = ap.parse_args()

    predictor = load_predictor(args.model, threads=args.threads, backend=args.backend, spinning=args.spinning)
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), count=args.n, seed=987, progress=False)
        files = sorted(Path(tmp).glob("*/*.jpg"))
        blobs = [f.read_bytes() for f in files]  # read once: we time decoding, not the disk cache

    predictor.score_prepared([predictor.prepare_bytes(b) for b in blobs[:BATCH]])  # warm-up
    rates = measure(predictor, blobs, rounds=args.rounds, workers=args.workers)
    single = []
    for b in blobs[:32]:
        t0 = time.perf_counter()
        predictor.score_prepared([predictor.prepare_bytes(b)])
        single.append((time.perf_counter() - t0) * 1000)

    fwd = rates["forward"]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"model {predictor.version} ({predictor.backend}), {len(blobs)} images 1920x1080 JPEG, "
          f"{args.threads} threads, {args.workers} prepare worker(s), spinning {args.spinning}, "
          f"median of {args.rounds} rounds, load average {load}")
    print(f"forward pass alone     : {fwd:6.1f} images/s ({1000 / fwd:.1f} ms/image)")
    for name in ("sequential", "pipelined"):
        r = rates[name]
        print(f"{name:<10} end-to-end : {r:6.1f} images/s ({1000 / r:.1f} ms/image) = {r / fwd:.2f}x forward alone")
    p50, p90, p99 = np.percentile(single, [50, 90, 99])
    print(f"single image latency: p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms")
    print_budget(args, blobs, fwd)


def _ms_each(items: list[Any], run: Callable[[Any], object], rounds: int) -> float:
    """Median over rounds of the mean ms per item."""
    per = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for item in items:
            run(item)
        per.append((time.perf_counter() - t0) * 1000 / len(items))
    return statistics.median(per)


def print_budget(args: argparse.Namespace, blobs: list[bytes], forward_rate: float) -> None:
    """CPU milliseconds per image with every stage on one thread (the cheapest way to spend a core: ONNX
    Runtime's second thread buys speed, not efficiency), and the most any overlap of them could reach on
    os.cpu_count() cores: cores x 1000 / (core-ms per image). A pipeline cannot beat this ceiling."""
    one = load_predictor(args.model, threads=1, backend=args.backend)
    reduce = one.meta.preprocess.decode_reduce(*image_size(blobs[0]))
    prepared = [one.prepare_bytes(b) for b in blobs]
    x = tensor_batch([p.warped.canvas for p in prepared if p.warped is not None])
    decode = _ms_each(blobs, lambda b: decode_image(b, reduce=reduce), args.rounds)
    prepare = _ms_each(blobs, one.prepare_bytes, args.rounds)
    forward = _ms_each(list(range(len(x))), lambda i: one.forward(x[i : i + 1]), args.rounds)
    score = _ms_each(prepared, lambda p: one.score_prepared([p]), args.rounds)
    total, cores = prepare + score, os.cpu_count() or 1
    ceiling = cores * 1000 / total
    print(f"CPU per image, one thread each: decode {decode:.1f} ms + rest of preparing {prepare - decode:.1f} ms "
          f"+ forward {forward:.1f} ms + post-processing {score - forward:.1f} ms = {total:.1f} core-ms")
    print(f"ceiling on {cores} cores: {ceiling:.1f} images/s = {ceiling / forward_rate:.2f}x forward alone "
          f"(the model's own share of the work: {forward / total:.0%})")


if __name__ == "__main__":
    main()
