"""Engineer screen, "Policy" tab: a station's policy with a live what-if on its labelled history.

The what-if replays exactly the history `inspection thresholds suggest` uses
(`tuning.station_history`: the station's labels scored by the production model, blind audit labels
weighted 1 / audit rate), so the screen and the command show the same numbers for the same
thresholds. The history is read once per station and kept in the session; sliders only recompute.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from inspection.core import thresholds  # noqa: E402
from inspection.core.domain import AutomationLevel, Label, LabelledScore  # noqa: E402
from inspection.services import policies, tuning, validation  # noqa: E402
from inspection.services.context import Pipeline  # noqa: E402
from ui.context import Permission, UiContext  # noqa: E402
from ui.engineer_common import messages, on_load, pct, station_dropdown  # noqa: E402

LEVEL_HELP = {
    "human_only": "model off; a person decides every phone",
    "shadow": "model runs hidden; a person decides every phone",
    "ai_assist": "a person decides every phone, seeing score and highlight",
    "partial": "model decides when confident, else a person",
    "full": "model decides every phone; people see audit samples only",
}
LEVEL_CHOICES = [(f"{lv.value}: {LEVEL_HELP[lv.value]}", lv.value) for lv in AutomationLevel]


def labelled_history(app: Pipeline, *, station: str) -> list[LabelledScore]:
    """The station's weighted labelled history, as `inspection thresholds suggest` replays it."""
    _version, history, _stats = tuning.station_history(app, station=validation.validate_station(station))
    return history


def what_if(
    history: Sequence[LabelledScore],
    *,
    level: str,
    pass_below: float,
    reject_above: float,
    items_per_hour: float = 600.0,
    seconds_per_review: float = 4.0,
) -> tuple[thresholds.WhatIf, str]:
    """The what-if the screen shows for these settings, and a note on how the level was replayed."""
    lv = AutomationLevel(level)
    if lv in (AutomationLevel.HUMAN_ONLY, AutomationLevel.SHADOW, AutomationLevel.AI_ASSIST):
        note = f"{lv.value} automates nothing; figures below show partial with these thresholds"
    elif lv is AutomationLevel.FULL:
        note = "full: everything above pass below is rejected automatically"
        reject_above = min(1.0, math.nextafter(pass_below, 2.0))
    else:
        note = "partial: replayed on the stored labels"
    wi = thresholds.what_if(
        history,
        pass_below=pass_below,
        reject_above=reject_above,
        items_per_hour=max(1.0, items_per_hour),
        seconds_per_review=max(0.1, seconds_per_review),
    )
    return wi, note


def what_if_html(
    history: Sequence[LabelledScore],
    *,
    level: str,
    pass_below: float,
    reject_above: float,
    items_per_hour: float,
    seconds_per_review: float,
) -> str:
    if pass_below >= reject_above:
        return _card_row([("Thresholds", "pass below must be lower than reject above", "bad")])
    if not history:
        return _card_row([("No labels yet", "label items at this station to see the what-if", "")])
    wi, note = what_if(
        history,
        level=level,
        pass_below=pass_below,
        reject_above=reject_above,
        items_per_hour=items_per_hour,
        seconds_per_review=seconds_per_review,
    )
    cards = [
        ("Automation rate", pct(wi.automation_rate), ""),
        ("Expected escape rate", f"{pct(wi.escape_rate, 2)} (≤ {pct(wi.escape_upper, 2)})", "warn"),
        ("False-reject rate", f"{pct(wi.false_reject_rate, 2)} (≤ {pct(wi.false_reject_upper, 2)})", ""),
        ("Review load", f"{wi.reviews_per_hour:.0f} items/h · {wi.review_minutes_per_hour:.0f} min/h", ""),
    ]
    foot = (
        f"{note}. {wi.n} labels; upper bounds at {wi.confidence:.0%} confidence; "
        f"{wi.escapes} escape(s) and {wi.false_rejects} false reject(s) among the labels."
    )
    return _card_row(cards) + f'<p class="eng-note">{foot}</p>'


