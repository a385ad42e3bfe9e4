"""`inspection serve --workers N` on PostgreSQL: real worker processes, real model, 8 client threads.

Nothing lost, nothing doubled (counted in the database); a logout, a deployment change and a policy
change made through one process apply in every other one at once (each request on a new connection,
so that different workers answer: `X-Served-By` names the pid); `/metrics` from any worker sums all
of them and passes `promtool check metrics`. Sized to stay well under 2 minutes per process count
on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inspection import store
from inspection.config import Settings
from inspection.services import background, deploy
from inspection.services.context import Pipeline
from tests.workers_cluster import (
    PASSWORD,
    REPO,
    Setup,
    answer_pid,
    counts,
    ingest_all,
    label_all,
    login,
    make_jpegs,
    prepare,
    serve,
    server_env,
    wait_for_workers,
)

pytestmark = pytest.mark.postgres

ITEMS = 100  # ingested and labelled per process count
STATION = "line1"
SPREAD_TRIES = 40  # new connections tried until two different workers have answered


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped baseline, plus a copy declaring version `b2` (a second model to deploy)."""
    root = tmp_path_factory.mktemp("models")
    shutil.copytree(REPO / "models" / "baseline", root / "baseline")
    shutil.copytree(REPO / "models" / "baseline", root / "b2")
    meta = json.loads((root / "b2" / "model.json").read_text())
    (root / "b2" / "model.json").write_text(json.dumps(meta | {"version": "b2"}))
    return root


@pytest.fixture
def app(tmp_path: Path, postgres_url: str, models_dir: Path) -> Iterator[Pipeline]:
    (tmp_path / "data").mkdir()
    settings = Settings(data_dir=tmp_path / "data", models_dir=models_dir, database_url=postgres_url)
    with Pipeline.create(settings) as pipeline:
        yield pipeline


def _engineer_cookie(base: str, setup: Setup) -> dict[str, str]:
    with login(base, setup.engineer) as http:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in http.cookies.items())}


def _until_two_workers(ask: Callable[[int], str]) -> set[str]:
    """Call `ask(i)` (one request on a new connection; it checks the answer and returns the pid) until
    two different workers have answered; the kernel may hand several new connections in a row to one."""
    pids: set[str] = set()
    for i in range(SPREAD_TRIES):
        pids.add(ask(i))
        if len(pids) >= 2:
            return pids
    raise AssertionError(f"only worker {pids} answered {SPREAD_TRIES} new connections")


def _check_logout_everywhere(base: str, setup: Setup) -> None:
    cookie = _engineer_cookie(base, setup)
    assert answer_pid(base, "/api/v1/me", headers=cookie)[0].status_code == 200
    r, _ = answer_pid(base, "/api/v1/session", method="DELETE", headers=cookie)
    assert r.status_code == 204

    def refused(_i: int) -> str:
        answer, pid = answer_pid(base, "/api/v1/me", headers=cookie)
        assert answer.status_code == 401, pid  # the session ended in every process
        return pid

    _until_two_workers(refused)


