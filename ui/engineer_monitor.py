"""Engineer screen, "Monitoring" tab: how the line is doing over time (traffic, decisions, scores,
input metrics against their reference band, drift tests against their alarm thresholds, escape
estimates), the alarms and monitoring events, example images of an alarm's drifted window beside
reference images, the interlock banner with its deliberate "Restore level" action, and the station's
alarm rules, interlock switch and reference window (`ui.engineer_monitor_rules`).

Handlers are thin: one service call (`services.monitoring`), then formatting (figures in
`ui.engineer_monitor_plots`). Every handler checks the engineer role first (`ctx.require`). The tab
refreshes when it is selected and then every REFRESH_S seconds while it stays selected (a gr.Timer
switched on and off by the tab selection, so other tabs cost nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np

from inspection.core.domain import AutomationLevel
from inspection.services import monitoring
from inspection.services.monitoring import AlarmOut, DriftOut, MonitorReport
from ui import engineer_monitor_plots as plots
from ui import engineer_monitor_rules
from ui.context import Permission, UiContext
from ui.engineer_common import all_stations_dropdown, messages, pct, refresh_choices, station_filter

REFRESH_S = 10.0
TAB_LABEL = "Monitoring"
THUMB_W = 480  # gallery thumbnails: small enough to send 16 of them quickly
SINCE = {
    "last hour": timedelta(hours=1),
    "last 8 hours": timedelta(hours=8),
    "last 24 hours": timedelta(hours=24),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
}
DEFAULT_SINCE = "last 8 hours"
DRIFT_HEADERS = ["station", "rule", "metric", "statistic", "p-value", "threshold", "state", "items in window"]
ALARM_HEADERS = ["id", "station", "rule", "metric", "severity", "opened (UTC)", "cleared (UTC)", "evidence"]
ALARM_WIDTHS: list[str | int] = ["5%", "11%", "11%", "10%", "8%", "13%", "12%", "30%"]
EVENT_HEADERS = ["when (UTC)", "event", "station", "who", "detail"]


# ---------------------------------------------------------------------------------------------
# Formatting (pure)


def _when(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S") if t is not None else ""


def _g(x: float | None, digits: int = 3) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _short(detail: Any, limit: int = 160) -> str:
    """One line from an evidence/detail dict: scalar entries only (nested tables stay in the API)."""
    if not isinstance(detail, dict):
        return "" if detail is None else str(detail)[:limit]
    parts = []
    for k, v in detail.items():
        if isinstance(v, float):
            parts.append(f"{k}={_g(v)}")
        elif isinstance(v, str | int | bool) or v is None:
            parts.append(f"{k}={v}")
    return ", ".join(parts)[:limit]


def drift_rows(drift: Sequence[DriftOut]) -> list[list[Any]]:
    """The latest look of each rule: breached first, then by metric."""
    ordered = sorted(drift, key=lambda d: (not d.breached, d.station or "", d.metric))
    return [
        [
            d.station or "",
            d.rule or "",
            "score (raw model)" if d.metric == "score" else d.metric,
            _g(d.statistic),
            _g(d.p_value),
            _g(d.threshold),
            "ALARM" if d.breached else (f"not tested: {d.skipped}" if d.skipped else "ok"),
            d.n_window,
        ]
        for d in ordered
    ]


def alarm_rows(alarms: Sequence[AlarmOut]) -> list[list[Any]]:
    """Open alarms first, newest first within each group."""
    ordered = sorted(alarms, key=lambda a: (a.cleared_at is not None, -a.opened_at.timestamp()))
    return [
        [
            a.id,
            a.station,
            a.rule,
            a.metric,
            a.severity,
            _when(a.opened_at),
            _when(a.cleared_at) or "open",
            evidence_text(a.evidence),
        ]
        for a in ordered
    ]


def event_rows(events: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [
        [_when(e.get("at")), e.get("kind", ""), e.get("station") or "", e.get("actor") or "", _short(e.get("detail"))]
        for e in events
    ]


def summary_text(r: MonitorReport) -> str:
    n_open = sum(a.cleared_at is None for a in r.alarms)
    ref = f" · reference: {r.reference_source}" if r.reference_source else " · no reference yet"
    return (
        f"**{r.station or 'all stations'}** since {_when(r.since)} UTC: **{r.n_items}** items, "
        f"**{n_open}** open alarm(s){ref} · <small>updated {_when(r.generated_at)} UTC</small>"
    )


def _estimate(e: monitoring.EstimateOut | None, what: str) -> str:
    if e is None or e.rate is None:
        return f"- {what}: n/a (no items yet)"
    method = f", {e.method}" if e.method else ""
    return f"- {what}: **{pct(e.rate, 2)}** (95 % {pct(e.low, 2)} – {pct(e.high, 2)}; n = {e.n}{method})"


def concept_text(r: MonitorReport) -> str:
    """The concept estimates beside their figure: audited (blind audit labels) against label-free."""
    ece = "n/a" if r.ece_audit is None else f"{r.ece_audit:.3f}"
    return "\n".join(
        [
            "#### Is the model still right?",
            _estimate(r.escape_audited, "escape rate, audited (blind audit labels)"),
            _estimate(r.escape_label_free, "escape rate, label-free (from calibrated scores, CBPE)"),
            _estimate(r.disagreement, "model (calibrated score ≥ 0.5) vs inspector disagreement"),
            f"- calibration error (ECE) of the calibrated scores on audits: **{ece}**",
        ]
    )


def evidence_text(ev: dict[str, Any]) -> str:
    """An alarm's evidence in one short line: the test against its threshold, medians, window size."""
    p, thr, stat = ev.get("p_value"), ev.get("threshold"), ev.get("statistic")
    if not isinstance(thr, int | float):
        return _short(ev)
    parts = [f"p {_g(p, 2)} (alpha {_g(thr, 2)})" if isinstance(p, int | float) else f"{_g(stat)} vs {_g(thr)}"]
    detail = ev.get("detail")
    win, ref = (
        (detail.get("window_median"), detail.get("reference_median")) if isinstance(detail, dict) else (None, None)
    )
    if isinstance(win, int | float) and isinstance(ref, int | float):
        parts.append(f"median {_g(win)} vs {_g(ref)} ref.")
    if ev.get("n_window"):
        parts.append(f"{ev['n_window']} items")
    return ", ".join(parts)


