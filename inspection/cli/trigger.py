"""`inspection retrain trigger …`: a station's retrain trigger (show, set) and its runs (run, runs).

`inspection retrain` stays the command it was (a candidate from stored labels, now); it becomes a
group whose callback is that command, so that `trigger` can live under it.
"""

from __future__ import annotations

from typing import Any

import typer

from inspection.cli import retrain
from inspection.cli.common import default_by, echo_json, station_arg
from inspection.cli.context import in_pipeline
from inspection.core.retrain_trigger import TriggerError
from inspection.services import retrain_trigger
from inspection.services.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Automatic candidates: a station's retrain trigger and its runs.")
KNOWN = (TriggerError, InputError, LookupError)


def retrain_app() -> typer.Typer:
    """`inspection retrain [OPTIONS]` as before, plus `inspection retrain trigger …`."""
    group = typer.Typer(help="Retrain from stored labels; automatic candidates (trigger).")
    group.callback(invoke_without_command=True)(retrain.retrain_cmd)
    group.add_typer(app, name="trigger")
    return group


def _print_run(r: retrain_trigger.RunOut) -> None:
    typer.echo(f"run {r.id} {r.station}: {r.status} {r.progress:.0%} ({r.trigger}: {r.trigger_detail})")
    if r.candidate_version:
        typer.echo(f"  candidate {r.candidate_version} vs production {r.production_version}")
    m = r.metrics or {}
    for side in ("candidate", "production"):
        s = m.get(side) or {}
        if s:
            typer.echo(f"  held-out {side}: AUROC {s.get('auroc', '-')}  escapes {s.get('escapes', '-')}"
                       f"/{s.get('n_scratch', '-')}  n {s.get('n', '-')}")  # fmt: skip
    if r.outcome:
        typer.echo(f"  outcome: {r.outcome} — {r.outcome_reason}")
    elif r.message:
        typer.echo(f"  {r.message}")


@app.command("show")
def show(ctx: typer.Context, station: str = typer.Argument(...), as_json: bool = typer.Option(False, "--json")) -> None:
    """The station's trigger settings in force."""
    st = station_arg(station)
    out = in_pipeline(ctx, lambda p: retrain_trigger.get_trigger(p, station=st), *KNOWN)
    if as_json:
        echo_json(out.to_dict())
        return
    typer.echo(
        f"trigger of {out.station} v{out.version}" + (f" by {out.created_by}: {out.reason}" if out.version else "")
    )
    for k, v in out.settings.items():
        typer.echo(f"  {k}: {v}")


@app.command("set")
def set_cmd(
    ctx: typer.Context,
    station: str = typer.Argument(...),
    enabled: bool | None = typer.Option(None, "--enabled/--disabled"),
    on_labels: int | None = typer.Option(None, "--on-labels", help="new blind labels that start a run (0: off)"),
    every_hours: float | None = typer.Option(None, "--every-hours", help="run when the last is this old (0: off)"),
    on_drift: bool | None = typer.Option(None, "--on-drift/--no-on-drift"),
    deploy_as: str | None = typer.Option(None, "--deploy-as", help="shadow, or ramp (the default ramp plan)"),
    epochs: int | None = typer.Option(None, "--epochs", help="epochs of a run (0: the schedule, the default)"),
    min_auroc_gain: float | None = typer.Option(None, "--min-auroc-gain"),
    warm_start: bool | None = typer.Option(None, "--warm-start/--from-imagenet",
                                           help="the candidate fine-tunes production's weights (default) or not"),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Store a new version of the trigger: the options given change, the others stay."""
    changes: dict[str, Any] = {"enabled": enabled, "on_drift": on_drift, "deploy_as": deploy_as,
                               "min_auroc_gain": min_auroc_gain, "warm_start": warm_start}  # fmt: skip
    changes = {k: v for k, v in changes.items() if v is not None}
    if epochs is not None:
        changes["epochs"] = epochs or None
    if on_labels is not None:
        changes["on_labels"] = on_labels or None
    if every_hours is not None:
        changes["every_hours"] = every_hours or None
    st, who = station_arg(station), default_by(by)
    out = in_pipeline(
        ctx, lambda p: retrain_trigger.set_trigger(p, station=st, settings=changes, by=who, reason=reason), *KNOWN
    )
    echo_json(out.to_dict()) if as_json else typer.echo(f"trigger of {out.station} is now v{out.version}")


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    station: str = typer.Argument(...),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run now, in this process, to the end (whatever the trigger's conditions); the server's screen
    shows its progress meanwhile."""
    st, who = station_arg(station), default_by(by)
    out = in_pipeline(
        ctx,
        lambda p: retrain_trigger.run_now(p, station=st, by=who, reason=reason, runner=retrain_trigger.inline_runner),
        *KNOWN,
    )
    echo_json(out.to_dict()) if as_json else _print_run(out)


@app.command("runs")
def runs_cmd(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station"),
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The latest runs, newest first, with progress, metrics and outcome."""
    st = station_arg(station)
    out = in_pipeline(ctx, lambda p: retrain_trigger.list_runs(p, station=st, limit=limit), *KNOWN)
    if as_json:
        echo_json([r.to_dict() for r in out])
        return
    for r in out:
        _print_run(r)
    if not out:
        typer.echo("no runs yet")
