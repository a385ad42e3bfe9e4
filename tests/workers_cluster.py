"""Drive a real `inspection serve --workers N` from client threads: shared by tests/integration/
test_workers.py and scripts/bench_workers.py (the same path measured and tested).

The server runs as a subprocess in its own process group (stopped with SIGTERM, then SIGKILL), on a
free 127.0.0.1 port, against a database and data dir the caller prepared through the services. Each
ingest client keeps one HTTP connection (so the kernel spreads the clients over the workers); the
propagation checks open a new connection per request (`Connection: close`) so that different
workers answer, named by the `X-Served-By` header (their pid).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import sqlalchemy as sa

from inspection import store
from inspection.config import Settings
from inspection.services import accounts, policies, tokens
from inspection.services.context import Pipeline

REPO = Path(__file__).resolve().parents[1]
INSPECTION = Path(sys.executable).with_name("inspection")  # the console script of this venv
STARTUP_SECONDS = 180.0  # N workers each import FastAPI + Gradio + ONNX Runtime on 2 shared cores
RETRIES = 60  # 503 answers one ingest may get before the client gives up
PASSWORD = "workers-test-password-1"  # noqa: S105  (a throwaway database)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_jpegs(n: int, *, size: tuple[int, int] = (640, 360), distinct: int = 48, seed: int = 4242) -> list[bytes]:
    """`n` JPEG phone photos, all with different bytes (so none is stored as a duplicate): `distinct`
    rendered photos (half scratched), each copy carrying its number in a JPEG comment segment (the
    same pixels, so the same decoding and model cost)."""
    from inspection.vision.synth import render

    bases = []
    for i in range(min(n, distinct)):
        ok, buf = cv2.imencode(".jpg", render(seed, i, scratch=i % 2 == 0, size=size).image)
        assert ok
        bases.append(buf.tobytes())
    out = []
    for i in range(n):
        base = bases[i % len(bases)]
        comment = f"copy {i}".encode()
        segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment  # COM, right after SOI
        out.append(base[:2] + segment + base[2:])
    return out


@dataclass(frozen=True)
class Setup:
    station: str
    token: str  # the station's API token
    engineer: str
    inspectors: tuple[str, ...]


def prepare(app: Pipeline, *, station: str, inspectors: int, level: str = "ai_assist") -> Setup:
    """Policy (`ai_assist`: the model runs and every item goes to a person), a station token, one
    engineer and `inspectors` inspectors, all with PASSWORD."""
    policies.set_policy(app, station=station, by="setup", reason="workers test", level=level)
    token = tokens.create_token(app, station=station)
    accounts.add_user(app, name="eng", role="engineer", password=PASSWORD)
    names = tuple(f"insp{i}" for i in range(inspectors))
    for name in names:
        accounts.add_user(app, name=name, role="inspector", password=PASSWORD)
    return Setup(station=station, token=token, engineer="eng", inspectors=names)


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INSPECTION_", "PROMETHEUS_"))}
    return env | {
        "INSPECTION_DATA_DIR": str(settings.data_dir),
        "INSPECTION_MODELS_DIR": str(settings.models_dir),
        "INSPECTION_DATABASE_URL": settings.database_url,
        "INSPECTION_EXPOSE_METRICS": "true",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **extra,
    }


@contextmanager
def serve(*, workers: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """`inspection serve --workers N` on a free port; yields its base URL once /healthz answers."""
    port, ui_port = free_port(), free_port()
    cmd = [str(INSPECTION), "serve", "--workers", str(workers), "--port", str(port), "--ui-port", str(ui_port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not (_healthy(base) and _healthy(f"http://127.0.0.1:{ui_port}")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start (exit {proc.poll()}): {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        _stop(proc)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the supervisor stops its workers (their lifespan shutdown)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def answer_pid(
    base: str, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[httpx.Response, str]:
    """One request on a new connection: the response and the pid of the worker that answered."""
    r = httpx.request(method, f"{base}{path}", headers=(headers or {}) | {"Connection": "close"}, timeout=60, **kwargs)
    return r, r.headers.get("x-served-by", "")


def wait_for_workers(base: str, n: int, *, timeout: float = STARTUP_SECONDS) -> set[str]:
    """Until `n` different workers have answered (they finish starting at different times)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < n and time.monotonic() < deadline:
        seen.add(answer_pid(base, "/healthz")[1])
    return seen - {""}


