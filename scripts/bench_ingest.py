"""HTTP ingest throughput and latency through a real uvicorn server with 1, 4 and 16 concurrent clients,
beside the in-process figures measured in the same run on the same images (issue 13's targets):

- forward alone: the model's forward pass on ready tensors, the faster of batch 16 and 1 (images/s);
- in-process end-to-end: Predictor.score_stream (decode, preprocess and score, overlapped) (images/s);
- decode + forward: one image decoded as ingest decodes it plus one forward pass of it (median ms).

    .venv/bin/python scripts/bench_ingest.py [--images 64] [--clients 1,4,16] [--out bench-out]
        [--database-url URL] [--batch-size 1] [--monitoring on|off] [--fake-model]
    pg_virtualenv -t -v 15 sh -c '.venv/bin/python scripts/bench_ingest.py \
        --database-url postgresql+psycopg://$PGUSER:$PGPASSWORD@$PGHOST:${PGPORT:-5432}/postgres'

SQLite always runs; with --database-url PostgreSQL runs too (a scratch database, created and dropped).
The server is a child process (this script with --serve) so that clients and server do not share a GIL.
Each client count posts its own images (the same photos with a distinct tail after the JPEG end marker,
so no run finds its files stored already). Writes bench_ingest.csv and bench_ingest.png into --out.
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_queue import scratch_database  # noqa: E402

from inspection.config import Settings  # noqa: E402
from inspection.core.domain import Localisation, Prediction  # noqa: E402
from inspection.core.scoring import Scored, Scorer  # noqa: E402
from inspection.services import context, policies, tokens  # noqa: E402
from inspection.vision.images import decode_image  # noqa: E402

STATION = "bench"


class FakeScorer:
    """A trivial model for measuring the service alone: mean brightness as score, a coarse heatmap."""

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
        from inspection.vision.predictor import load_predictor  # heavy (onnxruntime): only for a real model

        return load_predictor(model_dir, threads=threads)

    return load


def make_jpegs(n: int, *, offset: int = 0) -> list[bytes]:
    """Generated 1920x1080 phone photos (half with scratches), JPEG quality 95 as the camera sends them."""
    from inspection.vision.synth import render  # heavy: only when images are made

    out = []
    for i in range(offset, offset + n):
        sample = render(4242, i, scratch=i % 2 == 0)
        ok, buf = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        out.append(buf.tobytes())
    return out


def distinct(images: Sequence[bytes], tag: str) -> list[bytes]:
    """The same photos with bytes after the JPEG end-of-image marker (decoders ignore them; cameras
    append such data): a new content hash each, so a run never takes the stored-already shortcut."""
    return [img + f"bench:{tag}:{i}".encode() for i, img in enumerate(images)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(args: argparse.Namespace) -> None:
    import uvicorn  # the child process only

    from inspection.api.app import create_app

    settings = Settings(
        data_dir=Path(args.data_dir),
        database_url=args.database_url,
        threads=args.threads,
        monitoring=args.monitoring != "off",
        score_batch_size=args.batch_size,
        score_batch_wait_ms=args.batch_wait_ms,
    )
    app = create_app(settings, scorer_factory=scorer_factory(args.fake_model, Path(args.model_dir), args.threads))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


@contextmanager
def server(args: argparse.Namespace, url: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """A uvicorn child serving `url`'s database; yields (base URL, pid) once /healthz answers."""
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", "--port", str(port), "--data-dir", str(data_dir),
           "--database-url", url, "--model-dir", args.model_dir, "--threads", str(args.threads),
           "--monitoring", args.monitoring, "--batch-size", str(args.batch_size),
           "--batch-wait-ms", str(args.batch_wait_ms)]  # fmt: skip
    if args.fake_model:
        cmd.append("--fake-model")
    child = subprocess.Popen(cmd, env=os.environ | {"PYTHONPATH": str(Path.cwd())})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, child.pid
    finally:
        child.terminate()
        child.wait(timeout=60)


