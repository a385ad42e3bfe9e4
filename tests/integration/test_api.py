"""HTTP API with FastAPI's TestClient on a real database (SQLite and PostgreSQL) and a fake model."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import col

from inspection import store
from inspection.api.app import create_app
from inspection.config import Settings
from inspection.services import context, policies, tokens
from inspection.services.accounts import COOKIE_NAME, add_user, get_user
from tests.fakes import BrightnessScorer, Models, jpeg, level_for, png

PW = "a-long-password"


@pytest.fixture
def client(db_settings: Settings) -> Iterator[TestClient]:
    settings = db_settings.model_copy(update={"max_upload_bytes": 200_000, "expose_metrics": True})
    app = create_app(settings, scorer_factory=Models({"baseline": BrightnessScorer()}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def ctx(client: TestClient) -> context.Pipeline:
    return client.app.state.pipeline  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def auth(ctx: context.Pipeline) -> dict[str, str]:
    policies.set_policy(
        ctx, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9
    )
    return {"Authorization": f"Bearer {tokens.create_token(ctx, station='s1')}"}


@pytest.fixture
def people(ctx: context.Pipeline) -> None:
    for name, role in (("ann", "inspector"), ("bob", "inspector"), ("eve", "engineer")):
        add_user(ctx, name=name, role=role, password=PW)


def basic(name: str, password: str = PW) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def login_cookie(client: TestClient, name: str) -> dict[str, str]:
    """Log in through the API like the web UI does; the session cookie as a header of its own."""
    r = client.post("/api/v1/session", json={"name": name, "password": PW})
    assert r.status_code == 200, r.text
    client.cookies.clear()  # the caller sends it explicitly: no accidental sharing between users
    return {"Cookie": f"{COOKIE_NAME}={r.cookies[COOKIE_NAME]}"}


def live_review(ctx: context.Pipeline, inspection_id: int) -> tuple[str, str] | None:
    with ctx.read() as s:
        review = store.active_review(s, inspection_id=inspection_id)
    return None if review is None else (review.inspector, review.label)


def post(
    client: TestClient, data: bytes, headers: dict[str, str], station: str | None = "s1", name: str = "a.png"
):
    form = {} if station is None else {"station": station}
    return client.post(
        "/api/v1/inspections", files={"image": (name, data, "image/png")}, data=form, headers=headers
    )


def test_ingest_returns_the_decision_and_get_reads_it_back(client: TestClient, auth: dict[str, str]) -> None:
    r = post(client, png(level_for(0.02)), auth)
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in ("station", "route", "decided_by", "label")} == {
        "station": "s1", "route": "auto_pass", "decided_by": "model", "label": "ok",
    }  # fmt: skip
    assert (
        body["score"] == pytest.approx(0.02, abs=0.003)
        and body["reason"]
        and body["model_version"] == "fake-1"
    )
    got = client.get(f"/api/v1/inspections/{body['id']}", headers=auth)
    assert got.status_code == 200 and got.json() == body


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}])
def test_missing_or_invalid_token_is_401(
    client: TestClient, auth: dict[str, str], headers: dict[str, str]
) -> None:
    r = post(client, png(3), headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/inspections/1", headers=headers).status_code == 401


def test_token_of_another_station_is_refused(
    client: TestClient, auth: dict[str, str], ctx: context.Pipeline
) -> None:
    r = post(client, png(3), auth, station="s2")
    assert r.status_code == 403
    other = {"Authorization": f"Bearer {tokens.create_token(ctx, station='s2')}"}
    made = post(client, png(3), auth).json()
    assert client.get(f"/api/v1/inspections/{made['id']}", headers=other).status_code == 404


def test_missing_station_is_422(client: TestClient, auth: dict[str, str]) -> None:
    r = post(client, png(3), auth, station=None)
    assert r.status_code == 422 and "station" in r.text


def test_over_the_limit_is_413_by_content_length(client: TestClient, auth: dict[str, str]) -> None:
    big = jpeg(800, 600)  # > 200 kB of noise
    assert len(big) > 264_000
    r = post(client, big, auth)
    assert r.status_code == 413
    assert post(client, png(3), auth).status_code == 201  # the server is still up


def test_over_the_limit_is_413_while_streaming_without_content_length(
    client: TestClient, auth: dict[str, str]
) -> None:
    boundary = "xyz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="station"\r\n\r\ns1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:  # chunked: the server only learns the size by counting
        yield head
        for _ in range(100):
            yield b"\xff" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = auth | {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    r = client.post("/api/v1/inspections", content=body(), headers=headers)
    assert r.status_code == 413


def test_image_part_over_the_limit_within_the_framing_allowance_is_413(
    client: TestClient, auth: dict[str, str]
) -> None:
    r = post(client, b"\xff\xd8\xff" + b"0" * 200_000, auth)
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_not_an_image_is_415_and_recorded_for_a_person(client: TestClient, auth: dict[str, str]) -> None:
    r = post(client, b"hello, I am a text file", auth, name="notes.txt")
    assert r.status_code == 415
    body = r.json()
    assert "not a supported image type" in body["detail"]
    item = body["inspection"]
    assert item["route"] == "review" and item["label"] is None and item["decided_by"] is None
    got = client.get(f"/api/v1/inspections/{item['id']}", headers=auth).json()
    assert got["route"] == "review"


def test_recognised_but_broken_image_is_422_and_recorded(client: TestClient, auth: dict[str, str]) -> None:
    r = post(client, png(3)[:60], auth)
    assert r.status_code == 422
    body = r.json()
    assert body["detail"] and body["inspection"]["route"] == "review"


def test_idempotent_retry_returns_the_first_result(client: TestClient, auth: dict[str, str]) -> None:
    h = auth | {"Idempotency-Key": "cam-7"}
    first = post(client, png(level_for(0.5)), h)
    again = post(client, png(level_for(0.5)), h)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert post(client, png(9), h).status_code == 409
    # An undecodable upload replays its 415 too.
    bad = auth | {"Idempotency-Key": "cam-8"}
    assert post(client, b"junk", bad).status_code == 415
    assert post(client, b"junk", bad).status_code == 415


def test_review_queue_endpoints(
    client: TestClient, auth: dict[str, str], ctx: context.Pipeline, people: None
) -> None:
    made = post(client, png(level_for(0.5)), auth).json()
    ann, bob = basic("ann"), basic("bob")
    r = client.post("/api/v1/queue/claim", json={}, headers=ann)
    assert r.status_code == 200
    task = r.json()
    assert task["inspection_id"] == made["id"] and task["show_model"] and task["score"] == made["score"]
    for who in (ann, auth):  # the reviewer and the station that sent it may both read the image
        img = client.get(task["image_url"], headers=who)
        assert img.status_code == 200 and img.content.startswith(b"\x89PNG")
    assert client.get(task["image_url"]).status_code == 401
    assert client.post("/api/v1/queue/claim", headers=bob).status_code == 204  # no body: defaults
    url = f"/api/v1/inspections/{made['id']}/label"
    first = client.post(url, json={"label": "scratch"}, headers=ann)
    second = client.post(url, json={"label": "scratch"}, headers=ann)
    assert (
        first.status_code == 201
        and second.status_code == 200
        and first.json()["review_id"] == second.json()["review_id"]
    )
    assert live_review(ctx, made["id"]) == ("ann", "scratch")
    assert client.post(url, json={"label": "ok"}, headers=bob).status_code == 409
    assert client.post(url, json={"label": "maybe"}, headers=ann).status_code == 422
    undo = client.post("/api/v1/queue/undo", headers=ann)
    assert undo.status_code == 200 and undo.json()["inspection_id"] == made["id"]
    assert live_review(ctx, made["id"]) is None
    skip = client.post(f"/api/v1/inspections/{made['id']}/skip", json={"reason": "glare"}, headers=ann)
    assert skip.status_code == 204
    assert client.post("/api/v1/queue/undo", json={}, headers=bob).status_code == 409
    assert client.post("/api/v1/inspections/999999/label", json={"label": "ok"}, headers=ann).status_code == 404
    # The item ann skipped goes to bob, and only to bob's name.
    assert client.post("/api/v1/queue/claim", json={"station": "s1"}, headers=bob).json()["inspection_id"] == made["id"]
    assert client.post(url, json={"label": "ok"}, headers=bob).status_code == 201
    assert live_review(ctx, made["id"]) == ("bob", "ok")


def test_a_session_cookie_works_like_basic_credentials(
    client: TestClient, auth: dict[str, str], ctx: context.Pipeline, people: None
) -> None:
    made = post(client, png(level_for(0.5)), auth).json()
    ann = login_cookie(client, "ann")
    task = client.post("/api/v1/queue/claim", json={"order": "uncertain"}, headers=ann)
    assert task.status_code == 200 and task.json()["inspection_id"] == made["id"]
    r = client.post(f"/api/v1/inspections/{made['id']}/label", json={"label": "ok"}, headers=ann)
    assert r.status_code == 201
    assert live_review(ctx, made["id"]) == ("ann", "ok")
    # A cookie that is not signed by this installation is nobody.
    forged = {"Cookie": f"{COOKIE_NAME}=" + ann["Cookie"].split("=", 1)[1][:-4] + "0000"}
    assert client.post("/api/v1/queue/undo", headers=forged).status_code == 401


@pytest.mark.parametrize("credentials", ["basic", "cookie"])
def test_nobody_can_label_under_another_name(
    client: TestClient, auth: dict[str, str], ctx: context.Pipeline, people: None, credentials: str
) -> None:
    first = post(client, png(level_for(0.5)), auth).json()["id"]
    second = post(client, png(level_for(0.45)), auth).json()["id"]
    ann = basic("ann") if credentials == "basic" else login_cookie(client, "ann")
    as_bob: dict[str, Any] = {"inspector": "bob"}

    claim = client.post("/api/v1/queue/claim", json=as_bob, headers=ann)
    assert claim.status_code == 403 and "ann" in claim.json()["detail"]
    with ctx.read() as s:
        assert store.get_inspection(s, inspection_id=first).status == "queued"  # type: ignore[union-attr]
    assert client.post("/api/v1/queue/claim", json={"inspector": "ann"}, headers=ann).status_code == 200

    url = f"/api/v1/inspections/{first}/label"
    assert client.post(url, json={"label": "scratch", **as_bob}, headers=ann).status_code == 403
    assert live_review(ctx, first) is None  # nothing stored under any name
    assert client.post(f"/api/v1/inspections/{first}/skip", json=as_bob, headers=ann).status_code == 403
    # An item ann was never given cannot be labelled (issue 12); her claimed one is ann's label,
    # whatever the body says elsewhere.
    assert client.post(f"/api/v1/inspections/{second}/label", json={"label": "ok"}, headers=ann).status_code == 409
    assert client.post(url, json={"label": "ok"}, headers=ann).status_code == 201
    assert live_review(ctx, first) == ("ann", "ok")
    assert client.post("/api/v1/queue/undo", json=as_bob, headers=ann).status_code == 403
    assert live_review(ctx, first) == ("ann", "ok")
    with ctx.read() as s:
        names = s.execute(sa.select(col(store.ReviewRow.inspector)).distinct()).scalars().all()
    assert names == ["ann"]


BAD_CREDENTIALS: list[tuple[str, dict[str, str]]] = [
    ("none", {}),
    ("wrong password", basic("ann", "not-the-password")),
    ("unknown user", basic("mallory")),
    ("malformed basic", {"Authorization": "Basic !!!"}),
    ("garbage cookie", {"Cookie": f"{COOKIE_NAME}=abc.def"}),
]


@pytest.mark.parametrize("headers", [h for _, h in BAD_CREDENTIALS], ids=[n for n, _ in BAD_CREDENTIALS])
def test_queue_endpoints_without_valid_user_credentials_are_401(
    client: TestClient, auth: dict[str, str], ctx: context.Pipeline, people: None, headers: dict[str, str]
) -> None:
    made = post(client, png(level_for(0.5)), auth).json()["id"]
    calls = [
        ("/api/v1/queue/claim", {}),
        (f"/api/v1/inspections/{made}/label", {"label": "ok"}),
        (f"/api/v1/inspections/{made}/skip", {}),
        ("/api/v1/queue/undo", {}),
    ]
    for url, body in calls:
        r = client.post(url, json=body, headers=headers)
        assert r.status_code == 401, (url, r.text)
        assert r.headers["www-authenticate"] == "Basic"
    assert live_review(ctx, made) is None


def test_a_station_token_cannot_use_the_queue(client: TestClient, auth: dict[str, str], ctx: context.Pipeline) -> None:
    made = post(client, png(level_for(0.5)), auth).json()["id"]
    assert client.post("/api/v1/queue/claim", json={"inspector": "ann"}, headers=auth).status_code == 401
    r = client.post(f"/api/v1/inspections/{made}/label", json={"inspector": "ann", "label": "ok"}, headers=auth)
    assert r.status_code == 401 and "station tokens cannot review" in r.json()["detail"]
    assert live_review(ctx, made) is None


ENGINEER_ACTIONS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/policies", None),
    ("GET", "/api/v1/policies/s1", None),
    ("PUT", "/api/v1/policies/s1", {"level": "full", "reason": "sneaky"}),
    ("GET", "/api/v1/reports/audit", None),
    ("GET", "/api/v1/reports/shadow", None),
    ("GET", "/api/v1/users", None),
    ("POST", "/api/v1/users", {"name": "mallory", "role": "admin", "password": PW}),
]


@pytest.mark.parametrize("credentials", ["basic", "cookie"])
def test_engineer_actions_are_refused_for_an_inspector(
    client: TestClient, auth: dict[str, str], ctx: context.Pipeline, people: None, credentials: str
) -> None:
    ann = basic("ann") if credentials == "basic" else login_cookie(client, "ann")
    for method, url, body in ENGINEER_ACTIONS:
        assert client.request(method, url, json=body, headers=ann).status_code == 403, (method, url)
        assert client.request(method, url, json=body).status_code == 401, (method, url)
        assert client.request(method, url, json=body, headers=auth).status_code == 401, (method, url)
    assert policies.get_policy(ctx, station="s1").level.value == "partial"
    assert get_user(ctx, name="mallory") is None
    # The same credentials do reach what an inspector may do, and an engineer may review too.
    assert client.get("/api/v1/me", headers=ann).json()["name"] == "ann"
    assert client.get("/api/v1/policies/s1", headers=basic("eve")).status_code == 200
    assert client.post("/api/v1/queue/claim", headers=basic("eve")).status_code == 204


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics parsed by prometheus_client's own parser: {(sample name, labels): value}."""
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def sample(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_health_and_metrics(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    post(client, png(level_for(0.5)), auth)
    post(client, png(level_for(0.01)), auth)
    m = scrape(client)
    assert sample(m, "inspection_http_requests_total", method="POST", path="/api/v1/inspections", status="201") == 2
    assert sample(m, "inspection_http_request_duration_seconds_bucket", path="/api/v1/inspections", le="+Inf") == 2
    assert sample(m, "inspection_queue_depth", station="s1", status="queued") == 1
    assert sample(m, "inspection_items_total", station="s1", route="auto_pass") == 1
    assert sample(m, "inspection_items_total", station="s1", route="review") == 1
    assert sample(m, "inspection_ingest_duration_seconds_count") == 2
    assert (sample(m, "process_resident_memory_bytes") or 0) > 0


MULTIPROCESS_WORKER = """
import sys
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from inspection.api.app import create_app
from inspection.config import Settings

settings = Settings(data_dir=sys.argv[1], models_dir=sys.argv[2], database_url="", expose_metrics=True)
with TestClient(create_app(settings)) as client:
    assert client.get("/healthz").status_code == 200
    print(client.get("/metrics").text)
"""


def test_metrics_add_up_over_server_processes(settings: Settings, tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR: each process writes its counts there; a scrape sums all of them."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(shared)}
    args = [sys.executable, "-c", MULTIPROCESS_WORKER, str(settings.data_dir), str(settings.models_dir)]
    for _ in range(2):  # two server processes, one after the other, on one database
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=120).stdout
    samples = [s for family in text_string_to_metric_families(out) for s in family.samples]
    health = [s for s in samples if s.name == "inspection_http_requests_total" and s.labels["path"] == "/healthz"]
    assert [s.value for s in health] == [2]
    memory = {s.labels["pid"] for s in samples if s.name == "process_resident_memory_bytes" and s.value > 0}
    # Live processes only: the first one exited (mark_process_dead at shutdown), its counts above stay.
    assert len(memory) == 1
