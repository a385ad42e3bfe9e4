"""Engineer screen, "Inspectors" tab (engineers only): quality control of the people who label.

Per inspector: accuracy on planted gold items with its 95 % interval and the misses, time per item and
accuracy in the first vs the last hour of their days; Cohen's kappa per pair of inspectors and overall;
the queue of disagreements to adjudicate (the engineer's label becomes the item's final label); the
gold items; and each station's QC rates. Handlers call `services.quality` only.
"""

from __future__ import annotations

import html
from typing import Any

import cv2
import gradio as gr
import numpy as np

from inspection.core.agreement import ShiftWindow
from inspection.core.domain import AuditEstimate
from inspection.services import quality
from ui.context import Permission, UiContext
from ui.engineer_common import (
    all_stations_dropdown,
    auto_refresh,
    messages,
    pct,
    station_dropdown,
    station_filter,
    wire_filter,
)

TAB_LABEL = "Inspectors"
DISPLAY_W = 720  # the item to adjudicate is shown this wide
PEOPLE_HEADERS = ["inspector", "labels", "gold correct", "accuracy (95 % interval)", "s/item first hour",
                  "s/item last hour", "gold first hour", "gold last hour", "days"]  # fmt: skip
MISS_HEADERS = ["inspector", "gold item", "answered", "truth", "station", "when (UTC)"]
PAIR_HEADERS = ["inspector A", "inspector B", "items", "agreed", "Cohen's kappa"]
ADJ_HEADERS = ["item", "station", "labels", "second label (UTC)"]
GOLD_HEADERS = ["item", "station", "label", "by", "when (UTC)", "why"]
FINAL_LABEL = "(its final label)"


def _acc(est: AuditEstimate) -> str:
    if est.trials == 0:
        return "no gold answered"
    return f"{pct(est.rate)} ({pct(est.low)}–{pct(est.high)})"


def _secs(w: ShiftWindow) -> str:
    return "n/a" if w.seconds_median is None else f"{w.seconds_median:.1f} s (n={w.n})"


def _when(dt: Any) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def report_view(rep: quality.QcReport) -> list[Any]:
    """[summary, inspectors, misses, pairs] for one report."""
    people = [[q.inspector, q.labels, f"{q.gold.events}/{q.gold.trials}", _acc(q.gold), _secs(q.shift.first_hour),
               _secs(q.shift.last_hour), _acc(q.shift.first_hour.gold), _acc(q.shift.last_hour.gold), q.shift.days]
              for q in rep.inspectors]  # fmt: skip
    misses = [[q.inspector, f"#{m.gold_item}", m.answer, m.truth, m.station, _when(m.at)]
              for q in rep.inspectors for m in q.misses]  # fmt: skip
    kappa = lambda k: "n/a" if k is None else f"{k:.3f}"  # noqa: E731
    pairs = [[p.a, p.b, p.n, p.agreed, kappa(p.kappa)] for p in rep.pairs]
    o = rep.overall
    summary = (
        f"<b>{rep.gold_items}</b> gold items · <b>{rep.double_items}</b> items labelled twice, "
        f"overall kappa <b>{kappa(o.kappa)}</b> ({o.agreed}/{o.n} agree) · "
        f"<b>{rep.pending_adjudication}</b> waiting for adjudication"
    )
    return [f'<div class="eng-note" id="qc-summary-text">{summary}</div>', people, misses, pairs]


def adjudication_rows(items: list[quality.AdjudicationItem]) -> list[list[Any]]:
    return [[it.inspection_id, it.station, ", ".join(f"{who}: {lab}" for who, lab in it.labels), _when(it.at)]
            for it in items]  # fmt: skip


def gold_rows(items: list[quality.GoldItem]) -> list[list[Any]]:
    return [[g.inspection_id, g.station, g.label, g.created_by, _when(g.created_at), g.reason] for g in items]


