"""The Models and Export tabs build inside a Blocks and refuse anyone but an engineer on the server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
import pytest

from inspection.config import Settings
from inspection.services.context import Pipeline
from tests.engineer_fixtures import fake_pipeline
from ui import export_tab, models_tab
from ui.context import UiContext


@pytest.fixture
def ctx(settings: Settings) -> Iterator[UiContext]:
    with fake_pipeline(settings, ["v1", "v2"]) as app:
        yield UiContext.create(app)


def _handlers(blocks: gr.Blocks) -> dict[str, Any]:
    return {getattr(f.fn, "__name__", ""): f.fn for f in blocks.fns.values() if f.fn is not None}


@pytest.mark.parametrize("tab", [models_tab, export_tab])
def test_tab_builds_and_its_handlers_refuse_a_request_without_an_engineer(tab: Any, ctx: UiContext) -> None:
    with gr.Blocks() as blocks:
        tab.build(ctx)
    handlers = _handlers(blocks)
    assert handlers
    run = handlers.get("run") or handlers["refresh"]
    with pytest.raises(gr.Error, match="log in"):
        if tab is export_tab:
            run("csv", "all", "", "", "", "", None)
        else:
            handlers["refresh"](None)


def test_models_state_text_names_production_and_candidate(ctx: UiContext) -> None:
    from inspection.services import deploy

    app: Pipeline = ctx.pipeline
    deploy.canary(app, version="v2", fraction=0.2, by="erin", reason="try")
    text = models_tab.state_text(deploy.current_state(app))
    assert "`v1`" in text and "canary" in text and "20.0%" in text and "erin" in text
    rows = models_tab.model_rows(deploy.list_models(app))
    assert [r[0] for r in rows] == ["v1", "v2"] and rows[1][1] == "canary"
