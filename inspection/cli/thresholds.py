"""`inspection thresholds suggest|calibration`: threshold tuning and calibration on stored labels."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.cli.common import echo_json, fail, station_arg
from inspection.cli.context import in_pipeline
from inspection.services import tuning

app = typer.Typer(no_args_is_help=True, help="Threshold tuning and calibration on stored labels.")


def _print_suggestion(result: tuning.TuningResult, station: str | None, plot: Path | None) -> None:
    s = result.suggestion
    for w in result.stats.warnings:
        typer.secho(f"warning: {w}", err=True, fg="yellow")
    head = f"{station or 'all stations'} · model {result.model_version} · {result.stats.n} labelled phones"
    typer.echo(f"{head} ({result.stats.n_audit} audit, {result.stats.n_scratch} scratched)")
    if s.ok:
        typer.echo(f"suggest: partial, pass_below {s.pass_below:.6g}, reject_above {s.reject_above:.6g}")
    else:
        needed = f" ({s.labels_needed} more labels needed)" if s.labels_needed else ""
        typer.echo(f"no recommendation{needed}")
    typer.echo(s.reason)
    if plot:
        typer.echo(f"plot: {plot}")


@app.command("suggest")
def thresholds_suggest(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station", help="station (default: all stations)"),
    max_escape: float = typer.Option(..., "--max-escape", help="escape-rate bound per phone, e.g. 0.001"),
    max_false_reject: float = typer.Option(0.01, "--max-false-reject", help="false-reject bound"),
    cost_escape: float | None = typer.Option(None, "--cost-escape", help="cost of one escape"),
    cost_false_reject: float | None = typer.Option(None, "--cost-false-reject"),
    cost_review_minute: float | None = typer.Option(None, "--cost-review-minute"),
    seconds_per_review: float = typer.Option(4.0, "--seconds-per-review"),
    items_per_hour: float = typer.Option(600.0, "--items-per-hour"),
    model_version: str | None = typer.Option(None, "--model-version", help="default: production"),
    as_json: bool = typer.Option(False, "--json"),
    plot: Path | None = typer.Option(None, "--plot", help="write a PNG of automation vs escape bound"),
) -> None:
    """Recommend pass_below / reject_above from labelled history, or say how many labels are missing."""
    costs = (cost_escape, cost_false_reject, cost_review_minute)
    if any(c is not None for c in costs) and any(c is None for c in costs):
        raise fail("cost mode needs --cost-escape, --cost-false-reject and --cost-review-minute together")
    st = station_arg(station)
    result = in_pipeline(
        ctx,
        lambda pipe: tuning.suggest_thresholds(
            pipe, station=st, max_escape=max_escape, max_false_reject=max_false_reject,
            cost_escape=cost_escape, cost_false_reject=cost_false_reject, cost_review_minute=cost_review_minute,
            seconds_per_review=seconds_per_review, items_per_hour=items_per_hour,
            model_version=model_version, curve=plot is not None,
        ),
        ValueError,
    )
    if plot is not None:
        tuning.plot_suggestion(result, plot)
    if as_json:
        echo_json(result.to_dict() | ({"plot": str(plot)} if plot else {}))
    else:
        _print_suggestion(result, st, plot)
    if not result.suggestion.ok:
        raise typer.Exit(1)


@app.command("calibration")
def thresholds_calibration(
    ctx: typer.Context,
    model_version: str | None = typer.Option(None, "--model-version", help="default: every version"),
    station: str | None = typer.Option(None, "--station"),
    bins: int = typer.Option(10, "--bins", min=2, max=100),
    as_json: bool = typer.Option(False, "--json"),
    plot: Path | None = typer.Option(None, "--plot", help="write a reliability diagram PNG"),
) -> None:
    """Calibration of each model version on stored human labels: ECE and reliability bins."""
    st = station_arg(station)
    results = in_pipeline(
        ctx, lambda pipe: tuning.calibration(pipe, model_version=model_version, station=st, bins=bins)
    )
    if plot is not None:
        tuning.plot_calibration(results, plot)
    if as_json:
        echo_json({"models": [r.to_dict() for r in results], "plot": str(plot) if plot else None})
        return
    if not results:
        typer.echo("no labelled items with a model score yet")
    for r in results:
        ece = "-" if r.ece is None else f"{r.ece:.4f}"
        typer.echo(f"{r.model_version:<32} n={r.n:<7} ECE {ece}")
    if plot:
        typer.echo(f"plot: {plot}")
