"""Engineer screen, "Reports" tab: the shadow report (model against inspectors) and the audit report
(blind re-checks of automatic decisions), each as a table and a figure. A confusion cell (picked in
the table or by name) opens a gallery of the items behind it. The tab refreshes itself while shown."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from inspection.services import compare, reports  # noqa: E402
from ui.context import Permission, UiContext  # noqa: E402
from ui.engineer_common import (  # noqa: E402
    all_stations_dropdown,
    auto_refresh,
    gallery_images,
    messages,
    pct,
    station_filter,
    wire_filter,
)

# Confusion cells: (row label in the shadow table, model says scratch, inspector says scratch)
CELLS = {
    "true scratch caught (TP)": (True, True),
    "scratch missed (FN)": (False, True),
    "false alarm (FP)": (True, False),
    "true OK (TN)": (False, False),
}


def audit_figure(report: reports.AuditReport) -> Figure:
    fig = Figure(figsize=(5.6, 2.8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    names, rates, lows, highs = [], [], [], []
    for name, est in (("escape rate", report.escape), ("false-reject rate", report.false_reject)):
        names.append(f"{name}\n({est.events}/{est.trials})")
        rate = est.rate if math.isfinite(est.rate) else 0.0
        rates.append(rate)
        lows.append(max(0.0, rate - est.low))
        highs.append(max(0.0, est.high - rate))
    ax.barh(names, rates, xerr=[lows, highs], color=["#c0392b", "#d68910"], capsize=8)
    ax.set_xlim(0, max(0.05, *(r + h for r, h in zip(rates, highs, strict=True))) * 1.1)
    ax.set_xlabel("rate with 95 % interval (blind audit labels)")
    # no figure title: the component's label names the plot (a title would sit under it)
    return fig


def shadow_figure(report: reports.ShadowReport) -> Figure:
    fig = Figure(figsize=(4.4, 3.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    grid = [[report.tn, report.fp], [report.fn, report.tp]]
    ax.imshow(grid, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(grid[i][j]), ha="center", va="center", fontsize=16)
    ax.set_xticks([0, 1], ["model OK", "model scratch"])
    ax.set_yticks([0, 1], ["inspector OK", "inspector scratch"])
    return fig


def shadow_rows(sh: reports.ShadowReport) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["labelled items", sh.n],
        ["agreement", f"{pct(sh.agreement)} ({pct(sh.agreement_low)} – {pct(sh.agreement_high)})"],
        ["Cohen's kappa", "n/a" if sh.kappa is None else f"{sh.kappa:.3f}"],
        ["true scratch caught (TP)", sh.tp],
        ["scratch missed (FN)", sh.fn],
        ["false alarm (FP)", sh.fp],
        ["true OK (TN)", sh.tn],
    ]
    sug = sh.suggestion
    if sug is not None and sug.ok:
        rows.append(["suggested partial thresholds", f"pass ≤ {sug.pass_below} · reject ≥ {sug.reject_above}"])
    return rows


def audit_rows(au: reports.AuditReport) -> list[list[Any]]:
    rows: list[list[Any]] = [
        [name, est.events, est.trials, pct(est.rate, 2), f"{pct(est.low, 2)} – {pct(est.high, 2)}"]
        for name, est in (
            ("escape rate (auto-passed, found scratched)", au.escape),
            ("false-reject rate (auto-rejected, found OK)", au.false_reject),
        )
    ]
    rows.append(["audits pending", au.pending, "", "", ""])
    return rows


def build(ctx: UiContext) -> None:
    """The Reports tab (call inside a Tab)."""
    app = ctx.pipeline
    with gr.Row():
        station = all_stations_dropdown(ctx, elem_id="reports-station", custom=True)
        max_escape = gr.Number(0.002, label="Target escape rate for the suggestion", minimum=0.0001, maximum=0.5)
        refresh = gr.Button("Refresh reports", size="lg", elem_id="reports-refresh")
    gr.Markdown("### Shadow report: model against inspectors (items reviewed under shadow / ai_assist)")
    with gr.Row():
        with gr.Column(scale=3):
            shadow_summary = gr.Markdown(elem_id="shadow-summary")
            shadow_table = gr.Dataframe(headers=["measure", "value"], interactive=False, elem_id="shadow-table")
        shadow_plot = gr.Plot(label="Confusion: model (score ≥ 0.5) vs inspector", elem_id="shadow-plot")
    with gr.Row():
        cell = gr.Radio(list(CELLS), label="Show the items of a confusion cell", value=None, elem_id="shadow-cell")
        cell_note = gr.Markdown(elem_id="shadow-cell-note")
    cell_gallery = gr.Gallery(label="Items in the cell", columns=6, height=300, elem_id="shadow-gallery")
    gr.Markdown("### Audit report: blind re-checks of automatic decisions")
    with gr.Row():
        audit_table = gr.Dataframe(
            headers=["measure", "events", "audited", "rate", "95 % interval"],
            interactive=False,
            wrap=True,
            column_widths=["38%", "12%", "12%", "13%", "25%"],
            elem_id="audit-table",
        )
        audit_plot = gr.Plot(label="Audit estimates", elem_id="audit-plot")

    @messages
    def run(name: str | None, target: float, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        st = station_filter(name)
        sh = reports.shadow_report(app, station=st, max_escape=float(target or 0.002))
        au = reports.audit_report(app, station=st)
        summary = f"**{st or 'all stations'}**: {sh.summary}"
        return summary, shadow_rows(sh), shadow_figure(sh), audit_rows(au), audit_figure(au)

    outs = [shadow_summary, shadow_table, shadow_plot, audit_table, audit_plot]
    wire_filter(ctx, station, refresh, run, [station, max_escape], outs)
    auto_refresh(run, [station, max_escape], outs)

    @messages
    def show_cell(name: str | None, which: str | None, request: gr.Request) -> tuple[str, list[Any]]:
        ctx.require(request, Permission.ENGINEER)
        if which not in CELLS:
            return "", []
        model_scratch, inspector_scratch = CELLS[which]
        n, items = compare.confusion_items(
            app, station=station_filter(name), model_scratch=model_scratch, inspector_scratch=inspector_scratch
        )
        note = f"**{which}**: {n} item(s)" + (f", newest {len(items)} shown" if n > len(items) else "")
        return note, gallery_images([(i.image_path, i.caption) for i in items])

    def pick_row(evt: gr.SelectData) -> Any:
        row = evt.row_value if isinstance(evt.row_value, list) else []
        return gr.update(value=row[0]) if row and row[0] in CELLS else gr.update()

    shadow_table.select(pick_row, None, [cell])
    cell.change(show_cell, [station, cell], [cell_note, cell_gallery])
