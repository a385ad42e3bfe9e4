"""Engineer screen, "Models" tab, Ramp section: the candidate's gradual ramp (where it stands, the
evidence behind each step), one-action Pause / Abort, and "Start a ramp…" (a registered candidate,
the plan prefilled with the safe defaults of `core.ramp`, a required reason). Start, Pause and Abort
are each confirmed first; Resume needs no confirmation (it changes nothing until the evidence holds).
The plan the engineer edits is validated by the same code as the CLI's (`RampPlan.from_json`) before
the confirmation, and the confirmed change is one service call. Handlers check the engineer role
first and record the logged-in user."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from inspection.core.ramp import DEFAULT_PLAN, RampError, RampPlan
from inspection.services import ramp, registry
from inspection.services.context import Pipeline
from inspection.services.registry import DeployError
from ui.context import Permission, UiContext
from ui.engineer_common import auto_refresh, expected_error, status_html

STEP_HEADERS = ["when", "event", "step", "items", "disagreement ≤", "escape ≤", "audited passes", "why"]
PLAN_HEADERS = ["fraction (0 shadow, 1 promotion)", "min items", "max disagreement", "max escape (upper bound)"]
PLAN_FIELDS = ("fraction", "min_items", "max_disagreement", "max_escape_upper")
EXPECTED: tuple[type[Exception], ...] = (DeployError, RampError, ValueError)
CONFIRM = {
    "pause": "### Pause the ramp?\n\nThe deployment stays where it is; no further step is taken until Resume. "
    "A breach or an open alarm still rolls back.",
    "abort": "### Abort the ramp?\n\nThe candidate is withdrawn at once: all items go to production again.",
}


def ramp_text(out: ramp.RampOut | None) -> str:
    if out is None:
        return "**Ramp:** none yet (start one below, or with `inspection models ramp start VERSION`)."
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


# The plan as the engineer edits it: one table row per step, audit rate and confidence beside it.


def plan_rows(plan: RampPlan = DEFAULT_PLAN) -> list[list[Any]]:
    return [[s.fraction, s.min_items, s.max_disagreement, s.max_escape_upper] for s in plan.steps]


def _cell(value: Any, *, step: int, field: str) -> float | int | None:
    """A table cell as a number (None when blank); whole numbers as int (min_items must be one)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RampError(f"step {step}: {field} must be a number, got {value!r}") from None
    return int(x) if field == "min_items" and x.is_integer() else x


def plan_from_table(rows: Sequence[Sequence[Any]], *, audit_rate: Any, confidence: Any) -> RampPlan:
    """The edited table as a plan, validated by `RampPlan.from_json` (RampError says what is wrong).
    Blank rows are dropped; a blank limit takes the step's default."""
    steps = []
    for i, row in enumerate(rows or [], start=1):
        cells = {f: _cell(v, step=i, field=f) for f, v in zip(PLAN_FIELDS, row, strict=False)}
        if all(v is None for v in cells.values()):
            continue
        if cells.get("fraction") is None:
            raise RampError(f"step {i}: the fraction is required")
        steps.append({k: v for k, v in cells.items() if v is not None})
    data: dict[str, Any] = {"steps": steps}
    for name, value in (("audit_rate", audit_rate), ("confidence", confidence)):
        if value is not None and value != "":
            data[name] = value
    return RampPlan.from_json(data)


def start_text(version: str, production: str, plan: RampPlan, reason: str) -> str:
    """The confirmation summary of a start."""
    steps = []
    for s in plan.steps:
        limits = f"disagreement ≤ {s.max_disagreement:g}, escape ≤ {s.max_escape_upper:g}"
        steps.append(s.label if s.fraction >= 1.0 else f"{s.label} (≥ {s.min_items} items, {limits})")
    return "\n\n".join([
        f"### Start a ramp of `{version}`?",
        f"Production stays `{production}`; `{version}` starts at **{plan.steps[0].label}** and advances one step "
        "at a time only when its evidence holds; a breach or an open alarm rolls it back.",
        "Steps: " + " → ".join(steps),
        f"Audit rate of its decisions: {plan.audit_rate:.0%} · confidence {plan.confidence:g}",
        f"Reason: “{reason}”",
    ])  # fmt: skip


