"""`inspection export`: labelled inspections as files for training elsewhere."""

from __future__ import annotations

from pathlib import Path

import typer

from inspection.cli.common import default_by, echo_json, fail, parse_when, station_arg
from inspection.cli.context import in_pipeline
from inspection.services import export


def export_cmd(
    ctx: typer.Context,
    out: Path = typer.Argument(..., help="output folder (created; must not hold the export's names)"),
    fmt: str = typer.Option(..., "--format", help="imagefolder | csv | jsonl | coco | labelstudio | fiftyone"),
    station: str | None = typer.Option(None, "--station"),
    since: str | None = typer.Option(None, "--since", help="received at or after (ISO date)"),
    until: str | None = typer.Option(None, "--until", help="received before (ISO date)"),
    source: str = typer.Option("all", "--source", help="human | audit | all"),
    model_version: str | None = typer.Option(None, "--model-version"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing export files"),
    by: str = typer.Option("", "--by"),
    image_url_prefix: str | None = typer.Option(
        None, "--image-url-prefix", help="labelstudio: URL the images/ folder is served at (default: local files)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Export labelled inspections (streamed, deterministic order, atomic)."""
    st = station_arg(station)
    try:
        flt = export.ExportFilter(
            station=st, since=parse_when(since, "--since"), until=parse_when(until, "--until"),
            source=source, model_version=model_version,
        )
    except export.ExportError as exc:
        raise fail(str(exc)) from None
    result = in_pipeline(
        ctx,
        lambda pipe: export.export(
            pipe, out=out, fmt=fmt, flt=flt, actor=default_by(by), overwrite=overwrite,
            image_url_prefix=image_url_prefix,
        ),
        export.ExportError,
    )
    if as_json:
        echo_json(result.to_dict())
        return
    typer.echo(
        f"exported {result.records} records as {fmt} to {result.out} in {result.seconds:.1f} s"
        + (f" ({result.skipped} without a usable image left out)" if result.skipped else "")
    )
    for f in result.files:
        typer.echo(f"  {f}")
