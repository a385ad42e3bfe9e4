"""`inspection models ramp …`: a candidate's gradual ramp (start, status, pause, resume, abort, evaluate)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from inspection.cli.common import default_by, echo_json
from inspection.cli.context import in_pipeline
from inspection.core.ramp import DEFAULT_PLAN, RampError, RampPlan
from inspection.services import ramp
from inspection.services.registry import DeployError

app = typer.Typer(no_args_is_help=True, help="Gradual ramp of a candidate: shadow → canary steps → promotion.")


def _print(out: ramp.RampOut | None, *, as_json: bool) -> None:
    if as_json:
        echo_json(out.to_dict() if out is not None else None)
        return
    if out is None:
        typer.echo("no ramp yet")
        return
    steps = RampPlan.from_json(out.plan).steps
    path = " → ".join(f"[{s.label}]" if i == out.step else s.label for i, s in enumerate(steps))
    typer.echo(f"ramp {out.id}: {out.candidate} (production {out.production}) {out.status}, step {path}")
    typer.echo(f"started by {out.created_by}: {out.reason or '-'}" + ("  (forced)" if out.forced else ""))
    ev = out.evidence
    if ev:
        e = ev["evidence"]
        dis, esc = e["disagreement"], e["escape"]
        typer.echo(f"last evaluation: {ev['decision']} — items {e['items']}, disagreement ≤ {dis['upper']:.3f} "
                   f"({dis['n']} labelled), escape ≤ {esc['upper']:.4f} ({esc['n']} audited passes)")  # fmt: skip
        for r in ev["reasons"]:
            typer.echo(f"  - {r}")


def _plan(plan_file: Path | None, audit_rate: float | None) -> RampPlan:
    data = json.loads(plan_file.read_text()) if plan_file is not None else DEFAULT_PLAN.to_json()
    if audit_rate is not None:
        data["audit_rate"] = audit_rate
    return RampPlan.from_json(data)


def _run(ctx: typer.Context, fn: object) -> ramp.RampOut | None:
    return in_pipeline(ctx, fn, DeployError, RampError)  # type: ignore[arg-type]


@app.command("start")
def ramp_start(
    ctx: typer.Context,
    version: str = typer.Argument(..., help="the candidate model"),
    plan_file: Path | None = typer.Option(None, "--plan", help="plan JSON (steps, audit_rate, confidence)"),
    audit_rate: float | None = typer.Option(None, "--audit-rate", help="audit rate of the candidate's decisions"),
    force: bool = typer.Option(False, "--force", help="ramp a candidate worse on held-out labels (needs --reason)"),
    by: str = typer.Option("", "--by"),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Start a ramp at the plan's first step (default: shadow → 5 % → 25 % → 50 % → 100 %)."""
    try:
        plan = _plan(plan_file, audit_rate)
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    who = default_by(by)
    _print(_run(ctx, lambda p: ramp.start(p, version=version, by=who, reason=reason, plan=plan, force=force)),
           as_json=as_json)  # fmt: skip


@app.command("status")
def ramp_status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """The active ramp (else the latest) with its last evidence."""
    _print(_run(ctx, ramp.status), as_json=as_json)


@app.command("evaluate")
def ramp_evaluate(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Evaluate the ramp now (the server does so after every monitoring pass)."""
    _print(_run(ctx, ramp.evaluate_ramp), as_json=as_json)


def _change(name: str, help_text: str) -> None:
    use_case = getattr(ramp, name)

    def command(
        ctx: typer.Context,
        by: str = typer.Option("", "--by"),
        reason: str = typer.Option("", "--reason"),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        who = default_by(by)
        _print(_run(ctx, lambda p: use_case(p, by=who, reason=reason)), as_json=as_json)

    command.__doc__ = help_text
    app.command(name)(command)


_change("pause", "Stop advancing; breaches and alarms still roll back.")
_change("resume", "Advance again when the evidence holds.")
_change("abort", "End the ramp and withdraw the candidate (all traffic to production).")
