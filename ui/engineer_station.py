"""Engineer screen, "Station setup" tab: how a station finds the inspected region (automatic, a fixed
region of interest drawn with two clicks on the station's newest image, or the whole frame), the
domain-gate overrides per metric, the score recalibration from blind labels (ECE before/after), and
every setup version with who and why. Each save is a new version (`services.stations`)."""

from __future__ import annotations

import html
from typing import Any

import cv2
import gradio as gr
import numpy as np

from inspection.core.gate import METRICS
from inspection.services import review, stations, validation
from inspection.services.context import Pipeline
from ui import engineer_common
from ui.context import Permission, UiContext
from ui.engineer_common import messages, on_load

DISPLAY_W = 960  # the sample image is shown this wide: clicks are read in its pixels, stored as fractions
MODES = [
    ("automatic: find the phone", "auto"),
    ("fixed region of interest (draw it on the image)", "roi"),
    ("whole frame (the camera sees only the screen)", "frame"),
]
GATE_HEADERS = ["metric", "model lo", "model hi", "station lo", "station hi"]
HISTORY_HEADERS = ["when (UTC)", "version", "localisation", "gate overrides", "calibration", "by", "reason"]
Roi = tuple[float, float, float, float]


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.4g}"


def summary_html(setup: stations.StationSetup) -> str:
    loc = setup.localisation
    where = {"auto": "automatic localisation", "roi": "fixed region of interest", "frame": "whole frame"}[loc.mode]
    if loc.roi:
        where += " x={:.3f} y={:.3f} w={:.3f} h={:.3f}".format(*loc.roi)
    cal = setup.calibration
    scores = (
        "raw model scores (no recalibration)"
        if cal is None
        else f"recalibrated for {cal.model_version}: temperature {cal.temperature:.3f}, ECE {_fmt(cal.ece_before)} → "
        f"{_fmt(cal.ece_after)} on {cal.n_labels} blind labels"
    )
    gate = ", ".join(f"{k} {_fmt(r.lo)}..{_fmt(r.hi)}" for k, r in sorted(setup.gate.items())) or "the model's ranges"
    version = f"version {setup.version}" if setup.version else "never configured (version 0)"
    parts = [f"<b>{html.escape(setup.station)}</b> · {version}", where, f"gate: {gate}", scores]
    return '<div class="eng-note">' + "<br>".join(html.escape(p) if i else p for i, p in enumerate(parts)) + "</div>"


def gate_rows(app: Pipeline, setup: stations.StationSetup) -> list[list[Any]]:
    base = stations.model_gate_ranges(app).ranges
    rows = []
    for spec in METRICS:
        b, o = base.get(spec.name), setup.gate.get(spec.name)
        rows.append([spec.name, _fmt(b.lo if b else None), _fmt(b.hi if b else None),
                     _fmt(o.lo if o else None), _fmt(o.hi if o else None)])  # fmt: skip
    return rows


def history_rows(app: Pipeline, station: str) -> list[list[Any]]:
    out = []
    for rec in reversed(stations.setup_history(app, station=station)):
        s = rec.setup
        loc = s.localisation.mode.value + (" (" + ", ".join(f"{v:.3f}" for v in s.localisation.roi) + ")"
                                           if s.localisation.roi else "")  # fmt: skip
        gate = ", ".join(f"{k} {_fmt(r.lo)}..{_fmt(r.hi)}" for k, r in sorted(s.gate.items()))
        c = s.calibration
        cal = "" if c is None else f"t={c.temperature:.3f} ECE {_fmt(c.ece_before)}→{_fmt(c.ece_after)} n={c.n_labels}"
        when = rec.created_at.strftime("%Y-%m-%d %H:%M:%S")
        out.append([when, s.version, loc, gate, cal, rec.created_by, rec.reason])
    return out


def highlight_html(app: Pipeline, station: str) -> str:
    """The station's highlight default and its last change (who, when, why)."""
    on = review.highlight_default(app, station=station)
    changes = review.highlight_changes(app, station=station, limit=1)
    state = "on: items open with the model's outlines" if on else "off: items open without the model's outlines"
    last = "never changed"
    if changes:
        last = f"set by {changes[0].by} at {changes[0].at:%Y-%m-%d %H:%M:%S} UTC: {changes[0].reason}"
    return f'<div class="eng-note">Highlight {html.escape(state)}<br>{html.escape(last)}</div>'


