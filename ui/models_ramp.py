"""Engineer screen, "Models" tab, Ramp section: the candidate's gradual ramp (where it stands, the
evidence behind each step) and one-action Pause / Abort, each confirmed first; Resume needs no
confirmation (it changes nothing until the evidence holds). Handlers check the engineer role first
and record the logged-in user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from inspection.core.ramp import RampError, RampPlan
from inspection.services import ramp
from inspection.services.registry import DeployError
from ui.context import Permission, UiContext
from ui.engineer_common import auto_refresh, expected_error, status_html

STEP_HEADERS = ["when", "event", "step", "items", "disagreement ≤", "escape ≤", "audited passes", "why"]
EXPECTED: tuple[type[Exception], ...] = (DeployError, RampError, ValueError)
CONFIRM = {
    "pause": "### Pause the ramp?\n\nThe deployment stays where it is; no further step is taken until Resume. "
    "A breach or an open alarm still rolls back.",
    "abort": "### Abort the ramp?\n\nThe candidate is withdrawn at once: all items go to production again.",
}


def ramp_text(out: ramp.RampOut | None) -> str:
    if out is None:
        return "**Ramp:** none yet (start one with `inspection models ramp start VERSION`)."
    steps = RampPlan.from_json(out.plan).steps
    path = " → ".join(f"**[{s.label}]**" if i == out.step else s.label for i, s in enumerate(steps))
    line = f"**Ramp {out.id}:** `{out.candidate}` (production `{out.production}`) · **{out.status}** · {path}"
    line += f"  \nstarted by {out.created_by}" + (f": {out.reason}" if out.reason else "")
    ev = out.evidence
    if ev:
        line += f"  \nlast evaluation: **{ev['decision']}** — " + "; ".join(ev["reasons"])
    return line


def _row(e: ramp.RampEvent) -> list[Any]:
    ev = e.evidence or {}
    dis, esc = ev.get("disagreement") or {}, ev.get("escape") or {}
    return [
        e.at.strftime("%Y-%m-%d %H:%M:%S") if e.at else "",
        e.kind,
        e.step_label,
        ev.get("items"),
        None if dis.get("upper") is None else round(float(dis["upper"]), 4),
        None if esc.get("upper") is None else round(float(esc["upper"]), 4),
        esc.get("n"),
        "; ".join(e.reasons),
    ]


def build(ctx: UiContext) -> None:
    app = ctx.pipeline
    with gr.Accordion("Ramp", open=True, elem_id="ramp-section"):
        state_md = gr.Markdown(elem_id="ramp-state")
        table = gr.Dataframe(headers=STEP_HEADERS, interactive=False, elem_id="ramp-steps", wrap=True, max_height=260)
        with gr.Row():
            pause_b = gr.Button("Pause ramp…", elem_id="ramp-pause")
            resume_b = gr.Button("Resume ramp", elem_id="ramp-resume")
            abort_b = gr.Button("Abort ramp…", variant="stop", elem_id="ramp-abort")
        status = gr.HTML(elem_id="ramp-result")
        with gr.Group(visible=False, elem_id="ramp-confirm", elem_classes=["eng-dialog"]) as dialog:
            confirm_md = gr.Markdown(elem_id="ramp-confirm-text")
            with gr.Row():
                yes = gr.Button("Confirm", variant="primary", elem_id="ramp-confirm-yes")
                no = gr.Button("Cancel", elem_id="ramp-confirm-no")
    pending = gr.State(None)

    def snapshot() -> tuple[str, list[list[Any]]]:
        out = ramp.status(app)
        rows = [_row(e) for e in ramp.history(app, ramp_id=out.id)] if out is not None else []
        return ramp_text(out), rows

    def refresh(request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        try:
            return snapshot()
        except Exception as exc:
            return f"could not read the ramp: {expected_error(exc, where='ramp refresh', expected=EXPECTED)}", []

    def ask(kind: str) -> Callable[..., tuple[Any, ...]]:
        def handler(request: gr.Request) -> tuple[Any, ...]:
            ctx.require(request, Permission.ENGINEER)
            return gr.update(visible=True), CONFIRM[kind], kind, status_html("Nothing has changed yet.", kind="warn")

        handler.__name__ = f"ask_{kind}"
        return handler

    def run(kind: str | None, request: gr.Request) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        if not kind:
            return gr.update(), gr.update(), gr.update(visible=False), None, status_html("Nothing to do.", kind="warn")
        try:
            out = getattr(ramp, kind)(app, by=user.name, reason=f"from the Models tab ({kind})")
        except Exception as exc:
            msg = expected_error(exc, where=f"ramp {kind}", expected=EXPECTED)
            return gr.update(), gr.update(), gr.update(visible=False), None, status_html(msg, kind="error")
        return (*snapshot(), gr.update(visible=False), None, status_html(f"Ramp {out.id} is {out.status}."))

    def resume(request: gr.Request) -> tuple[Any, ...]:
        return run("resume", request)

    def cancel() -> tuple[Any, ...]:
        return gr.update(visible=False), None, status_html("Cancelled: nothing changed.", kind="warn")

    outs = [state_md, table]
    root = gr.context.Context.root_block
    if root is not None:
        root.load(refresh, None, outs, show_progress="hidden")
    auto_refresh(refresh, [], outs)
    pause_b.click(ask("pause"), None, [dialog, confirm_md, pending, status])
    abort_b.click(ask("abort"), None, [dialog, confirm_md, pending, status])
    resume_b.click(resume, None, [*outs, dialog, pending, status])
    yes.click(run, [pending], [*outs, dialog, pending, status])
    no.click(cancel, None, [dialog, pending, status])
