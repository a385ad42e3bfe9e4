"""`inspection retrain`: a candidate model from stored labels, compared with production, registered."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.cli.common import default_by, echo_json, parse_when, station_arg
from inspection.cli.context import in_pipeline
from inspection.services import retrain


def _exit_code(exc: Exception) -> int:
    """Too few labels is an answer (exit 1); DatasetError, TrainingError and bad options are errors (2)."""
    return 1 if isinstance(exc, retrain.NotEnoughLabels) else 2


def _print_result(result: retrain.RetrainResult) -> None:
    c, p = result.candidate, result.production
    typer.echo(f"registered {result.version} at {result.path} in {result.seconds:.0f} s")
    typer.echo(
        f"  data: {result.n_train} train + {result.n_test} held-out stored labels"
        + (f" + {result.n_base} base images" if result.n_base else "")
        + (f"; {result.n_marked} marked by inspectors" if result.n_marked else "")
        + f"; hash {result.data_hash[:16]}"
    )
    typer.echo(
        f"  held-out candidate : AUROC {c.get('auroc', '-')}  accuracy {c.get('accuracy', '-')}  "
        f"ECE {c.get('ece', '-')}"
    )
    if p is not None:
        typer.echo(
            f"  held-out production ({p['version']}): AUROC {p.get('auroc', '-')}  "
            f"accuracy {p.get('accuracy', '-')}  ECE {p.get('ece', '-')}"
        )
    typer.echo(f"  verdict: {result.verdict}")
    for note in result.notes:
        typer.echo(f"  note: {note}")


def retrain_cmd(
    ctx: typer.Context,
    station: str | None = typer.Option(None, "--station"),
    since: str | None = typer.Option(None, "--since", help="only labels of items received since (ISO date)"),
    base_data: Path | None = typer.Option(None, "--base-data", help="an ImageFolder to train on as well"),
    epochs: int | None = typer.Option(None, "--epochs", min=1,
                                      help="default: core.schedule (~40 steps for a fine-tune)"),
    min_per_class: int = typer.Option(20, "--min-per-class", min=2, help="labels needed per class"),
    by: str = typer.Option("", "--by", help="who retrains (default: your user name)"),
    use_marks: bool = typer.Option(True, "--marks/--no-marks", help="inspectors' marks supervise the heatmap"),
    warm_start: bool = typer.Option(False, "--warm-start/--from-imagenet",
                                    help="fine-tune production's weights (same network and preprocessing)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Train a candidate from stored labels, compare with production on held-out labels, register."""
    if ctx.invoked_subcommand is not None:  # `inspection retrain trigger …`: the group's callback does nothing
        return
    st = station_arg(station)
    when = parse_when(since, "--since")
    result = in_pipeline(
        ctx,
        lambda pipe: retrain.retrain(
            pipe, by=default_by(by), station=st, since=when, base_data=base_data, epochs=epochs,
            min_per_class=min_per_class, use_marks=use_marks, warm_start=warm_start,
            log=lambda m: typer.echo(m, err=True),
        ),
        ValueError,
        code=_exit_code,
    )
    if as_json:
        echo_json(result.to_dict())
    else:
        _print_result(result)
