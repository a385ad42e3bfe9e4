"""The ramp and the retrain trigger over real HTTP (FastAPI TestClient on SQLite and PostgreSQL, fake-scored
registered versions): an engineer starts, pauses, resumes and aborts a ramp and reads its history; an
inspector gets 403; bad input (unknown version, a plan that does not validate, no active ramp) is a 4xx
with the service's words, never 500; the trigger's settings round-trip as new versions with who and why;
runs are listed and "run now" starts one (in the caller here: nothing trains, too few labels)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspection import store
from inspection.api.app import create_app
from inspection.api.ramp import get_runner
from inspection.config import Settings
from inspection.services import context, deploy, retrain_trigger
from inspection.services.accounts import add_user
from tests.engineer_fixtures import fake_model_dirs
from tests.fakes import BrightnessScorer, Models
from tests.integration.test_api import PW, basic, login_cookie

SMALL_PLAN = {
    "steps": [
        {"fraction": 0.0, "min_items": 10},
        {"fraction": 0.5, "min_items": 10, "max_disagreement": 0.5, "max_escape_upper": 0.3},
        {"fraction": 1.0, "min_items": 0},
    ],
    "audit_rate": 0.5,
}
EVE, ANN = basic("eve"), basic("ann")


@pytest.fixture
def client(db_settings: Settings) -> Iterator[TestClient]:
    fake_model_dirs(db_settings, ["v1", "v2"])
    # No background loop: the ramp changes only through the requests under test.
    settings = db_settings.model_copy(update={"default_model": "v1", "monitoring": False})
    app = create_app(settings, scorer_factory=Models({v: BrightnessScorer(v) for v in ("v1", "v2")}))  # type: ignore[arg-type]
    app.dependency_overrides[get_runner] = lambda: retrain_trigger.inline_runner  # no worker process
    with TestClient(app, raise_server_exceptions=False) as c:
        pipe = _pipe(c)
        add_user(pipe, name="eve", role="engineer", password=PW)
        add_user(pipe, name="ann", role="inspector", password=PW)
        yield c


def _pipe(client: TestClient) -> context.Pipeline:
    return client.app.state.pipeline  # type: ignore[attr-defined,no-any-return]


def _start(client: TestClient, **body: object) -> Any:
    return client.post("/api/v1/ramp/start", json={"version": "v2", "reason": "new lighting", **body}, headers=EVE)


def test_an_engineer_starts_pauses_resumes_and_aborts_a_ramp_and_reads_its_history(client: TestClient) -> None:
    pipe = _pipe(client)
    empty = client.get("/api/v1/ramp", headers=EVE)
    assert empty.status_code == 200, empty.text
    assert empty.json()["ramp"] is None and empty.json()["history"] == []
    assert [s["fraction"] for s in empty.json()["default_plan"]["steps"]] == [0.0, 0.05, 0.25, 0.5, 1.0]

    r = client.post("/api/v1/ramp/start", json={"version": "v2", "plan": SMALL_PLAN, "reason": "new lighting"},
                    headers=EVE)  # fmt: skip
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["candidate"], out["production"], out["status"], out["step_label"]) == ("v2", "v1", "running", "shadow")
    assert out["created_by"] == "eve" and out["reason"] == "new lighting"
    assert out["plan"]["audit_rate"] == 0.5 and out["plan"]["steps"][0]["max_disagreement"] == 0.10  # default kept
    state = deploy.current_state(pipe)
    assert (state.production, state.candidate, state.mode) == ("v1", "v2", "shadow")

    again = _start(client)
    assert again.status_code == 409 and "abort it first" in again.json()["detail"]
    for action, status in (("pause", "paused"), ("resume", "running"), ("pause", "paused"), ("abort", "aborted")):
        r = client.post(f"/api/v1/ramp/{action}", json={"reason": f"{action} it"}, headers=EVE)
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    assert deploy.current_state(pipe).candidate is None  # aborted: the candidate is withdrawn

    body = client.get("/api/v1/ramp", headers=EVE).json()
    assert body["ramp"]["status"] == "aborted"
    kinds = [(e["kind"], e["actor"]) for e in body["history"]]
    assert kinds == [("started", "eve"), ("paused", "eve"), ("resumed", "eve"), ("paused", "eve"), ("aborted", "eve")]
    assert body["history"][-1]["reasons"] == ["abort it"]
    with pipe.read() as session:
        events = [e.kind for e in store.list_events(session, limit=50) if e.kind.startswith("ramp.")]
    assert len(events) == 5


def test_a_browser_session_needs_its_own_origin_and_the_engineer_role(client: TestClient) -> None:
    eve = login_cookie(client, "eve")
    forged = client.post("/api/v1/ramp/start", json={"version": "v2", "reason": "x"},
                         headers={**eve, "Origin": "https://evil.example"})  # fmt: skip
    assert forged.status_code == 403 and "CSRF" in forged.json()["detail"]
    assert client.get("/api/v1/ramp", headers=eve).status_code == 200
    own = client.post("/api/v1/ramp/start", json={"version": "v2", "reason": "x"},
                      headers={**eve, "Origin": "http://testserver"})  # fmt: skip
    assert own.status_code == 201, own.text

    for method, path, body in (
        ("GET", "/api/v1/ramp", None),
        ("POST", "/api/v1/ramp/pause", {"reason": "x"}),
        ("POST", "/api/v1/ramp/abort", {"reason": "x"}),
        ("GET", "/api/v1/retrain/triggers/s1", None),
        ("PUT", "/api/v1/retrain/triggers/s1", {"enabled": True, "reason": "x"}),
        ("GET", "/api/v1/retrain/runs", None),
        ("POST", "/api/v1/retrain/triggers/s1/run", {"reason": "x"}),
    ):
        assert client.request(method, path, json=body, headers=ANN).status_code == 403, path
        assert client.request(method, path, json=body).status_code == 401, path
    assert _pipe(client) and deploy.current_state(_pipe(client)).candidate == "v2"  # the inspector changed nothing


def test_bad_input_is_a_4xx_with_the_reason_never_a_500(client: TestClient) -> None:
    cases: list[tuple[Any, int, str]] = [
        (_start(client, version="v9"), 422, "no model 'v9'"),
        (_start(client, version="../v1"), 422, "invalid model version"),
        (_start(client, plan={"steps": [{"fraction": 0.5}]}), 422, "at least two steps"),
        (_start(client, plan={"steps": [{"fraction": 0.0}, {"fraction": 0.5, "min_items": -1}, {"fraction": 1.0}]}),
         422, "min_items must be a non-negative integer"),
        (_start(client, plan={"audit_rate": 0.0}), 422, "audit_rate must be within"),
        (_start(client, version="v1"), 409, "already the production model"),  # production is no candidate
        (client.post("/api/v1/ramp/pause", json={"reason": "x"}, headers=EVE), 409, "no ramp is running"),
        (client.post("/api/v1/ramp/abort", json={"reason": "x"}, headers=EVE), 409, "no ramp is running"),
        (client.get("/api/v1/retrain/runs/999", headers=EVE), 404, "no retrain run 999"),
        (client.get("/api/v1/retrain/triggers/bad station", headers=EVE), 422, "invalid station"),
        (client.put("/api/v1/retrain/triggers/s1", json={"epochs": 0, "reason": "x"}, headers=EVE), 422,
         "epochs must be within"),
        (client.put("/api/v1/retrain/triggers/s1", json={"enabled": True}, headers=EVE), 422, ""),  # no reason
    ]  # fmt: skip
    for r, status, text in cases:
        assert r.status_code == status, r.text
        assert text in str(r.json()["detail"]), r.text
    typo = _start(client, plan={"stepz": []})
    assert typo.status_code == 422 and "stepz" in typo.text
    unknown = client.post("/api/v1/ramp/promote", json={"reason": "x"}, headers=EVE)
    assert unknown.status_code == 422
    assert deploy.current_state(_pipe(client)).mode == "none"  # nothing was started by any of these


def test_the_trigger_round_trips_as_new_versions_with_who_and_why(client: TestClient) -> None:
    first = client.get("/api/v1/retrain/triggers/s1", headers=EVE).json()
    assert first["version"] == 0 and first["settings"]["enabled"] is False and first["created_by"] is None

    r = client.put("/api/v1/retrain/triggers/s1", json={"enabled": True, "on_labels": 50, "reason": "more often"},
                   headers=EVE)  # fmt: skip
    assert r.status_code == 200, r.text
    one = r.json()
    assert (one["version"], one["created_by"], one["reason"]) == (1, "eve", "more often")
    assert one["settings"]["enabled"] is True and one["settings"]["on_labels"] == 50
    assert one["settings"]["epochs"] == first["settings"]["epochs"]  # unchanged fields keep their values

    daily = {"on_labels": None, "every_hours": 12, "deploy_as": "ramp", "warm_start": False, "reason": "daily instead"}
    r = client.put("/api/v1/retrain/triggers/s1", json=daily, headers=EVE)
    assert r.status_code == 200, r.text
    got = client.get("/api/v1/retrain/triggers/s1", headers=EVE).json()
    assert got["version"] == 2 and got["reason"] == "daily instead"
    s = got["settings"]
    assert (s["enabled"], s["on_labels"], s["every_hours"], s["deploy_as"]) == (True, None, 12.0, "ramp")
    assert s["warm_start"] is False
    with _pipe(client).read() as session:
        ev = store.list_events(session, kind="retrain.trigger_set", limit=5)
    assert [e.detail["version"] for e in ev] == [2, 1] and ev[0].actor == "eve"


def test_run_now_and_the_run_listing(client: TestClient) -> None:
    assert client.get("/api/v1/retrain/runs", headers=EVE).json() == []
    r = client.post("/api/v1/retrain/triggers/s1/run", json={"reason": "check"}, headers=EVE)
    assert r.status_code == 201, r.text
    run = r.json()
    assert (run["station"], run["trigger"], run["requested_by"]) == ("s1", "manual", "eve")
    assert run["trigger_detail"] == "run now by eve: check"
    assert run["status"] == "failed" and "too few labels" in run["outcome_reason"]  # nothing to train on

    listed = client.get("/api/v1/retrain/runs", params={"station": "s1"}, headers=EVE).json()
    assert [x["id"] for x in listed] == [run["id"]]
    assert client.get("/api/v1/retrain/runs", params={"station": "s2"}, headers=EVE).json() == []
    one = client.get(f"/api/v1/retrain/runs/{run['id']}", headers=EVE)
    assert one.status_code == 200 and one.json() == run
    assert client.get("/api/v1/retrain/runs", params={"limit": 0}, headers=EVE).status_code == 422

    assert client.post("/api/v1/retrain/triggers/s1/run", headers=EVE).status_code == 201  # the body is optional
    assert _start(client).status_code == 201
    busy = client.post("/api/v1/retrain/triggers/s1/run", json={}, headers=EVE)
    assert busy.status_code == 422 and "a ramp of v2 is running" in busy.json()["detail"]
    assert len(client.get("/api/v1/retrain/runs", headers=EVE).json()) == 2
