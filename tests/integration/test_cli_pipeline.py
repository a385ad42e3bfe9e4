"""The `inspection` pipeline commands, run in-process with Typer's CliRunner on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspection.cli.main import build_app
from inspection.config import Settings
from tests.fakes import BrightnessScorer, Models, level_for, png


@pytest.fixture
def cli(db_settings: Settings):
    app = build_app(scorer_factory=lambda _s: Models({"baseline": BrightnessScorer()}))
    env = {
        "INSPECTION_DATA_DIR": str(db_settings.data_dir),
        "INSPECTION_DATABASE_URL": db_settings.database_url,
    }
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), env=env)

    return run


def test_policy_set_show_and_ingest_json(cli, tmp_path: Path) -> None:
    r = cli(
        "policy", "set", "--station", "s1", "--level", "partial", "--pass-below", "0.05",
        "--reject-above", "0.95", "--audit-rate", "0.02", "--by", "eve", "--reason", "pilot",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "s1 v1: partial" in r.output
    shown = cli("policy", "show", "--station", "s1", "--json")
    assert shown.exit_code == 0
    current = json.loads(shown.stdout)["current"]
    assert current["level"] == "partial" and current["created_by"] == "eve" and current["reason"] == "pilot"
    folder = tmp_path / "batch"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.png").write_bytes(png(level_for(0.01)))
    (folder / "sub" / "scratch.png").write_bytes(png(level_for(0.99)))
    (folder / "notes.txt").write_text("ignored in folders")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    r = cli("ingest", str(folder), str(broken), "--station", "s1", "--json")
    assert r.exit_code == 0, r.output
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(x["route"], x["label"], x["decided_by"]) for x in lines] == [
        ("auto_pass", "ok", "model"), ("auto_reject", "scratch", "model"), ("review", None, None),
    ]  # fmt: skip
    assert set(lines[0]) >= {"id", "station", "route", "score", "decided_by", "label", "reason"}
    assert "fail-safe" in lines[2]["reason"]
    text = cli("ingest", str(folder / "ok.png"), "--station", "s1")
    assert text.exit_code == 0 and "auto_pass" in text.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--level", "partial", "--pass-below", "0.9", "--reject-above", "0.1"],
            "must be below reject_above",
        ),
        (["--level", "sometimes"], "unknown automation level"),
        (["--audit-rate", "2"], "audit_rate must be within"),
    ],
)
def test_invalid_policy_fails_cleanly(cli, args: list[str], message: str) -> None:
    r = cli("policy", "set", "--station", "s1", "--by", "eve", "--reason", "x", *args)
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.output
    assert "no station has a policy" in cli("policy", "show").stdout


def test_ingest_errors_are_clean(cli, tmp_path: Path) -> None:
    r = cli("ingest", str(tmp_path / "missing.png"))
    assert r.exit_code == 2 and "no such file" in r.stderr
    r = cli("ingest", str(tmp_path), "--station", "bad station")
    assert r.exit_code == 2 and "invalid station" in r.stderr


def test_tokens_reports_and_db_upgrade(cli) -> None:
    assert cli("db", "upgrade").stdout.startswith("database at revision 0009_inspector")
    token = cli("tokens", "create", "--station", "s1")
    assert token.exit_code == 0 and token.stdout.strip().startswith("insp_")
    audit = cli("audit", "report", "--station", "s1", "--json")
    assert audit.exit_code == 0
    body = json.loads(audit.stdout)
    assert body["audits"] == 0 and body["escape_rate"]["n"] == 0 and body["escape_rate"]["rate"] is None
    assert "no audits yet" in cli("audit", "report").stdout
    shadow = cli("shadow", "report", "--json")
    assert shadow.exit_code == 0 and json.loads(shadow.stdout)["summary"].startswith("not enough labels")
    assert "not enough labels" in cli("shadow", "report", "--station", "s1").stdout
