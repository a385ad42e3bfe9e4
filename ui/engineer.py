"""Engineer screens: station policy with a live what-if, shadow and audit reports, history.

Every handler checks the role on the server first (`ctx.require`), even though the whole engineer
app is also mounted behind an engineer-only dependency. Handlers call one service function and
format the result; expected errors become messages (gr.Error / gr.Warning), never stack traces.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import gradio as gr
import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from inspection import store  # noqa: E402
from inspection.core import thresholds  # noqa: E402
from inspection.core.domain import AutomationLevel, Label, LabelledScore, PolicyError  # noqa: E402
from inspection.services import errors, events, policies, reports, review, validation
from inspection.services.context import Pipeline  # noqa: E402
from ui.context import Permission, UiContext  # noqa: E402

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

LEVEL_HELP = {
    "human_only": "model off; a person decides every phone",
    "shadow": "model runs hidden; a person decides every phone",
    "ai_assist": "a person decides every phone, seeing score and highlight",
    "partial": "model decides when confident, else a person",
    "full": "model decides every phone; people see audit samples only",
}
LEVEL_CHOICES = [(f"{lv.value}: {LEVEL_HELP[lv.value]}", lv.value) for lv in AutomationLevel]

ALL = "(all stations)"
OPTIONAL_TABS = (("Models", "ui.models_tab"), ("Export", "ui.export_tab"))


def messages(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn any unexpected exception into a short message (the trace goes to the server log)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (PolicyError, errors.InputError, errors.NotFound, errors.QueueConflict) as exc:
            raise gr.Error(str(exc)) from None
        except Exception:
            log.exception("engineer screen: %s failed", getattr(fn, "__name__", "handler"))
            raise gr.Error("internal error: nothing was changed; the server log has the details") from None

    return wrapper


# ---------------------------------------------------------------------------------------------
# Data (read-only helpers the handlers format)
# ---------------------------------------------------------------------------------------------


def stations(app: Pipeline) -> list[str]:
    """Configured stations plus stations that have items in the queue."""
    names = {rec.policy.station for rec in policies.list_policies(app)}
    names.update(q.station for q in review.queue_depth(app))
    return sorted(names)


def labelled_history(app: Pipeline, *, station: str) -> list[tuple[float, str]]:
    """(model score, inspector label) of every live, non-audit label at this station."""
    station = validation.validate_station(station)
    with app.read() as session:
        return store.scored_reviews(session, levels=[lv.value for lv in AutomationLevel], station=station)


def _history(pairs: Sequence[Sequence[Any]]) -> list[LabelledScore]:
    return [LabelledScore(score=float(s), label=Label(lab)) for s, lab in pairs]


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x * 100:.{digits}f} %"


def what_if_html(
    pairs: Sequence[Sequence[Any]],
    *,
    level: str,
    pass_below: float,
    reject_above: float,
    items_per_hour: float,
    seconds_per_review: float,
) -> str:
    if pass_below >= reject_above:
        return _card_row([("Thresholds", "pass below must be lower than reject above", "bad")])
    if not pairs:
        return _card_row([("No labels yet", "label items at this station to see the what-if", "")])
    lv = AutomationLevel(level)
    if lv in (AutomationLevel.HUMAN_ONLY, AutomationLevel.SHADOW, AutomationLevel.AI_ASSIST):
        note = f"{lv.value} automates nothing; figures below show partial with these thresholds"
    elif lv is AutomationLevel.FULL:
        note = "full: everything above pass below is rejected automatically"
        reject_above = min(1.0, math.nextafter(pass_below, 2.0))
    else:
        note = "partial: replayed on the stored labels"
    wi = thresholds.what_if(
        _history(pairs),
        pass_below=pass_below,
        reject_above=reject_above,
        items_per_hour=max(1.0, items_per_hour),
        seconds_per_review=max(0.1, seconds_per_review),
    )
    cards = [
        ("Automation rate", _pct(wi.automation_rate), ""),
        ("Expected escape rate", f"{_pct(wi.escape_rate, 2)} (≤ {_pct(wi.escape_upper, 2)})", "warn"),
        ("False-reject rate", f"{_pct(wi.false_reject_rate, 2)} (≤ {_pct(wi.false_reject_upper, 2)})", ""),
        ("Review load", f"{wi.reviews_per_hour:.0f} items/h · {wi.review_minutes_per_hour:.0f} min/h", ""),
    ]
    foot = (
        f"{note}. {wi.n} labels; upper bounds at {wi.confidence:.0%} confidence; "
        f"{wi.escapes} escape(s) and {wi.false_rejects} false reject(s) among the labels."
    )
    return _card_row(cards) + f'<p class="eng-note">{foot}</p>'


def _card_row(cards: Sequence[tuple[str, str, str]]) -> str:
    import html

    parts = [
        f'<div class="eng-card {cls}"><span>{html.escape(t)}</span><b>{html.escape(v)}</b></div>' for t, v, cls in cards
    ]
    return '<div class="eng-cards">' + "".join(parts) + "</div>"


def score_histogram(pairs: Sequence[Sequence[Any]], *, pass_below: float, reject_above: float) -> Figure:
    fig = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ok = [float(s) for s, lab in pairs if lab == Label.OK.value]
    bad = [float(s) for s, lab in pairs if lab == Label.SCRATCH.value]
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


def escape_curve(pairs: Sequence[Sequence[Any]], *, pass_below: float, reject_above: float) -> Figure:
    fig = Figure(figsize=(6.4, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlabel("automation rate")
    ax.set_ylabel("escape rate (per phone)")
    ax.set_title(f"Escape rate vs automation (reject above {reject_above:.3f})")
    if pairs and pass_below < reject_above:
        hist = _history(pairs)
        curve = thresholds.sweep(hist, reject_above=reject_above)
        xs = [w.automation_rate for w in curve]
        ax.plot(xs, [w.escape_rate for w in curve], color="#1f5fa8", label="expected")
        ax.plot(xs, [w.escape_upper for w in curve], color="#1f5fa8", linestyle=":", label="95 % upper bound")
        now = thresholds.what_if(hist, pass_below=pass_below, reject_above=reject_above)
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


def history_rows(app: Pipeline, station: str | None) -> tuple[list[list[Any]], list[list[Any]]]:
    """(policy versions, events), newest first."""
    policy_rows: list[list[Any]] = []
    names = [station] if station else stations(app)
    for name in names:
        for rec in policies.list_policies(app, station=name):
            p = rec.policy
            policy_rows.append(
                [
                    rec.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    p.station,
                    p.version,
                    p.level.value,
                    p.pass_below,
                    p.reject_above,
                    p.audit_rate,
                    rec.created_by,
                    rec.reason,
                ]
            )
    policy_rows.sort(key=lambda r: (r[0], r[2]), reverse=True)
    event_rows: list[list[Any]] = [
        [
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.station or "",
            e.actor or "",
            e.inspection_id if e.inspection_id is not None else "",
            _detail(e.detail),
        ]
        for e in events.list_events(app, station=station or None, limit=200)
    ]
    return policy_rows, event_rows


def _detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    old, new = detail.get("old"), detail.get("new")
    if isinstance(old, dict) and isinstance(new, dict):  # policy.changed: only what changed
        changes = [f"{k} {old.get(k)} → {v}" for k, v in new.items() if k != "version" and old.get(k) != v]
        why = f" · “{detail.get('reason', '')}”" if detail.get("reason") else ""
        return (f"v{old.get('version')} → v{new.get('version')}: " + ", ".join(changes) + why)[:200]
    text = ", ".join(f"{k}={v}" for k, v in detail.items() if k not in ("sha256",))
    return text[:200]


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


# ---------------------------------------------------------------------------------------------
# Screens
# ---------------------------------------------------------------------------------------------


def build(ctx: UiContext) -> None:
    """All engineer tabs (call inside a Blocks context)."""
    with gr.Tabs():
        with gr.Tab("Policy", id="policy"):
            _policy_tab(ctx)
        with gr.Tab("Reports", id="reports"):
            _reports_tab(ctx)
        with gr.Tab("History", id="history"):
            _history_tab(ctx)
        for title, module in OPTIONAL_TABS:
            if importlib.util.find_spec(module) is None:
                continue
            with gr.Tab(title, id=title.lower()):
                try:
                    importlib.import_module(module).build(ctx)
                except Exception:
                    log.exception("tab %s failed to build", module)
                    gr.Markdown(f"The {title} tab could not be built; the server log has the details.")


def _station_dropdown(ctx: UiContext, label: str = "Station") -> gr.Dropdown:
    names = stations(ctx.pipeline)
    return gr.Dropdown(
        choices=names,
        value=names[0] if names else None,
        label=label,
        allow_custom_value=True,
        info="pick a station or type a new name",
        elem_id=f"{label.lower().replace(' ', '-')}-station",
    )


def _policy_tab(ctx: UiContext) -> None:
    app = ctx.pipeline
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=420):
            station = _station_dropdown(ctx)
            current = gr.Markdown(elem_id="policy-current")
            level = gr.Radio(LEVEL_CHOICES, label="Automation level", value="human_only", elem_id="policy-level")
            pass_below = gr.Slider(
                0,
                1,
                value=0.05,
                step=0.005,
                label="Pass below (score ≤ this passes)",
                elem_id="policy-pass-below",
            )
            reject_above = gr.Slider(
                0,
                1,
                value=0.95,
                step=0.005,
                label="Reject above (score ≥ this rejects)",
                elem_id="policy-reject-above",
            )
            audit_rate = gr.Slider(
                0,
                0.5,
                value=0.02,
                step=0.005,
                label="Audit rate (blind re-check share)",
                elem_id="policy-audit-rate",
            )
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
    labels = gr.State([])

    @messages
    def load_station(name: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        if not name:
            return (gr.update(), gr.update(), gr.update(), gr.update(), "Pick or type a station.", [])
        name = validation.validate_station(name)
        p = policies.get_policy(app, station=name)
        pairs = [list(x) for x in labelled_history(app, station=name)]
        return (p.level.value, p.pass_below, p.reject_above, p.audit_rate, policy_summary(app, name), pairs)

    @messages
    def recompute(
        lv: str,
        pb: float,
        ra: float,
        ar: float,
        iph: float,
        spr: float,
        pairs: list[list[Any]],
        request: gr.Request,
    ) -> tuple[str, Figure, Figure]:
        ctx.require(request, Permission.ENGINEER)
        del ar
        html = what_if_html(
            pairs,
            level=lv or "partial",
            pass_below=float(pb),
            reject_above=float(ra),
            items_per_hour=float(iph or 600),
            seconds_per_review=float(spr or 4),
        )
        return (
            html,
            score_histogram(pairs, pass_below=float(pb), reject_above=float(ra)),
            escape_curve(pairs, pass_below=float(pb), reject_above=float(ra)),
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

    what_inputs = [level, pass_below, reject_above, audit_rate, items_per_hour, seconds_per_review, labels]
    what_outputs = [whatif, hist_plot, curve_plot]
    station.change(load_station, [station], [level, pass_below, reject_above, audit_rate, current, labels]).then(
        recompute, what_inputs, what_outputs, show_progress="hidden"
    )
    for comp in (level, pass_below, reject_above, items_per_hour, seconds_per_review):
        comp.change(recompute, what_inputs, what_outputs, show_progress="hidden")
    save.click(save_policy, [station, level, pass_below, reject_above, audit_rate, reason], [current, reason])
    _on_load(
        ctx,
        station,
        load_station,
        [level, pass_below, reject_above, audit_rate, current, labels],
        then=(recompute, what_inputs, what_outputs),
    )


def _on_load(
    ctx: UiContext,
    station: gr.Dropdown,
    fn: Callable[..., Any],
    outputs: list[Any],
    *,
    then: tuple[Callable[..., Any], list[Any], list[Any]] | None = None,
) -> None:
    """Fill a tab when the page loads (the Blocks' load event)."""
    root = gr.context.Context.root_block
    if root is None:
        return

    _refresh_choices(ctx, station, with_all=False)
    ev = root.load(fn, [station], outputs)
    if then is not None:
        ev.then(then[0], then[1], then[2], show_progress="hidden")


def _refresh_choices(ctx: UiContext, dropdown: gr.Dropdown, *, with_all: bool) -> None:
    """New stations appear in the dropdown at the next page load."""
    root = gr.context.Context.root_block
    if root is None:
        return

    def choices(request: gr.Request) -> Any:
        ctx.require(request, Permission.ENGINEER)
        names = stations(ctx.pipeline)
        return gr.update(choices=[ALL, *names] if with_all else names)

    root.load(choices, None, [dropdown], show_progress="hidden")


def _reports_tab(ctx: UiContext) -> None:
    app = ctx.pipeline
    with gr.Row():
        station = gr.Dropdown(
            [ALL, *stations(app)], value=ALL, label="Station", elem_id="reports-station", allow_custom_value=True
        )
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
        st = None if not name or name == ALL else validation.validate_station(name)
        sh = reports.shadow_report(app, station=st, max_escape=float(target or 0.002))
        rows = [
            ["labelled items", sh.n],
            ["agreement", f"{_pct(sh.agreement)} ({_pct(sh.agreement_low)} – {_pct(sh.agreement_high)})"],
            ["Cohen's kappa", "n/a" if sh.kappa is None else f"{sh.kappa:.3f}"],
            ["true scratch caught (TP)", sh.tp],
            ["scratch missed (FN)", sh.fn],
            ["false alarm (FP)", sh.fp],
            ["true OK (TN)", sh.tn],
        ]
        sug = sh.suggestion
        if sug is not None and sug.ok:
            rows.append(["suggested partial thresholds", f"pass ≤ {sug.pass_below} · reject ≥ {sug.reject_above}"])
        au = reports.audit_report(app, station=st)
        audit_rows = [
            [name_, est.events, est.trials, _pct(est.rate, 2), f"{_pct(est.low, 2)} – {_pct(est.high, 2)}"]
            for name_, est in (
                ("escape rate (auto-passed, found scratched)", au.escape),
                ("false-reject rate (auto-rejected, found OK)", au.false_reject),
            )
        ]
        audit_rows.append(["audits pending", au.pending, "", "", ""])
        return (
            f"**{st or 'all stations'}**: {sh.summary}",
            rows,
            shadow_figure(sh),
            audit_rows,
            audit_figure(au),
        )

    outs = [shadow_summary, shadow_table, shadow_plot, audit_table, audit_plot]
    refresh.click(run, [station, max_escape], outs)
    station.change(run, [station, max_escape], outs)
    _refresh_choices(ctx, station, with_all=True)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(run, [station, max_escape], outs)


def _history_tab(ctx: UiContext) -> None:
    app = ctx.pipeline
    with gr.Row():
        names = stations(app)
        station = gr.Dropdown(
            ["(all stations)", *names], value="(all stations)", label="Station", elem_id="history-station"
        )
        refresh = gr.Button("Refresh", size="lg", elem_id="history-refresh")
    gr.Markdown("### Policy versions (newest first)")
    policies = gr.Dataframe(
        headers=[
            "when (UTC)",
            "station",
            "version",
            "level",
            "pass below",
            "reject above",
            "audit",
            "by",
            "reason",
        ],
        interactive=False,
        elem_id="history-policies",
    )
    gr.Markdown("### Events (newest first)")
    events = gr.Dataframe(
        headers=["when (UTC)", "event", "station", "who", "item", "detail"],
        interactive=False,
        elem_id="history-events",
        max_height=520,
    )

    @messages
    def run(name: str | None, request: gr.Request) -> tuple[list[list[Any]], list[list[Any]]]:
        ctx.require(request, Permission.ENGINEER)
        st = None if not name or name == ALL else validation.validate_station(name)
        return history_rows(app, st)

    refresh.click(run, [station], [policies, events])
    station.change(run, [station], [policies, events])
    _refresh_choices(ctx, station, with_all=True)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(run, [station], [policies, events])
