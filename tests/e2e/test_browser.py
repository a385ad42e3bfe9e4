"""The web UI in a real browser (issue 4): review with the keyboard, roles, policy → routing, screenshots."""

from __future__ import annotations

import statistics
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from inspection import store
from inspection.services import policies, tokens
from tests.e2e.conftest import PASSWORD, SCREENSHOTS, Server, ingest_file, login, shot

pytestmark = pytest.mark.e2e

# Installed before each key press: time from the keydown event (capture phase, first listener) until
# the <img> shows a different item that is fully loaded (checked every animation frame).
MEASURE_JS = """
() => {
  const img = document.querySelector('.rv-img');
  const before = img.getAttribute('src');
  window.__lat = null;
  window.addEventListener('keydown', () => {
    const t0 = performance.now();
    const check = () => {
      const src = img.getAttribute('src');
      if (src && src !== before && img.complete && img.naturalWidth > 0) {
        window.__lat = performance.now() - t0;
      } else {
        requestAnimationFrame(check);
      }
    };
    requestAnimationFrame(check);
  }, { capture: true, once: true });
}
"""


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
        const img = document.querySelector('.rv-img');
        const ob = document.querySelector('[data-s="overlay-btn"]');
        return {
          id: Number(img.dataset.id), src: img.getAttribute('src'),
          blind: !!document.querySelector('.rv-blind'),
          score: !!document.querySelector('[data-testid="score"]'),
          overlayButton: !!ob && !ob.hidden,
        };
      }"""
    )


def _wait_item(page: Any, not_id: int | None = None) -> dict[str, Any]:
    page.wait_for_function(
        """(notId) => { const i = document.querySelector('.rv-img');
            return i && i.getAttribute('src') && i.complete && i.naturalWidth > 0
                   && Number(i.dataset.id) !== notId; }""",
        arg=-1 if not_id is None else not_id,
    )
    return _state(page)


def test_inspector_reviews_five_items_with_the_keyboard(server: Server, new_page: Any) -> None:
    app = server.pipeline
    plan = {
        "e2e-assist": {"level": "ai_assist"},
        "e2e-shadow": {"level": "shadow"},
        # every item auto-decided and sent to a blind audit
        "e2e-audit": {"level": "partial", "pass_below": 0.999, "reject_above": 1.0, "audit_rate": 1.0},
    }
    for station, values in plan.items():
        policies.set_policy(app, station=station, by="test", reason="e2e set-up", **values)  # type: ignore[arg-type]
    stations = list(plan)
    expected_blind: dict[int, bool] = {}
    for i, image in enumerate(server.images[:7]):
        res = ingest_file(server, stations[i % 3], image)
        expected_blind[res.inspection.id] = stations[i % 3] != "e2e-assist"

    page = new_page()
    login(page, server.url, "insp1")
    state = _wait_item(page)
    labels: dict[int, str] = {}
    latencies: list[float] = []
    seen_blind = seen_overlay = 0
    for n in range(5):
        item = state["id"]
        assert item in expected_blind, f"unexpected item {item}"
        if expected_blind[item]:
            seen_blind += 1
            # Blind: no score, no overlay image, no toggle, and H changes nothing.
            assert state["blind"] and not state["score"] and not state["overlayButton"]
            assert ".overlay." not in state["src"]
            page.keyboard.press("h")
            assert ".overlay." not in _state(page)["src"]
            if seen_blind == 1:
                shot(page, "review-blind")
        else:
            seen_overlay += 1
            # Issue 11: the highlight opens off (the station's default); H shows it as outlines.
            assert state["score"] and not state["blind"] and ".overlay." not in state["src"]
            page.keyboard.press("h")
            page.wait_for_function("() => document.querySelector('.rv-img').src.includes('.overlay.')")
            state = _state(page)
            if seen_overlay == 1:
                shot(page, "review-overlay")
            page.keyboard.press("h")  # toggle the highlight off and on again
            page.wait_for_function("() => !document.querySelector('.rv-img').src.includes('.overlay.')")
            page.keyboard.press("h")
            page.wait_for_function("() => document.querySelector('.rv-img').src.includes('.overlay.')")
        key, label = ("o", "ok") if n % 2 == 0 else ("x", "scratch")
        page.evaluate(MEASURE_JS)
        page.keyboard.press(key)
        labels[item] = label
        if n < 4:
            page.wait_for_function("() => window.__lat !== null")
            latencies.append(float(page.evaluate("() => window.__lat")))
            state = _wait_item(page, not_id=item)
        else:
            page.wait_for_function("() => document.querySelector('[data-s=\"today\"]').textContent === '5'")
    assert seen_blind >= 2 and seen_overlay >= 2

    with app.read() as session:
        rows = session.exec(
            select(store.ReviewRow).where(store.ReviewRow.inspector == "insp1").order_by(col(store.ReviewRow.id))
        ).all()
        stored = {r.inspection_id: r.label for r in rows if r.undone_at is None}
        blind_flags = {r.inspection_id: r.blind for r in rows}
    assert stored == labels
    assert all(blind_flags[i] == expected_blind[i] for i in labels)

    # Measured and reported, not asserted: timing asserts fail on a noisy machine (the target is 300 ms).
    p50, worst = statistics.median(latencies), max(latencies)
    report = (
        f"key press -> next image shown: p50 {p50:.0f} ms, max {worst:.0f} ms "
        f"over {len(latencies)} presses: {[round(x) for x in latencies]}"
    )
    print("\n" + report)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "review-latency.txt").write_text(report + "\n")
    assert latencies and all(x > 0 for x in latencies)


def test_inspector_cannot_reach_engineer_actions(server: Server, new_page: Any) -> None:
    page = new_page()
    login(page, server.url, "insp1")
    page.wait_for_selector('[data-testid="whoami"]')
    body = page.inner_text("body")
    assert "Engineer screens" not in body and "Save new policy version" not in body
    assert page.locator('[data-testid="nav-engineer"]').count() == 0
    resp = page.goto(f"{server.url}/engineer/", wait_until="load")
    assert resp is not None and resp.status == 403
    shot(page, "engineer-refused-for-inspector")

    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    policy = {"level": "full", "pass_below": 0.5, "reason": "inspector tries"}
    with httpx.Client(base_url=server.url, cookies=cookies) as http:
        me = http.get("/api/v1/me")
        assert me.status_code == 200 and me.json()["role"] == "inspector", (me.status_code, me.text, cookies)
        assert http.put("/api/v1/policies/e2e-assist", json=policy).status_code == 403
        assert http.get("/api/v1/policies").status_code == 403
        assert http.get("/api/v1/reports/audit").status_code == 403
        assert http.get("/api/v1/reports/shadow").status_code == 403
        assert http.get("/api/v1/users").status_code == 403
        # The Gradio engineer app refuses every route, not just the page.
        assert http.get("/engineer/config").status_code in (401, 403)
        assert http.get("/engineer/gradio_api/info").status_code in (401, 403)
        join = http.post("/engineer/gradio_api/queue/join", json={"data": [], "fn_index": 0, "session_hash": "x"})
        assert join.status_code in (401, 403)
    with httpx.Client(base_url=server.url) as anon:
        assert anon.put("/api/v1/policies/e2e-assist", json=policy).status_code == 401
        assert anon.get("/review/config").status_code in (401, 403)
    assert policies.get_policy(server.pipeline, station="e2e-assist").level.value == "ai_assist"


def test_engineer_sets_partial_and_next_http_image_follows_it(server: Server, new_page: Any) -> None:
    app = server.pipeline
    station = "e2e-policy"
    policies.set_policy(app, station=station, by="test", reason="start", level="human_only")
    token = tokens.create_token(app, station=station, by="test")

    page = new_page()
    login(page, server.url, "eng1", next_path="/engineer/")
    page.wait_for_selector("#policy-current")
    shot(page, "engineer-policy")
    dropdown = page.locator("#station-station input")
    dropdown.click()
    dropdown.fill(station)
    dropdown.press("Enter")
    page.wait_for_function(
        "(s) => document.querySelector('#policy-current').innerText.includes(s)", arg=station
    )
    page.get_by_label("partial: model decides when confident, else a person").check()
    # Thresholds: reject first so that pass < reject holds at every step.
    for elem, value in (("#policy-reject-above", "0.995"), ("#policy-pass-below", "0.99"), ("#policy-audit-rate", "0")):
        box = page.locator(f"{elem} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.locator("#policy-reason textarea").fill("e2e: automate confident phones")
    page.locator("#policy-save").click()
    page.locator("#policy-confirm-yes").click()  # issue 11: the change is shown, then confirmed
    page.get_by_text(f"Saved {station} policy version 2").wait_for()
    shot(page, "engineer-policy-saved")

    saved = policies.get_policy(app, station=station)
    assert (saved.level.value, saved.version) == ("partial", 2)
    assert (saved.pass_below, saved.reject_above, saved.audit_rate) == (0.99, 0.995, 0.0)
    assert policies.list_policies(app, station=station)[-1].created_by == "eng1"

    image = server.images[10]
    with httpx.Client(base_url=server.url) as http:
        r = http.post(
            "/api/v1/inspections",
            headers={"Authorization": f"Bearer {token}"},
            data={"station": station},
            files={"image": (image.name, image.read_bytes(), "image/jpeg")},
        )
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["policy_version"] == 2
    score = out["score"]
    assert score is not None
    expected = "auto_pass" if score <= 0.99 else ("auto_reject" if score >= 0.995 else "review")
    assert out["route"] == expected
    if expected != "review":
        assert out["decided_by"] == "model"


def test_screenshots_of_every_screen(server: Server, new_page: Any) -> None:
    page = new_page()
    page.goto(f"{server.url}/login", wait_until="load")
    shot(page, "login")
    page.fill("#name", "eng1")
    page.fill("#password", "wrong password")
    page.click("#login")
    page.get_by_text("Wrong user name or password").wait_for()
    shot(page, "login-failed")
    page.fill("#name", "eng1")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_url("**/engineer/**")
    page.wait_for_selector("#policy-whatif .eng-cards")
    shot(page, "engineer-policy-whatif")
    page.get_by_role("tab", name="Reports").click()
    page.wait_for_function("() => document.querySelector('#shadow-summary').innerText.includes(':')")
    page.wait_for_selector("#audit-plot img, #audit-plot svg, #audit-plot canvas")
    shot(page, "engineer-reports")
    page.get_by_role("tab", name="History").click()
    page.get_by_text("policy.changed").first.wait_for()
    shot(page, "engineer-history")
    page.goto(f"{server.url}/review/", wait_until="load")
    page.wait_for_selector(".rv-item")
    shot(page, "review-engineer")
