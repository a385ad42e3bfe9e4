"""Inference speed on 1920x1080 JPEGs, decoding and preprocessing included, vs the forward pass alone.

    .venv/bin/python scripts/bench_inference.py [--model models/baseline] [--n 64] [--threads 2]

Prints batched throughput (images/s), single-image latency percentiles, and the ratio of end-to-end
time to the forward pass alone, all measured in the same run on the same images.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from inspection.vision.predictor import BATCH, load_predictor
from inspection.vision.preprocess import to_tensor_array
from inspection.vision.synth import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=Path("models/baseline"))
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    predictor = load_predictor(args.model, threads=args.threads, backend=args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp), count=args.n, seed=987, progress=False)
        files = sorted(Path(tmp).glob("*/*.jpg"))
        blobs = [f.read_bytes() for f in files]  # read once: we time decoding, not the disk cache

    predictor.score_prepared([predictor.prepare_bytes(b) for b in blobs[:BATCH]])  # warm-up

    t0 = time.perf_counter()
    prepared = [predictor.prepare_bytes(b) for b in blobs]
    t_prep = time.perf_counter() - t0
    predictor.score_prepared(prepared)
    t_batch = time.perf_counter() - t0

    canvases = [p.warped.canvas for p in prepared if p.warped is not None]
    x = to_tensor_array(canvases)
    t0 = time.perf_counter()
    for i in range(0, len(x), BATCH):
        predictor.forward(x[i : i + BATCH])
    t_forward = time.perf_counter() - t0

    single = []
    for b in blobs[:32]:
        t0 = time.perf_counter()
        predictor.score_prepared([predictor.prepare_bytes(b)])
        single.append((time.perf_counter() - t0) * 1000)

    n = len(blobs)
    print(f"model {predictor.version} ({predictor.backend}), {n} images 1920x1080 JPEG, {args.threads} threads")
    print(f"batched end-to-end : {n / t_batch:6.1f} images/s ({t_batch / n * 1000:.1f} ms/image; "
          f"decode+preprocess {t_prep / n * 1000:.1f} ms/image)")
    print(f"forward pass alone : {n / t_forward:6.1f} images/s ({t_forward / n * 1000:.1f} ms/image)")
    print(f"ratio end-to-end / forward: {t_batch / t_forward:.2f}")
    p50, p90, p99 = np.percentile(single, [50, 90, 99])
    print(f"single image latency: p50 {p50:.1f} ms, p90 {p90:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
