"""Benchmark the engineers' data paths on a store of 100,000 labelled records (seeded).

Usage: .venv/bin/python scripts/bench_export.py [--n 100000] [--images 10000] [--database-url URL]

Prints: bulk insert time, csv and jsonl export of all records (target <= 30 s each), imagefolder
export of `--images` real image files, the peak Python memory of the csv export (streaming: it must
not grow with the rows), and threshold suggestion on the 100,000 records end to end (store -> math).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import sqlalchemy as sa

from inspection import store
from inspection.config import Settings
from inspection.services import export, tuning
from inspection.services.context import Pipeline

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _no_models(name: str) -> Any:
    raise RuntimeError("the benchmark scores nothing")


def populate(app: Pipeline, *, n: int, with_files: int, chunk: int = 10_000) -> float:
    """Bulk-insert n inspections, every one with a live human label: reviewed items (weight 1) and
    blind audits of automatic decisions (2 % of confident items, weight 1/0.02). The first
    `with_files` point at real image files (hard links of one JPEG)."""
    rng = np.random.default_rng(0)
    scratched = rng.random(n) < 0.05
    logit = np.where(scratched, rng.normal(3.0, 1.5, n), rng.normal(-4.0, 1.5, n))
    scores = 1.0 / (1.0 + np.exp(-logit))
    confident = (scores <= 0.05) | (scores >= 0.95)
    audit = confident & (rng.random(n) < 0.02)
    images_dir = app.settings.data_dir / "images" / "00"
    images_dir.mkdir(parents=True, exist_ok=True)
    src = images_dir / "source.jpg"
    img = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
    cv2.imwrite(str(src), cv2.GaussianBlur(img, (0, 0), 3))
    for i in range(with_files):
        os.link(src, images_dir / f"{i:064x}.jpg")

    start = time.perf_counter()
    with app.write() as s:
        s.add(
            store.PolicyVersionRow(
                station="bulk",
                version=1,
                level="partial",
                pass_below=0.05,
                reject_above=0.95,
                audit_rate=0.02,
                created_by="bench",
                created_at=T0,
                reason="bench",
            )
        )
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        idx = range(lo, hi)
        with app.write() as s:
            s.execute(
                sa.insert(store.ImageRow),
                [
                    {
                        "id": i + 1,
                        "sha256": f"{i:064x}",
                        "path": f"images/00/{i:064x}.jpg",
                        "size_bytes": 30_000,
                        "width": 640,
                        "height": 360,
                        "format": "jpg",
                        "first_station": "bulk",
                        "received_at": T0 + timedelta(seconds=i),
                    }
                    for i in idx
                ],
            )
            rows = []
            for i in idx:
                sc = float(scores[i])
                auto = bool(audit[i])  # an audited automatic decision; everything else was reviewed
                route = ("auto_pass" if sc <= 0.05 else "auto_reject") if auto else "review"
                truth = "scratch" if scratched[i] else "ok"
                rows.append(
                    {
                        "id": i + 1,
                        "image_id": i + 1,
                        "station": "bulk",
                        "received_at": T0 + timedelta(seconds=i),
                        "policy_version": 1,
                        "level": "partial",
                        "route": route,
                        "show_model": not auto,
                        "audit": bool(audit[i]),
                        "final_label": ("ok" if route == "auto_pass" else "scratch") if auto else truth,
                        "decided_by": "model" if auto else "inspector",
                        "decided_at": T0 + timedelta(seconds=i),
                        "model_version": "baseline",
                        "score": sc,
                        "reason": "bench",
                        "status": "done",
                        "priority": abs(sc - 0.5),
                    }
                )
            s.execute(sa.insert(store.InspectionRow), rows)
            s.execute(
                sa.insert(store.PredictionRow),
                [
                    {
                        "inspection_id": i + 1,
                        "model_version": "baseline",
                        "role": "production",
                        "score": float(scores[i]),
                        "regions": [{"x": 10, "y": 20, "w": 30, "h": 8, "score": 0.9}],
                        "latency_ms": 20.0,
                        "created_at": T0 + timedelta(seconds=i),
                    }
                    for i in idx
                ],
            )
            reviewed = list(idx)
            if reviewed:
                s.execute(
                    sa.insert(store.ReviewRow),
                    [
                        {
                            "inspection_id": i + 1,
                            "inspector": "ines",
                            "label": "scratch" if scratched[i] else "ok",
                            "blind": bool(audit[i]),
                            "audit": bool(audit[i]),
                            "seconds_taken": 3.5,
                            "created_at": T0 + timedelta(seconds=i, milliseconds=500),
                        }
                        for i in reviewed
                    ],
                )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--database-url", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root / "data", models_dir=root / "models", database_url=args.database_url)
        with Pipeline.create(settings, scorer_factory=_no_models) as app:
            secs = populate(app, n=args.n, with_files=args.images)
            print(f"bulk insert of {args.n:,} labelled records (4 tables)   {secs:7.2f} s")
            for fmt in ("csv", "jsonl"):
                t = time.perf_counter()
                res = export.export(app, out=root / f"out-{fmt}", fmt=fmt, progress=False)
                size = sum(f.stat().st_size for f in res.files) / 1e6
                print(
                    f"export {fmt:<5} {res.records:,} records ({size:.0f} MB)        {time.perf_counter() - t:7.2f} s"
                )
            tracemalloc.start()
            export.export(app, out=root / "out-mem", fmt="csv", progress=False)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"peak Python memory during the csv export                {peak / 1e6:7.1f} MB")
            t = time.perf_counter()
            flt = export.ExportFilter(until=T0 + timedelta(seconds=args.images))
            res = export.export(app, out=root / "out-if", fmt="imagefolder", flt=flt, progress=False)
            print(f"export imagefolder {res.records:,} images (copied)         {time.perf_counter() - t:7.2f} s")
            t = time.perf_counter()
            result = tuning.suggest_thresholds(app, station="bulk", max_escape=0.001, model_version="baseline")
            s = result.suggestion
            print(
                f"threshold suggestion on {result.stats.n:,} labelled records (end to end) "
                f"{time.perf_counter() - t:7.2f} s  -> ok={s.ok} pass_below={s.pass_below} "
                f"reject_above={s.reject_above}"
            )


if __name__ == "__main__":
    main()