def _check_deployment_change(app: Pipeline, base: str, setup: Setup, images: list[bytes]) -> int:
    """Shadow `b2` from another process; every later item, whichever worker takes it, is also scored
    by b2. Returns the number of items ingested."""
    deploy.shadow(app, version="b2", by="eng", reason="workers test")  # as the CLI on another machine would
    headers = {"Authorization": f"Bearer {setup.token}"}
    sent = 0

    def shadowed(i: int) -> str:
        nonlocal sent
        r, pid = answer_pid(
            base, "/api/v1/inspections", method="POST", headers=headers,
            files={"image": (f"d{i}.jpg", images[i], "image/jpeg")}, data={"station": STATION},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        sent += 1
        with app.read() as s:
            roles = {(p.role, p.model_version) for p in store.predictions_for(s, inspection_id=r.json()["id"])}
        assert ("shadow", "b2") in roles, (pid, roles)
        return pid

    _until_two_workers(shadowed)
    return sent


def _check_policy_change(base: str, setup: Setup) -> None:
    cookie = _engineer_cookie(base, setup)
    body = {"level": "human_only", "reason": "workers test"}
    r, changed_by = answer_pid(base, f"/api/v1/policies/{STATION}", method="PUT", headers=cookie, json=body)
    assert r.status_code == 200, r.text
    version, done = r.json()["version"], time.monotonic()

    def changed(_i: int) -> str:
        answer, pid = answer_pid(base, f"/api/v1/policies/{STATION}", headers=cookie)
        # Every answer after the change already shows it, from any worker (read from the database):
        # the issue allows a second.
        assert answer.json()["current"]["version"] == version, (pid, time.monotonic() - done)
        return pid

    assert _until_two_workers(changed) - {changed_by}  # a worker other than the one that made the change


def _scrape(base: str) -> tuple[str, str]:
    r, pid = answer_pid(base, "/metrics")
    assert r.status_code == 200
    return r.text, pid


def _value(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _check_ui_process(base: str, setup: Setup) -> None:
    """The workers send a browser to the one UI process (Gradio state is per process), where login works."""
    first = httpx.get(f"{base}/review/", follow_redirects=False, timeout=30)
    assert first.status_code == 307
    ui = httpx.URL(first.headers["location"])
    assert ui.port != httpx.URL(base).port and ui.path == "/review/"
    with httpx.Client(base_url=f"http://127.0.0.1:{ui.port}", timeout=60) as browser:
        assert browser.get("/login").status_code == 200
        r = browser.post("/api/v1/session", json={"name": setup.engineer, "password": PASSWORD})
        assert r.status_code in (200, 201, 204), r.text
        assert browser.get("/engineer/", follow_redirects=False).status_code == 200


def _check_metrics(base: str, workers: int, ingested: int) -> None:

    def scrape(_i: int) -> str:
        text, pid = _scrape(base)
        last[0] = text
        assert _value(text, "inspection_items_total", station=STATION) == ingested  # totals of all workers
        created = _value(text, "inspection_http_requests_total", path="/api/v1/inspections", status="201")
        assert created == ingested  # (503 answers, retried by the clients, are counted apart)
        memory = {s.labels["pid"] for f in text_string_to_metric_families(text) for s in f.samples
                  if s.name == "process_resident_memory_bytes"}  # fmt: skip
        assert len(memory) == workers + 1  # one series per live worker, and the web UI's process
        return pid

    last = [""]
    _until_two_workers(scrape)
    text = last[0]
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run `make sysdeps` (Debian package prometheus)"
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_share_one_database(app: Pipeline, tmp_path: Path, workers: int) -> None:
    setup = prepare(app, station=STATION, inspectors=8)
    images = make_jpegs(ITEMS + SPREAD_TRIES, seed=4242 + workers)
    env = server_env(app.settings, INSPECTION_THREADS="1", INSPECTION_MONITOR_INTERVAL_SECONDS="1")
    with serve(workers=workers, env=env, log=tmp_path / "serve.log") as base:
        assert len(wait_for_workers(base, workers)) == workers

        answers = ingest_all(base, setup, images[:ITEMS], clients=8)
        assert len({a["id"] for a in answers}) == ITEMS
        assert len({a["served_by"] for a in answers}) >= 2
        assert label_all(base, setup) == ITEMS
        got = counts(app, station=STATION)
        assert (got.inspections, got.images, got.labelled, got.doubled) == (ITEMS, ITEMS, ITEMS, 0)

        _check_logout_everywhere(base, setup)
        more = _check_deployment_change(app, base, setup, images[ITEMS:])
        _check_policy_change(base, setup)
        _check_ui_process(base, setup)
        _check_metrics(base, workers, ingested=ITEMS + more)
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_one_process_at_a_time_makes_the_background_pass(database_url: str, tmp_path: Path) -> None:
    """services.background: the lock is the database's (two engines stand for two processes); a
    holder that ends releases it."""
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path, database_url=database_url)
    with Pipeline.create(settings) as one, Pipeline.create(settings, upgrade=False) as two:
        with background.turn(one) as first, background.turn(two) as second:
            assert (first, second) == (True, False)
        with background.turn(two) as again:
            assert again
