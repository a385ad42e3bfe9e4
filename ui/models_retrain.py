"""Engineer screen, "Models" tab, Automatic candidates section: a station's retrain trigger (editable,
stored with the engineer's reason), its runs with progress and outcome, and "Run now". A run trains in
a background worker process (services.retrain_trigger), so this section only starts it and then
shows its row as the auto-refresh reads it. Handlers check the engineer role first and record the
logged-in user."""

from __future__ import annotations

from typing import Any

import gradio as gr

from inspection.core.retrain_trigger import TriggerError
from inspection.services import retrain_trigger
from inspection.services.errors import InputError
from inspection.services.registry import DeployError
from ui.context import Permission, UiContext
from ui.engineer_common import auto_refresh, expected_error, station_dropdown, stations, status_html

RUN_HEADERS = ["run", "started", "why", "status", "progress", "candidate", "AUROC cand / prod", "escapes cand / prod",
               "outcome", "reason"]  # fmt: skip
EXPECTED: tuple[type[Exception], ...] = (TriggerError, InputError, DeployError, ValueError, LookupError)


def _pair(m: dict[str, Any], key: str) -> str:
    c, p = (m.get("candidate") or {}).get(key), (m.get("production") or {}).get(key)
    if c is None and p is None:
        return ""
    fmt = (lambda x: "-" if x is None else f"{x:.3f}") if key == "auroc" else (lambda x: "-" if x is None else str(x))
    return f"{fmt(c)} / {fmt(p)}"


def run_rows(runs: list[retrain_trigger.RunOut]) -> list[list[Any]]:
    rows = []
    for r in runs:
        m = r.metrics or {}
        rows.append([
            r.id, r.created_at.strftime("%Y-%m-%d %H:%M:%S"), f"{r.trigger}: {r.trigger_detail}", r.status,
            f"{r.progress:.0%} {r.message}".strip() if r.status in ("queued", "running") else f"{r.progress:.0%}",
            r.candidate_version or "", _pair(m, "auroc"), _pair(m, "escapes"), r.outcome or "", r.outcome_reason or "",
        ])  # fmt: skip
    return rows


def trigger_text(t: retrain_trigger.TriggerOut) -> str:
    s = t.settings
    if t.version == 0:
        head = f"**Trigger of {t.station}:** never set (off)."
    else:
        head = f"**Trigger of {t.station} (v{t.version}):** " + ("**on**" if s["enabled"] else "off")
        head += f" · set by {t.created_by}: {t.reason}"
    conds = [
        f"every {s['on_labels']} new blind labels" if s["on_labels"] else "",
        f"every {s['every_hours']:g} h" if s["every_hours"] else "",
        "on a drift alarm" if s["on_drift"] else "",
    ]
    starts = ", ".join(c for c in conds if c) or "nothing"
    goes = f"a better candidate goes to **{s['deploy_as']}** (never promoted)"
    start = "fine-tuning production" if s.get("warm_start", True) else "from ImageNet"
    epochs = f"{s['epochs']} epochs" if s["epochs"] else "epochs by the schedule"
    return f"{head}  \nstarts on: {starts} · {goes} · {epochs}, {start}"


