"""Monitoring over real HTTP (FastAPI TestClient on a real SQLite database): the background loop of
the API process opens the alarm by itself, the engineer endpoints (report, rules, reference window,
restore) with their roles, the Prometheus gauges parsed with prometheus_client's parser (and
promtool), and the `inspection monitor` commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from inspection import store
from inspection.api.app import create_app
from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import context, monitoring, policies, webhook
from inspection.services.accounts import add_user
from tests.fakes import Models
from tests.integration.test_api import basic, sample, scrape
from tests.monitor_stream import SteadyScorer, record_stream
from tests.webhook_receiver import Receiver, webhook_receiver

LONG_AGO = "2000-01-01T00:00:00+00:00"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as rx:
        yield rx
    webhook.close_all(timeout=1.0)


@pytest.fixture
def client(settings: Settings, receiver: Receiver) -> Iterator[TestClient]:
    s = settings.model_copy(
        update={"expose_metrics": True, "monitor_interval_seconds": 0.2, "alarm_webhook_url": receiver.url}
    )
    app = create_app(s, scorer_factory=Models({"baseline": SteadyScorer()}))
    with TestClient(app, raise_server_exceptions=False) as c:
        pipe: context.Pipeline = c.app.state.pipeline  # type: ignore[attr-defined]
        add_user(pipe, name="eve", role="engineer", password="a-long-password")
        add_user(pipe, name="ann", role="inspector", password="a-long-password")
        yield c


def _pipe(client: TestClient) -> context.Pipeline:
    return client.app.state.pipeline  # type: ignore[attr-defined,no-any-return]


def _wait_for_alarm(pipe: context.Pipeline, station: str, timeout: float = 30.0) -> list[store.AlarmRow]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with pipe.read() as s:
            alarms = store.open_alarms(s, station=station)
        if alarms:
            return alarms
        time.sleep(0.1)
    return []


def test_the_background_loop_fires_the_alarm_and_the_api_reports_it(client: TestClient, receiver: Receiver) -> None:
    pipe, eve = _pipe(client), basic("eve")
    policies.set_policy(pipe, station="s1", by="eve", reason="t", level="full", pass_below=0.1, reject_above=0.9)
    record_stream(pipe, station="s1", n=500, seed=1)
    r = client.post("/api/v1/monitoring/reference/s1", json={"first": 500, "reason": "installation"}, headers=eve)
    assert r.status_code == 200 and r.json()["n"] == 500, r.text
    rules = client.get("/api/v1/monitoring/rules/s1", headers=eve).json()
    assert rules["version"] == 0 and rules["rules"]["interlock"] is None  # defaults: interlock on at full

    record_stream(pipe, station="s1", n=300, seed=2, brightness_shift=-30.0)
    alarms = _wait_for_alarm(pipe, "s1")  # nobody calls evaluate: the API process's loop does
    assert "brightness" in {a.rule for a in alarms}
    assert receiver.wait_for(1)[0]["event"] == "alarm.fired"
    assert policies.get_policy(pipe, station="s1").level.value == "partial"  # full -> partial, once

    report = client.get("/api/v1/monitoring/report", params={"station": "s1", "since": LONG_AGO}, headers=eve)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["n_items"] == 800 and body["interlock"]["demoted_to"] == "partial"
    assert {a["rule"] for a in body["alarms"]} >= {"brightness"}
    assert any(e["kind"] == "alarm.fired" for e in body["events"])
    assert set(body["series"][0]) >= {"t", "throughput_per_min", "latency_p95_ms", "feature_drift"}
    assert monitoring.MonitorReport.model_validate(body).station == "s1"  # the one shape, round trip

    m = scrape(client)
    assert sample(m, "inspection_alarm_open", station="s1", rule="brightness", severity="warning") == 1
    p = sample(m, "inspection_drift_p_value", station="s1", metric="brightness", rule="brightness")
    assert p is not None and p < 1e-5
    assert sample(m, "inspection_monitor_evaluation_age_seconds", station="s1") is not None
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run `make sysdeps` (Debian package prometheus)"
    out = subprocess.run([promtool, "check", "metrics"], input=client.get("/metrics").text, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr

    r = client.post("/api/v1/monitoring/restore/s1", json={"level": "full", "reason": "lamp fixed"}, headers=eve)
    assert r.status_code == 200 and r.json()["level"] == "full"
    body = client.get("/api/v1/monitoring/report", params={"station": "s1"}, headers=eve).json()
    assert body["interlock"]["demoted_to"] is None


def test_rules_are_versioned_validated_and_engineers_only(client: TestClient) -> None:
    eve = basic("eve")
    current = client.get("/api/v1/monitoring/rules/s2", headers=eve).json()["rules"]
    current["interlock"] = True
    current["rules"] = current["rules"][:2]
    r = client.put("/api/v1/monitoring/rules/s2", json={"rules": current, "reason": "fewer"}, headers=eve)
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["created_by"] == "eve"
    bad = {"rules": [{"name": "x", "metric": "glare", "window": 10, "step": 5, "false_alarm_per_100k": 1}]}
    r = client.put("/api/v1/monitoring/rules/s2", json={"rules": bad, "reason": "typo"}, headers=eve)
    assert r.status_code == 422 and "unknown metric 'glare'" in r.json()["detail"]
    assert client.get("/api/v1/monitoring/rules/s2", headers=basic("ann")).status_code == 403
    assert client.get("/api/v1/monitoring/report").status_code == 401
    r = client.post("/api/v1/monitoring/reference/s2", json={"first": 10, "reason": "x"}, headers=eve)
    assert r.status_code == 422 and "no monitored items" in r.json()["detail"]


def test_the_monitor_commands(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(settings.models_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", settings.database_url)
    with context.Pipeline.create(settings) as pipe:
        policies.set_policy(pipe, station="s3", by="eve", reason="t", level="partial", pass_below=0.1)
        record_stream(pipe, station="s3", n=500, seed=3, start=datetime(2025, 3, 1, tzinfo=UTC))
        record_stream(pipe, station="s3", n=300, seed=4, brightness_shift=-30.0, start=datetime(2025, 3, 2, tzinfo=UTC))
    cli = build_app()

    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, ["monitor", *args])
        assert result.exit_code == 0 and "Traceback" not in result.output, result.output
        return result.output

    out = run("reference", "--station", "s3", "--since", "2025-03-01", "--until", "2025-03-02", "--by", "eve")
    assert "reference v1: 500 items" in out
    rules = json.loads(run("rules", "show", "--station", "s3", "--json"))
    rules["rules"]["interlock"] = True
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rules))
    assert "rules v1" in run(
        "rules", "set", "--station", "s3", "--file", str(path), "--reason", "opt in", "--by", "eve"
    )
    out = run("evaluate", "--station", "s3")
    assert "brightness" in out and "dropped the station to ai_assist" in out
    report = json.loads(run("report", "--station", "s3", "--since", "2025-01-01", "--json"))
    assert report["interlock"]["demoted_to"] == "ai_assist" and report["n_items"] == 800
    assert "BREACH" in run("report", "--station", "s3", "--since", "2025-01-01")
    assert "s3 v3: partial" in run("restore", "--station", "s3", "--level", "partial", "--reason", "ok", "--by", "eve")
    bad = CliRunner().invoke(cli, ["monitor", "reference", "--station", "s3"])
    assert bad.exit_code == 2 and "either first=N" in bad.output
