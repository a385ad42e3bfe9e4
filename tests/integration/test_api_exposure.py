"""Who may read the server's self-description (/docs, /openapi.json, /metrics, /healthz details),
the security headers on every response, and the modes of the files holding secrets: through HTTP."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from inspection import store
from inspection.api.app import create_app, create_web_app
from inspection.api.security import SECURITY_HEADERS
from inspection.config import Settings
from inspection.services import accounts, policies, tokens
from tests.fakes import BrightnessScorer, Models, level_for, png

DOCS = ("/docs", "/redoc", "/openapi.json")
TOKEN = "metrics-secret-token"


def _client(settings: Settings, **update: object) -> TestClient:
    app = create_app(settings.model_copy(update=update), scorer_factory=Models({"baseline": BrightnessScorer()}))
    return TestClient(app, raise_server_exceptions=False)


def test_docs_and_metrics_are_off_by_default(settings: Settings) -> None:
    with _client(settings) as client:
        for path in (*DOCS, "/metrics"):
            assert client.get(path).status_code == 404, path
        assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_docs_and_metrics_on_when_exposed(settings: Settings) -> None:
    with _client(settings, expose_docs=True, expose_metrics=True) as client:
        for path in DOCS:
            assert client.get(path).status_code == 200, path
        assert "/api/v1/inspections" in client.get("/openapi.json").json()["paths"]
        assert "inspection_http_requests_total" in client.get("/metrics").text


def test_metrics_token_is_required_when_set(settings: Settings) -> None:
    # A token wins over expose_metrics: with one set, nobody reads /metrics without it.
    with _client(settings, metrics_token=SecretStr(TOKEN), expose_metrics=True) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 200 and "inspection_http_requests_total" in r.text
        assert client.get("/docs").status_code == 404  # the docs have their own setting


def test_healthz_shows_the_cause_only_to_the_metrics_token(settings: Settings) -> None:
    with _client(settings, metrics_token=SecretStr(TOKEN)) as client:
        ctx = client.app.state.pipeline  # type: ignore[attr-defined]
        accounts.add_user(ctx, name="ann", role="inspector", password="a-long-password")
        assert client.post("/api/v1/session", json={"name": "ann", "password": "a-long-password"}).status_code == 200
        real = ctx.engine
        ctx.engine = store.make_engine("sqlite:////nonexistent-dir/x.db")  # the database "goes away"
        try:
            anon = client.get("/healthz")
            assert anon.status_code == 503 and anon.json() == {"status": "error", "database": "error"}
            assert anon.headers["Retry-After"]
            assert client.get("/healthz").json()["database"] == "error"  # with an inspector's cookie
            detailed = client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"})
            assert detailed.status_code == 503 and "unable to open database file" in detailed.json()["database"]
        finally:
            ctx.engine.dispose()
            ctx.engine = real


def test_security_headers_on_every_api_response(settings: Settings) -> None:
    with _client(settings) as client:
        responses = [
            client.get("/healthz"),
            client.get("/nothing-here"),
            client.get("/metrics"),  # refused by the exposure guard
            client.post("/api/v1/inspections"),  # 401
            client.get("/api/v1/inspections/abc", headers={"Authorization": "Bearer x"}),  # 401/422
        ]
        for r in responses:
            for name, value in SECURITY_HEADERS.items():
                assert r.headers.get(name) == value, (r.request.url, name)
        csp = responses[0].headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert responses[0].headers["X-Frame-Options"] == "DENY"


@pytest.fixture
def web(settings: Settings) -> Iterator[TestClient]:
    settings.default_model = "fake"
    app = create_web_app(settings, scorer_factory=Models({"fake": BrightnessScorer("fake-1")}))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_web_pages_carry_the_headers_and_gradio_openapi_is_closed(web: TestClient) -> None:
    for path in ("/login", "/review/", "/engineer/", "/"):
        r = web.get(path, follow_redirects=False)
        assert r.status_code < 500, path
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (path, name)
    for path in ("/review/gradio_api/openapi.json", "/engineer/gradio_api/openapi.json", *DOCS):
        assert web.get(path).status_code == 404, path


def test_gradio_openapi_with_docs_exposed_still_needs_a_login(settings: Settings) -> None:
    settings.default_model = "fake"
    settings.expose_docs = True
    app = create_web_app(settings, scorer_factory=Models({"fake": BrightnessScorer("fake-1")}))
    with TestClient(app, raise_server_exceptions=False) as web:
        assert web.get("/docs").status_code == 200
        assert web.get("/review/gradio_api/openapi.json").status_code in (401, 403)
        assert web.get("/review/gradio_api/info").status_code in (401, 403)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_key_files_are_private(settings: Settings) -> None:
    old = os.umask(0o022)  # the usual umask: files would be 0644 without care
    try:
        with _client(settings) as client:
            ctx = client.app.state.pipeline  # type: ignore[attr-defined]
            policies.set_policy(ctx, station="s1", by="eve", reason="t", level="partial")
            headers = {"Authorization": f"Bearer {tokens.create_token(ctx, station='s1')}"}
            files = {"image": ("a.png", png(level_for(0.5)), "image/png")}
            r = client.post("/api/v1/inspections", files=files, data={"station": "s1"}, headers=headers)
            assert r.status_code == 201
            data = settings.data_dir
            for name in ("inspection.db", "inspection.db-wal", "inspection.db-shm"):
                assert (data / name).exists(), name
                assert _mode(data / name) == 0o600, (name, oct(_mode(data / name)))
            stored = [p for p in (data / "images").rglob("*") if p.is_file()]
            assert stored and all(_mode(p) == 0o600 for p in stored)
    finally:
        os.umask(old)
