"""Issue 11, engineer screens in a real browser at 1366x768: deployment changes are confirmed with a
summary, a rollback never re-deploys a force-promoted worse model, a worse canary needs force, the
what-if shows ai_assist as 0 % automation and counts audits in the review load, Save shows a diff
first, tabs refresh themselves, tokens are revoked from the screen.

The server here has its own models directory: copies of the shipped model (or the tiny one) as
`base` and `worse`, the latter with a stored held-out comparison that says it is worse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspection.config import Settings
from inspection.services import accounts, context, deploy, ingest, policies, tokens
from tests.e2e.conftest import PASSWORD, REPO, Server, copy_model, engineer_page, serving
from tests.engineer_fixtures import label_queue

pytestmark = pytest.mark.e2e
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def safety_server(tmp_path_factory: pytest.TempPathFactory, model_dir: tuple[Path, str]) -> Iterator[Server]:
    from inspection.api.app import create_web_app
    from inspection.vision import synth

    root = tmp_path_factory.mktemp("e2e-safety")
    src_models, name = model_dir
    models = root / "models"
    copy_model(src_models / name, models / "base", version="base")
    held = {"n": 120, "candidate": {"auroc": 0.61, "accuracy": 0.7}, "production": {"version": "base", "auroc": 0.97}}
    copy_model(src_models / name, models / "worse", version="worse", metrics={"retrain": {"heldout": held}})
    settings = Settings(data_dir=root / "data", models_dir=models, default_model="base", database_url="")
    synth.generate(root / "phones", count=12, seed=5, size=(640, 360), progress=False)
    app = create_web_app(settings)
    pipeline: context.Pipeline = app.state.pipeline
    accounts.add_user(pipeline, name="eng1", role="engineer", password=PASSWORD)
    with serving(app) as url:
        yield Server(url, settings, pipeline, sorted((root / "phones").glob("*/*.jpg")))


@pytest.fixture
def page(safety_server: Server, browser: Any) -> Iterator[Any]:
    with engineer_page(browser, safety_server.url, viewport=VIEWPORT) as pg:
        yield pg


def _text(page: Any, selector: str) -> str:
    return str(page.locator(selector).inner_text())


def _wait_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => { const e = document.querySelector(s); return !!e && e.innerText.includes(t); }",
        arg=[selector, text],
    )


def _pick(page: Any, elem: str, value: str) -> None:
    box = page.locator(f"#{elem} input")
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()


def _shot(page: Any, name: str, *, full: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full)


def _fits(page: Any, selector: str) -> None:
    """The element is no wider than the viewport (nothing cut off on the right at 1366 px)."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"] + 1, box


