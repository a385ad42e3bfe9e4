"""Scale-out on one machine: `inspection serve --workers N` on PostgreSQL, N = 1, 2, 4, each draining
the same number of ingests and then labels from 8 client threads; throughput per process count,
lost and doubled items counted in the database, and the model's forward pass alone in the same run.

    pg_virtualenv -v 15 .venv/bin/python scripts/bench_workers.py [--items 2000] [--workers 1,2,4]
    .venv/bin/python scripts/bench_workers.py --database-url postgresql+psycopg://user:pw@host/postgres

Each process count gets a scratch database (created and dropped) and its own data dir; the server is
the real CLI (`tests/workers_cluster.py` drives it, as tests/integration/test_workers.py does). The
policy is `ai_assist`: the model scores every item and every item goes to a person, so each of the
`--items` ingests runs the model and each is labelled once. Clients retry a 503 (decode slots full)
with the same Idempotency-Key, as a camera would; the retries are printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.workers_cluster: the same client code the test uses
sys.path.insert(0, str(REPO / "scripts"))
from bench_queue import scratch_database  # noqa: E402

from inspection.config import Settings  # noqa: E402
from inspection.services.context import Pipeline  # noqa: E402
from tests.workers_cluster import (  # noqa: E402
    ClientStats,
    counts,
    ingest_all,
    label_all,
    make_jpegs,
    prepare,
    serve,
    server_env,
    wait_for_workers,
)

STATION = "bench"


def _pg_url() -> str:
    if "PGHOST" not in os.environ:
        sys.exit("error: pass --database-url, or run under `pg_virtualenv -v 15` (it sets PGHOST and friends)")
    user, password = os.environ.get("PGUSER", "postgres"), os.environ.get("PGPASSWORD", "")
    return f"postgresql+psycopg://{user}:{password}@{os.environ['PGHOST']}:{os.environ.get('PGPORT', '5432')}/postgres"


def forward_alone(model_dir: Path, images: list[bytes], *, threads: int) -> float:
    """The model's own time per image (s), decoded images, in this process: the ceiling of one process."""
    from inspection.vision.images import decode_image
    from inspection.vision.predictor import load_predictor

    scorer = load_predictor(model_dir, threads=threads)
    decoded = [decode_image(b, max_pixels=50_000_000) for b in images]
    scorer.score(decoded[:2])  # warm-up
    start = time.perf_counter()
    for image in decoded:
        scorer.score([image])
    return (time.perf_counter() - start) / len(decoded)


def run_one(args: argparse.Namespace, admin_url: str, images: list[bytes], workers: int) -> None:
    with scratch_database(admin_url) as (url, tmp), tempfile.TemporaryDirectory() as logs:
        (tmp / "data").mkdir()
        settings = Settings(data_dir=tmp / "data", models_dir=args.models_dir, database_url=url)
        with Pipeline.create(settings) as app:
            setup = prepare(app, station=STATION, inspectors=args.clients)
            env = server_env(settings, INSPECTION_THREADS=str(args.threads))
            with serve(workers=workers, env=env, log=Path(logs) / "serve.log") as base:
                wait_for_workers(base, workers)
                stats = ClientStats()
                start = time.perf_counter()
                ingest_all(base, setup, images, clients=args.clients, stats=stats)
                t_ingest = time.perf_counter() - start
                start = time.perf_counter()
                labelled = label_all(base, setup)
                t_label = time.perf_counter() - start
            got = counts(app, station=STATION)
    n = len(images)
    lost = (n - got.inspections) + (n - got.labelled)
    doubled = (got.inspections - got.images) + got.doubled + max(0, labelled - n)
    print(
        f"workers={workers}: ingest {n / t_ingest:6.1f} items/s ({t_ingest:5.1f} s), "
        f"label {n / t_label:6.1f} labels/s ({t_label:5.1f} s); lost {lost}, doubled {doubled}, "
        f"503 retries {stats.retries}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default="", help="PostgreSQL admin URL (a scratch database is made)")
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", default="1,2,4", help="process counts, comma-separated")
    ap.add_argument("--width", type=int, default=1280, help="image size (the camera's is 1920x1080)")
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--threads", type=int, default=1, help="inference threads per server process")
    ap.add_argument("--models-dir", type=Path, default=REPO / "models")
    args = ap.parse_args()
    admin_url = args.database_url or _pg_url()
    if not admin_url.startswith("postgresql"):
        sys.exit("error: scale-out is measured on PostgreSQL (SQLite is one machine)")
    images = make_jpegs(args.items, size=(args.width, args.height))
    forward = forward_alone(args.models_dir / "baseline", images[:64], threads=args.threads)
    print(
        f"{os.cpu_count()} CPU cores on this machine (client threads, PostgreSQL and every worker share them); "
        f"{args.items} JPEGs {args.width}x{args.height}, {args.clients} clients, policy ai_assist"
    )
    print(f"forward alone: {1 / forward:6.1f} images/s ({forward * 1e3:.1f} ms/image, {args.threads} thread)")
    for workers in (int(w) for w in args.workers.split(",")):
        run_one(args, admin_url, images, workers)


if __name__ == "__main__":
    main()
