"""HTTP ingest throughput through a real uvicorn server, with 1 and 4 concurrent clients, plus the
model's forward time alone in the same run (and the ratio).

    .venv/bin/python scripts/bench_ingest.py [--fake-model] [--database-url URL] [--images 40]
        [--monitoring on|off|both]
    pg_virtualenv -v 15 sh -c '.venv/bin/python scripts/bench_ingest.py --fake-model \
        --database-url postgresql+psycopg://$PGUSER:$PGPASSWORD@$PGHOST:${PGPORT:-5432}/postgres'

The server runs in a child process (this script with --serve) so that client and server do not share
a GIL. On PostgreSQL a scratch database is created and dropped. `--monitoring both` runs the server
four times in the same run, monitoring off, on, off, on (INSPECTION_MONITORING: the per-item sample
insert and the background evaluation), each on its own images (so no run finds the files stored
already), and prints the ratio of the mean 1-client p50 latencies on / off.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_queue import scratch_database  # noqa: E402

from inspection.config import Settings  # noqa: E402
from inspection.core.domain import Localisation, Prediction  # noqa: E402
from inspection.core.scoring import Scored, Scorer  # noqa: E402
from inspection.services import (
    context,  # noqa: E402
    policies,
    tokens,
)
from inspection.vision.images import decode_image  # noqa: E402


class FakeScorer:
    """Stand-in until models/baseline exists: mean brightness as score, a coarse heatmap."""

    version = "fake-bench"

    def score(self, images: Sequence[np.ndarray], *, localisation: Localisation | None = None) -> list[Scored]:
        out = []
        for img in images:
            small = cv2.resize(img, (64, 36), interpolation=cv2.INTER_AREA)
            s = float(small.mean()) / 255.0
            out.append(Scored(Prediction(self.version, s), small[..., 0].astype(np.float32) / 255.0))
        return out


def scorer_factory(fake: bool, model_dir: Path, threads: int) -> context.ScorerFactory:
    def load(_name: str) -> Scorer:
        if fake:
            return FakeScorer()
        from inspection.vision.predictor import load_predictor

        return load_predictor(model_dir, threads=threads)

    return load


def make_jpegs(n: int, *, offset: int = 0) -> list[bytes]:
    """Generated 1920x1080 phone photos (half with scratches), JPEG quality 95 as the camera sends them."""
    from inspection.vision.synth import render

    out = []
    for i in range(offset, offset + n):
        sample = render(4242, i, scratch=i % 2 == 0)
        ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        out.append(buf.tobytes())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    from inspection.api.app import create_app

    settings = Settings(
        data_dir=Path(args.data_dir),
        database_url=args.database_url,
        threads=args.threads,
        monitoring=args.monitoring != "off",
    )
    app = create_app(
        settings, scorer_factory=scorer_factory(args.fake_model, Path(args.model_dir), args.threads)
    )
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def run_clients(url: str, token: str, images: list[bytes], clients: int) -> tuple[float, list[float]]:
    def one(i: int) -> float:
        t = time.perf_counter()
        r = http.post(
            f"{url}/api/v1/inspections",
            files={"image": (f"{i}.jpg", images[i % len(images)], "image/jpeg")},
            data={"station": "bench"},
            headers={"Authorization": f"Bearer {token}"},
        )
        if r.status_code not in (200, 201):
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        return time.perf_counter() - t

    with httpx.Client(timeout=120) as http, ThreadPoolExecutor(clients) as pool:
        t0 = time.perf_counter()
        lat = list(pool.map(one, range(len(images))))
        return time.perf_counter() - t0, lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--model-dir", default="models/baseline")
    ap.add_argument("--fake-model", action="store_true", help="use a trivial scorer (no artifact needed)")
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--monitoring", choices=("on", "off", "both"), default="on", help="both: off, then on")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--data-dir", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args)
        return
    if not args.fake_model and not Path(args.model_dir).exists():
        sys.exit(f"error: no model at {args.model_dir}; train one or pass --fake-model")

    images = make_jpegs(args.images)
    print(f"{len(images)} JPEGs 1920x1080, mean {statistics.fmean(map(len, images)) / 1e3:.0f} kB")
    factory = scorer_factory(args.fake_model, Path(args.model_dir), args.threads)
    with scratch_database(args.database_url) as (url, tmp):
        settings = Settings(data_dir=tmp / "data", database_url=url)
        with context.Pipeline.create(settings, scorer_factory=factory) as app:
            policies.set_policy(app, station="bench", by="bench", reason="benchmark", level="partial")
            token = tokens.create_token(app, station="bench")
            # Forward alone: decoded images, the same scorer, in this process.
            scorer = app.scorer("baseline")
            decoded = [decode_image(b, max_pixels=settings.max_pixels) for b in images]
            scorer.score(decoded[:2])  # warm-up
            t = time.perf_counter()
            scored = [scorer.score([img])[0] for img in decoded]
            forward = (time.perf_counter() - t) / len(decoded)
            failed = sum(not sc.prediction.valid for sc in scored)
            if failed:  # the numbers would measure the fail-safe path, not the model
                sys.exit(f"error: {failed} of {len(decoded)} benchmark images got no valid model output")
        # Alternating runs: a machine whose load drifts during the run biases neither mode.
        modes = ("off", "on", "off", "on") if args.monitoring == "both" else (args.monitoring,)
        p50: dict[str, list[float]] = {"off": [], "on": []}
        for k, mode in enumerate(modes):
            run_images = images if k == 0 else make_jpegs(args.images, offset=10_000 * k)  # no file-exists shortcut
            p50[mode].append(_bench_server(args, url, tmp, token, run_images, mode=mode, forward=forward))
        if p50["on"] and p50["off"]:
            on, off = statistics.fmean(p50["on"]), statistics.fmean(p50["off"])
            print(f"monitoring on / off, mean p50 latency with 1 client: {on:.1f} / {off:.1f} ms = {on / off:.3f}x")


def _bench_server(
    args: argparse.Namespace, url: str, tmp: Path, token: str, images: list[bytes], *, mode: str, forward: float
) -> float:
    """Serve from a child process with monitoring `mode`, time 1 and 4 clients; the 1-client p50 (ms)."""
    port = free_port()
    env = os.environ | {"PYTHONPATH": str(Path.cwd())}
    cmd = [
        sys.executable,
        __file__,
        "--serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp / "data"),
        "--database-url",
        url,
        "--model-dir",
        args.model_dir,
        "--threads",
        str(args.threads),
        "--monitoring",
        mode,
    ]
    if args.fake_model:
        cmd.append("--fake-model")
    server = subprocess.Popen(cmd, env=env)
    first_p50 = 0.0
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        run_clients(base, token, images[:2], 1)  # warm-up (model load)
        backend = url.split(":")[0]
        print(f"backend: {backend}; monitoring {mode}; forward alone {forward * 1e3:.1f} ms/image")
        for clients in (1, 4):
            wall, lat = run_clients(base, token, images, clients)
            rate = len(images) / wall
            p50 = statistics.median(lat) * 1e3
            first_p50 = first_p50 or p50
            print(
                f"clients={clients}: {rate:.1f} images/s, p50 latency {p50:.1f} ms; "
                f"per-image wall / forward = {(wall / len(images)) / forward:.2f}x"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return first_p50


if __name__ == "__main__":
    main()
