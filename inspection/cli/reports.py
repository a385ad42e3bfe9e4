"""`inspection audit report` and `inspection shadow report`: what the stored labels say about the model."""

from __future__ import annotations

import typer

from inspection.cli.common import echo_json
from inspection.cli.context import in_pipeline
from inspection.core.domain import AuditEstimate
from inspection.services import errors, reports

audit_app = typer.Typer(no_args_is_help=True, help="Escape and false-reject rates from blind audits.")
shadow_app = typer.Typer(no_args_is_help=True, help="Model vs inspectors under shadow / ai_assist.")


def _estimate_line(name: str, e: AuditEstimate) -> str:
    if e.trials == 0:
        return f"{name}: no audits yet"
    return f"{name}: {e.rate:.2%} ({e.events}/{e.trials}), 95 % CI {e.low:.2%}–{e.high:.2%}"


@audit_app.command("report")
def audit_report(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Escape rate and false-reject rate estimated from blind audit labels (95 % intervals)."""
    report = in_pipeline(ctx, lambda pipe: reports.audit_report(pipe, station=station), errors.InputError)
    if as_json:
        echo_json(report.to_dict())
        return
    typer.echo(f"station: {station or 'all'}   audits: {report.audits}   still queued: {report.pending}")
    typer.echo(_estimate_line("escape rate (auto-passed, auditor says scratch)", report.escape))
    typer.echo(_estimate_line("false-reject rate (auto-rejected, auditor says ok)", report.false_reject))


@shadow_app.command("report")
def shadow_report(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station"),
    max_escape: float = typer.Option(0.002, "--max-escape", help="target escape rate (upper bound)"),
    model_version: str | None = typer.Option(None, "--model-version", help="default: production"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Model vs inspector agreement and the thresholds the evidence supports."""
    r = in_pipeline(
        ctx,
        lambda pipe: reports.shadow_report(pipe, station=station, max_escape=max_escape, model_version=model_version),
        errors.InputError,
    )
    if as_json:
        echo_json(r.to_dict())
        return
    typer.echo(f"station: {station or 'all'}   labelled items: {r.n}")
    typer.echo("                 inspector scratch   inspector ok")
    typer.echo(f"model scratch    {r.tp:>17}   {r.fp:>12}")
    typer.echo(f"model ok         {r.fn:>17}   {r.tn:>12}")
    if r.agreement is not None:
        typer.echo(
            f"agreement {r.agreement:.1%} (95 % CI {r.agreement_low:.1%}–{r.agreement_high:.1%})"
            + (f", kappa {r.kappa:.3f}" if r.kappa is not None else "")
        )
    typer.echo(r.summary)
