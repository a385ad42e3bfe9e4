"""Engineer screen, "Models" tab: the registry and the deployment actions (shadow, canary, promote,
rollback) plus a candidate-vs-production comparison with the disagreeing images.

Every action is two steps: the button asks the service for a plan (`deploy.plan`: from → to, mode,
held-out metrics, whether it needs force) and shows it; only "Confirm" changes the deployment, and
only if nobody changed it in between (`deploy.apply_plan`). Refusals and errors appear in the status
line under the buttons, in the screen's words, never as badges over the inputs. Every handler checks
the engineer role on the server first (`ctx.require`) and records the logged-in user as who made the
change; the reason is stored with it and the reason and force fields are cleared after each change.
The tab fills itself when the page loads and when it is selected, and refreshes while it is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from inspection.services import deploy, registry
from inspection.services.context import Pipeline
from ui import models_ramp, models_retrain
from ui.context import Permission, UiContext
from ui.engineer_common import auto_refresh, dialog_style, expected_error, gallery_images, status_html

MODEL_HEADERS = [
    "version",
    "roles",
    "held-out AUROC",
    "held-out accuracy",
    "held-out ECE",
    "held-out n",
    "held-out set",
    "val AUROC",
    "modified",
]
DIS_HEADERS = ["inspection", "station", "candidate", "production", "human"]
EXPECTED: tuple[type[Exception], ...] = (registry.DeployError, ValueError, LookupError)
ACTION_TITLES = {"shadow": "Shadow", "canary": "Canary", "promote": "Promote", "rollback": "Rollback"}


def _num(x: Any, digits: int = 4) -> Any:
    return round(float(x), digits) if isinstance(x, int | float) else None


def model_rows(infos: list[registry.ModelInfo]) -> list[list[Any]]:
    rows = []
    for m in infos:
        source, held = m.heldout_summary
        rows.append(
            [
                m.version,
                ", ".join(m.roles) or "-",
                _num(held.get("auroc")),
                _num(held.get("accuracy")),
                _num(held.get("ece")),
                held.get("n"),
                source or "none",
                _num(m.metrics.get("val_auroc")),
                m.modified.strftime("%Y-%m-%d %H:%M") if m.modified else "",
            ]
        )
    return rows


def state_text(state: registry.DeploymentState, rollback_to: str | None = None) -> str:
    line = f"**Production:** `{state.production}`"
    if state.candidate and state.mode != "none":
        extra = f" deciding {state.canary_fraction:.1%} of items" if state.mode == "canary" else " (hidden)"
        line += f" · **{state.mode}:** `{state.candidate}`{extra}"
        line += " · Rollback withdraws it."
    elif rollback_to:
        line += f" · Rollback would return to `{rollback_to}` (last model promoted without force)."
    else:
        line += " · Nothing to roll back to."
    if state.actor:
        line += f"  \nlast change by {state.actor}" + (f": {state.reason}" if state.reason else "")
    return line


def _metrics_line(label: str, m: dict[str, Any] | None) -> str:
    if not m:
        return f"{label}: no held-out metrics"
    parts = [f"{k} {float(m[k]):.4f}" for k in ("auroc", "accuracy", "ece") if isinstance(m.get(k), int | float)]
    n = m.get("n")
    return f"{label}: " + (", ".join(parts) or "no held-out metrics") + (f" (n = {n})" if n is not None else "")


def _own_metrics(app: Pipeline, version: str | None) -> dict[str, Any]:
    if not version:
        return {}
    try:
        return registry.model_info(registry.model_dir(app, version)).heldout_summary[1]
    except registry.DeployError:
        return {}


def _change_line(p: deploy.ChangePlan) -> str:
    b = p.before
    if p.withdraws:
        return f"withdraw {b.mode} candidate `{p.withdraws}`; production stays `{p.production}`, all traffic to it"
    if p.action == "rollback":
        return f"production `{b.production}` → `{p.production}` (the last model promoted without force)"
    if p.action == "promote":
        return f"production `{b.production}` → `{p.production}`: all traffic at once (blue-green)"
    share = f", deciding {p.fraction:.0%} of items" if p.action == "canary" else ", scoring every item unused"
    was = f" (replaces {b.mode} `{b.candidate}`)" if b.candidate and b.mode != "none" else ""
    return f"production stays `{b.production}`; `{p.candidate}` runs as {p.mode}{share}{was}"


def plan_text(app: Pipeline, p: deploy.ChangePlan, *, reason: str) -> str:
    """The confirmation summary: what changes, the held-out metrics, force and reason."""
    lines = [f"### Confirm {ACTION_TITLES.get(p.action, p.action)}", _change_line(p)]
    ev = p.evidence
    if ev:
        src = "stored by retrain" if ev.get("source") == "stored" else "recomputed now"
        lines.append(f"Held-out comparison on {ev.get('items')} items ({src}):")
        lines.append("- " + _metrics_line(f"candidate `{p.version}`", ev.get("candidate")))
        lines.append("- " + _metrics_line(f"production `{p.before.production}`", ev.get("production")))
    else:
        moving = [v for v in dict.fromkeys([p.before.production, p.version, p.withdraws]) if v]
        lines.append("Each model's own held-out metrics:")
        lines += ["- " + _metrics_line(f"`{v}`", _own_metrics(app, v)) for v in moving]
    tail = [f"**Forced:** {p.problem}"] if p.forced else []
    tail.append(f"Reason: “{reason}”" if reason else "Reason: (none given)")
    return "\n\n".join([*lines[:2], "\n".join(lines[2:]), *tail])


def comparison_view(c: deploy.Comparison) -> tuple[str, list[list[Any]]]:
    """The comparison as a sentence and the disagreement rows."""
    if c.n == 0:
        return f"`{c.version}`: no items scored by both yet (start shadow or canary).", []
    lo, hi = c.agreement_interval
    text = (
        f"`{c.version}` vs production on **{c.n}** items: agreement **{(c.agreement or 0):.1%}** "
        f"(95 % {lo:.1%}–{hi:.1%}), kappa {c.kappa if c.kappa is None else round(c.kappa, 3)}, "
        f"score correlation {c.correlation if c.correlation is None else round(c.correlation, 3)}; "
        f"{c.disagreements_total} disagreements (images below)."
    )
    if c.n_labelled:
        text += (
            f"  \nOn {c.n_labelled} human-labelled items: candidate accuracy "
            f"{(c.candidate_accuracy or 0):.1%}, production {(c.production_accuracy or 0):.1%}."
        )
    rows = [
        [d.inspection_id, d.station, round(d.candidate_score, 4), round(d.production_score, 4), d.human_label or ""]
        for d in c.disagreements
    ]
    return text, rows


def disagreement_gallery(c: deploy.Comparison, limit: int = 24) -> list[Any]:
    return gallery_images(
        [
            (d.image_path, f"#{d.inspection_id}: candidate {d.candidate_score:.3f} · production "
             f"{d.production_score:.3f}" + (f" · human {d.human_label}" if d.human_label else ""))
            for d in c.disagreements[:limit]
        ]
    )  # fmt: skip


@dataclass
class _View:
    state_md: gr.Markdown
    table: gr.Dataframe
    version: gr.Dropdown
    fraction: gr.Slider
    reason: gr.Textbox
    force: gr.Checkbox
    buttons: dict[str, gr.Button]
    status: gr.HTML
    confirm: gr.Group
    confirm_text: gr.Markdown
    yes: gr.Button
    no: gr.Button
    compare_text: gr.Markdown
    dis: gr.Dataframe
    gallery: gr.Gallery


def _layout() -> _View:
    dialog_style()
    state_md = gr.Markdown(elem_id="models-state")
    table = gr.Dataframe(
        headers=MODEL_HEADERS,
        interactive=False,
        elem_id="models-table",
        wrap=True,
        max_height=260,
        column_widths=["13%", "12%", "9%", "9%", "8%", "8%", "17%", "8%", "14%"],
    )
    with gr.Row(equal_height=True):
        version = gr.Dropdown(choices=[], label="Model version", allow_custom_value=False, elem_id="models-version")
        fraction = gr.Slider(0.01, 0.99, value=0.1, step=0.01, label="Canary fraction", elem_id="models-fraction")
        reason = gr.Textbox(label="Reason (stored; required to force)", elem_id="models-reason", scale=2)
        force = gr.Checkbox(label="Force: deploy a worse or unproven model", value=False, elem_id="models-force")
    with gr.Row():
        buttons = {
            "shadow": gr.Button("Shadow…", elem_id="models-shadow"),
            "canary": gr.Button("Canary…", elem_id="models-canary"),
            "promote": gr.Button("Promote…", variant="primary", elem_id="models-promote"),
            "rollback": gr.Button("Rollback…", variant="stop", elem_id="models-rollback"),
            "compare": gr.Button("Compare", elem_id="models-compare"),
            "refresh": gr.Button("Refresh", elem_id="models-refresh"),
        }
    status = gr.HTML(elem_id="models-result")
    with gr.Group(visible=False, elem_id="models-confirm", elem_classes=["eng-dialog"]) as confirm:
        confirm_text = gr.Markdown(elem_id="models-confirm-text")
        with gr.Row():
            yes = gr.Button("Confirm", variant="primary", elem_id="models-confirm-yes")
            no = gr.Button("Cancel", elem_id="models-confirm-no")
    with gr.Accordion("What the actions do", open=False):
        gr.Markdown(
            "**Shadow** scores every item unused; **canary** lets the candidate decide a share of items (refused "
            "when it is worse on held-out labels, unless forced with a reason); **promote** switches all traffic "
            "(needs held-out evidence that it is not worse, or force with a reason); **rollback** withdraws a "
            "candidate or returns to the last model promoted without force. Each asks for confirmation first."
        )
    compare_text = gr.Markdown(elem_id="models-compare-text")
    with gr.Row(equal_height=False):
        dis = gr.Dataframe(headers=DIS_HEADERS, interactive=False, label="Disagreements", elem_id="models-dis",
                           max_height=360)  # fmt: skip
        gallery = gr.Gallery(label="Disagreeing items", columns=3, height=360, elem_id="models-dis-gallery")
    return _View(state_md, table, version, fraction, reason, force, buttons, status, confirm, confirm_text, yes, no,
                 compare_text, dis, gallery)  # fmt: skip


def build(ctx: UiContext) -> None:
    app = ctx.pipeline
    v = _layout()
    pending = gr.State(None)  # (plan, reason, force) awaiting confirmation

    def snapshot() -> tuple[str, list[list[Any]], Any]:
        infos = registry.list_models(app)
        st, target = registry.state_and_target(app)
        return state_text(st, target), model_rows(infos), gr.update(choices=[m.version for m in infos])

    def refresh(request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        try:
            return snapshot()
        except Exception as exc:  # the state line says what failed; the table keeps what it showed
            msg = expected_error(exc, where="models refresh", expected=EXPECTED)
            return f"could not read the registry: {msg}", gr.update(), gr.update()

    def preview(kind: str) -> Callable[..., tuple[Any, ...]]:
        def ask(ver: str | None, frac: float, why: str, forced: bool, request: gr.Request) -> tuple[Any, ...]:
            ctx.require(request, Permission.ENGINEER)
            reason = (why or "").strip()
            try:
                if kind != "rollback" and not ver:
                    raise registry.DeployError("pick a model version first")
                p = deploy.plan(app, action=kind, version=ver, fraction=float(frac), force=bool(forced),
                                reason=reason)  # fmt: skip
            except Exception as exc:
                msg = expected_error(exc, where=f"models {kind}", expected=EXPECTED)
                return gr.update(visible=False), "", None, status_html(msg, kind="error")
            note = status_html("Nothing has changed yet: check the summary, then Confirm or Cancel.", kind="warn")
            return gr.update(visible=True), plan_text(app, p, reason=reason), (p, reason, bool(forced)), note

        ask.__name__ = f"preview_{kind}"
        return ask

    def confirm(held: Any, request: gr.Request) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        keep = (gr.update(), gr.update(), gr.update(), gr.update(visible=False), None)
        if not held:
            return (*keep, status_html("Nothing to confirm.", kind="warn"), gr.update(), gr.update())
        p, reason, forced = held
        try:
            st = deploy.apply_plan(app, p, by=user.name, reason=reason, force=forced)
        except Exception as exc:
            msg = expected_error(exc, where="models confirm", expected=EXPECTED)
            return (*keep, status_html(f"Not changed: {msg}", kind="error"), gr.update(), gr.update())
        done = f"Done: production {st.production}" + (f", {st.mode} {st.candidate}" if st.candidate else "") + "."
        return (*snapshot(), gr.update(visible=False), None, status_html(done), "", False)

    def cancel() -> tuple[Any, ...]:
        return gr.update(visible=False), None, status_html("Cancelled: nothing changed.", kind="warn")

    def compare(ver: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        try:
            if not ver:
                raise registry.DeployError("pick a model version first")
            c = deploy.compare(app, version=ver, limit=100)
        except Exception as exc:
            msg = expected_error(exc, where="models compare", expected=EXPECTED)
            return "", [], [], status_html(msg, kind="error")
        text, rows = comparison_view(c)
        return text, rows, disagreement_gallery(c), status_html(f"Compared {c.version} with production.")

    _wire(v, pending, refresh, preview, confirm, cancel, compare)
    models_ramp.build(ctx)  # the candidate's gradual ramp (ui/models_ramp.py)
    models_retrain.build(ctx)  # automatic candidates: the retrain trigger and its runs (ui/models_retrain.py)


def _wire(
    v: _View,
    pending: gr.State,
    refresh: Callable[..., Any],
    preview: Callable[[str], Callable[..., Any]],
    confirm: Callable[..., Any],
    cancel: Callable[..., Any],
    compare: Callable[..., Any],
) -> None:
    outs = [v.state_md, v.table, v.version]
    v.buttons["refresh"].click(refresh, inputs=None, outputs=outs)
    root = gr.context.Context.root_block
    if root is not None:
        root.load(refresh, None, outs, show_progress="hidden")  # filled on open, not on first Refresh
    auto_refresh(refresh, [], outs)
    inputs = [v.version, v.fraction, v.reason, v.force]
    for kind in ("shadow", "canary", "promote", "rollback"):
        v.buttons[kind].click(preview(kind), inputs, [v.confirm, v.confirm_text, pending, v.status])
    v.yes.click(confirm, [pending], [*outs, v.confirm, pending, v.status, v.reason, v.force])
    v.no.click(cancel, None, [v.confirm, pending, v.status])
    v.buttons["compare"].click(compare, [v.version], [v.compare_text, v.dis, v.gallery, v.status])
