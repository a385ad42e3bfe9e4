"""Engineer screens: station policy with a live what-if, shadow and audit reports, history, and the
optional Models and Export tabs.

Every handler checks the role on the server first (`ctx.require`), even though the whole engineer
app is also mounted behind an engineer-only dependency. Handlers call service functions and format
the result; expected errors become messages (gr.Error / gr.Warning), never stack traces
(`engineer_common.messages`).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

import gradio as gr

from ui import engineer_history, engineer_monitor, engineer_policy, engineer_qc, engineer_reports, engineer_station
from ui.context import UiContext

log = logging.getLogger(__name__)

OPTIONAL_TABS = (("Models", "ui.models_tab"), ("Tokens", "ui.tokens_tab"), ("Export", "ui.export_tab"))


def build(ctx: UiContext) -> None:
    """All engineer tabs (call inside a Blocks context)."""
    with gr.Tabs():
        with gr.Tab("Policy", id="policy"):
            engineer_policy.build(ctx)
        with gr.Tab("Station setup", id="station"):
            engineer_station.build(ctx)
        with gr.Tab("Reports", id="reports"):
            engineer_reports.build(ctx)
        with gr.Tab("History", id="history"):
            engineer_history.build(ctx)
        with gr.Tab(engineer_monitor.TAB_LABEL, id="monitoring") as monitoring_tab:
            engineer_monitor.build(ctx, tab=monitoring_tab)
        with gr.Tab(engineer_qc.TAB_LABEL, id="inspectors"):
            engineer_qc.build(ctx)
        for title, module in OPTIONAL_TABS:
            if importlib.util.find_spec(module) is None:
                continue
            with gr.Tab(title, id=title.lower()):
                try:
                    importlib.import_module(module).build(ctx)
                except Exception:
                    log.exception("tab %s failed to build", module)
                    gr.Markdown(f"The {title} tab could not be built; the server log has the details.")
