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
from inspection.core.domain import AutomationLevel, Label, LabelledScore, Policy, PolicyError  # noqa: E402
from inspection.services import policies, tuning, validation  # noqa: E402
from inspection.services.context import Pipeline  # noqa: E402
from inspection.services.errors import InputError  # noqa: E402
from ui.context import Permission, UiContext  # noqa: E402
from ui.engineer_common import (  # noqa: E402
    auto_refresh,
    dialog_style,
    expected_error,
    messages,
    on_load,
    pct,
    station_dropdown,
    status_html,
)

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
    """The replay of the automatic decisions for these settings, and a note on how the level was
    replayed (levels that automate nothing are replayed as partial: the note says so, and
    `policy_load` reports them as 0 % automation)."""
    lv = AutomationLevel(level)
    if lv in MANUAL_LEVELS:
        note = f"{lv.value} automates nothing: people decide every phone"
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


MANUAL_LEVELS = (AutomationLevel.HUMAN_ONLY, AutomationLevel.SHADOW, AutomationLevel.AI_ASSIST)


@dataclass(frozen=True)
class Load:
    """What a policy asks of the people at a line speed: every decision routed to them plus the
    blind audits drawn from the automatic decisions (audit rate × automatic share)."""

    automation_rate: float
    decisions_per_hour: float  # items a person decides
    audits_per_hour: float  # blind re-checks of automatic decisions
    reviews_per_hour: float  # both
    review_minutes_per_hour: float


def policy_load(
    wi: thresholds.WhatIf | None,
    *,
    level: str,
    audit_rate: float,
    items_per_hour: float,
    seconds_per_review: float,
) -> Load:
    """The review load of `level`: human_only, shadow and ai_assist automate nothing (every item is
    reviewed, no audits); partial and full route `wi.review_rate` to people and audit the rest."""
    iph, spr = max(1.0, items_per_hour), max(0.1, seconds_per_review)
    if AutomationLevel(level) in MANUAL_LEVELS or wi is None:
        return Load(0.0, iph, 0.0, iph, iph * spr / 60.0)
    auto = wi.automation_rate if math.isfinite(wi.automation_rate) else 0.0
    decisions = iph * (1.0 - auto)
    audits = iph * auto * min(1.0, max(0.0, audit_rate))
    return Load(auto, decisions, audits, decisions + audits, (decisions + audits) * spr / 60.0)


def what_if_html(
    history: Sequence[LabelledScore],
    *,
    level: str,
    pass_below: float,
    reject_above: float,
    items_per_hour: float,
    seconds_per_review: float,
    audit_rate: float = 0.0,
) -> str:
    if pass_below >= reject_above:
        return _card_row([("Thresholds", "pass below must be lower than reject above", "bad")])
    manual = AutomationLevel(level) in MANUAL_LEVELS
    if not history and not manual:
        return _card_row([("No labels yet", "label items at this station to see the what-if", "")])
    wi, note = (None, f"{level} automates nothing: people decide every phone") if manual else what_if(
        history, level=level, pass_below=pass_below, reject_above=reject_above,
        items_per_hour=items_per_hour, seconds_per_review=seconds_per_review,
    )  # fmt: skip
    load = policy_load(wi, level=level, audit_rate=audit_rate, items_per_hour=items_per_hour,
                       seconds_per_review=seconds_per_review)  # fmt: skip
    return _cards(wi, load, note, n=len(history))


def _cards(wi: thresholds.WhatIf | None, load: Load, note: str, *, n: int) -> str:
    review = (
        f"{load.reviews_per_hour:.0f} items/h · {load.review_minutes_per_hour:.0f} min/h "
        f"(incl. {load.audits_per_hour:.0f} audits/h)"
    )
    if wi is None:
        cards = [
            ("Automation rate", pct(0.0), ""),
            ("Expected escape rate", "set by the inspectors (no automatic pass)", ""),
            ("False-reject rate", "set by the inspectors (no automatic reject)", ""),
            ("Review load", review, ""),
        ]
        return _card_row(cards) + f'<p class="eng-note">{html.escape(note)}. {n} labels at this station.</p>'
    cards = [
        ("Automation rate", pct(wi.automation_rate), ""),
        ("Expected escape rate", f"{pct(wi.escape_rate, 2)} (≤ {pct(wi.escape_upper, 2)})", "warn"),
        ("False-reject rate", f"{pct(wi.false_reject_rate, 2)} (≤ {pct(wi.false_reject_upper, 2)})", ""),
        ("Review load", review, ""),
    ]
    foot = (
        f"{note}. {wi.n} labels; upper bounds at {wi.confidence:.0%} confidence; "
        f"{wi.escapes} escape(s) and {wi.false_rejects} false reject(s) among the labels."
    )
    return _card_row(cards) + f'<p class="eng-note">{html.escape(foot)}</p>'


def _card_row(cards: Sequence[tuple[str, str, str]]) -> str:
    parts = [
        f'<div class="eng-card {cls}"><span>{html.escape(t)}</span><b>{html.escape(v)}</b></div>' for t, v, cls in cards
    ]
    return '<div class="eng-cards">' + "".join(parts) + "</div>"


