"""Engineer screen, "Models" tab: the registry and the deployment actions (shadow, canary, promote,
rollback) plus a candidate-vs-production comparison.

Every handler checks the engineer role on the server first (`ctx.require`) and records the logged-in
user as who made the change; the reason is stored with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from inspection.services import deploy, registry
from inspection.services.context import Pipeline
from ui.context import Permission, UiContext
from ui.engineer_common import handler_messages

MODEL_HEADERS = ["version", "roles", "held-out AUROC", "val AUROC", "modified", "data hash"]
DIS_HEADERS = ["inspection", "station", "candidate", "production", "human", "image"]

_messages = handler_messages(registry.DeployError, where="models tab")


def model_rows(infos: list[registry.ModelInfo]) -> list[list[Any]]:
    return [
        [
            m.version,
            ", ".join(m.roles) or "-",
            m.heldout.get("auroc"),
            m.metrics.get("val_auroc"),
            m.modified.strftime("%Y-%m-%d %H:%M") if m.modified else "",
            m.data_hash[:12],
        ]
        for m in infos
    ]


def state_text(state: registry.DeploymentState) -> str:
    line = f"**Production:** `{state.production}`"
    if state.candidate and state.mode != "none":
        extra = f" deciding {state.canary_fraction:.1%} of items" if state.mode == "canary" else " (hidden)"
        line += f" · **{state.mode}:** `{state.candidate}`{extra}"
    if state.actor:
        line += f"  \nlast change by {state.actor}" + (f": {state.reason}" if state.reason else "")
    return line


def apply_change(
    app: Pipeline, kind: str, *, version: str, fraction: float, by: str, reason: str, force: bool
) -> str:
    """Run one deployment action; the message that says what changed."""
    if kind == "shadow":
        deploy.shadow(app, version=version, by=by, reason=reason)
        return f"`{version}` now runs in shadow."
    if kind == "canary":
        deploy.canary(app, version=version, fraction=fraction, by=by, reason=reason)
        return f"`{version}` now decides {fraction:.0%} of items."
    if kind == "promote":
        res = deploy.promote(app, version=version, by=by, reason=reason, force=force)
        return f"`{version}` promoted; previous production `{res.previous}` stays loaded" + (
            " (forced)" if res.forced else ""
        )
    st = deploy.rollback(app, by=by, reason=reason)
    return f"rolled back: production `{st.production}`."


def comparison_view(c: deploy.Comparison) -> tuple[str, list[list[Any]]]:
    """The comparison as a sentence and the disagreement rows."""
    if c.n == 0:
        return f"`{c.version}`: no items scored by both yet (start shadow or canary).", []
    lo, hi = c.agreement_interval
    text = (
        f"`{c.version}` vs production on **{c.n}** items: agreement **{(c.agreement or 0):.1%}** "
        f"(95 % {lo:.1%}–{hi:.1%}), kappa {c.kappa if c.kappa is None else round(c.kappa, 3)}, "
        f"score correlation {c.correlation if c.correlation is None else round(c.correlation, 3)}; "
        f"{c.disagreements_total} disagreements."
    )
    if c.n_labelled:
        text += (
            f"  \nOn {c.n_labelled} human-labelled items: candidate accuracy "
            f"{(c.candidate_accuracy or 0):.1%}, production {(c.production_accuracy or 0):.1%}."
        )
    rows = [
        [d.inspection_id, d.station, round(d.candidate_score, 4), round(d.production_score, 4),
         d.human_label or "", d.image_path]
        for d in c.disagreements
    ]
    return text, rows


def build(ctx: UiContext) -> None:
    app = ctx.pipeline
    gr.Markdown(
        "Deploy candidate models. **Shadow** scores every item without using the result; **canary** lets the "
        "candidate decide a fixed share of items (chosen by image hash); **promote** switches all traffic "
        "(refused when the candidate is worse on held-out labels, unless forced with a reason); **rollback** "
        "goes back at once. Changes apply to the next inspection, without a restart."
    )
    state_md = gr.Markdown(elem_id="models-state")
    table = gr.Dataframe(headers=MODEL_HEADERS, interactive=False, elem_id="models-table", wrap=True)
    with gr.Row():
        version = gr.Dropdown(choices=[], label="Model version", allow_custom_value=False, elem_id="models-version")
        fraction = gr.Slider(0.01, 0.99, value=0.1, step=0.01, label="Canary fraction", elem_id="models-fraction")
    reason = gr.Textbox(label="Reason (stored with the change; required to force)", elem_id="models-reason")
    force = gr.Checkbox(label="Force promotion of a worse or unproven model", value=False, elem_id="models-force")
    with gr.Row():
        b_refresh = gr.Button("Refresh", elem_id="models-refresh")
        b_shadow = gr.Button("Shadow", elem_id="models-shadow")
        b_canary = gr.Button("Canary", elem_id="models-canary")
        b_promote = gr.Button("Promote", variant="primary", elem_id="models-promote")
        b_rollback = gr.Button("Rollback", variant="stop", elem_id="models-rollback")
        b_compare = gr.Button("Compare with production", elem_id="models-compare")
    result = gr.Markdown(elem_id="models-result")
    dis = gr.Dataframe(headers=DIS_HEADERS, interactive=False, label="Disagreements", elem_id="models-dis")

    def snapshot() -> tuple[str, list[list[Any]], Any]:
        infos = registry.list_models(app)
        st = registry.current_state(app)
        names = [m.version for m in infos]
        return state_text(st), model_rows(infos), gr.Dropdown(choices=names)

    @_messages
    def refresh(request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        return snapshot()

    def action(kind: str) -> Callable[..., tuple[Any, ...]]:
        @_messages
        def run(v: str | None, frac: float, why: str, forced: bool, request: gr.Request) -> tuple[Any, ...]:
            user = ctx.require(request, Permission.ENGINEER)
            if kind != "rollback" and not v:
                raise gr.Error("pick a model version first")
            msg = apply_change(app, kind, version=str(v), fraction=float(frac), by=user.name,
                               reason=(why or "").strip(), force=bool(forced))
            return (*snapshot(), msg)

        return run

    @_messages
    def compare(v: str | None, request: gr.Request) -> tuple[str, list[list[Any]]]:
        ctx.require(request, Permission.ENGINEER)
        if not v:
            raise gr.Error("pick a model version first")
        return comparison_view(deploy.compare(app, version=v, limit=100))

    outs = [state_md, table, version]
    b_refresh.click(refresh, inputs=None, outputs=outs)
    inputs = [version, fraction, reason, force]
    for button, kind in ((b_shadow, "shadow"), (b_canary, "canary"), (b_promote, "promote"), (b_rollback, "rollback")):
        button.click(action(kind), inputs=inputs, outputs=[*outs, result])
    b_compare.click(compare, inputs=[version], outputs=[result, dis])