def banner_html(r: MonitorReport) -> str:
    lock = r.interlock
    if lock is None or not lock.demoted_to:
        return ""
    alarm = f" by alarm #{lock.alarm_id}" if lock.alarm_id is not None else ""
    return (
        '<div class="monitor-banner" role="alert" data-testid="interlock-banner" style="background:#fdecea;'
        'border:2px solid #c0392b;border-radius:6px;padding:10px 14px;font-weight:600">'
        f"Interlock: station {lock.station} was demoted from {lock.demoted_from} to {lock.demoted_to}{alarm} "
        f"at {_when(lock.at)} UTC. It stays at {lock.demoted_to} until an engineer restores the level "
        "(below, with a reason).</div>"
    )


def figures(r: MonitorReport) -> tuple[Any, ...]:
    return (
        plots.traffic_figure(r),
        plots.decisions_figure(r),
        plots.score_figure(r),
        plots.inputs_figure(r),
        plots.feature_drift_figure(r),
        plots.drift_tests_figure(r),
        plots.escape_figure(r),
    )


def thumbnails(paths: Sequence[Path | str], caption: str) -> list[tuple[np.ndarray, str]]:
    """Downscaled RGB copies of the images that can be read (missing files are skipped): sent as data,
    so the image folders need not be exposed to Gradio's file server."""
    out = []
    for i, path in enumerate(paths, 1):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        if w > THUMB_W:
            img = cv2.resize(img, (THUMB_W, round(h * THUMB_W / w)), interpolation=cv2.INTER_AREA)
        out.append((cv2.cvtColor(img, cv2.COLOR_BGR2RGB), f"{caption} {i}: {Path(path).name}"))
    return out


# ---------------------------------------------------------------------------------------------
# Layout and handlers


def _since(choice: str | None, now: datetime) -> datetime:
    return now - SINCE.get(choice or DEFAULT_SINCE, SINCE[DEFAULT_SINCE])