def score_histogram(history: Sequence[LabelledScore], *, pass_below: float, reject_above: float) -> Figure:
    """Labelled items (unweighted) by score; items without a valid score are not drawn."""
    fig = Figure(figsize=(5.6, 3.0), dpi=100, layout="constrained")
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
    ax.set_title("Score histogram by true label", fontsize=10)
    if ok or bad:
        ax.legend(loc="best", fontsize=8)
    return fig


def escape_curve(history: Sequence[LabelledScore], *, pass_below: float, reject_above: float) -> Figure:
    fig = Figure(figsize=(5.6, 3.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("automation rate")
    ax.set_ylabel("escape rate (per phone)")
    ax.set_title(f"Escape vs automation (reject ≥ {reject_above:.3f})", fontsize=10)
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
    status: gr.HTML
    confirm: gr.Group
    confirm_text: gr.Markdown
    yes: gr.Button
    no: gr.Button
    whatif: gr.HTML
    hist_plot: gr.Plot
    curve_plot: gr.Plot


def _slider(maximum: float, value: float, label: str, elem_id: str) -> gr.Slider:
    return gr.Slider(0, maximum, value=value, step=0.005, label=label, elem_id=elem_id)


def _confirm_box(prefix: str) -> tuple[gr.Group, gr.Markdown, gr.Button, gr.Button]:
    with gr.Group(visible=False, elem_id=f"{prefix}-confirm", elem_classes=["eng-dialog"]) as box:
        text = gr.Markdown(elem_id=f"{prefix}-confirm-text")
        with gr.Row():
            yes = gr.Button("Confirm and store", variant="primary", elem_id=f"{prefix}-confirm-yes")
            no = gr.Button("Cancel", elem_id=f"{prefix}-confirm-no")
    return box, text, yes, no


def _layout(ctx: UiContext) -> _Controls:
    dialog_style()
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=380):
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
            save = gr.Button("Save new policy version…", variant="primary", size="lg", elem_id="policy-save")
            status = gr.HTML(elem_id="policy-status")
            confirm, confirm_text, yes, no = _confirm_box("policy")
        with gr.Column(scale=3, min_width=480):
            whatif = gr.HTML(elem_id="policy-whatif")
            # the figures carry their own titles: a component label would sit over them
            hist_plot = gr.Plot(label="Score histogram by true label", show_label=False, elem_id="policy-hist")
            curve_plot = gr.Plot(label="Escape rate against automation rate", show_label=False, elem_id="policy-curve")
    return _Controls(
        station, current, level, pass_below, reject_above, audit_rate, items_per_hour, seconds_per_review,
        reason, save, status, confirm, confirm_text, yes, no, whatif, hist_plot, curve_plot,
    )  # fmt: skip


FIELDS = (("level", "level"), ("pass_below", "pass below"), ("reject_above", "reject above"), ("audit_rate", "audit"))


def policy_diff(old: Policy, new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, stored value, proposed value) for every field the proposal changes."""
    out = []
    for key, name in FIELDS:
        before = getattr(old, key)
        before = before.value if isinstance(before, AutomationLevel) else before
        if before != new[key]:
            out.append((name, before, new[key]))
    return out


def diff_markdown(old: Policy, new: dict[str, Any], changes: list[tuple[str, Any, Any]], *, reason: str,
                  load: str) -> str:  # fmt: skip
    """The confirmation text: the version that will be stored, field by field, and its what-if."""
    rows = "\n".join(f"| {name} | {a} | **{b}** |" for name, a, b in changes)
    return (
        f"### Store {old.station} policy version {old.version + 1}?\n\n"
        f"| field | now (version {old.version}) | new |\n|---|---|---|\n{rows}\n\n"
        f"Expected with the new values: {load}  \nReason: “{reason}”"
    )


def build(ctx: UiContext) -> None:
    """The Policy tab (call inside a Tab)."""
    app = ctx.pipeline
    c = _layout(ctx)
    labels = gr.State([])
    pending = gr.State(None)  # (station, stored version, proposed values, reason) awaiting confirmation

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
        lv: str, pb: float, ra: float, ar: float, iph: float, spr: float, history: list[LabelledScore],
        request: gr.Request,
    ) -> tuple[str, Figure, Figure]:  # fmt: skip
        ctx.require(request, Permission.ENGINEER)
        page = what_if_html(
            history, level=lv or "partial", pass_below=float(pb), reject_above=float(ra),
            items_per_hour=float(iph or 600), seconds_per_review=float(spr or 4), audit_rate=float(ar or 0),
        )  # fmt: skip
        return (
            page,
            score_histogram(history, pass_below=float(pb), reject_above=float(ra)),
            escape_curve(history, pass_below=float(pb), reject_above=float(ra)),
        )

    def refresh(name: str | None, request: gr.Request) -> tuple[Any, ...]:
        """The stored policy line and the labels; the what-if follows (`auto_refresh(then=…)`) for the
        values on screen, so the sliders the engineer is exploring are left alone."""
        ctx.require(request, Permission.ENGINEER)
        if not name:
            return gr.update(), gr.update()
        try:
            st = validation.validate_station(name)
            return policy_summary(app, st), labelled_history(app, station=st)
        except (PolicyError, InputError):
            return gr.update(), gr.update()

    def ask_save(name: str | None, lv: str, pb: float, ra: float, ar: float, why: str, iph: float, spr: float,
                 history: list[LabelledScore], request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        ctx.require(request, Permission.ENGINEER)
        hide = (gr.update(visible=False), "", None)
        try:
            st = validation.validate_station(name or "")
            if not (why or "").strip():
                raise InputError("Say why the policy changes (reason is required).")
            if float(pb) >= float(ra):
                raise InputError("pass below must be lower than reject above")
            old = policies.get_policy(app, station=st)
            new = {"level": lv, "pass_below": float(pb), "reject_above": float(ra), "audit_rate": float(ar)}
            changes = policy_diff(old, new)
            if not changes:
                return (*hide, status_html(f"Nothing to save: same as version {old.version}.", kind="warn"))
            wi, _note = (None, "") if AutomationLevel(lv) in MANUAL_LEVELS or not history else what_if(
                history, level=lv, pass_below=float(pb), reject_above=float(ra))  # fmt: skip
        except Exception as exc:
            msg = expected_error(exc, where="policy save", expected=(PolicyError, InputError, ValueError))
            return (*hide, status_html(msg, kind="error"))
        load = policy_load(wi, level=lv, audit_rate=float(ar), items_per_hour=float(iph or 600),
                           seconds_per_review=float(spr or 4))  # fmt: skip
        summary = f"automation {pct(load.automation_rate)}, {load.reviews_per_hour:.0f} reviews/h"
        if wi is not None:
            summary += f", escape rate ≤ {pct(wi.escape_upper, 2)}"
        text = diff_markdown(old, new, changes, reason=why.strip(), load=summary)
        note = status_html("Not stored yet: check the change, then Confirm or Cancel.", kind="warn")
        return gr.update(visible=True), text, (st, old.version, new, why.strip()), note

    def confirm_save(held: Any, request: gr.Request) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        if not held:
            return (
                gr.update(),
                gr.update(),
                gr.update(visible=False),
                None,
                status_html("Nothing to confirm.", kind="warn"),
            )
        st, version, new, why = held
        try:
            if policies.get_policy(app, station=st).version != version:
                raise InputError(f"{st}'s policy changed since this summary: review the change again")
            saved = policies.set_policy(app, station=st, by=user.name, reason=why, **new)
        except Exception as exc:
            msg = expected_error(exc, where="policy confirm", expected=(PolicyError, InputError, ValueError))
            return (
                gr.update(),
                gr.update(),
                gr.update(visible=False),
                None,
                status_html(f"Not stored: {msg}", kind="error"),
            )
        done = status_html(f"Saved {saved.station} policy version {saved.version}: {saved.level.value}")
        return policy_summary(app, saved.station), "", gr.update(visible=False), None, done

    def cancel_save() -> tuple[Any, ...]:
        return gr.update(visible=False), None, status_html("Cancelled: nothing stored.", kind="warn")

    _wire(ctx, c, labels, pending, load_station, recompute, refresh, (ask_save, confirm_save, cancel_save))


def _wire(
    ctx: UiContext,
    c: _Controls,
    labels: gr.State,
    pending: gr.State,
    load_station: Callable[..., Any],
    recompute: Callable[..., Any],
    refresh: Callable[..., Any],
    save: tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]],
) -> None:
    values: list[Any] = [c.level, c.pass_below, c.reject_above, c.audit_rate, c.items_per_hour, c.seconds_per_review]
    what_inputs = [*values, labels]
    what_outputs = [c.whatif, c.hist_plot, c.curve_plot]
    loaded = [c.level, c.pass_below, c.reject_above, c.audit_rate, c.current, labels]
    c.station.change(load_station, [c.station], loaded).then(
        recompute, what_inputs, what_outputs, show_progress="hidden"
    )
    for comp in values:
        comp.change(recompute, what_inputs, what_outputs, show_progress="hidden")
    ask_save, confirm_save, cancel_save = save
    c.save.click(
        ask_save,
        [c.station, c.level, c.pass_below, c.reject_above, c.audit_rate, c.reason, c.items_per_hour,
         c.seconds_per_review, labels],
        [c.confirm, c.confirm_text, pending, c.status],
    )  # fmt: skip
    c.yes.click(confirm_save, [pending], [c.current, c.reason, c.confirm, pending, c.status])
    c.no.click(cancel_save, None, [c.confirm, pending, c.status])
    on_load(ctx, c.station, load_station, loaded, then=(recompute, what_inputs, what_outputs))
    auto_refresh(refresh, [c.station], [c.current, labels], then=(recompute, what_inputs, what_outputs))