def sample_view(app: Pipeline, station: str, roi: Roi | None, corner: tuple[float, float] | None) -> np.ndarray | None:
    """The station's newest image, DISPLAY_W wide (RGB), with the region of interest and a first corner."""
    path = stations.sample_image(app, station=station)
    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR) if path else None
    if img is None:
        return None
    h, w = img.shape[:2]
    img = cv2.resize(img, (DISPLAY_W, max(1, round(h * DISPLAY_W / w))), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    if roi is not None:
        x, y, rw, rh = roi
        p1, p2 = (round(x * w), round(y * h)), (round((x + rw) * w), round((y + rh) * h))
        cv2.rectangle(img, p1, p2, (0, 200, 255), 3)
    if corner is not None:
        cv2.circle(img, (round(corner[0] * w), round(corner[1] * h)), 8, (0, 200, 255), -1)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def roi_from_corners(a: tuple[float, float], b: tuple[float, float]) -> Roi:
    x0, x1 = sorted((min(max(a[0], 0.0), 1.0), min(max(b[0], 0.0), 1.0)))
    y0, y1 = sorted((min(max(a[1], 0.0), 1.0), min(max(b[1], 0.0), 1.0)))
    return (round(x0, 4), round(y0, 4), round(x1 - x0, 4), round(y1 - y0, 4))


def _roi_of(x: float | None, y: float | None, w: float | None, h: float | None) -> Roi | None:
    values = (x, y, w, h)
    return None if any(v is None for v in values) else tuple(float(v) for v in values)  # type: ignore[return-value, arg-type]


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise gr.Error(f"{value!r} is not a number") from None


def build(ctx: UiContext) -> None:  # noqa: PLR0915  (one screen: the layout and its handlers read top to bottom)
    """The Station setup tab (call inside a Tab)."""
    app = ctx.pipeline
    with gr.Row():
        names = engineer_common.stations(app)
        station = gr.Dropdown(
            choices=names, value=names[0] if names else None, label="Station", allow_custom_value=True,
            info="pick a station or type a new name", elem_id="setup-station",
        )  # fmt: skip
        reason = gr.Textbox(label="Reason (stored with every change)", elem_id="station-reason", scale=2)
    current = gr.HTML(elem_id="station-current")
    corner = gr.State(None)
    with gr.Row():
        with gr.Column(scale=3):
            sample = gr.Image(label="Newest image of the station: click two opposite corners of the region",
                              interactive=False, elem_id="station-sample", type="numpy")  # fmt: skip
        with gr.Column(scale=2):
            mode = gr.Radio(MODES, value="auto", label="Localisation", elem_id="station-mode")
            with gr.Row():
                rx, ry, rw, rh = (gr.Number(label=n, precision=4, minimum=0, maximum=1, elem_id=f"station-roi-{n}")
                                  for n in ("x", "y", "w", "h"))  # fmt: skip
            save_loc = gr.Button("Save localisation", variant="primary", elem_id="station-save-localisation")
            gr.Markdown("#### Domain gate: the station's range replaces the model's (empty: the model's)")
            gate_table = gr.Dataframe(headers=GATE_HEADERS, interactive=False, elem_id="station-gate")
            with gr.Row():
                metric = gr.Dropdown([s.name for s in METRICS], value="brightness", label="Metric",
                                     elem_id="station-gate-metric")  # fmt: skip
                # text, not gr.Number: an empty box means "keep the model's bound" (a Number gives 0)
                lo = gr.Textbox(label="station lo", placeholder="model's", elem_id="station-gate-lo")
                hi = gr.Textbox(label="station hi", placeholder="model's", elem_id="station-gate-hi")
            with gr.Row():
                save_gate = gr.Button("Override", elem_id="station-gate-save")
                drop_gate = gr.Button("Back to the model's range", elem_id="station-gate-remove")
            gr.Markdown("#### Score recalibration (blind labels only: shadow reviews and audits)")
            with gr.Row():
                recal = gr.Button("Recalibrate", elem_id="station-recalibrate")
                uncal = gr.Button("Use raw scores", elem_id="station-uncalibrate")
            recal_out = gr.HTML(elem_id="station-recal-result")
            gr.Markdown("#### Review screen: how the station's items open for inspectors")
            highlight = gr.Checkbox(label="Highlight on (outlines of the model's regions; H toggles per item)",
                                    elem_id="station-highlight")  # fmt: skip
            save_highlight = gr.Button("Save highlight default", elem_id="station-highlight-save")
            highlight_now = gr.HTML(elem_id="station-highlight-current")
    gr.Markdown("### Setup versions (newest first)")
    history = gr.Dataframe(headers=HISTORY_HEADERS, interactive=False, elem_id="station-history")
    view = [current, mode, rx, ry, rw, rh, gate_table, history, sample, corner, highlight, highlight_now]

    def show(name: str, roi: Roi | None = None) -> list[Any]:
        setup = stations.get_setup(app, station=name)
        r = roi or setup.localisation.roi
        vals = list(r) if r else [None] * 4
        return [summary_html(setup), setup.localisation.mode.value, *vals, gate_rows(app, setup),
                history_rows(app, name), sample_view(app, name, r, None), None,
                review.highlight_default(app, station=name), highlight_html(app, name)]  # fmt: skip

    @messages
    def load(name: str | None, request: gr.Request) -> list[Any]:
        ctx.require(request, Permission.ENGINEER)
        if not (name or "").strip():  # no station yet: an empty form
            return ['<div class="eng-note">pick or type a station</div>', "auto", *[None] * 4, [], [], None, None,
                    False, ""]  # fmt: skip
        return show(validation.validate_station(name))

    @messages
    def click(name: str, first: tuple[float, float] | None, evt: gr.SelectData, request: gr.Request) -> list[Any]:
        ctx.require(request, Permission.ENGINEER)
        name = validation.validate_station(name)
        path = stations.sample_image(app, station=name)
        img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR) if path else None
        if img is None:
            raise gr.Error("no image of this station yet")
        h = round(img.shape[0] * DISPLAY_W / img.shape[1])
        point = (float(evt.index[0]) / DISPLAY_W, float(evt.index[1]) / h)
        if first is None:
            return [*[gr.update()] * 5, sample_view(app, name, None, point), point]
        roi = roi_from_corners(first, point)
        return ["roi", *roi, sample_view(app, name, roi, None), None]

    @messages
    def save_localisation(
        name: str, why: str, m: str, x: Any, y: Any, w: Any, h: Any, request: gr.Request
    ) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        roi = _roi_of(_number(x), _number(y), _number(w), _number(h)) if m == "roi" else None
        stations.set_setup(app, station=name, by=user.name, reason=why, mode=m, roi=roi)
        gr.Info(f"Saved {name} localisation")
        return show(name)

    @messages
    def override(name: str, why: str, which: str, low: Any, high: Any, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        value = {"lo": _number(low), "hi": _number(high)}
        stations.set_setup(app, station=name, by=user.name, reason=why, gate={which: value})
        return show(name)

    @messages
    def remove(name: str, why: str, which: str, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        stations.set_setup(app, station=name, by=user.name, reason=why, gate={which: None})
        return show(name)

    @messages
    def recalibrate(name: str, why: str, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        try:
            out = stations.recalibrate(app, station=name, by=user.name, reason=why)
        except stations.RecalibrationRefused as exc:
            return [*show(name), f'<div class="eng-card bad"><b>Refused</b><span>{html.escape(str(exc))}</span></div>']
        f = out.fit
        text = (f"ECE {f.ece_before:.3f} → {f.ece_after:.3f} on {f.n_labels} blind labels ({f.n_scratch} scratched); "
                f"temperature {f.temperature:.3f}; {out.n_skipped} labels left out (model shown)")  # fmt: skip
        return [*show(name), f'<div class="eng-card"><b>Recalibrated</b><span>{html.escape(text)}</span></div>']

    @messages
    def uncalibrate(name: str, why: str, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        stations.set_setup(app, station=name, by=user.name, reason=why, clear_calibration=True)
        return [*show(name), ""]

    @messages
    def set_highlight(name: str, why: str, on: bool, request: gr.Request) -> list[Any]:
        user = ctx.require(request, Permission.ENGINEER)
        name = validation.validate_station(name)
        review.set_highlight_default(app, station=name, on=bool(on), by=user.name, reason=why)
        gr.Info(f"{name}: highlight {'on' if on else 'off'} when an item opens")
        return show(name)

    station.change(load, [station], view)
    save_highlight.click(set_highlight, [station, reason, highlight], view)
    sample.select(click, [station, corner], [mode, rx, ry, rw, rh, sample, corner])
    save_loc.click(save_localisation, [station, reason, mode, rx, ry, rw, rh], view)
    save_gate.click(override, [station, reason, metric, lo, hi], view)
    drop_gate.click(remove, [station, reason, metric], view)
    recal.click(recalibrate, [station, reason], [*view, recal_out])
    uncal.click(uncalibrate, [station, reason], [*view, recal_out])
    on_load(ctx, station, load, view)