@dataclass
class _View:
    """The tab's components, created by `_layout` and wired by `build`."""

    station: gr.Dropdown
    since: gr.Dropdown
    refresh: gr.Button
    banner: gr.HTML
    restore_row: gr.Row
    level: gr.Dropdown
    reason: gr.Textbox
    restore: gr.Button
    demoted: gr.State
    summary: gr.Markdown
    concept: gr.Markdown
    plots: list[gr.Plot]
    drift: gr.Dataframe
    alarms: gr.Dataframe
    alarm_note: gr.Markdown
    drifted: gr.Gallery
    reference: gr.Gallery
    events: gr.Dataframe

    def report_outputs(self) -> list[Any]:
        """What a refresh fills, in the order `report_view` returns it."""
        return [self.summary, self.concept, self.banner, self.restore_row, self.level, self.demoted,
                *self.plots, self.drift, self.alarms, self.events]  # fmt: skip


def _plot(name: str) -> gr.Plot:
    return gr.Plot(show_label=False, elem_id=f"monitor-plot-{name}", elem_classes="monitor-plot")


def _table(headers: list[str], elem_id: str, **extra: Any) -> gr.Dataframe:
    return gr.Dataframe(headers=headers, interactive=False, elem_id=elem_id, wrap=True, **extra)


def _layout(ctx: UiContext) -> _View:
    with gr.Row():
        station = all_stations_dropdown(ctx, elem_id="monitor-station", custom=True)
        since = gr.Dropdown(list(SINCE), value=DEFAULT_SINCE, label="Since", elem_id="monitor-since")
        refresh = gr.Button("Refresh", size="lg", elem_id="monitor-refresh")
    banner = gr.HTML(elem_id="monitor-banner")
    with gr.Row(visible=False, elem_id="monitor-restore") as restore_row:
        # value=None: a Dropdown otherwise starts at its first choice, and a restore must be chosen.
        # allow_custom_value: after a restore the choices empty while the page may still hold the old
        # value, which Gradio would refuse on every timer tick; the service checks the level anyway.
        level = gr.Dropdown([], value=None, label="Restore to level", elem_id="monitor-level", allow_custom_value=True)
        reason = gr.Textbox(label="Reason (required, stored with the change)", elem_id="monitor-reason", scale=2)
        restore = gr.Button("Restore level", variant="stop", elem_id="monitor-restore-btn")
    demoted = gr.State(None)  # the demoted station, as the last refresh saw it
    summary = gr.Markdown(elem_id="monitor-summary")
    plot_list: list[gr.Plot] = []
    for pair in (("traffic", "decisions"), ("scores", "inputs"), ("features", "drift")):
        with gr.Row(equal_height=False):
            plot_list += [_plot(name) for name in pair]
    with gr.Row(equal_height=False):
        plot_list.append(_plot("escape"))
        concept = gr.Markdown(elem_id="monitor-concept")
    drift = _table(DRIFT_HEADERS, "monitor-drift", label="Latest drift tests")
    gr.Markdown("### Alarms (click a row to see example images of its drifted window)")
    # Fixed widths: the evidence gets the room and wraps, no sideways scrolling at 1366 px.
    alarms = _table(ALARM_HEADERS, "monitor-alarms", max_height=360, column_widths=ALARM_WIDTHS)
    alarm_note = gr.Markdown(elem_id="monitor-alarm-note")
    with gr.Row():
        drifted = gr.Gallery(label="Drifted window", columns=4, height=320, elem_id="monitor-drifted")
        reference = gr.Gallery(label="Reference", columns=4, height=320, elem_id="monitor-reference")
    gr.Markdown("### Monitoring events (newest first)")
    events = _table(EVENT_HEADERS, "monitor-events", max_height=360)
    return _View(station, since, refresh, banner, restore_row, level, reason, restore, demoted, summary, concept,
                 plot_list, drift, alarms, alarm_note, drifted, reference, events)  # fmt: skip


def restore_choices(demoted_from: str | None, demoted_to: str | None) -> list[str]:
    """The levels a restore may pick: above the demoted level, up to the one before the demotion (a
    restore never goes beyond where the station was)."""
    order = [lv.value for lv in AutomationLevel]  # the enum lists levels from least to most automated
    if demoted_from not in order or demoted_to not in order:
        return [demoted_from] if demoted_from else []
    return order[order.index(demoted_to) + 1 : order.index(demoted_from) + 1]


