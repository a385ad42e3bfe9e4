"""Failures that say what happened, through real HTTP: decode overload (503 + Retry-After), the
database gone (503, one log line), a read-only data dir (503), odd values (4xx, never 500), the
keep-alive connection after errors, unfinished files cleaned at start, `serve` waiting for its database."""

from __future__ import annotations

import http.client
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from inspection import store
from inspection.api.app import create_app
from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import accounts, context, policies, tokens
from tests.fakes import BrightnessScorer, Models, level_for, png

PW = "a-long-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """A real uvicorn server on a free 127.0.0.1 port in a thread; stopped on exit."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "test server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _app(settings: Settings, **update: object) -> FastAPI:
    return create_app(settings.model_copy(update=update), scorer_factory=Models({"baseline": BrightnessScorer()}))


def _station(ctx: context.Pipeline) -> dict[str, str]:
    policies.set_policy(ctx, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
    return {"Authorization": f"Bearer {tokens.create_token(ctx, station='s1')}"}


def _upload(data: bytes, name: str = "a.png") -> dict[str, tuple[str, bytes, str]]:
    return {"image": (name, data, "image/png")}


def big_png(side: int) -> bytes:
    """A few KB of PNG that decodes to side x side x 3 bytes (the issue's memory attack, scaled down)."""
    ok, buf = cv2.imencode(".png", np.zeros((side, side, 3), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return buf.tobytes()


def test_parallel_large_decodes_are_bounded_and_refused_with_retry_after(settings: Settings) -> None:
    side = 3000  # 9 Mpx each; the budget holds one and a half: never two at once
    image = big_png(side)
    assert len(image) < 100_000
    app = _app(settings, max_concurrent_decodes=2, decode_budget_megapixels=13.5, decode_wait_seconds=0)
    ctx: context.Pipeline = app.state.pipeline
    headers = _station(ctx)
    start = threading.Barrier(16)

    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as client:

        def one(i: int) -> httpx.Response:
            start.wait()
            data = {"station": "s1"}
            return client.post("/api/v1/inspections", files=_upload(image), data=data, headers=headers)

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(one, range(16)))
        statuses = [r.status_code for r in answers]
        busy = [r for r in answers if r.status_code == 503]
        assert busy, statuses
        assert all(int(r.headers["Retry-After"]) >= 1 and "busy" in r.json()["detail"] for r in busy)
        assert set(statuses) <= {201, 200, 503}, statuses
        assert ctx.decodes.peak_in_flight == 1  # the pixel budget, not the slot count, was the bound here
        assert ctx.decodes.peak_pixels <= 13_500_000
        assert ctx.decodes.in_flight == 0 and ctx.decodes.pixels_in_flight == 0
        # Nothing half-done: the refused ones succeed when retried.
        retry = client.post("/api/v1/inspections", files=_upload(image), data={"station": "s1"}, headers=headers)
        assert retry.status_code == 201


def _dead_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        return "sqlite:////nonexistent-dir/inspection.db"  # "unable to open database file"
    return f"postgresql+psycopg://nobody:x@127.0.0.1:{_free_port()}/none?connect_timeout=2"


def test_database_gone_mid_run_answers_503_with_one_log_line(
    db_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app(db_settings)
    ctx: context.Pipeline = app.state.pipeline
    headers = _station(ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/api/v1/inspections", files=_upload(png(90)), data={"station": "s1"}, headers=headers)
        real = ctx.engine
        ctx.engine = store.make_engine(_dead_url(db_settings.database_url))
        try:
            caplog.clear()
            with caplog.at_level(logging.ERROR, logger="inspection.api"):
                r = client.post("/api/v1/inspections", files=_upload(png(91)), data={"station": "s1"}, headers=headers)
            assert r.status_code == 503 and r.headers["Retry-After"] == "5"
            assert r.json() == {"detail": "database unavailable, retry later"}  # no host, port or user
            lines = [rec for rec in caplog.records if rec.name == "inspection.api"]
            assert len(lines) == 1 and lines[0].exc_info is None
            assert "database unavailable" in lines[0].getMessage()
            assert client.get("/api/v1/inspections/1", headers=headers).status_code == 503
        finally:
            ctx.engine.dispose()
            ctx.engine = real
        # back: the same app serves again
        assert client.post("/api/v1/inspections", files=_upload(png(92)), data={"station": "s1"}, headers=headers)
        assert client.get("/healthz").status_code == 200


RO_WORKER = """
import json, sys
from fastapi.testclient import TestClient
from inspection.api.app import create_app
from inspection.config import Settings
from tests.fakes import BrightnessScorer, Models, png

settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2], models_dir=sys.argv[1] + "/models")
app = create_app(settings, scorer_factory=Models({"baseline": BrightnessScorer()}))
with TestClient(app, raise_server_exceptions=False) as client:
    r = client.post("/api/v1/inspections", files={"image": ("a.png", png(77), "image/png")},
                    data={"station": "s1"}, headers={"Authorization": "Bearer " + sys.argv[3]})
    print(json.dumps({"status": r.status_code, "retry": r.headers.get("retry-after"), "body": r.json()}))
"""


def test_read_only_data_dir_answers_503(tmp_path: Path) -> None:
    """A really read-only data dir, as root too: a read-only bind mount of it in a private mount
    namespace (`unshare --mount`), so writes fail with EROFS and nothing leaks to the host's mounts.
    The database lives elsewhere (as with PostgreSQL), so only the image store fails."""
    assert shutil.which("unshare"), "util-linux `unshare` is needed for the read-only data dir test"
    data = tmp_path / "data"
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    settings = Settings(data_dir=data, database_url=db_url, models_dir=data / "models")
    with context.Pipeline.create(settings) as ctx:
        token = _station(ctx)["Authorization"].removeprefix("Bearer ")
    (data / "images").mkdir(exist_ok=True)
    script = f'mount --bind "{data}" "{data}" && mount -o remount,bind,ro "{data}" && exec "$@"'
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
           sys.executable, "-c", RO_WORKER, str(data), db_url, token]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert out.returncode == 0, out.stderr[-3000:]
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer == {"status": 503, "retry": "5", "body": {"detail": "storage unavailable, retry later"}}
    assert "storage unavailable: Read-only file system" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.fixture
def client(db_settings: Settings) -> Iterator[TestClient]:
    with TestClient(_app(db_settings), raise_server_exceptions=False) as c:
        yield c


def test_odd_values_answer_4xx_never_500(client: TestClient, db_settings: Settings) -> None:
    ctx: context.Pipeline = client.app.state.pipeline  # type: ignore[attr-defined]
    headers = _station(ctx)
    accounts.add_user(ctx, name="ann", role="inspector", password=PW)
    accounts.add_user(ctx, name="eve", role="engineer", password=PW)
    ann = ("ann", PW)
    huge = 2**64
    for method, path, kw in (
        ("GET", f"/api/v1/inspections/{huge}", {"headers": headers}),
        ("GET", f"/api/v1/inspections/{huge}/image", {"headers": headers}),
        ("GET", "/api/v1/inspections/0", {"headers": headers}),
        ("POST", f"/api/v1/inspections/{huge}/label", {"auth": ann, "json": {"label": "ok"}}),
        ("POST", f"/api/v1/inspections/{huge}/skip", {"auth": ann}),
    ):
        assert client.request(method, path, **kw).status_code == 422, path  # type: ignore[arg-type]

    r = client.post("/api/v1/inspections", files=_upload(b""), data={"station": "s1"}, headers=headers)
    assert r.status_code == 422 and r.json()["detail"] == "empty file"
    r = client.post("/api/v1/inspections", files=_upload(png(90)), data={"station": "s\x001"}, headers=headers)
    assert r.status_code in (403, 422)
    # 5,000 characters: the multipart parser refuses the part header itself (400), nothing stored.
    r = client.post("/api/v1/inspections", files=_upload(png(94), "x" * 5000 + ".png"), data={"station": "s1"},
                    headers=headers)
    assert r.status_code == 400 and r.json() == {"detail": "Invalid multipart data."}
    for name in ("y" * 4000 + ".png", "a\x00b.png"):
        r = client.post("/api/v1/inspections", files=_upload(png(93), name), data={"station": "s1"}, headers=headers)
        assert r.status_code == 201, r.text
        with ctx.read() as s:
            image = store.get_image(s, image_id=store.get_inspection(s, inspection_id=r.json()["id"]).image_id)
        assert image is not None and image.source_name is not None
        assert len(image.source_name) <= 255 and "\x00" not in image.source_name

    # NUL in free text: PostgreSQL refuses it in text columns; that is the client's 422, not a 500.
    client.post("/api/v1/inspections", files=_upload(png(level_for(0.5))), data={"station": "s1"}, headers=headers)
    claim = client.post("/api/v1/queue/claim", auth=ann)
    assert claim.status_code == 200
    item = claim.json()["inspection_id"]
    r = client.post(f"/api/v1/inspections/{item}/label", auth=ann, json={"label": "ok", "note": "a\x00b"})
    assert r.status_code in (201, 422) and r.status_code == (422 if "postgresql" in db_settings.database_url else 201)
    r = client.get("/api/v1/reports/audit", params={"station": "a\x00b"}, auth=("eve", PW))
    assert r.status_code < 500


def test_validation_errors_are_not_logged_with_tracebacks(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert client.get("/api/v1/inspections/abc", headers={"Authorization": "Bearer x"}).status_code in (401, 422)
        assert client.post("/api/v1/session", json={"name": 5}).status_code == 422
    assert not [rec for rec in caplog.records if rec.exc_info]


def test_keep_alive_connection_survives_errors(db_settings: Settings) -> None:
    app = _app(db_settings)
    ctx: context.Pipeline = app.state.pipeline
    auth = _station(ctx)["Authorization"]
    with serving(app) as url:
        conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        conn.connect()
        sock = conn.sock

        def ask(method: str, path: str, body: bytes | None = None, ctype: str | None = None) -> int:
            headers = {"Authorization": auth} | ({"Content-Type": ctype} if ctype else {})
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert (resp.getheader("connection") or "").lower() != "close", (path, resp.status)
            return resp.status

        assert ask("GET", f"/api/v1/inspections/{2**70}") == 422
        assert ask("GET", "/api/v1/inspections/999") == 404
        assert ask("POST", "/api/v1/inspections", b"garbage", "multipart/form-data; boundary=x") in (400, 422)
        real = ctx.engine
        ctx.engine = store.make_engine(_dead_url(db_settings.database_url))
        try:
            assert ask("GET", "/api/v1/inspections/1") == 503
        finally:
            ctx.engine.dispose()
            ctx.engine = real
        assert ask("GET", "/healthz") == 200
        assert conn.sock is sock  # the same TCP connection all along
        conn.close()


def test_unfinished_tmp_files_are_removed_at_start(settings: Settings) -> None:
    folder = settings.images_dir / "ab"
    folder.mkdir(parents=True)
    stale, fresh, kept = folder / ".tmp-crashed", folder / ".tmp-writing-now", folder / "ab12.png"
    for p in (stale, fresh, kept):
        p.write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(kept, (hour_ago, hour_ago))
    with context.Pipeline.create(settings):
        pass
    assert not stale.exists()
    assert fresh.exists()  # may belong to another server process writing right now
    assert kept.exists()


def test_serve_with_the_database_down_says_so_and_gives_up(tmp_path: Path) -> None:
    dead = f"postgresql+psycopg://nobody:secret-pw@127.0.0.1:{_free_port()}/none?connect_timeout=2"
    env = {
        "INSPECTION_DATA_DIR": str(tmp_path / "data"),
        "INSPECTION_DATABASE_URL": dead,
        "INSPECTION_STARTUP_DB_ATTEMPTS": "2",
    }
    result = CliRunner().invoke(build_app(), ["serve", "--port", str(_free_port())], env=env)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unavailable at postgresql+psycopg://nobody:***@127.0.0.1")
    assert "retry 2/2 in 1 s" in lines[0] and "giving up after 2 tries" in lines[1]
    assert "secret-pw" not in result.output and "Traceback" not in result.output
