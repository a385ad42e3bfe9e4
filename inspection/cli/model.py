"""`inspection train|evaluate|predict`: model artifacts from images. Thin: parse, call one function, format.

torch is imported inside the commands that need it, so `inspection --help` and the database commands
start without it (about a second saved per call).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import typer

from inspection.cli.common import fail
from inspection.core.schedule import default_epochs
from inspection.core.scoring import Scored
from inspection.vision.artifact_meta import ArtifactError
from inspection.vision.dataset import DatasetError, list_imagefolder
from inspection.vision.images import read_image_file
from inspection.vision.preprocess import overlay as draw_overlay


def train_cmd(
    data: Path = typer.Argument(..., help="ImageFolder: one folder per class"),
    out: Path = typer.Option(..., "--out", help="model artifact directory to write"),
    epochs: int | None = typer.Option(None, min=1, help="default: 6 under 1,000 images, else 12 (core.schedule)"),
    positive: str = typer.Option("scratch", help="name of the positive class folder"),
    seed: int = typer.Option(0),
    mode: str = typer.Option("auto", help="preprocessing: auto | phone | resize"),
    canvas: str = typer.Option("", help="network input HxW, e.g. 512x240 (default by mode)"),
    orientations: int = typer.Option(0, help="cached copies per image: 1, 2 (+ mirrored), 4 (+ flipped, turned); "
                                     "0 chooses (4 for whole images, 1 for phone crops)"),
    version: str = typer.Option("", help="model version (default: <out name>-<timestamp>)"),
    groups: str = typer.Option("", help="regex on the file name giving the group (e.g. an object id): the "
                               "validation split keeps groups whole"),
) -> None:
    """Train a scratch model on an ImageFolder and write a model artifact."""
    from inspection.vision.input_scale import choose_input  # lazy: torch
    from inspection.vision.train import TrainConfig, TrainingError, train

    try:
        chosen = choose_input(data, positive=positive, mode=mode, canvas=canvas, orientations=orientations)
        epochs = epochs or default_epochs(len(list_imagefolder(data, positive=positive)))
        typer.echo(f"input: {chosen.why}; {chosen.orientations} cached cop{'y' if chosen.orientations == 1 else 'ies'}"
                   f" per image; {epochs} epochs at most")
        config = TrainConfig(epochs=epochs, seed=seed, orientations=chosen.orientations, tile=chosen.tile,
                             select=chosen.select, groups=groups or None, preprocess=chosen.preprocess)
        report = train(data, out, positive=positive, config=config, version=version or None, log=typer.echo)
    except (DatasetError, TrainingError, ValueError) as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"wrote {report.out} (version {report.version}): {report.n_train} train / {report.n_val} val images, "
        f"{report.epochs_run} epochs in {report.seconds:.0f} s; val AUROC {report.val_auroc:.4f}; "
        f"ECE {report.ece_before:.4f} -> {report.ece_after:.4f} after temperature {report.temperature:.3f}"
    )
    if report.errors:
        typer.echo(f"{len(report.errors)} file(s) could not be used (listed above)")


def evaluate_cmd(
    model_dir: Path = typer.Argument(...),
    data: Path = typer.Argument(..., help="ImageFolder (optional masks/ or annotations/ for pointing game)"),
    positive: str = typer.Option("scratch"),
    as_json: bool = typer.Option(False, "--json"),
    threads: int = typer.Option(2),
) -> None:
    """Evaluate a model artifact on labelled images."""
    from inspection.vision.evaluate import evaluate  # lazy: torch
    from inspection.vision.predictor import load_predictor  # lazy: torch

    try:
        report = evaluate(load_predictor(model_dir, threads=threads), data, positive=positive)
    except (ArtifactError, DatasetError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(report))
        return
    for err in report["errors"]:
        typer.echo(f"error: {err}", err=True)
    for key, value in report.items():
        if key != "errors":
            typer.echo(f"{key:>20}: {value}")


def _prediction_row(path: Path, scored: Scored, overlay: Path | None) -> dict[str, Any]:
    """One file's result: score, label and regions (and the overlay written), or its error."""
    pred = scored.prediction
    row: dict[str, Any] = {"file": str(path), "model_version": pred.model_version}
    if not pred.valid or pred.score is None:
        return row | {"error": pred.error}
    row |= {
        "score": round(pred.score, 5),
        "label": "scratch" if pred.score >= 0.5 else "ok",
        "regions": [vars(r) for r in pred.regions],
        # the domain gate's verdict, as ingest applies it: "pass", or why no automatic decision is allowed
        "gate": [f.reason for f in scored.gate] or "pass",
    }
    if overlay is not None:
        row["overlay"] = str(write_overlay(path, scored, overlay))
    return row


def predict_cmd(
    model_dir: Path = typer.Argument(...),
    images: list[Path] = typer.Argument(...),
    as_json: bool = typer.Option(False, "--json"),
    overlay: Path | None = typer.Option(None, "--overlay", help="write overlay PNGs here"),
    threads: int = typer.Option(2),
) -> None:
    """Score images: probability of a scratch, label and highlighted regions. Exit code 1 if any file
    could not be judged (the others are still scored)."""
    from inspection.vision.predictor import load_predictor  # lazy: torch

    try:
        predictor = load_predictor(model_dir, threads=threads)
    except ArtifactError as exc:
        raise fail(str(exc)) from None
    failures = 0
    for path, scored in zip(images, predictor.score_files(images), strict=True):
        row = _prediction_row(path, scored, overlay)
        failures += "error" in row
        if as_json:
            typer.echo(json.dumps(row))
        elif "error" in row:
            typer.secho(f"{path}: error: {row['error']}", err=True, fg="red")
        else:
            gate = row["gate"] if row["gate"] == "pass" else "stopped: " + "; ".join(row["gate"])
            typer.echo(
                f"{path}: {row['label']} (score {row['score']:.4f}, {len(row['regions'])} region(s)); gate {gate}"
            )
    if failures:
        raise typer.Exit(1)


def write_overlay(path: Path, scored: Scored, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    image = read_image_file(path)
    target = out_dir / f"{path.stem}_overlay.png"
    n = 1
    while target.exists():  # two inputs with the same stem must not overwrite each other
        target = out_dir / f"{path.stem}_overlay_{n}.png"
        n += 1
    cv2.imwrite(str(target), draw_overlay(image, scored.heatmap, scored.prediction.regions))
    return target