def _in_view(page: Any, selector: str) -> None:
    """The element is inside the 1366x768 viewport as the page is scrolled now (a dialog the
    engineer must answer, never below the fold)."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"] + 1, box


def test_deploy_changes_are_confirmed_and_rollback_never_redeploys_the_worse_model(
    safety_server: Server, page: Any
) -> None:
    app = safety_server.pipeline
    page.get_by_role("tab", name="Models").click()
    _wait_text(page, "#models-table", "synthetic_test")  # filled on open, baseline's held-out set shown
    table = _text(page, "#models-table")
    assert "worse" in table and "0.61" in table
    _wait_text(page, "#models-state", "Production: base")
    _fits(page, "#models-table")
    _shot(page, "models-tab.png")

    _pick(page, "models-version", "worse")
    page.locator("#models-promote").click()
    _wait_text(page, "#models-result", "promotion refused")
    assert "--force" not in _text(page, "#models-result") and "Force" in _text(page, "#models-result")
    assert not page.locator("#models-confirm").first.is_visible()

    page.locator("#models-canary").click()  # a worse canary needs force as well
    _wait_text(page, "#models-result", "canary refused")

    page.locator("#models-force input").check()
    page.locator("#models-reason textarea, #models-reason input").first.fill("customer demo, approved")
    page.locator("#models-promote").click()
    _wait_text(page, "#models-confirm-text", "base → worse")
    _in_view(page, "#models-confirm")
    _shot(page, "models-confirm.png", full=False)
    summary = _text(page, "#models-confirm-text")
    assert "Forced" in summary and "0.6100" in summary and "customer demo" in summary
    assert deploy.current_state(app).production == "base"  # nothing changes before Confirm
    page.locator("#models-confirm-yes").click()
    _wait_text(page, "#models-result", "Done: production worse")
    assert deploy.current_state(app).production == "worse"
    assert page.locator("#models-reason textarea, #models-reason input").first.input_value() == ""
    assert not page.locator("#models-force input").is_checked()

    page.locator("#models-rollback").click()
    _wait_text(page, "#models-confirm-text", "worse → base")
    page.locator("#models-confirm-yes").click()
    _wait_text(page, "#models-result", "Done: production base")
    page.locator("#models-rollback").click()  # one more click: must not bring `worse` back
    _wait_text(page, "#models-result", "nothing to roll back to")
    assert not page.locator("#models-confirm").first.is_visible()
    assert deploy.current_state(app).production == "base"

    deploy.shadow(app, version="worse", by="someone", reason="made elsewhere")  # auto-refresh, no click
    _wait_text(page, "#models-state", "shadow")


def test_what_if_and_policy_save_diff(safety_server: Server, page: Any) -> None:
    app, station = safety_server.pipeline, "e2e-safe"
    policies.set_policy(app, station=station, by="test", reason="start", level="shadow", audit_rate=0.02)
    truth = {}
    for image in safety_server.images:
        res = ingest.inspect(app, data=image.read_bytes(), station=station, source_name=image.name)
        truth[res.inspection.id] = image.parent.name if image.parent.name in ("scratch", "ok") else "ok"
    label_queue(app, truth=truth, station=station)
    page.reload(wait_until="load")
    page.wait_for_selector("#policy-current")
    box = page.locator("#station-station input")
    box.click()
    box.fill(station)
    box.press("Enter")
    _wait_text(page, "#policy-current", station)

    page.get_by_label("ai_assist: a person decides every phone, seeing score and highlight").check()
    _wait_text(page, "#policy-whatif", "automates nothing")
    cards = _text(page, "#policy-whatif")
    assert "0.0 %" in cards and "600 items/h" in cards

    page.get_by_label("partial: model decides when confident, else a person").check()
    for elem, value in (("#policy-reject-above", "0.6"), ("#policy-pass-below", "0.4"), ("#policy-audit-rate", "0")):
        num = page.locator(f"{elem} input[type=number]")
        num.fill(value)
        num.press("Enter")
    _wait_text(page, "#policy-whatif", "(incl. 0 audits/h)")
    num = page.locator("#policy-audit-rate input[type=number]")
    num.fill("0.3")
    num.press("Enter")
    page.wait_for_function(
        "() => { const t = document.querySelector('#policy-whatif').innerText;"
        " return /incl\\. [1-9][0-9]* audits\\/h/.test(t); }"
    )
    _fits(page, "#policy-curve")

    page.locator("#policy-reason textarea").fill("e2e: enough shadow labels")
    page.locator("#policy-save").click()
    _wait_text(page, "#policy-confirm-text", "version 2")
    _in_view(page, "#policy-confirm")
    diff = _text(page, "#policy-confirm-text")
    assert "shadow" in diff and "partial" in diff and "0.3" in diff
    assert policies.get_policy(app, station=station).version == 1  # not stored before Confirm
    _shot(page, "policy-tab.png")
    page.locator("#policy-confirm-yes").click()
    _wait_text(page, "#policy-status", f"Saved {station} policy version 2")
    stored = policies.get_policy(app, station=station)
    assert (stored.level.value, stored.pass_below, stored.reject_above, stored.audit_rate) == ("partial", 0.4, 0.6, 0.3)
    assert page.locator("#policy-reason textarea").input_value() == ""

    page.get_by_role("tab", name="History").click()  # a change made elsewhere appears by itself
    policies.set_policy(app, station=station, by="someone", reason="e2e: changed from the CLI", level="shadow")
    _wait_text(page, "#history-policies", "changed from the CLI")


def test_tokens_are_listed_and_revoked_after_confirmation(safety_server: Server, page: Any) -> None:
    app = safety_server.pipeline
    token = tokens.create_token(app, station="e2e-cam", by="test")
    page.get_by_role("tab", name="Tokens").click()
    _wait_text(page, "#tokens-table", "e2e-cam")
    (info,) = tokens.list_tokens(app, station="e2e-cam")
    _pick(page, "tokens-pick", f"{info.id}: e2e-cam ({info.prefix}…)")
    page.locator("#tokens-revoke").click()
    _wait_text(page, "#tokens-confirm-text", "Revoke token")
    assert tokens.authenticate_token(app, token=token) == "e2e-cam"  # not before Confirm
    page.locator("#tokens-confirm-yes").click()
    _wait_text(page, "#tokens-status", f"Revoked token {info.id}")
    _wait_text(page, "#tokens-table", "revoked")
    assert tokens.authenticate_token(app, token=token) is None
