"""The Models tab's Ramp section in a real browser (issue 14): a running ramp's state and steps are
shown; Pause and Abort each ask for confirmation first (Cancel changes nothing), Resume continues,
and Abort withdraws the candidate; the service sees every change, made by the logged-in engineer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspection import store
from inspection.services import context, deploy, ramp
from tests.e2e.conftest import REPO, Server, engineer_page, engineer_server, wait_text

pytestmark = pytest.mark.e2e
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def ramp_server(tmp_path_factory: pytest.TempPathFactory, model_dir: tuple[Path, str]) -> Iterator[Server]:
    with engineer_server(tmp_path_factory.mktemp("e2e-ramp"), model_dir, ("base", "cand")) as srv:
        yield srv


@pytest.fixture
def page(ramp_server: Server, browser: Any) -> Iterator[Any]:
    with engineer_page(browser, ramp_server.url, viewport=VIEWPORT) as pg:
        yield pg


def _events(app: context.Pipeline) -> list[tuple[str, str | None]]:
    with app.read() as session:
        events = reversed(store.list_events(session, limit=200))
        return [(e.kind, e.actor) for e in events if e.kind.startswith("ramp.")]


def test_pause_resume_and_abort_from_the_models_tab(page: Any, ramp_server: Server) -> None:
    app = ramp_server.pipeline
    ramp.start(app, version="cand", by="erin", reason="new lighting")
    page.get_by_role("tab", name="Models").click()
    page.locator("#models-refresh").click()  # the ramp section refreshes with the page load and auto-refresh
    wait_text(page, "#ramp-state", "Ramp 1:")
    assert "running" in page.locator("#ramp-state").inner_text()
    wait_text(page, "#ramp-steps", "started")

    page.locator("#ramp-pause").click()
    wait_text(page, "#ramp-confirm-text", "Pause the ramp?")
    page.locator("#ramp-confirm-no").click()
    wait_text(page, "#ramp-result", "Cancelled")
    assert ramp.status(app) is not None and ramp.status(app).status == "running"  # type: ignore[union-attr]

    page.locator("#ramp-pause").click()
    wait_text(page, "#ramp-confirm-text", "Pause the ramp?")
    page.locator("#ramp-confirm-yes").click()
    wait_text(page, "#ramp-result", "is paused")
    wait_text(page, "#ramp-state", "paused")
    wait_text(page, "#ramp-steps", "paused")
    assert ramp.status(app).status == "paused"  # type: ignore[union-attr]

    page.locator("#ramp-resume").click()
    wait_text(page, "#ramp-result", "is running")

    page.locator("#ramp-abort").click()
    wait_text(page, "#ramp-confirm-text", "Abort the ramp?")
    page.locator("#ramp-confirm-yes").click()
    wait_text(page, "#ramp-result", "is aborted")
    wait_text(page, "#ramp-state", "aborted")
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "test-artifacts" / "models-ramp.png"), full_page=True)
    assert deploy.current_state(app).candidate is None
    assert _events(app) == [("ramp.started", "erin"), ("ramp.paused", "eng1"), ("ramp.resumed", "eng1"),
                            ("ramp.aborted", "eng1")]  # fmt: skip
