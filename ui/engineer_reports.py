"""Engineer screen, "Reports" tab: the shadow report (model against inspectors) and the audit report
(blind re-checks of automatic decisions), each as a table and a figure."""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from inspection.services import reports  # noqa: E402
from ui.context import Permission, UiContext  # noqa: E402
from ui.engineer_common import all_stations_dropdown, messages, pct, station_filter, wire_filter  # noqa: E402


def audit_figure(report: reports.AuditReport) -> Figure:
    fig = Figure(figsize=(6.4, 3.0), dpi=100, layout="constrained")
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
    ax.set_title("Audit estimates")
    return fig


def shadow_figure(report: reports.ShadowReport) -> Figure:
    fig = Figure(figsize=(4.6, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    grid = [[report.tn, report.fp], [report.fn, report.tp]]
    ax.imshow(grid, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(grid[i][j]), ha="center", va="center", fontsize=16)
    ax.set_xticks([0, 1], ["model OK", "model scratch"])
    ax.set_yticks([0, 1], ["inspector OK", "inspector scratch"])
    ax.set_title("Model (score ≥ 0.5) vs inspector")
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
        shadow_plot = gr.Plot(label="Confusion", elem_id="shadow-plot")
    gr.Markdown("### Audit report: blind re-checks of automatic decisions")
    with gr.Row():
        audit_table = gr.Dataframe(
            headers=["measure", "events", "audited", "rate", "95 % interval"],
            interactive=False,
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