def candidates(app: Pipeline) -> tuple[list[str], str]:
    """Registered versions that may be ramped (all but production), and the production version."""
    infos = registry.list_models(app)
    production = next((m.version for m in infos if "production" in m.roles), "")
    return [m.version for m in infos if "production" not in m.roles], production


@dataclass
class _View:
    state_md: gr.Markdown
    table: gr.Dataframe
    pause: gr.Button
    resume: gr.Button
    abort: gr.Button
    candidate: gr.Dropdown
    reason: gr.Textbox
    plan: gr.Dataframe
    audit_rate: gr.Number
    confidence: gr.Number
    start: gr.Button
    status: gr.HTML
    dialog: gr.Group
    confirm_md: gr.Markdown
    yes: gr.Button
    no: gr.Button


def _layout() -> _View:
    with gr.Accordion("Ramp", open=True, elem_id="ramp-section"):
        state_md = gr.Markdown(elem_id="ramp-state")
        table = gr.Dataframe(headers=STEP_HEADERS, interactive=False, elem_id="ramp-steps", wrap=True, max_height=260)
        with gr.Row():
            pause_b = gr.Button("Pause ramp…", elem_id="ramp-pause")
            resume_b = gr.Button("Resume ramp", elem_id="ramp-resume")
            abort_b = gr.Button("Abort ramp…", variant="stop", elem_id="ramp-abort")
        with gr.Accordion("Start a ramp…", open=False, elem_id="ramp-start-section"):
            with gr.Row(equal_height=True):
                candidate = gr.Dropdown(choices=[], label="Candidate (registered, not production)",
                                        allow_custom_value=False, elem_id="ramp-candidate")  # fmt: skip
                reason = gr.Textbox(label="Reason (required, stored)", elem_id="ramp-reason", scale=2)
            plan = gr.Dataframe(value=plan_rows(), headers=PLAN_HEADERS, datatype="number", type="array",
                                interactive=True, label="Steps (the defaults are the safe ones)",
                                elem_id="ramp-plan")  # fmt: skip
            with gr.Row(equal_height=True):
                audit_rate = gr.Number(DEFAULT_PLAN.audit_rate, label="Audit rate of the candidate's decisions",
                                       minimum=0, maximum=1, elem_id="ramp-audit-rate")  # fmt: skip
                confidence = gr.Number(DEFAULT_PLAN.confidence, label="Confidence of the bounds", minimum=0.5,
                                       maximum=0.999, elem_id="ramp-confidence")  # fmt: skip
                start_b = gr.Button("Start ramp…", variant="primary", elem_id="ramp-start")
        status = gr.HTML(elem_id="ramp-result")
        with gr.Group(visible=False, elem_id="ramp-confirm", elem_classes=["eng-dialog"]) as dialog:
            confirm_md = gr.Markdown(elem_id="ramp-confirm-text")
            with gr.Row():
                yes = gr.Button("Confirm", variant="primary", elem_id="ramp-confirm-yes")
                no = gr.Button("Cancel", elem_id="ramp-confirm-no")
    return _View(state_md, table, pause_b, resume_b, abort_b, candidate, reason, plan, audit_rate, confidence,
                 start_b, status, dialog, confirm_md, yes, no)  # fmt: skip


