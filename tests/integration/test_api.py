"""HTTP API with FastAPI's TestClient on a real database (SQLite and PostgreSQL) and a fake model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from inspection import service
from inspection.api import create_app
from inspection.config import Settings
from tests.fakes import BrightnessScorer, Models, jpeg, level_for, png


@pytest.fixture
def client(db_settings: Settings) -> Iterator[TestClient]:
    settings = db_settings.model_copy(update={"max_upload_bytes": 200_000})
    app = create_app(settings, scorer_factory=Models({"baseline": BrightnessScorer()}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def ctx(client: TestClient) -> service.Pipeline:
    return client.app.state.pipeline  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def auth(ctx: service.Pipeline) -> dict[str, str]:
    service.set_policy(
        ctx, station="s1", by="eve", reason="t", level="partial", pass_below=0.1, reject_above=0.9
    )
    return {"Authorization": f"Bearer {service.create_token(ctx, station='s1')}"}


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
    client: TestClient, auth: dict[str, str], ctx: service.Pipeline
) -> None:
    r = post(client, png(3), auth, station="s2")
    assert r.status_code == 403
    other = {"Authorization": f"Bearer {service.create_token(ctx, station='s2')}"}
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


def test_review_queue_endpoints(client: TestClient, auth: dict[str, str]) -> None:
    made = post(client, png(level_for(0.5)), auth).json()
    r = client.post("/api/v1/queue/claim", json={"inspector": "ann"}, headers=auth)
    assert r.status_code == 200
    task = r.json()
    assert task["inspection_id"] == made["id"] and task["show_model"] and task["score"] == made["score"]
    img = client.get(task["image_url"], headers=auth)
    assert img.status_code == 200 and img.content.startswith(b"\x89PNG")
    assert client.post("/api/v1/queue/claim", json={"inspector": "bob"}, headers=auth).status_code == 204
    url = f"/api/v1/inspections/{made['id']}/label"
    first = client.post(url, json={"inspector": "ann", "label": "scratch"}, headers=auth)
    second = client.post(url, json={"inspector": "ann", "label": "scratch"}, headers=auth)
    assert (
        first.status_code == 201
        and second.status_code == 200
        and first.json()["review_id"] == second.json()["review_id"]
    )
    assert client.post(url, json={"inspector": "bob", "label": "ok"}, headers=auth).status_code == 409
    assert client.post(url, json={"inspector": "ann", "label": "maybe"}, headers=auth).status_code == 422
    undo = client.post("/api/v1/queue/undo", json={"inspector": "ann"}, headers=auth)
    assert undo.status_code == 200 and undo.json()["inspection_id"] == made["id"]
    skip = client.post(f"/api/v1/inspections/{made['id']}/skip", json={"inspector": "ann"}, headers=auth)
    assert skip.status_code == 204
    assert client.post("/api/v1/queue/undo", json={"inspector": "zed"}, headers=auth).status_code == 409
    assert (
        client.post(
            "/api/v1/inspections/999999/label", json={"inspector": "a", "label": "ok"}, headers=auth
        ).status_code
        == 404
    )


def test_health_and_metrics(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    post(client, png(level_for(0.5)), auth)
    post(client, png(level_for(0.01)), auth)
    text = client.get("/metrics").text
    assert 'inspection_http_requests_total{method="POST",path="/api/v1/inspections",status="201"} 2' in text
    assert 'inspection_http_request_duration_seconds_bucket{path="/api/v1/inspections",le="+Inf"} 2' in text
    assert 'inspection_queue_depth{station="s1",status="queued"} 1' in text
    assert 'inspection_items_total{station="s1",route="auto_pass"} 1' in text
    assert 'inspection_items_total{station="s1",route="review"} 1' in text