@dataclass
class ClientStats:
    retries: int = 0  # 503 answers (decode slots full) retried with the same Idempotency-Key


def ingest_all(
    base: str, setup: Setup, images: Sequence[bytes], *, clients: int = 8, stats: ClientStats | None = None
) -> list[dict[str, object]]:
    """POST every image from `clients` threads (one connection each), retrying 503 with the same
    Idempotency-Key as a camera would; the responses' JSON."""
    local = threading.local()
    stats = stats or ClientStats()

    def one(i: int) -> dict[str, object]:
        if not hasattr(local, "http"):
            local.http = httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {setup.token}"})
        for _attempt in range(RETRIES):
            r = local.http.post(
                "/api/v1/inspections",
                files={"image": (f"{i}.jpg", images[i], "image/jpeg")},
                data={"station": setup.station},
                # A retry after 503 (the server's back-pressure) must never store the item twice.
                headers={"Idempotency-Key": f"item-{i}"},
            )
            if r.status_code != 503:
                break
            stats.retries += 1
            time.sleep(min(float(r.headers.get("retry-after", "1")), 1.0))  # s; the bench counts retries
        if r.status_code not in (200, 201):
            raise RuntimeError(f"ingest {i}: {r.status_code} {r.text[:200]}")
        return dict(r.json()) | {"served_by": r.headers.get("x-served-by", "")}

    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(one, range(len(images))))


@contextmanager
def login(base: str, name: str) -> Iterator[httpx.Client]:
    """A client holding `name`'s session cookie (one argon2 check per login, not per request)."""
    with httpx.Client(base_url=base, timeout=120) as http:
        http.post("/api/v1/session", json={"name": name, "password": PASSWORD}).raise_for_status()
        yield http


def label_all(base: str, setup: Setup, *, station: str | None = None) -> int:
    """Each inspector (one thread each) claims and labels until the queue is empty; labels stored."""

    def drain(name: str) -> int:
        done = 0
        with login(base, name) as http:
            while True:
                r = http.post("/api/v1/queue/claim", json={"station": station or setup.station})
                if r.status_code == 204:
                    return done
                r.raise_for_status()
                item = int(r.json()["inspection_id"])
                label = "scratch" if item % 2 else "ok"
                out = http.post(f"/api/v1/inspections/{item}/label", json={"label": label})
                if out.status_code != 201:
                    raise RuntimeError(f"label {item}: {out.status_code} {out.text[:200]}")
                done += 1

    with ThreadPoolExecutor(len(setup.inspectors)) as pool:
        return sum(pool.map(drain, setup.inspectors))


@dataclass(frozen=True)
class Counts:
    inspections: int  # rows stored for the station
    images: int  # distinct images among them
    labelled: int  # inspections with a live final label
    doubled: int  # inspections with more than one live final label (the database forbids it)


def counts(app: Pipeline, *, station: str) -> Counts:
    """Row counts straight from the database (what was really stored, whatever the clients saw)."""
    i: Any = store.InspectionRow.__table__.c  # type: ignore[attr-defined]
    r: Any = store.ReviewRow.__table__.c  # type: ignore[attr-defined]
    live = sa.and_(r.undone_at.is_(None), r.is_final)
    per_item = (
        sa.select(r.inspection_id, sa.func.count().label("n"))
        .join_from(store.ReviewRow, store.InspectionRow, i.id == r.inspection_id)
        .where(i.station == station, live)
        .group_by(r.inspection_id)
        .subquery()
    )
    with app.read() as s:
        n, images = s.execute(
            sa.select(sa.func.count(), sa.func.count(sa.distinct(i.image_id))).where(i.station == station)
        ).one()
        labelled, doubled = s.execute(
            sa.select(sa.func.count(), sa.func.count().filter(per_item.c.n > 1)).select_from(per_item)
        ).one()
    return Counts(int(n), int(images), int(labelled), int(doubled))
