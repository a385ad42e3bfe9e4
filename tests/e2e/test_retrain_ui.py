"""The Models tab's Automatic candidates section in a real browser (issue 14): a station's runs with
their status and outcome; saving the trigger needs a reason and records the logged-in engineer; "Run
now" starts a run in the server's background worker process, whose outcome the section then shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inspection.config import Settings
from inspection.services import accounts, context, ingest, retrain_trigger
from tests.e2e.conftest import PASSWORD, REPO, Server, copy_model, engineer_page, serving, wait_text
from tests.fakes import png

pytestmark = pytest.mark.e2e
VIEWPORT = {"width": 1366, "height": 768}


@pytest.fixture(scope="module")
def retrain_server(tmp_path_factory: pytest.TempPathFactory, model_dir: tuple[Path, str]) -> Iterator[Server]:
    from inspection.api.app import create_web_app

    root = tmp_path_factory.mktemp("e2e-retrain")
    src_models, name = model_dir
    copy_model(src_models / name, root / "models" / "base", version="base")
    settings = Settings(data_dir=root / "data", models_dir=root / "models", default_model="base", database_url="")
    app = create_web_app(settings)
    pipeline: context.Pipeline = app.state.pipeline
    accounts.add_user(pipeline, name="eng1", role="engineer", password=PASSWORD)
    ingest.inspect(pipeline, data=png(120, seed=1), station="s1", actor="camera")  # the station exists
    with serving(app) as url:
        yield Server(url, settings, pipeline, [])


@pytest.fixture
def page(retrain_server: Server, browser: Any) -> Iterator[Any]:
    with engineer_page(browser, retrain_server.url, viewport=VIEWPORT) as pg:
        yield pg


def test_the_panel_shows_runs_with_their_outcome_and_run_now_starts_one(page: Any, retrain_server: Server) -> None:
    app = retrain_server.pipeline
    first = retrain_trigger.run_now(app, station="s1", by="erin", runner=retrain_trigger.inline_runner)
    assert first.status == "failed"  # one unlabelled item: too few labels
    page.get_by_role("tab", name="Models").click()
    wait_text(page, "#retrain-trigger", "Trigger of s1")
    wait_text(page, "#retrain-runs", "too few labels to retrain")
    assert "failed" in page.locator("#retrain-runs").inner_text()

    page.locator("#retrain-save").click()  # no reason: refused, nothing stored
    wait_text(page, "#retrain-result", "Not saved")
    assert retrain_trigger.get_trigger(app, station="s1").version == 0
    page.locator("#retrain-enabled input").check()
    assert page.locator("#retrain-warm-start input").is_checked()  # the default: fine-tune production
    page.locator("#retrain-warm-start input").uncheck()
    page.locator("#retrain-reason textarea").fill("retrain when 200 new labels are in")
    page.locator("#retrain-save").click()
    wait_text(page, "#retrain-result", "Saved trigger v1")
    saved = retrain_trigger.get_trigger(app, station="s1")
    assert saved.settings["enabled"] and saved.created_by == "eng1" and saved.settings["warm_start"] is False
    wait_text(page, "#retrain-trigger", "from ImageNet")

    page.locator("#retrain-run-now").click()  # the server's worker process: fails on too few labels too
    wait_text(page, "#retrain-result", "Run 2 started")
    run = retrain_trigger.wait_run(app, run_id=2, timeout=120)
    assert (run.status, run.requested_by) == ("failed", "eng1")
    page.locator("#retrain-section").scroll_into_view_if_needed()
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path=str(REPO / "test-artifacts" / "models-retrain.png"), full_page=True)