def report_view(r: MonitorReport, chosen_level: str | None) -> tuple[Any, ...]:
    """Everything a refresh shows, in `_View.report_outputs` order. The restore level the engineer
    picked is kept (the timer must not undo a choice); it starts at the level before the demotion."""
    lock = r.interlock if r.interlock is not None and r.interlock.demoted_to else None
    choices = restore_choices(lock.demoted_from, lock.demoted_to) if lock else []
    level = (chosen_level if chosen_level in choices else lock.demoted_from) if lock else None
    return (
        summary_text(r),
        concept_text(r),
        banner_html(r),
        gr.update(visible=lock is not None),
        gr.update(choices=choices, value=level),
        lock.station if lock else None,
        *figures(r),
        drift_rows(r.drift),
        alarm_rows(r.alarms),
        event_rows(r.events),
    )


def build(ctx: UiContext, *, tab: gr.Tab | None = None) -> None:
    """The Monitoring tab (call inside `tab`; its selection refreshes it and starts the timer)."""
    app = ctx.pipeline
    v = _layout(ctx)
    timer = gr.Timer(REFRESH_S, active=False)

    @messages
    def run(name: str | None, when: str | None, chosen: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        r = monitoring.monitor_report(app, station=station_filter(name), since=_since(when, app.clock()))
        return report_view(r, chosen)

    inputs: list[Any] = [v.station, v.since, v.level]
    outputs = v.report_outputs()
    v.refresh.click(run, inputs, outputs)
    v.station.change(run, inputs, outputs)
    v.since.change(run, inputs, outputs)
    timer.tick(run, inputs, outputs, show_progress="hidden")
    refresh_choices(ctx, v.station, with_all=True)
    if tab is not None:
        tab.select(run, inputs, outputs)
        _follow_tab(tab, timer)
    with gr.Accordion("Rules and reference", open=False, elem_id="monitor-rules-section"):
        engineer_monitor_rules.build(ctx, v.station)

    @messages
    def show_examples(evt: gr.SelectData, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        alarm_id = _alarm_id(evt)
        if alarm_id is None:
            raise gr.Error("pick an alarm row")
        ex = monitoring.alarm_example_set(app, alarm_id=alarm_id, n=8)
        note = (
            f"Alarm #{alarm_id}: {len(ex.drifted)} image(s) from the drifted window; reference images "
            f"({len(ex.reference)}): {ex.reference_caption}."
        )
        return note, thumbnails(ex.drifted, "drifted"), thumbnails(ex.reference, "reference")

    v.alarms.select(show_examples, None, [v.alarm_note, v.drifted, v.reference])

    @messages
    def do_restore(
        target: str | None, lv: str | None, why: str, name: str | None, when: str | None, request: gr.Request
    ) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        if not target:
            raise gr.Error("no demoted station to restore (refresh the tab)")
        if not lv:
            raise gr.Error("pick the level to restore")
        if not (why or "").strip():
            raise gr.Error("a reason is required: say why the level may go up again")
        monitoring.restore_level(app, station=target, level=AutomationLevel(lv), by=user.name, reason=why.strip())
        gr.Info(f"{target} restored to {lv}")
        return (*run(name, when, None, request), "")

    restore_inputs: list[Any] = [v.demoted, v.level, v.reason, v.station, v.since]
    v.restore.click(do_restore, restore_inputs, [*outputs, v.reason])


def _alarm_id(evt: gr.SelectData) -> int | None:
    """The alarm id (first column) of the clicked row."""
    row = evt.row_value if isinstance(evt.row_value, list) else None
    if not row:
        return None
    try:
        return int(row[0])
    except (TypeError, ValueError):
        return None


def _follow_tab(tab: gr.Tab, timer: gr.Timer) -> None:
    """Tick only while this tab is the selected one: any tab selection of the parent Tabs switches the
    timer on for this tab and off for the others."""
    parent = getattr(tab, "parent", None)
    if not isinstance(parent, gr.Tabs):
        tab.select(lambda: gr.Timer(active=True), None, [timer], show_progress="hidden")
        return

    def follow(evt: gr.SelectData) -> gr.Timer:
        return gr.Timer(active=evt.value == TAB_LABEL or evt.index == tab.id)

    parent.select(follow, None, [timer], show_progress="hidden")