def build(ctx: UiContext) -> None:
    app = ctx.pipeline
    with gr.Accordion("Automatic candidates (retrain trigger)", open=True, elem_id="retrain-section"):
        with gr.Row():
            station = station_dropdown(ctx, label="Retrain")
            enabled = gr.Checkbox(label="Enabled", elem_id="retrain-enabled")
            on_drift = gr.Checkbox(label="On a drift alarm", elem_id="retrain-on-drift")
            deploy_as = gr.Radio(["shadow", "ramp"], value="shadow", label="Better candidate goes to",
                                 elem_id="retrain-deploy-as")  # fmt: skip
        with gr.Row():
            on_labels = gr.Number(label="On N new blind labels (0: off)", precision=0, elem_id="retrain-on-labels")
            every_hours = gr.Number(label="Every H hours (0: off)", elem_id="retrain-every-hours")
            epochs = gr.Number(label="Epochs (0: the schedule)", precision=0, elem_id="retrain-epochs")
            warm = gr.Checkbox(label="Fine-tune production (off: from ImageNet)", elem_id="retrain-warm-start")
            reason = gr.Textbox(label="Reason (required to save)", elem_id="retrain-reason")
        trigger_md = gr.Markdown(elem_id="retrain-trigger")
        runs = gr.Dataframe(headers=RUN_HEADERS, interactive=False, elem_id="retrain-runs", wrap=True, max_height=300)
        with gr.Row():
            save_b = gr.Button("Save trigger", elem_id="retrain-save")
            run_b = gr.Button("Run now", variant="primary", elem_id="retrain-run-now")
        status = gr.HTML(elem_id="retrain-result")
    fields = [enabled, on_drift, deploy_as, on_labels, every_hours, epochs, warm]

    def snapshot(st: str | None) -> tuple[Any, ...]:
        if not st:
            return "Pick a station.", [], *(gr.update() for _ in fields)
        t = retrain_trigger.get_trigger(app, station=st)
        s = t.settings
        values = (s["enabled"], s["on_drift"], s["deploy_as"], s["on_labels"] or 0, s["every_hours"] or 0,
                  s["epochs"] or 0, s.get("warm_start", True))
        return trigger_text(t), run_rows(retrain_trigger.list_runs(app, station=st)), *values

    def refresh(st: str | None, request: gr.Request) -> tuple[Any, ...]:
        ctx.require(request, Permission.ENGINEER)
        try:
            return snapshot(st)
        except Exception as exc:
            msg = expected_error(exc, where="retrain refresh", expected=EXPECTED)
            return f"could not read the trigger: {msg}", [], *(gr.update() for _ in fields)

    def runs_only(st: str | None, request: gr.Request) -> Any:
        """The auto-refresh: the runs' progress only (never overwrite fields being edited)."""
        ctx.require(request, Permission.ENGINEER)
        try:
            return run_rows(retrain_trigger.list_runs(app, station=st)) if st else []
        except Exception:
            return gr.update()

    def save(st: str | None, en: bool, drift: bool, dep: str, n: float | None, h: float | None, ep: float | None,
             warm_start: bool, why: str, request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        user = ctx.require(request, Permission.ENGINEER)
        settings = {"enabled": bool(en), "on_drift": bool(drift), "deploy_as": dep,
                    "on_labels": int(n) if n else None, "every_hours": float(h) if h else None,
                    "epochs": int(ep) if ep else None, "warm_start": bool(warm_start)}  # fmt: skip
        try:
            t = retrain_trigger.set_trigger(app, station=st or "", settings=settings, by=user.name, reason=why)
        except Exception as exc:
            msg = expected_error(exc, where="retrain save", expected=EXPECTED)
            return (
                *(gr.update() for _ in range(2 + len(fields))),
                status_html(f"Not saved: {msg}", kind="error"),
                gr.update(),
            )
        return *snapshot(st), status_html(f"Saved trigger v{t.version} of {t.station}."), ""

    def run_now(st: str | None, why: str, request: gr.Request) -> tuple[Any, ...]:
        user = ctx.require(request, Permission.ENGINEER)
        try:
            run = retrain_trigger.run_now(app, station=st or "", by=user.name, reason=why or "from the Models tab")
        except Exception as exc:
            msg = expected_error(exc, where="retrain run now", expected=EXPECTED)
            return gr.update(), status_html(f"Not started: {msg}", kind="error")
        return run_rows(retrain_trigger.list_runs(app, station=st)), status_html(f"Run {run.id} started.")

    def fill_station(st: str | None, request: gr.Request) -> Any:
        """Stations known now (the dropdown was built at start-up); the first one when none is picked."""
        ctx.require(request, Permission.ENGINEER)
        names = stations(app)
        return gr.update(choices=names, value=st or (names[0] if names else None))

    outs = [trigger_md, runs, *fields]
    root = gr.context.Context.root_block
    if root is not None:
        root.load(fill_station, [station], [station], show_progress="hidden").then(
            refresh, [station], outs, show_progress="hidden"
        )
    station.change(refresh, [station], outs, show_progress="hidden")
    auto_refresh(runs_only, [station], [runs])
    save_b.click(save, [station, *fields, reason], [*outs, status, reason])
    run_b.click(run_now, [station, reason], [runs, status])
