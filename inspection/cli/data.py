"""`inspection synth`: synthetic training images."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from inspection.vision import synth

_SIZE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """'1920x1080' -> (1920, 1080); typer.BadParameter (exit code 2) for anything else."""
    match = _SIZE.match(text)
    if match is None:
        message = f"expected WIDTHxHEIGHT such as 1920x1080, got {text!r}"
        raise typer.BadParameter(message, param_hint="--size")
    return int(match.group(1)), int(match.group(2))


def synth_cmd(
    out: Path = typer.Argument(..., help="New or empty folder: scratch/, ok/, masks/, regions/, manifest.csv."),
    count: int = typer.Option(..., "--count", "-n", help="Number of images (>= 1)."),
    seed: int = typer.Option(..., "--seed", help="Dataset seed (>= 0); same seed + args = same bytes."),
    scratch_fraction: float = typer.Option(0.5, "--scratch-fraction", help="Share of scratched, 0-1."),
    size: str = typer.Option("1920x1080", "--size", help="Frame size WIDTHxHEIGHT (at least 64x64)."),
    workers: int = typer.Option(1, "--workers", "-j", help="Processes; the images do not depend on it."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    setup: str = typer.Option(
        "varied", "--setup",
        help="lab (the original grey-table scene), varied (any table, phone, pose, camera), closeup, or the lab "
        "scene with one drift: lab-dark-table, lab-blue-mat, lab-dim-light, lab-dark-dim.",
    ),
    image_format: str = typer.Option("jpg", "--format", help="Image files: jpg, png or mix (half PNG)."),
) -> None:
    """Generate synthetic phone photos (ImageFolder + scratch masks + phone/glass masks + manifest.csv)."""
    dims = parse_size(size)
    try:
        report = synth.generate(
            out, count=count, seed=seed, scratch_fraction=scratch_fraction, size=dims, workers=workers,
            progress=progress, setup=setup, image_format=image_format,
        )
    except ValueError as exc:  # bad arguments or a non-empty output folder: a usage error
        raise typer.BadParameter(str(exc)) from None
    typer.echo(
        f"wrote {report.count} images ({report.positives} scratch, {report.count - report.positives} ok) "
        f"at {dims[0]}x{dims[1]} ({setup}) to {report.out} in {report.seconds:.1f} s "
        f"({report.images_per_second:.1f} images/s)"
    )
