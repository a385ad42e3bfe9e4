"""Review-queue benchmark: claim + submit round trip (p50/p99) with 100,000 items waiting.

    .venv/bin/python scripts/bench_queue.py                       # SQLite in a temporary folder
    pg_virtualenv -v 15 sh -c '.venv/bin/python scripts/bench_queue.py \
        --database-url postgresql+psycopg://$PGUSER:$PGPASSWORD@$PGHOST:${PGPORT:-5432}/postgres'

On PostgreSQL a scratch database is created next to the one in the URL and dropped afterwards, and
the bulk-loaded table is ANALYZEd (as autovacuum would soon do in production); `--no-analyze` keeps
the planner's statistics cold, the worst case right after a bulk load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from inspection import store
from inspection.config import Settings
from inspection.services import context, review


@contextmanager
def scratch_database(url: str | None) -> Iterator[tuple[str, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        if not url or url.startswith("sqlite"):
            yield url or f"sqlite:///{tmp}/bench.db", Path(tmp)
            return
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False), Path(tmp)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


def bulk_enqueue(engine: sa.Engine, *, n: int, stations: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with store.write_session(engine) as s:
        img = store.get_or_add_image(
            s,
            image=store.ImageRow(
                sha256="0" * 64, path="images/00/x.png", size_bytes=1, first_station="s0", received_at=start
            ),
        )
        image_id = img.id
    table = store.InspectionRow.__table__  # type: ignore[attr-defined]
    chunk = 10_000
    for lo in range(0, n, chunk):
        rows = [
            {
                "image_id": image_id,
                "station": f"s{i % stations}",
                "received_at": start + timedelta(seconds=i),
                "policy_version": 1,
                "level": "partial",
                "route": "review",
                "show_model": True,
                "audit": False,
                "reason": "bench",
                "status": "queued",
                "priority": (i % 1000) / 2000.0,
                "score": 0.5,
            }
            for i in range(lo, min(n, lo + chunk))
        ]
        with store.write_session(engine) as s:
            s.execute(sa.insert(table), rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2_000)
    ap.add_argument("--stations", type=int, default=4)
    ap.add_argument("--no-analyze", action="store_true", help="PostgreSQL: skip ANALYZE after the bulk load")
    args = ap.parse_args()

    with scratch_database(args.database_url) as (url, tmp):
        settings = Settings(data_dir=tmp / "data", database_url=url)
        with context.Pipeline.create(settings, scorer_factory=lambda name: None) as app:  # type: ignore[arg-type,return-value]
            t0 = time.perf_counter()
            bulk_enqueue(app.engine, n=args.items, stations=args.stations)
            analyzed = store.is_postgres(app.engine) and not args.no_analyze
            if analyzed:
                with app.engine.connect() as conn:
                    conn.execute(sa.text("ANALYZE inspections"))
                    conn.commit()
            print(
                f"backend: {app.engine.dialect.name}; inserted {args.items} queued items "
                f"in {time.perf_counter() - t0:.1f} s" + ("; ANALYZEd" if analyzed else "")
            )
            for order in ("oldest", "uncertain"):
                for station in (None, "s1"):
                    times = []
                    for _ in range(args.rounds // 4):
                        t = time.perf_counter()
                        task = review.claim_next(app, inspector="bench", station=station, order=order)  # type: ignore[arg-type]
                        assert task is not None
                        review.submit_label(
                            app, inspection_id=task.inspection_id, inspector="bench", label="ok"
                        )
                        times.append((time.perf_counter() - t) * 1000.0)
                    q = statistics.quantiles(times, n=100)
                    print(
                        f"claim+submit  order={order:<9} station={station or 'any':<4} n={len(times)}: "
                        f"p50 {q[49]:.2f} ms  p99 {q[98]:.2f} ms  mean {statistics.fmean(times):.2f} ms"
                    )
            depth = sum(d.count for d in review.queue_depth(app))
            print(f"items still waiting: {depth}")


if __name__ == "__main__":
    main()
