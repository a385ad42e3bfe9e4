"""Login security through real HTTP (issue 12): throttle and lock-out on every way in, server-side
sessions (logout everywhere, idle and absolute expiry, role changes at once, cookie flags), CSRF,
and labels only for an item the inspector holds."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from inspection import store
from inspection.api.app import create_app, create_web_app
from inspection.config import Settings
from inspection.services import accounts, errors, ingest, policies, review, tokens
from inspection.services.accounts import COOKIE_NAME
from inspection.services.context import Pipeline
from tests.fakes import BrightnessScorer, FakeClock, Models, level_for, png

PW = "a-long-password"
EVIL = "https://evil.example"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pipe(db_settings: Settings, clock: FakeClock) -> Iterator[Pipeline]:
    p = Pipeline.create(db_settings, scorer_factory=Models({"baseline": BrightnessScorer()}), clock=clock)
    for name, role in (("ann", "inspector"), ("eve", "engineer")):
        accounts.add_user(p, name=name, role=role, password=PW)
    yield p
    p.close()


def client_at(pipe: Pipeline, address: str = "10.0.0.1", **kw: Any) -> TestClient:
    """A client of its own app on `pipe`, calling from `address` (the throttle's key)."""
    return TestClient(create_app(pipe.settings, pipeline=pipe), client=(address, 50000), **kw)


def session_login(client: TestClient, name: str = "ann", password: str = PW, **kw: Any) -> Any:
    return client.post("/api/v1/session", json={"name": name, "password": password}, **kw)


def cookie_of(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Cookie": f"{COOKIE_NAME}={response.cookies[COOKIE_NAME]}"}


def basic(name: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def test_brute_force_from_one_address_waits_while_the_user_logs_in_elsewhere(
    pipe: Pipeline, clock: FakeClock
) -> None:
    attacker, user = client_at(pipe, "10.0.0.66"), client_at(pipe, "10.0.0.7")
    for _ in range(5):
        assert session_login(attacker, password="guess-guess").status_code == 401
    refused = session_login(attacker)  # even the right password: this address waits first
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "30"
    basic_try = attacker.get("/api/v1/me", headers=basic("ann", PW))  # HTTP Basic is throttled too
    assert basic_try.status_code == 429 and int(basic_try.headers["Retry-After"]) > 0
    assert session_login(user).status_code == 200  # the real user elsewhere is not locked out
    clock.advance(31)
    assert session_login(attacker, password="guess-guess").status_code == 401
    again = session_login(attacker, password="guess-guess")
    assert again.status_code == 429 and again.headers["Retry-After"] == "60"  # back-off doubles
    clock.advance(61)
    assert attacker.get("/api/v1/me", headers=basic("ann", PW)).status_code == 200


def test_failures_from_many_addresses_lock_the_account_for_a_while_with_an_event(
    pipe: Pipeline, clock: FakeClock
) -> None:
    for i in range(4):
        attacker = client_at(pipe, f"10.1.0.{i}")
        for _ in range(5):
            assert attacker.get("/api/v1/me", headers=basic("ann", "guess-guess")).status_code == 401
    locked = session_login(client_at(pipe, "10.2.0.1"))
    assert locked.status_code == 429 and "locked" in locked.json()["detail"]
    assert int(locked.headers["Retry-After"]) == 15 * 60
    with pipe.read() as s:
        events = store.list_events(s, kind="account.locked")
    assert [e.detail["name"] for e in events] == ["ann"] and events[0].detail["addresses"] == 4
    assert session_login(client_at(pipe, "10.2.0.2"), name="eve").status_code == 200  # others unaffected
    clock.advance(15 * 60 + 1)
    assert session_login(client_at(pipe, "10.2.0.1")).status_code == 200  # the lock ran out


def test_unknown_and_inactive_users_cost_one_argon2_verify_like_real_ones(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argon2 import PasswordHasher  # a C extension, loaded lazily like the code under test does

    calls: list[str] = []
    real_verify = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str, password: str | bytes) -> bool:  # noqa: A002
        calls.append(hash)
        return real_verify(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    with pipe.write() as s:
        row = store.get_user(s, name="eve")
        assert row is not None
        row.active = False
        s.add(row)
    client = client_at(pipe)
    for name in ("ann", "nobody", "eve"):
        assert session_login(client, name=name, password="wrong-password").status_code == 401
    assert len(calls) == 3 and all(h.startswith("$argon2") for h in calls)
    assert calls[1] == calls[2] != calls[0]  # the unknown and the inactive name: the dummy hash


def test_logout_ends_the_session_for_every_holder_and_every_process(
    pipe: Pipeline, db_settings: Settings, clock: FakeClock
) -> None:
    first, second = client_at(pipe, "10.0.0.1"), client_at(pipe, "10.0.0.2")
    cookie = cookie_of(session_login(first))
    first.cookies.clear()
    # Another server process: its own Pipeline and engine on the same database (same fake time).
    other = Pipeline.create(db_settings.model_copy(), clock=clock)
    with other, TestClient(create_app(other.settings, pipeline=other)) as elsewhere:
        for c in (first, second, elsewhere):
            assert c.get("/api/v1/me", headers=cookie).status_code == 200
        assert first.delete("/api/v1/session", headers=cookie).status_code == 204
        for c in (first, second, elsewhere):
            assert c.get("/api/v1/me", headers=cookie).status_code == 401


def test_sessions_expire_when_idle_and_after_twelve_hours(pipe: Pipeline, clock: FakeClock) -> None:
    client = client_at(pipe)
    idle = cookie_of(session_login(client))
    clock.advance(59 * 60)
    assert client.get("/api/v1/me", headers=idle).status_code == 200  # activity keeps it alive
    clock.advance(59 * 60)
    assert client.get("/api/v1/me", headers=idle).status_code == 200
    clock.advance(61 * 60)
    assert client.get("/api/v1/me", headers=idle).status_code == 401  # idle longer than 60 min

    busy = cookie_of(session_login(client))
    for _ in range(14):  # 11 h 40 min of steady work
        clock.advance(50 * 60)
        assert client.get("/api/v1/me", headers=busy).status_code == 200
    clock.advance(25 * 60)
    assert client.get("/api/v1/me", headers=busy).status_code == 401  # 12 h after login


def test_role_change_and_deactivation_apply_at_once(pipe: Pipeline) -> None:
    client = client_at(pipe)
    cookie = cookie_of(session_login(client, name="eve"))
    assert client.get("/api/v1/policies", headers=cookie).status_code == 200
    with pipe.write() as s:
        row = store.get_user(s, name="eve")
        assert row is not None
        row.role = "inspector"
        s.add(row)
    assert client.get("/api/v1/policies", headers=cookie).status_code == 403
    assert client.get("/api/v1/me", headers=cookie).json()["role"] == "inspector"
    with pipe.write() as s:
        row = store.get_user(s, name="eve")
        assert row is not None
        row.active = False
        s.add(row)
    assert client.get("/api/v1/me", headers=cookie).status_code == 401


def _set_cookie(response: Any) -> str:
    assert response.status_code == 200, response.text
    return str(response.headers["set-cookie"]).lower()


def test_session_cookie_flags(pipe: Pipeline) -> None:
    plain = _set_cookie(session_login(client_at(pipe)))
    assert "httponly" in plain and "samesite=lax" in plain and "secure" not in plain
    proxied = _set_cookie(session_login(client_at(pipe), headers={"X-Forwarded-Proto": "https"}))
    assert "secure" in proxied and "httponly" in proxied
    direct = _set_cookie(session_login(client_at(pipe, base_url="https://testserver")))
    assert "secure" in direct
    pipe.settings.behind_proxy = False  # without a proxy the header is not believed
    assert "secure" not in _set_cookie(session_login(client_at(pipe), headers={"X-Forwarded-Proto": "https"}))


def test_cross_site_state_changes_are_refused(pipe: Pipeline) -> None:
    policies.set_policy(pipe, station="s1", by="t", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
    bearer = {"Authorization": f"Bearer {tokens.create_token(pipe, station='s1')}"}
    client = client_at(pipe)
    cookie = cookie_of(session_login(client))
    client.cookies.clear()
    claim = "/api/v1/queue/claim"
    refused = client.post(claim, json={}, headers={**cookie, "Origin": EVIL})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert client.post(claim, json={}, headers={**cookie, "Referer": EVIL + "/page"}).status_code == 403
    assert client.post(claim, json={}, headers={**cookie, "Origin": "null"}).status_code == 403
    assert client.post(claim, json={}, headers={**cookie, "Origin": "http://testserver"}).status_code == 204
    assert client.post(claim, json={}, headers=cookie).status_code == 204  # no browser: no Origin
    upload = client.post(
        "/api/v1/inspections",
        files={"image": ("a.png", png(level_for(0.5)), "image/png")},
        data={"station": "s1"},
        headers={**bearer, "Origin": EVIL},
    )
    assert upload.status_code == 201  # a station's Bearer token is never sent by a browser on its own
    login_csrf = session_login(client, headers={"Origin": EVIL})
    assert login_csrf.status_code == 403 and COOKIE_NAME not in login_csrf.cookies


def test_a_label_needs_the_item_in_hand(pipe: Pipeline) -> None:
    policies.set_policy(pipe, station="s1", by="t", reason="t", level="partial", pass_below=0.1, reject_above=0.9)
    first = ingest.inspect(pipe, data=png(level_for(0.5), seed=1), station="s1").inspection.id
    second = ingest.inspect(pipe, data=png(level_for(0.6), seed=2), station="s1").inspection.id
    with pytest.raises(errors.QueueConflict, match="take it from the queue first"):
        review.submit_label(pipe, inspection_id=second, inspector="ann", label="ok")
    client = client_at(pipe)
    cookie = cookie_of(session_login(client))
    unleased = client.post(f"/api/v1/inspections/{first}/label", json={"label": "ok"}, headers=cookie)
    assert unleased.status_code == 409 and "take it from the queue first" in unleased.json()["detail"]
    task = client.post("/api/v1/queue/claim", json={}, headers=cookie).json()
    label = client.post(f"/api/v1/inspections/{task['inspection_id']}/label", json={"label": "ok"}, headers=cookie)
    assert label.status_code == 201


def test_web_login_throttle_csrf_and_logout(pipe: Pipeline) -> None:
    """The HTML login and the Gradio screens get the same rules (one web app, like `serve`)."""
    from ui.review import ReviewActions  # imports gradio (seconds): only this test needs it

    app = create_web_app(pipe.settings, scorer_factory=Models({"baseline": BrightnessScorer()}))
    web_pipe: Pipeline = app.state.pipeline
    with TestClient(app, follow_redirects=False, client=("10.3.0.1", 5000)) as web:
        login = {"name": "ann", "password": PW, "next": ""}
        cross = web.post("/login", data=login, headers={"Origin": EVIL})
        assert cross.status_code == 403 and COOKIE_NAME not in cross.cookies  # login CSRF closed
        assert web.post("/login", data=login, headers={"Origin": "http://testserver"}).status_code == 303
        cookie = {"Cookie": f"{COOKIE_NAME}={web.cookies[COOKIE_NAME]}"}
        web.cookies.clear()
        gradio = web.post("/review/gradio_api/queue/join", json={}, headers={**cookie, "Origin": EVIL})
        assert gradio.status_code == 403
        assert web.get("/review/", headers=cookie).status_code == 200
        assert web.get("/logout", headers=cookie).status_code == 303
        assert web.get("/review/", headers=cookie).status_code == 303  # the copied cookie is dead too
        for _ in range(5):
            assert web.post("/login", data={**login, "password": "guess-guess"}).status_code == 401
        throttled = web.post("/login", data=login)
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "30"
        assert "Too many failed attempts" in throttled.text
        # The review screen's server function refuses an item ann was never given, with a message.
        policies.set_policy(web_pipe, station="s1", by="t", reason="t", level="human_only")
        item = ingest.inspect(web_pipe, data=png(level_for(0.5)), station="s1").inspection.id
        actions = ReviewActions(app.state.ui_context, app.state.media)
        with pytest.raises(errors.QueueConflict, match="take it from the queue first"):
            actions.act("ann", "ok", item)
