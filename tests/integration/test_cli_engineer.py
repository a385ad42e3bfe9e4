"""The engineers' commands end to end through Typer: clear messages and exit codes, no tracebacks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import ingest, policies
from tests.engineer_fixtures import fake_model_dirs, fake_pipeline, label_queue, png_bytes
from tests.fakes import BrightnessScorer, Models

VERSIONS = ["v1", "v2"]


@pytest.fixture
def cli(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(db_settings.models_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("INSPECTION_DEFAULT_MODEL", "v1")
    fake_model_dirs(db_settings, VERSIONS)
    app = build_app(scorer_factory=lambda _s: Models({v: BrightnessScorer(v) for v in VERSIONS}))
    with fake_pipeline(db_settings, VERSIONS) as p:  # a little history: partial, some reviews
        policies.set_policy(
            p, station="s1", by="erin", reason="t", level="partial", pass_below=0.2, reject_above=0.8, audit_rate=0.0
        )
        truth = {
            ingest.inspect(p, data=png_bytes(lv, seed=i), station="s1").inspection.id: (
                "scratch" if lv > 128 else "ok"
            )
            for i, lv in enumerate([10, 120, 140, 250])
        }
        label_queue(p, truth=truth, station="s1")
    return app


def run(app: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def test_models_commands_change_the_deployment_and_say_what_happened(cli: typer.Typer) -> None:
    code, out = run(cli, "models", "list")
    assert code == 0 and "production v1" in out and "v2" in out
    assert run(cli, "models", "shadow", "v2", "--by", "erin", "--reason", "try")[0] == 0
    code, out = run(cli, "models", "canary", "v2", "--fraction", "0.25", "--by", "erin")
    assert code == 0 and "25.0%" in out
    code, out = run(cli, "models", "promote", "v2", "--by", "erin")
    assert code == 1 and "promotion refused" in out
    code, out = run(cli, "models", "promote", "v2", "--by", "erin", "--force", "--reason", "approved by QA")
    assert code == 0 and "FORCED" in out
    code, out = run(cli, "models", "show", "v2", "--json")
    assert code == 0 and json.loads(out)["roles"] == ["production"]
    code, out = run(cli, "models", "rollback", "--by", "erin", "--reason", "alarm")
    assert code == 0 and "production v1" in out
    code, out = run(cli, "models", "compare", "v2", "--json")
    assert code == 0 and json.loads(out)["n"] == 0


def test_unknown_model_and_bad_options_give_one_line_errors(cli: typer.Typer) -> None:
    code, out = run(cli, "models", "shadow", "nope")
    assert code == 2 and "error: no model 'nope'" in out
    code, out = run(cli, "models", "canary", "v2", "--fraction", "1.5")
    assert code == 2 and "--fraction must be within (0, 1)" in out
    code, out = run(cli, "export", "x", "--format", "xml")
    assert code == 2 and "--format must be one of" in out
    code, out = run(cli, "export", "x", "--format", "csv", "--since", "yesterday")
    assert code == 2 and "--since must be an ISO date" in out


def test_thresholds_suggest_refuses_with_the_number_of_labels_needed(cli: typer.Typer, tmp_path: Path) -> None:
    code, out = run(
        cli, "thresholds", "suggest", "--station", "s1", "--max-escape", "0.001", "--plot", str(tmp_path / "p.png")
    )
    assert code == 1 and "more labels needed" in out and (tmp_path / "p.png").is_file()
    code, out = run(cli, "thresholds", "suggest", "--station", "s1", "--max-escape", "0.001", "--json")
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["labels_needed"] > 0 and data["pass_below"] is None
    code, out = run(cli, "thresholds", "suggest", "--max-escape", "0.01", "--cost-escape", "5")
    assert code == 2 and "together" in out


def test_thresholds_calibration_prints_ece_per_model(cli: typer.Typer, tmp_path: Path) -> None:
    code, out = run(cli, "thresholds", "calibration", "--json", "--plot", str(tmp_path / "r.png"))
    data = json.loads(out)
    assert code == 0 and [m["model_version"] for m in data["models"]] == ["v1"]
    assert data["models"][0]["n"] == 2 and (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"


def test_retrain_refuses_with_the_number_of_labels_needed(cli: typer.Typer) -> None:
    code, out = run(cli, "retrain", "--epochs", "1")
    assert code == 1 and "need at least 20 of each class" in out


def test_export_writes_the_file_and_reports_it(cli: typer.Typer, tmp_path: Path) -> None:
    code, out = run(cli, "export", str(tmp_path / "o"), "--format", "csv", "--source", "human")
    rows = list(csv.DictReader((tmp_path / "o" / "inspections.csv").open()))
    assert code == 0 and "exported 2 records" in out and len(rows) == 2


def test_tokens_list_and_revoke(cli: typer.Typer) -> None:
    code, token = run(cli, "tokens", "create", "--station", "s1", "--by", "erin")
    assert code == 0 and token.strip().startswith("insp_")
    code, out = run(cli, "tokens", "list", "--json")
    (t,) = json.loads(out)
    assert code == 0 and t["station"] == "s1" and t["prefix"] == token.strip()[:12] and t["active"]
    assert token.strip() not in out
    code, out = run(cli, "tokens", "list")
    assert code == 0 and f"{t['id']:>4}  s1" in out and "last used" in out and "active" in out
    code, out = run(cli, "tokens", "revoke", str(t["id"]), "--by", "erin", "--reason", "camera stolen")
    assert code == 0 and f"revoked token {t['id']}" in out
    assert "revoked" in run(cli, "tokens", "list")[1]
    code, out = run(cli, "tokens", "revoke", "999")
    assert code == 2 and "no API token with id 999" in out


def test_a_worse_canary_is_refused_on_the_command_line_unless_forced(cli: typer.Typer, db_settings: Settings) -> None:
    from inspection.vision.artifact import update_metrics

    held = {"n": 10, "candidate": {"auroc": 0.5}, "production": {"version": "v1", "auroc": 0.9}}
    update_metrics(db_settings.models_dir / "v2", {"retrain": {"heldout": held}})
    code, out = run(cli, "models", "canary", "v2", "--fraction", "0.1", "--by", "erin")
    assert code == 1 and "canary refused" in out and "--force" in out
    code, out = run(cli, "models", "canary", "v2", "--fraction", "0.1", "--by", "erin", "--force", "--reason", "field")
    assert code == 0 and "10.0%" in out
