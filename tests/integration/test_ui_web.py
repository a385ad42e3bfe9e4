"""The web layer without a browser: login, sessions, role rules on the user API and on the mounted
Gradio apps, the review actions and the media route (fake scorer, real SQLite)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspection import store
from inspection.api.app import create_web_app
from inspection.config import Settings
from inspection.services import accounts, context, ingest, policies
from inspection.services.accounts import COOKIE_NAME, Sessions
from tests.fakes import BrightnessScorer, Models, level_for, png
from ui.media import MediaError
from ui.review import ReviewActions

PW = "a-long-password"


@pytest.fixture
def web(settings: Settings) -> Iterator[TestClient]:
    settings.default_model = "fake"
    app = create_web_app(settings, scorer_factory=Models({"fake": BrightnessScorer("fake-1")}))
    pipe: context.Pipeline = app.state.pipeline
    for name, role in (("ann", "inspector"), ("eve", "engineer"), ("root", "admin")):
        accounts.add_user(pipe, name=name, role=role, password=PW)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _pipe(client: TestClient) -> context.Pipeline:
    return client.app.state.pipeline  # type: ignore[attr-defined,no-any-return]


def _login(client: TestClient, name: str) -> None:
    r = client.post("/login", data={"name": name, "password": PW, "next": ""})
    assert r.status_code == 303, r.text
    assert COOKIE_NAME in r.cookies


def test_login_page_form_and_redirects(web: TestClient) -> None:
    r = web.get("/review/")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    bad = web.post("/login", data={"name": "ann", "password": "nope"})
    assert bad.status_code == 401 and "Wrong user name or password" in bad.text
    _login(web, "ann")
    assert web.get("/review/").status_code == 200
    assert web.get("/engineer/").status_code == 403
    assert web.get("/").headers["location"] == "/review/"
    web.get("/logout")
    web.cookies.clear()
    assert web.get("/review/").status_code == 303


def test_user_api_enforces_roles(web: TestClient) -> None:
    policy = {"level": "partial", "pass_below": 0.2, "reject_above": 0.8, "reason": "test"}
    assert web.put("/api/v1/policies/s1", json=policy).status_code == 401
    _login(web, "ann")
    assert web.put("/api/v1/policies/s1", json=policy).status_code == 403
    assert web.get("/api/v1/reports/audit").status_code == 403
    assert web.get("/engineer/config").status_code in (401, 403)
    assert web.get("/review/config").status_code == 200
    web.cookies.clear()

    _login(web, "eve")
    r = web.put("/api/v1/policies/s1", json=policy)
    assert r.status_code == 200 and r.json()["version"] == 1
    assert policies.list_policies(_pipe(web), station="s1")[-1].created_by == "eve"
    assert web.put("/api/v1/policies/s1", json={**policy, "pass_below": 0.9}).status_code == 422
    assert web.get("/api/v1/reports/shadow?station=s1").status_code == 200
    assert web.get("/engineer/config").status_code == 200
    assert web.post("/api/v1/users", json={"name": "x", "role": "admin", "password": PW}).status_code == 403
    web.cookies.clear()

    basic = base64.b64encode(f"root:{PW}".encode()).decode()
    r = web.post(
        "/api/v1/users",
        json={"name": "newbie", "role": "inspector", "password": PW},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert r.status_code == 201
    assert accounts.get_user(_pipe(web), name="newbie") is not None


def test_session_cookie_cannot_be_forged_and_dies_with_the_account(web: TestClient) -> None:
    pipe = _pipe(web)
    sessions = Sessions(pipe)
    cookie = sessions.issue(accounts.User("ann", accounts.Role.INSPECTOR))
    assert sessions.user(cookie) == accounts.User("ann", accounts.Role.INSPECTOR)
    body, _, sig = cookie.rpartition(".")
    forged = base64.urlsafe_b64encode(b"eve|9999999999|x").decode().rstrip("=") + "." + sig
    assert sessions.user(forged) is None
    assert sessions.user(body + "." + "0" * len(sig)) is None
    assert sessions.user(cookie, now=10**12) is None  # expired
    with pipe.write() as session:
        row = store.get_user(session, name="ann")
        assert row is not None
        row.active = False
        session.add(row)
    assert sessions.user(cookie) is None


def test_review_actions_label_skip_undo_and_blind_items(web: TestClient) -> None:
    pipe = _pipe(web)
    policies.set_policy(pipe, station="assist", by="t", reason="t", level="ai_assist")
    policies.set_policy(pipe, station="blind", by="t", reason="t", level="shadow")
    a = ingest.inspect(pipe, data=png(level_for(0.4), seed=1), station="assist").inspection.id
    b = ingest.inspect(pipe, data=png(level_for(0.6), seed=2), station="blind").inspection.id
    c = ingest.inspect(pipe, data=png(level_for(0.7), seed=3), station="assist").inspection.id
    media = web.app.state.media  # type: ignore[attr-defined]
    actions = ReviewActions(web.app.state.ui_context, media)  # type: ignore[attr-defined]

    first = actions.act("ann", "next", None).to_dict()
    item: dict[str, Any] = first["item"]
    assert item["id"] == a and not item["blind"] and item["overlay"].endswith(".overlay.jpg")
    assert abs(item["score"] - 0.4) < 0.01 and first["stats"]["queue"] == 2
    # the page shows the likely next phone at the key press: the head of the open queue, blind -> no overlay
    assert first["upcoming"]["id"] == b and first["upcoming"]["overlay"] is None
    assert first["upcoming"]["image"] in first["prefetch"]

    second = actions.act("ann", "ok", a).to_dict()
    blind = second["item"]
    assert blind["id"] == b and blind["blind"]
    assert not {"score", "overlay", "model", "regions"} & set(blind)  # nothing of the model at all
    with pytest.raises(MediaError):
        media.get(b, overlay=True)
    assert media.get(b, overlay=False)[:2] == b"\xff\xd8"

    assert second["upcoming"]["id"] == c and second["upcoming"]["overlay"].endswith(".overlay.jpg")
    third = actions.act("ann", "skip", b).to_dict()
    assert third["item"]["id"] == c and third["message"] == f"#{b} skipped"
    undo = actions.act("ann", "undo", c).to_dict()
    assert undo["item"]["id"] == a  # the label of a is withdrawn and a comes back
    again = actions.act("ann", "scratch", a).to_dict()
    assert again["item"]["id"] == c and again["stats"]["today"] == 1
    assert ingest.get_inspection(pipe, inspection_id=a).inspection.label == "scratch"


def test_media_route_needs_a_login_and_refuses_blind_overlays(web: TestClient) -> None:
    pipe = _pipe(web)
    policies.set_policy(pipe, station="blind", by="t", reason="t", level="shadow")
    b = ingest.inspect(pipe, data=png(120, seed=5), station="blind").inspection.id
    assert web.get(f"/media/review/{b}.jpg").status_code == 401
    _login(web, "ann")
    r = web.get(f"/media/review/{b}.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert web.get(f"/media/review/{b}.overlay.jpg").status_code == 404
    assert web.get("/media/review/../../etc/passwd").status_code == 404