def item_image(item: quality.AdjudicationItem | None) -> np.ndarray | None:
    """The item's image, DISPLAY_W wide (RGB); None when it cannot be read."""
    if item is None or not item.image_path.is_file():
        return None
    img = cv2.imdecode(np.fromfile(str(item.image_path), dtype=np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return None
    h = max(1, round(img.shape[0] * DISPLAY_W / img.shape[1]))
    return cv2.cvtColor(cv2.resize(img, (DISPLAY_W, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def _item_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise gr.Error("enter an item number") from None


def build(ctx: UiContext) -> None:  # noqa: PLR0915  (one screen: the layout and its handlers read top to bottom)
    """The Inspectors tab (call inside a Tab)."""
    app = ctx.pipeline
    with gr.Row():
        station = all_stations_dropdown(ctx, elem_id="qc-station")
        refresh = gr.Button("Refresh", elem_id="qc-refresh", scale=0)
    summary = gr.HTML(elem_id="qc-summary")
    gr.Markdown("### Accuracy on gold items, and the first vs the last hour of each inspector's day")
    people = gr.Dataframe(headers=PEOPLE_HEADERS, interactive=False, elem_id="qc-inspectors", wrap=True)
    gr.Markdown("### Gold items answered wrongly")
    misses = gr.Dataframe(headers=MISS_HEADERS, interactive=False, elem_id="qc-misses")
    gr.Markdown("### Agreement of inspectors who labelled the same items")
    pairs = gr.Dataframe(headers=PAIR_HEADERS, interactive=False, elem_id="qc-pairs")
    gr.Markdown("### Disagreements to adjudicate: your label becomes the item's final label")
    adj_table = gr.Dataframe(headers=ADJ_HEADERS, interactive=False, elem_id="qc-adjudication")
    with gr.Row():
        with gr.Column(scale=3):
            adj_image = gr.Image(label="Item", interactive=False, type="numpy", elem_id="qc-adj-image")
        with gr.Column(scale=2):
            adj_id = gr.Number(None, label="Item to adjudicate", precision=0, elem_id="qc-adj-id")
            adj_labels = gr.Markdown(elem_id="qc-adj-labels")
            adj_reason = gr.Textbox(label="Reason", elem_id="qc-adj-reason")
            with gr.Row():
                adj_scratch = gr.Button("Final label: scratch", variant="stop", elem_id="qc-adj-scratch")
                adj_ok = gr.Button("Final label: ok", variant="primary", elem_id="qc-adj-ok")
            adj_result = gr.HTML(elem_id="qc-adj-result")
    gr.Markdown("### Gold items (planted blind in the inspectors' queues)")
    with gr.Row():
        gold_id = gr.Number(None, label="Item", precision=0, elem_id="qc-gold-id")
        gold_label = gr.Radio([FINAL_LABEL, "scratch", "ok"], value=FINAL_LABEL, label="Known label",
                              elem_id="qc-gold-label")  # fmt: skip
        gold_reason = gr.Textbox(label="Why the label is certain", elem_id="qc-gold-reason")
    with gr.Row():
        gold_add = gr.Button("Mark as gold", elem_id="qc-gold-add")
        gold_remove = gr.Button("Stop planting", elem_id="qc-gold-remove")
    gold_table = gr.Dataframe(headers=GOLD_HEADERS, interactive=False, elem_id="qc-gold")
    gr.Markdown("### QC rates of a station (empty: the server setting)")
    with gr.Row():
        rate_station = station_dropdown(ctx, label="QC station")
        gold_rate = gr.Number(None, label="gold rate (share of claims)", minimum=0, maximum=1, elem_id="qc-gold-rate")
        double_rate = gr.Number(None, label="double-label rate", minimum=0, maximum=1, elem_id="qc-double-rate")
        rate_reason = gr.Textbox(label="Reason", elem_id="qc-rate-reason")
        rate_save = gr.Button("Save rates", elem_id="qc-rate-save")
    rate_result = gr.HTML(elem_id="qc-rate-result")

    outs = [summary, people, misses, pairs, adj_table, gold_table]

    @messages
    def run(name: str | None, request: gr.Request) -> list[Any]:
        ctx.require(request, Permission.ENGINEER)
        flt = station_filter(name)
        rep = quality.qc_report(app, station=flt)
        queue = quality.adjudication_queue(app, station=flt)
        return [*report_view(rep), adjudication_rows(queue), gold_rows(quality.list_gold(app))]

    def pick(item_id: Any) -> tuple[np.ndarray | None, str]:
        found = next((it for it in quality.adjudication_queue(app) if it.inspection_id == item_id), None)
        if found is None:
            return None, "not waiting for adjudication"
        return item_image(found), " · ".join(f"**{html.escape(w)}**: {lab}" for w, lab in found.labels)

    @messages
    def show_item(value: Any, request: gr.Request) -> tuple[np.ndarray | None, str]:
        ctx.require(request, Permission.ENGINEER)
        return (None, "") if value is None else pick(_item_id(value))

    @messages
    def select_row(evt: gr.SelectData, request: gr.Request) -> Any:
        ctx.require(request, Permission.ENGINEER)
        row = evt.row_value if isinstance(evt.row_value, list) else None
        return row[0] if row else gr.update()

    def decide(label: str) -> Any:
        @messages
        def handler(name: str | None, value: Any, why: str, request: gr.Request) -> list[Any]:
            user = ctx.require(request, Permission.ENGINEER)
            item = _item_id(value)
            quality.adjudicate(app, inspection_id=item, label=label, by=user.name, reason=why or "")
            who = html.escape(user.name)
            note = f'<div class="eng-card" id="qc-adj-done">#{item}: final label <b>{label}</b> ({who})</div>'
            return [*run(name, request), note, None, ""]

        return handler

    @messages
    def mark(name: str | None, value: Any, label: str, why: str, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        quality.mark_gold(app, inspection_id=_item_id(value), by=user.name, reason=why or "",
                          label=None if label == FINAL_LABEL else label)  # fmt: skip
        return run(name, request)

    @messages
    def unmark(name: str | None, value: Any, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        quality.unmark_gold(app, inspection_id=_item_id(value), by=user.name)
        return run(name, request)

    @messages
    def save_rates(name: str, g: Any, d: Any, why: str, request: gr.Request) -> str:
        user = ctx.require(request, Permission.ENGINEER)
        r = quality.set_rates(app, station=name, gold_rate=g, double_rate=d, by=user.name, reason=why or "")
        text = f"{r.station}: gold rate {pct(r.gold_rate)}, double-label rate {pct(r.double_rate)}"
        return f'<div class="eng-card">{html.escape(text)}</div>'

    wire_filter(ctx, station, refresh, run, [station], outs)
    auto_refresh(run, [station], outs)
    adj_id.change(show_item, [adj_id], [adj_image, adj_labels])
    adj_table.select(select_row, None, [adj_id])
    after = [*outs, adj_result, adj_id, adj_reason]
    adj_scratch.click(decide("scratch"), [station, adj_id, adj_reason], after)
    adj_ok.click(decide("ok"), [station, adj_id, adj_reason], after)
    gold_add.click(mark, [station, gold_id, gold_label, gold_reason], outs)
    gold_remove.click(unmark, [station, gold_id], outs)
    rate_save.click(save_rates, [rate_station, gold_rate, double_rate, rate_reason], [rate_result])
