"""`inspection train / evaluate / predict` end to end, including every kind of bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from inspection.cli.main import build_app
from inspection.vision.synth import render
from tests.bad_images import CASES, write_cases
from tests.model_fixtures import TINY_SIZE

pytestmark = pytest.mark.slow
runner = CliRunner()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    phone = render(8, 0, scratch=True, size=TINY_SIZE).image
    return write_cases(tmp_path_factory.mktemp("bad"), phone)


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_predict_judges_good_files_and_names_each_bad_one(tiny_model: Path, bad_files: dict[str, Path],
                                                           tiny_data: Path, tmp_path: Path) -> None:
    good = sorted((tiny_data / "holdout" / "scratch").glob("*.jpg"))[:2]
    paths = [*good, *bad_files.values()]
    result = runner.invoke(build_app(), ["predict", str(tiny_model), *map(str, paths), "--json",
                                         "--overlay", str(tmp_path / "ov")])
    assert result.exit_code == 1  # some files could not be judged
    assert "Traceback" not in result.output
    rows = {Path(r["file"]).name: r for r in lines(result.stdout)}
    assert len(rows) == len(paths)  # nothing silently skipped
    for g in good:
        assert 0.0 <= rows[g.name]["score"] <= 1.0
    for name, expected in CASES.items():
        if expected == "ok":
            assert "score" in rows[name], rows[name]
        else:
            assert expected.removeprefix("error: ") in rows[name]["error"], rows[name]
    overlays = list((tmp_path / "ov").glob("*.png"))
    assert len(overlays) == len(good) + sum(v == "ok" for v in CASES.values())
    assert cv2.imread(str(overlays[0])) is not None


def test_evaluate_json_reports_every_metric_and_the_bad_files(tiny_model: Path, tiny_data: Path,
                                                              bad_files: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "eval"
    shutil.copytree(tiny_data / "holdout", data)
    for name, path in bad_files.items():
        shutil.copy(path, data / "ok" / name)
    result = runner.invoke(build_app(), ["evaluate", str(tiny_model), str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = lines(result.stdout)[0]
    for key in ("n", "auroc", "average_precision", "accuracy", "ece", "coverage_at_risk", "pointing_game"):
        assert key in report
    assert set(report["coverage_at_risk"]) == {"0.005", "0.01"}
    bad = sum(v != "ok" for v in CASES.values())
    assert report["n_errors"] == bad and len(report["errors"]) == bad
    assert report["n"] == 48 + len(CASES) - bad


def test_train_cli_writes_an_artifact_and_lists_unusable_files(tiny_data: Path, bad_files: dict[str, Path],
                                                                tmp_path: Path) -> None:
    data = tmp_path / "train"
    shutil.copytree(tiny_data / "holdout", data)
    for name, path in bad_files.items():
        shutil.copy(path, data / "ok" / name)
    out = tmp_path / "m"
    result = runner.invoke(build_app(), ["train", str(data), "--out", str(out), "--epochs", "1",
                                         "--canvas", "256x128", "--mode", "phone"])
    assert result.exit_code == 0, result.output
    assert (out / "weights.safetensors").is_file() and (out / "model.json").is_file()
    for name, expected in CASES.items():
        if expected != "ok":
            assert name in result.output  # each unusable file is named, never silently skipped


@pytest.mark.parametrize(("args", "message"), [
    (["train", "/nonexistent", "--out", "/tmp/x"], "not a folder"),
    (["evaluate", "/nonexistent", "/nonexistent"], "not a model artifact"),
    (["predict", "/nonexistent", "a.jpg"], "not a model artifact"),
])
def test_model_commands_give_clear_errors(args: list[str], message: str) -> None:
    result = runner.invoke(build_app(), args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
