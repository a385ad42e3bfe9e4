"""`inspection synth` end to end through the Typer app (small images)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspection.cli.main import build_app

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(build_app(), ["synth", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_synth_writes_dataset_and_reports_speed(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    code, output = _invoke(str(out), "--count", "20", "--seed", "2", "--size", "320x180", "--no-progress")
    assert code == 0, output
    assert "wrote 20 images (10 scratch, 10 ok)" in output and "images/s" in output
    assert len(list((out / "scratch").glob("*.jpg"))) == 10
    assert len(list((out / "ok").glob("*.jpg"))) == 10
    assert len(list((out / "masks").glob("*.png"))) == 20
    with (out / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and all((out / r["file"]).is_file() for r in rows)
    assert {r["width"] + "x" + r["height"] for r in rows} == {"320x180"}


def test_synth_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        code, output = _invoke(
            str(tmp_path / name),
            "-n",
            "4",
            "--seed",
            "9",
            "--size",
            "160x90",
            "--scratch-fraction",
            "0.75",
            "--no-progress",
        )
        assert code == 0, output
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 17  # 4 x (image, scratch mask, phone and glass masks) + manifest
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0", "--seed", "1"], "count must be at least 1"),
        (["--count", "2", "--seed", "1", "--size", "10x10"], "at least 64x64"),
        (["--count", "2", "--seed", "1", "--size", "big"], "WIDTHxHEIGHT"),
        (["--count", "2", "--seed", "1", "--scratch-fraction", "2"], "scratch fraction"),
        (["--count", "2", "--seed", "-5"], "seed must be >= 0"),
        (["--count", "2", "--seed", "1", "--workers", "0"], "workers must be at least 1"),
        (["--seed", "1"], "--count"),
        (["--count", "many", "--seed", "1"], "--count"),
    ],
)
def test_synth_bad_arguments_exit_2_without_traceback(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = _invoke(str(tmp_path / "out"), *args)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output


def test_synth_refuses_non_empty_output(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("precious")
    code, output = _invoke(str(tmp_path), "--count", "1", "--seed", "1", "--size", "128x72")
    assert code == 2 and "not empty" in output
    assert (tmp_path / "keep.txt").read_text() == "precious"
