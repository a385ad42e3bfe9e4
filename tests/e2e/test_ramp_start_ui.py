"""Starting a ramp from the Models tab in a real browser (issue 14): only registered candidates are offered
(never production), a reason is required, the plan the engineer edited is checked by the same code as the
CLI's before anything changes, a confirmation shows the plan (Cancel changes nothing), and Confirm starts
the ramp as the logged-in engineer; the section then shows its state and first step, and a second start is
refused in the section's own words."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspection.services import deploy, ramp
from tests.e2e.conftest import REPO, Server, engineer_page, engineer_server, wait_text

pytestmark = pytest.mark.e2e
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory, model_dir: tuple[Path, str]) -> Iterator[Server]:
    with engineer_server(tmp_path_factory.mktemp("e2e-ramp-start"), model_dir, ("base", "cand")) as srv:
        yield srv


@pytest.fixture
def page(start_server: Server, browser: Any) -> Iterator[Any]:
    with engineer_page(browser, start_server.url, viewport=VIEWPORT) as pg:
        yield pg


def _fill(page: Any, elem: str, value: str) -> None:
    page.locator(f"#{elem} textarea, #{elem} input").first.fill(value)


def _edit_cell(page: Any, elem: str, *, row: int, col: int, value: str) -> None:
    """Type a new value into a cell (0-based) of an editable Dataframe (double-click edits; Enter commits)."""
    cell = page.locator(f'#{elem} [data-testid="cell-{row}-{col}"]')
    cell.dblclick()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def test_an_engineer_starts_a_ramp_from_the_models_tab(page: Any, start_server: Server) -> None:
    app = start_server.pipeline
    page.get_by_role("tab", name="Models").click()
    wait_text(page, "#ramp-state", "none yet")
    page.get_by_text("Start a ramp…", exact=True).click()
    plan = page.locator("#ramp-plan")
    plan.wait_for()
    assert "0.05" in plan.inner_text() and "400" in plan.inner_text()  # the safe defaults, prefilled

    box = page.locator("#ramp-candidate input")
    box.click()
    page.get_by_role("option", name="cand", exact=True).wait_for()
    assert page.get_by_role("option", name="base", exact=True).count() == 0  # production is no candidate
    page.get_by_role("option", name="cand", exact=True).click()

    page.locator("#ramp-start").click()
    wait_text(page, "#ramp-result", "a reason is required")
    _fill(page, "ramp-reason", "new lighting on line 2")
    _fill(page, "ramp-audit-rate", "0")
    page.locator("#ramp-start").click()
    wait_text(page, "#ramp-result", "audit_rate must be within")  # the plan's own check, as the CLI's
    assert not page.locator("#ramp-confirm").first.is_visible()

    _fill(page, "ramp-audit-rate", "0.3")
    _edit_cell(page, "ramp-plan", row=1, col=1, value="50")  # the 5 % step: 50 items instead of 200
    page.locator("#ramp-start").click()
    wait_text(page, "#ramp-confirm-text", "Start a ramp of cand?")
    summary = page.locator("#ramp-confirm-text").inner_text()
    assert "shadow (≥ 200 items" in summary and "5 % (≥ 50 items" in summary
    assert "Audit rate of its decisions: 30%" in summary
    assert "new lighting on line 2" in summary
    page.locator("#ramp-confirm-no").click()
    wait_text(page, "#ramp-result", "Cancelled")
    assert ramp.status(app) is None  # nothing changes before Confirm

    page.locator("#ramp-start").click()
    wait_text(page, "#ramp-confirm-text", "Start a ramp of cand?")
    page.locator("#ramp-confirm-yes").click()
    wait_text(page, "#ramp-result", "Ramp 1 started: cand at shadow")
    wait_text(page, "#ramp-state", "Ramp 1:")
    state = page.locator("#ramp-state").inner_text()
    assert "running" in state and "[shadow]" in state and "started by eng1: new lighting on line 2" in state
    wait_text(page, "#ramp-steps", "started")
    out = ramp.status(app)
    assert out is not None and (out.candidate, out.created_by, out.plan["audit_rate"]) == ("cand", "eng1", 0.3)
    assert [s["min_items"] for s in out.plan["steps"]] == [200, 50, 400, 800, 0]
    current = deploy.current_state(app)
    assert (current.production, current.candidate, current.mode) == ("base", "cand", "shadow")
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "test-artifacts" / "models-ramp-start.png"), full_page=True)

    _fill(page, "ramp-reason", "once more")
    page.locator("#ramp-start").click()
    wait_text(page, "#ramp-confirm-text", "once more")
    page.locator("#ramp-confirm-yes").click()
    wait_text(page, "#ramp-result", "abort it first")  # a second ramp is refused, in the section's words
    assert ramp.status(app).id == 1  # type: ignore[union-attr]
