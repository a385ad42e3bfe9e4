"""Server memory over a long ingest: the uvicorn server's resident set size (RSS, from /proc) sampled
while N images are posted, plotted against the number ingested. Issue 13: flat over 20,000 images.

    .venv/bin/python scripts/bench_memory.py [--n 20000] [--clients 4] [--out bench-out] [--fake-model]

Every post is new content (the photos of a pool of --pool generated 1920x1080 JPEGs with a distinct
tail after the end-of-image marker), so each one is decoded, scored and stored: about 0.42 MB of disk
per image under a temporary folder (20,000 images: ~8.5 GB). Writes bench_memory.csv and .png to --out.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import STATION, make_jpegs, scorer_factory, server  # noqa: E402
from bench_queue import scratch_database  # noqa: E402

from inspection.config import Settings  # noqa: E402
from inspection.services import context, policies, tokens  # noqa: E402

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MiB (/proc/<pid>/statm, second field, in pages)."""
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * PAGE_KB / 1024


def ingest(base: str, token: str, pool: list[bytes], *, n: int, clients: int, pid: int,
           every: int) -> list[tuple[int, float, float]]:  # fmt: skip
    """Post n images; (images done, seconds, RSS MiB) every `every` images (and at 0 and n)."""
    done = 0
    lock = threading.Lock()
    samples = [(0, 0.0, rss_mb(pid))]
    t0 = time.perf_counter()

    def one(i: int) -> None:
        nonlocal done
        data = pool[i % len(pool)] + f"memory:{i}".encode()  # new content each time
        r = http.post(f"{base}/api/v1/inspections", files={"image": (f"{i}.jpg", data, "image/jpeg")},
                      data={"station": STATION}, headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        if r.status_code not in (200, 201):
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        with lock:
            done += 1
            if done % every == 0 or done == n:
                samples.append((done, time.perf_counter() - t0, rss_mb(pid)))
                print(f"{done:>7} images, {samples[-1][1]:7.0f} s, RSS {samples[-1][2]:7.1f} MiB", flush=True)

    with httpx.Client(timeout=300) as http, ThreadPoolExecutor(clients) as workers:
        list(workers.map(one, range(n)))
    return samples


def plot(samples: list[tuple[int, float, float]], out: Path, title: str) -> None:
    import matplotlib  # heavy: only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    with (out / "bench_memory.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["images", "seconds", "rss_mib"])
        writer.writerows((n, round(t, 2), round(m, 1)) for n, t, m in samples)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([s[0] for s in samples], [s[2] for s in samples], ".-")
    ax.set_xlabel("images ingested")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "bench_memory.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'bench_memory.csv'} and {out / 'bench_memory.png'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--pool", type=int, default=32, help="distinct photos generated (posts reuse them)")
    ap.add_argument("--every", type=int, default=0, help="sample every this many images (0: n / 50)")
    ap.add_argument("--model-dir", default="models/baseline")
    ap.add_argument("--fake-model", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--database-url", default="")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args()
    # the server options bench_ingest's child reads
    args.monitoring, args.batch_size, args.batch_wait_ms = "on", 1, 2.0
    pool = make_jpegs(args.pool)
    every = args.every or max(1, args.n // 50)
    with scratch_database(args.database_url) as (url, tmp):
        settings = Settings(data_dir=tmp / "data", database_url=url)
        factory = scorer_factory(args.fake_model, Path(args.model_dir), args.threads)
        with context.Pipeline.create(settings, scorer_factory=factory) as app:
            policies.set_policy(app, station=STATION, by="bench", reason="benchmark", level="partial")
            token = tokens.create_token(app, station=STATION)
        with server(args, url, tmp / "data") as (base, pid):
            samples = ingest(base, token, pool, n=args.n, clients=args.clients, pid=pid, every=every)
    first = next((m for n, _, m in samples if n >= every), samples[0][2])  # after warm-up (model loaded)
    last = samples[-1][2]
    print(f"RSS after {every} images {first:.1f} MiB, after {samples[-1][0]} images {last:.1f} MiB "
          f"({last - first:+.1f} MiB)")
    model = "fake model" if args.fake_model else args.model_dir
    plot(samples, args.out, f"server RSS, {args.n} x 1920x1080 JPEG, {args.clients} clients, {model}")


if __name__ == "__main__":
    main()