def _card_row(cards: Sequence[tuple[str, str, str]]) -> str:
    parts = [
        f'<div class="eng-card {cls}"><span>{html.escape(t)}</span><b>{html.escape(v)}</b></div>' for t, v, cls in cards
    ]
    return '<div class="eng-cards">' + "".join(parts) + "</div>"


def score_histogram(history: Sequence[LabelledScore], *, pass_below: float, reject_above: float) -> Figure:
    """Labelled items (unweighted) by score; items without a valid score are not drawn."""
    fig = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ok = [h.score for h in history if h.label is Label.OK and math.isfinite(h.score)]
    bad = [h.score for h in history if h.label is Label.SCRATCH and math.isfinite(h.score)]
    bins = [i / 25 for i in range(26)]
    ax.hist(
        [ok, bad],
        bins=bins,
        stacked=True,
        label=["OK (true)", "Scratch (true)"],
        color=["#4c9a4c", "#c0392b"],
    )
    for x, name in ((pass_below, "pass below"), (reject_above, "reject above")):
        ax.axvline(x, color="#222", linestyle="--", linewidth=1.5)
        ax.annotate(name, (x, 1), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right")
    if not (ok or bad):
        ax.text(0.5, 0.5, "no labels yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylim(0, 1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("model score")
    ax.set_ylabel("labelled items")
    ax.set_title("Score histogram by true label")
    if ok or bad:
        ax.legend(loc="upper center")
    return fig


def escape_curve(history: Sequence[LabelledScore], *, pass_below: float, reject_above: float) -> Figure:
    fig = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("automation rate")
    ax.set_ylabel("escape rate (per phone)")
    ax.set_title(f"Escape rate vs automation (reject above {reject_above:.3f})")
    if any(math.isfinite(h.score) for h in history) and pass_below < reject_above:
        curve = thresholds.sweep(history, reject_above=reject_above)
        xs = [w.automation_rate for w in curve]
        ax.plot(xs, [w.escape_rate for w in curve], color="#1f5fa8", label="expected")
        ax.plot(xs, [w.escape_upper for w in curve], color="#1f5fa8", linestyle=":", label="95 % upper bound")
        now = thresholds.what_if(history, pass_below=pass_below, reject_above=reject_above)
        ax.plot([now.automation_rate], [now.escape_rate], "o", color="#c0392b", markersize=9, label="selected")
        ax.legend(loc="upper left")
    else:
        ax.text(0.5, 0.5, "no labels yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    return fig


def policy_summary(app: Pipeline, station: str) -> str:
    recs = policies.list_policies(app, station=station)
    if not recs:
        return f"**{station}**: no policy yet (human_only by default: people decide every phone)."
    cur = recs[-1]
    p = cur.policy
    return (
        f"**{station}** is at **{p.level.value}** (version {p.version}): pass below {p.pass_below:g}, "
        f"reject above {p.reject_above:g}, audit {p.audit_rate:.1%}. Set by {cur.created_by} on "
        f"{cur.created_at:%Y-%m-%d %H:%M}: “{cur.reason}”."
    )


# The tab


@dataclass
class _Controls:
    station: gr.Dropdown
    current: gr.Markdown
    level: gr.Radio
    pass_below: gr.Slider
    reject_above: gr.Slider
    audit_rate: gr.Slider
    items_per_hour: gr.Number
    seconds_per_review: gr.Number
    reason: gr.Textbox
    save: gr.Button
    whatif: gr.HTML
    hist_plot: gr.Plot
    curve_plot: gr.Plot


def _slider(maximum: float, value: float, label: str, elem_id: str) -> gr.Slider:
    return gr.Slider(0, maximum, value=value, step=0.005, label=label, elem_id=elem_id)


def _layout(ctx: UiContext) -> _Controls:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=420):
            station = station_dropdown(ctx)
            current = gr.Markdown(elem_id="policy-current")
            level = gr.Radio(LEVEL_CHOICES, label="Automation level", value="human_only", elem_id="policy-level")
            pass_below = _slider(1, 0.05, "Pass below (score ≤ this passes)", "policy-pass-below")
            reject_above = _slider(1, 0.95, "Reject above (score ≥ this rejects)", "policy-reject-above")
            audit_rate = _slider(0.5, 0.02, "Audit rate (blind re-check share)", "policy-audit-rate")
            with gr.Row():
                items_per_hour = gr.Number(600, label="Line speed (phones/h)", minimum=1, elem_id="policy-iph")
                seconds_per_review = gr.Number(4, label="Seconds per review", minimum=0.1, elem_id="policy-spr")
            reason = gr.Textbox(
                label="Reason for the change (required)",
                lines=2,
                elem_id="policy-reason",
                placeholder="e.g. 500 shadow labels, escape bound below 0.2 %",
            )
            save = gr.Button("Save new policy version", variant="primary", size="lg", elem_id="policy-save")
        with gr.Column(scale=3, min_width=520):
            whatif = gr.HTML(elem_id="policy-whatif")
            hist_plot = gr.Plot(label="Score histogram by true label", elem_id="policy-hist")
            curve_plot = gr.Plot(label="Escape rate against automation rate", elem_id="policy-curve")
    return _Controls(
        station, current, level, pass_below, reject_above, audit_rate, items_per_hour, seconds_per_review,
        reason, save, whatif, hist_plot, curve_plot,
    )  # fmt: skip


def build(ctx: UiContext) -> None:
    """The Policy tab (call inside a Tab)."""
    app = ctx.pipeline
    c = _layout(ctx)
    labels = gr.State([])

    @messages
    def load_station(name: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        if not name:
            return (gr.update(), gr.update(), gr.update(), gr.update(), "Pick or type a station.", [])
        name = validation.validate_station(name)
        p = policies.get_policy(app, station=name)
        history = labelled_history(app, station=name)
        return (p.level.value, p.pass_below, p.reject_above, p.audit_rate, policy_summary(app, name), history)

    @messages
    def recompute(
        lv: str,
        pb: float,
        ra: float,
        iph: float,
        spr: float,
        history: list[LabelledScore],
        request: gr.Request,
    ) -> tuple[str, Figure, Figure]:
        ctx.require(request, Permission.ENGINEER)
        page = what_if_html(
            history,
            level=lv or "partial",
            pass_below=float(pb),
            reject_above=float(ra),
            items_per_hour=float(iph or 600),
            seconds_per_review=float(spr or 4),
        )
        return (
            page,
            score_histogram(history, pass_below=float(pb), reject_above=float(ra)),
            escape_curve(history, pass_below=float(pb), reject_above=float(ra)),
        )

    @messages
    def save_policy(
        name: str | None, lv: str, pb: float, ra: float, ar: float, why: str, request: gr.Request
    ) -> tuple[str, str]:
        user = ctx.require(request, Permission.ENGINEER)
        if not (why or "").strip():
            raise gr.Error("Say why the policy changes (reason is required).")
        new = policies.set_policy(
            app,
            station=validation.validate_station(name or ""),
            by=user.name,
            reason=why,
            level=lv,
            pass_below=float(pb),
            reject_above=float(ra),
            audit_rate=float(ar),
        )
        gr.Info(f"Saved {new.station} policy version {new.version}: {new.level.value}")
        return policy_summary(app, new.station), ""

    _wire(ctx, c, labels, load_station, recompute, save_policy)


def _wire(
    ctx: UiContext,
    c: _Controls,
    labels: gr.State,
    load_station: Callable[..., Any],
    recompute: Callable[..., Any],
    save_policy: Callable[..., Any],
) -> None:
    what_inputs = [c.level, c.pass_below, c.reject_above, c.items_per_hour, c.seconds_per_review, labels]
    what_outputs = [c.whatif, c.hist_plot, c.curve_plot]
    loaded = [c.level, c.pass_below, c.reject_above, c.audit_rate, c.current, labels]
    c.station.change(load_station, [c.station], loaded).then(
        recompute, what_inputs, what_outputs, show_progress="hidden"
    )
    for comp in (c.level, c.pass_below, c.reject_above, c.items_per_hour, c.seconds_per_review):
        comp.change(recompute, what_inputs, what_outputs, show_progress="hidden")
    c.save.click(
        save_policy, [c.station, c.level, c.pass_below, c.reject_above, c.audit_rate, c.reason], [c.current, c.reason]
    )
    on_load(ctx, c.station, load_station, loaded, then=(recompute, what_inputs, what_outputs))
