"""The Models and Export tabs build inside a Blocks and refuse anyone but an engineer on the server."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pytest

from inspection.config import Settings
from inspection.services.context import Pipeline
from tests.engineer_fixtures import fake_pipeline
from ui import export_tab, models_tab, tokens_tab
from ui.context import UiContext


@pytest.fixture
def ctx(settings: Settings) -> Iterator[UiContext]:
    with fake_pipeline(settings, ["v1", "v2"]) as app:
        yield UiContext.create(app)


def _handlers(blocks: gr.Blocks) -> dict[str, Any]:
    return {getattr(f.fn, "__name__", ""): f.fn for f in blocks.fns.values() if f.fn is not None}


@pytest.mark.parametrize("tab", [models_tab, export_tab, tokens_tab])
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
            refresh = handlers["refresh"]
            refresh(*[None] * len(inspect.signature(refresh).parameters))
    # every refresh of the tab (panels mounted in it have their own), each called without a login
    refreshes = [f.fn for f in blocks.fns.values() if getattr(f.fn, "__name__", "") == "refresh"]
    for refresh in refreshes:
        with pytest.raises(gr.Error, match="log in"):
            refresh(*[None] * len(inspect.signature(refresh).parameters))


def test_models_state_text_names_production_and_candidate(ctx: UiContext) -> None:
    from inspection.services import deploy

    app: Pipeline = ctx.pipeline
    deploy.canary(app, version="v2", fraction=0.2, by="erin", reason="try")
    text = models_tab.state_text(deploy.current_state(app))
    assert "`v1`" in text and "canary" in text and "20.0%" in text and "erin" in text
    rows = models_tab.model_rows(deploy.list_models(app))
    assert [r[0] for r in rows] == ["v1", "v2"] and rows[1][1] == "canary"


def test_what_if_counts_audits_and_manual_levels_automate_nothing() -> None:
    from inspection.core.domain import Label, LabelledScore
    from ui import engineer_policy as ep

    history = [LabelledScore(score=s / 100, label=Label.SCRATCH if s > 50 else Label.OK) for s in range(100)]
    wi, _ = ep.what_if(history, level="partial", pass_below=0.2, reject_above=0.8)
    with_audits = ep.policy_load(wi, level="partial", audit_rate=0.3, items_per_hour=600, seconds_per_review=4)
    without = ep.policy_load(wi, level="partial", audit_rate=0.0, items_per_hour=600, seconds_per_review=4)
    assert with_audits.audits_per_hour == pytest.approx(600 * wi.automation_rate * 0.3)
    assert with_audits.reviews_per_hour == pytest.approx(without.reviews_per_hour + with_audits.audits_per_hour)
    for level in ("ai_assist", "shadow", "human_only"):
        load = ep.policy_load(wi, level=level, audit_rate=0.3, items_per_hour=600, seconds_per_review=4)
        assert (load.automation_rate, load.reviews_per_hour, load.audits_per_hour) == (0.0, 600, 0.0)
        page = ep.what_if_html(history, level=level, pass_below=0.05, reject_above=0.95, items_per_hour=600,
                               seconds_per_review=4, audit_rate=0.3)  # fmt: skip
        assert "0.0 %" in page and "600 items/h" in page and "95" not in page.split("Automation rate")[1][:40]


def test_policy_diff_lists_only_what_changes() -> None:
    from inspection.core.domain import AutomationLevel, Policy
    from ui import engineer_policy as ep

    old = Policy(station="s1", level=AutomationLevel.SHADOW, pass_below=0.05, reject_above=0.95, audit_rate=0.02,
                 version=3)  # fmt: skip
    new = {"level": "partial", "pass_below": 0.05, "reject_above": 0.9, "audit_rate": 0.02}
    changes = ep.policy_diff(old, new)
    assert changes == [("level", "shadow", "partial"), ("reject above", 0.95, 0.9)]
    text = ep.diff_markdown(old, new, changes, reason="why", load="automation 50 %")
    assert "version 4" in text and "| level | shadow | **partial** |" in text and "“why”" in text


def test_models_rows_show_held_out_metrics_and_the_plan_summary(ctx: UiContext) -> None:
    from inspection.services import deploy
    from inspection.vision.artifact import update_metrics

    app: Pipeline = ctx.pipeline
    update_metrics(
        app.settings.models_dir / "v1", {"synthetic_test_seed777": {"auroc": 0.99, "accuracy": 0.97, "n": 360}}
    )
    held = {"n": 40, "candidate": {"auroc": 0.95}, "production": {"version": "v1", "auroc": 0.9}}
    update_metrics(app.settings.models_dir / "v2", {"retrain": {"heldout": held}})
    rows = {r[0]: r for r in models_tab.model_rows(deploy.list_models(app))}
    assert rows["v1"][2:7] == [0.99, 0.97, None, 360, "synthetic_test_seed777"]
    assert rows["v2"][2] == 0.95 and rows["v2"][5] == 40
    p = deploy.plan(app, action="promote", version="v2")
    text = models_tab.plan_text(app, p, reason="better")
    assert "production `v1` → `v2`" in text and "auroc 0.9500" in text and "“better”" in text
