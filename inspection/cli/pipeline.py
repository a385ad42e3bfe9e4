"""`inspection ingest`: images from files and folders through the inspection pipeline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import typer

from inspection.cli.common import echo_json, fail, station_arg
from inspection.cli.context import open_pipeline
from inspection.services import errors, ingest
from inspection.services.context import Pipeline

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
JSON_KEYS = ("id", "station", "route", "score", "decided_by", "label", "reason")


def _image_files(paths: list[Path]) -> Iterator[Path]:
    """Files given explicitly are always ingested (an unreadable one still goes to a person);
    folders contribute files with an image suffix, in a stable order."""
    for p in paths:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                    yield f
        else:
            yield p


def _ingest_one(pipe: Pipeline, path: Path, *, station: str, as_json: bool) -> bool:
    """Inspect one file and print its line; False (and an error line) when it could not be read or stored."""
    try:
        result = ingest.inspect(pipe, data=path.read_bytes(), station=station, source_name=path.name, actor="cli")
    except (OSError, errors.InputError) as exc:
        msg = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if as_json:
            echo_json({"path": str(path), "error": msg})
        else:
            typer.secho(f"error: {path}: {msg}", err=True, fg="red")
        return False
    line = ingest.inspection_to_dict(result.inspection)
    if as_json:
        echo_json({k: line[k] for k in JSON_KEYS} | {"path": str(path)})
    else:
        score = "-" if line["score"] is None else f"{line['score']:.4f}"
        typer.echo(
            f"{line['id']:>6}  {station}  {line['route']:<11} score {score:<6}  "
            f"{line['label'] or 'pending':<7}  {path}  ({line['reason']})"
        )
    return True


def ingest_cmd(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="image files and/or folders (searched recursively)"),
    station: str = typer.Option("default", "--station", help="station the images come from"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
) -> None:
    """Inspect images: decide or queue each one under the station's policy."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or folder: {', '.join(missing)}")
    station = station_arg(station)
    with open_pipeline(ctx) as pipe:
        failed = sum(not _ingest_one(pipe, path, station=station, as_json=as_json) for path in _image_files(paths))
    if failed:
        raise typer.Exit(1)