def post_all(url: str, token: str, images: Sequence[bytes], clients: int) -> tuple[float, list[float]]:
    """Post every image with `clients` concurrent clients; (wall seconds, per-request seconds)."""

    def one(i: int) -> float:
        t = time.perf_counter()
        while True:
            r = http.post(
                f"{url}/api/v1/inspections",
                files={"image": (f"{i}.jpg", images[i], "image/jpeg")},
                data={"station": STATION},
                headers={"Authorization": f"Bearer {token}"},
            )
            if r.status_code != 503:
                break
            # more clients than decode slots (INSPECTION_MAX_CONCURRENT_DECODES): retry as an integrator
            # does; the wait counts in this request's latency
            time.sleep(0.05)
        if r.status_code not in (200, 201):
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        return time.perf_counter() - t

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with httpx.Client(timeout=300, limits=limits) as http, ThreadPoolExecutor(clients) as pool:
        t0 = time.perf_counter()
        lat = list(pool.map(one, range(len(images))))
        return time.perf_counter() - t0, lat


def in_process(scorer: Scorer, images: Sequence[bytes], settings: Settings) -> dict[str, float]:
    """forward alone (images/s), in-process end-to-end (images/s), decode + forward of one image (ms)."""
    decoded = [decode_image(b, max_pixels=settings.max_pixels) for b in images]
    if isinstance(scorer, FakeScorer):
        t = time.perf_counter()
        fake_scored = scorer.score(decoded)
        fwd = len(decoded) / (time.perf_counter() - t)
        return {"forward": fwd, "inprocess": fwd, "decode_forward_ms": 1e3 / fwd, "invalid": _invalid(fake_scored)}
    from inspection.vision.predictor import BATCH, Predictor, tensor_batch  # heavy: real model only

    assert isinstance(scorer, Predictor)
    prepared = [scorer.prepare_image(im) for im in decoded]
    x = tensor_batch([p.warped.canvas for p in prepared if p.warped is not None])
    scorer.forward(x[:BATCH])  # warm-up
    fwd = max(  # the model at its best batch size (on 2 cores: one image at a time)
        _rate(len(x), lambda: [scorer.forward(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]),
        _rate(len(x), lambda: [scorer.forward(x[i : i + 1]) for i in range(len(x))]),
    )
    scored: list[Scored] = []
    e2e = _rate(len(images), lambda: scored.extend(scorer.score_stream(images, max_pixels=settings.max_pixels)))
    single = []
    for j, b in enumerate(images[: min(len(images), 24)]):  # decode as ingest does, one forward pass
        t = time.perf_counter()
        decode_image(b, max_pixels=settings.max_pixels)
        scorer.forward(x[j : j + 1])
        single.append((time.perf_counter() - t) * 1e3)
    return {"forward": fwd, "inprocess": e2e, "decode_forward_ms": statistics.median(single),
            "invalid": _invalid(scored)}  # fmt: skip


def _rate(n: int, run: Callable[[], object]) -> float:
    t = time.perf_counter()
    run()
    return n / (time.perf_counter() - t)


def _invalid(scored: Sequence[Scored]) -> int:
    return sum(not s.prediction.valid for s in scored)


def bench_backend(
    args: argparse.Namespace, db_url: str, images: list[bytes], clients: list[int]
) -> list[dict[str, object]]:
    """One backend, one server; before each client count the in-process figures are measured again (the
    server idle), so each ratio compares numbers taken seconds apart on a machine whose load drifts."""
    rows: list[dict[str, object]] = []
    factory = scorer_factory(args.fake_model, Path(args.model_dir), args.threads)
    with scratch_database(db_url) as (url, tmp):
        settings = Settings(data_dir=tmp / "data", database_url=url)
        backend = url.split(":")[0].split("+")[0]
        with (
            context.Pipeline.create(settings, scorer_factory=factory) as app,
            server(args, url, tmp / "data") as (base, _pid),
        ):
            policies.set_policy(app, station=STATION, by="bench", reason="benchmark", level="partial")
            token = tokens.create_token(app, station=STATION)
            post_all(base, token, distinct(images[:2], "warm"), 1)  # model load
            for n in clients:
                ref = in_process(app.scorer(settings.default_model), images, settings)
                if ref["invalid"]:  # the numbers would measure the fail-safe path, not the model
                    sys.exit(f"error: {ref['invalid']:.0f} benchmark images got no valid model output")
                wall, lat = post_all(base, token, distinct(images, f"{backend}-{n}"), n)
                rows.append(_row(args, backend, n, len(images), wall, lat, ref))
    return rows


def _row(args: argparse.Namespace, backend: str, clients: int, n: int, wall: float, lat: list[float],
         ref: dict[str, float]) -> dict[str, object]:  # fmt: skip
    rate, p50 = n / wall, statistics.median(lat) * 1e3
    print(f"{backend:<10} clients={clients:<3} {rate:6.1f} images/s, p50 {p50:7.1f} ms | forward alone "
          f"{ref['forward']:6.1f}/s, in-process {ref['inprocess']:6.1f}/s, decode+forward "
          f"{ref['decode_forward_ms']:.1f} ms | HTTP / in-process {rate / ref['inprocess']:.2f}, "
          f"in-process / forward {ref['inprocess'] / ref['forward']:.2f}, "
          f"p50 / (decode+forward) {p50 / ref['decode_forward_ms']:.2f}", flush=True)
    return {"backend": backend, "clients": clients, "images": n, "rate": round(rate, 2), "p50_ms": round(p50, 1),
            "p90_ms": round(float(np.percentile(lat, 90)) * 1e3, 1), "forward_rate": round(ref["forward"], 2),
            "inprocess_rate": round(ref["inprocess"], 2), "decode_forward_ms": round(ref["decode_forward_ms"], 1),
            "batch_size": args.batch_size, "load": round(os.getloadavg()[0], 2)}  # fmt: skip


def write_outputs(rows: list[dict[str, object]], out: Path) -> None:
    import matplotlib  # heavy: only when writing the plot

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with (out / "bench_ingest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for backend in dict.fromkeys(str(r["backend"]) for r in rows):
        mine = [r for r in rows if r["backend"] == backend]
        xs, ys = [float(r["clients"]) for r in mine], [float(r["rate"]) for r in mine]  # type: ignore[arg-type]
        ax.plot(xs, ys, "o-", label=f"HTTP, {backend}")
        colour = ax.lines[-1].get_color()
        inproc = statistics.median(float(r["inprocess_rate"]) for r in mine)  # type: ignore[arg-type]
        forward = statistics.median(float(r["forward_rate"]) for r in mine)  # type: ignore[arg-type]
        ax.axhline(inproc, ls="--", lw=1, color=colour, label=f"in-process end-to-end ({backend} run)")
        ax.axhline(forward, ls=":", lw=1, color=colour, label=f"forward alone ({backend} run)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("images / s")
    ax.set_title("HTTP ingest, 1920x1080 JPEG")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "bench_ingest.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'bench_ingest.csv'} and {out / 'bench_ingest.png'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default="", help="PostgreSQL to run beside SQLite")
    ap.add_argument("--model-dir", default="models/baseline")
    ap.add_argument("--fake-model", action="store_true", help="use a trivial scorer (no artifact needed)")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=1, help="INSPECTION_SCORE_BATCH_SIZE of the server")
    ap.add_argument("--batch-wait-ms", type=float, default=2.0)
    ap.add_argument("--monitoring", choices=("on", "off"), default="on")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
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
    clients = [int(c) for c in args.clients.split(",")]
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"{len(images)} JPEGs 1920x1080, mean {statistics.fmean(map(len, images)) / 1e3:.0f} kB; "
          f"{os.cpu_count()} cores, load average {load}; batch size {args.batch_size}; monitoring {args.monitoring}")
    rows = bench_backend(args, "", images, clients)
    if args.database_url:
        rows += bench_backend(args, args.database_url, images, clients)
    write_outputs(rows, args.out)


if __name__ == "__main__":
    main()