def build(ctx: UiContext) -> None:
    app = ctx.pipeline
    v = _layout()
    pending = gr.State(None)  # "pause" | "abort" | (version, plan, reason) awaiting confirmation

    def snapshot() -> tuple[Any, ...]:
        out = ramp.status(app)
        rows = [_row(e) for e in ramp.history(app, ramp_id=out.id)] if out is not None else []
        return ramp_text(out), rows, gr.update(choices=candidates(app)[0])

    def refresh(request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        try:
            return snapshot()
        except Exception as exc:
            msg = expected_error(exc, where="ramp refresh", expected=EXPECTED)
            return f"could not read the ramp: {msg}", [], gr.update()

    def ask(kind: str) -> Callable[..., tuple[Any, ...]]:
        def handler(request: gr.Request) -> tuple[Any, ...]:
            ctx.require(request, Permission.ENGINEER)
            return gr.update(visible=True), CONFIRM[kind], kind, status_html("Nothing has changed yet.", kind="warn")

        handler.__name__ = f"ask_{kind}"
        return handler

    def ask_start(ver: str | None, why: str, rows: Any, rate: Any, conf: Any, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        reason = (why or "").strip()
        try:
            names, production = candidates(app)
            if not ver or ver not in names:
                raise DeployError("pick a candidate: a registered model version that is not in production")
            if not reason:
                raise DeployError("a reason is required to start a ramp")
            plan = plan_from_table(rows, audit_rate=rate, confidence=conf)
        except Exception as exc:
            msg = expected_error(exc, where="ramp start", expected=EXPECTED)
            return gr.update(visible=False), "", None, status_html(f"Not started: {msg}", kind="error")
        note = status_html("Nothing has changed yet: check the plan, then Confirm or Cancel.", kind="warn")
        return gr.update(visible=True), start_text(ver, production, plan, reason), (ver, plan, reason), note

    def run(held: str | tuple[str, RampPlan, str] | None, request: gr.Request) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        keep = (gr.update(), gr.update(), gr.update(), gr.update(visible=False), None)
        if not held:
            return *keep, status_html("Nothing to do.", kind="warn"), gr.update()
        kind = held if isinstance(held, str) else "start"
        try:
            if isinstance(held, str):
                out = getattr(ramp, held)(app, by=user.name, reason=f"from the Models tab ({held})")
            else:
                out = ramp.start(app, version=held[0], plan=held[1], by=user.name, reason=held[2])
        except Exception as exc:
            msg = expected_error(exc, where=f"ramp {kind}", expected=EXPECTED)
            return *keep, status_html(msg, kind="error"), gr.update()
        done = f"Ramp {out.id} started: {out.candidate} at {out.step_label}." if kind == "start" else None
        tail = status_html(done or f"Ramp {out.id} is {out.status}."), ("" if kind == "start" else gr.update())
        return *snapshot(), gr.update(visible=False), None, *tail

    def resume(request: gr.Request) -> tuple[Any, ...]:
        return run("resume", request)

    def cancel() -> tuple[Any, ...]:
        return gr.update(visible=False), None, status_html("Cancelled: nothing changed.", kind="warn")

    _wire(v, pending, refresh, ask, ask_start, run, resume, cancel)


def _wire(
    v: _View,
    pending: gr.State,
    refresh: Callable[..., Any],
    ask: Callable[[str], Callable[..., Any]],
    ask_start: Callable[..., Any],
    run: Callable[..., Any],
    resume: Callable[..., Any],
    cancel: Callable[..., Any],
) -> None:
    outs = [v.state_md, v.table, v.candidate]
    root = gr.context.Context.root_block
    if root is not None:
        root.load(refresh, None, outs, show_progress="hidden")
    auto_refresh(refresh, [], outs)
    asked = [v.dialog, v.confirm_md, pending, v.status]
    v.pause.click(ask("pause"), None, asked)
    v.abort.click(ask("abort"), None, asked)
    v.start.click(ask_start, [v.candidate, v.reason, v.plan, v.audit_rate, v.confidence], asked)
    done = [*outs, v.dialog, pending, v.status, v.reason]
    v.resume.click(resume, None, done)
    v.yes.click(run, [pending], done)
    v.no.click(cancel, None, [v.dialog, pending, v.status])
