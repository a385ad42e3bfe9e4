"""`inspection import labelstudio`: labels made in a labelling tool, read back into the store."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.cli.common import echo_json
from inspection.cli.context import in_pipeline
from inspection.services import errors, labelstudio

app = typer.Typer(no_args_is_help=True, help="Read labels made elsewhere back into the store.")


@app.command("labelstudio")
def labelstudio_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="a Label Studio JSON export of tasks exported by `inspection export`"),
    by: str | None = typer.Option(None, "--by", help="who labelled (default: the Label Studio annotator)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Store the labels of a Label Studio JSON export as reviews (who, when). Tasks naming an item
    this store does not know are refused; exits 1 when any was (the others are stored)."""
    report = in_pipeline(
        ctx, lambda pipe: labelstudio.import_labelstudio(pipe, path=file, by=by), errors.InputError
    )
    if as_json:
        echo_json(report.to_dict())
    else:
        typer.echo(
            f"{report.tasks} tasks: {report.imported} labels stored, {report.unchanged} unchanged, "
            f"{report.unlabelled} without a label, {len(report.refused)} refused"
        )
        for why in report.refused:
            typer.echo(f"  refused: {why}", err=True)
    if report.refused:
        raise typer.Exit(1)
