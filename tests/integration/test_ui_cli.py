"""`inspection users add/list` and the demo set-up (users only; the image seeding is covered by `make run`)."""

from __future__ import annotations

import json
import stat

import pytest
from typer.testing import CliRunner

from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import accounts, context, demo


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(settings.models_dir))
    return settings


def test_users_add_reads_the_password_from_stdin_and_list_never_prints_it(env: Settings) -> None:
    runner = CliRunner()
    app = build_app()
    out = runner.invoke(app, ["users", "add", "eve", "--role", "engineer", "--password-stdin"], input="s3cret-pass\n")
    assert out.exit_code == 0, out.output
    listed = runner.invoke(app, ["users", "list"])
    assert listed.exit_code == 0 and "eve" in listed.output and "engineer" in listed.output
    assert "s3cret-pass" not in listed.output
    with context.Pipeline.create(env) as pipe:
        assert accounts.login(pipe, name="eve", password="s3cret-pass") == accounts.User("eve", accounts.Role.ENGINEER)
        assert accounts.login(pipe, name="eve", password="wrong") is None
    again = runner.invoke(app, ["users", "add", "eve", "--role", "engineer", "--password-stdin"], input="x" * 9)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["users", "add", "bob", "--role", "boss", "--password-stdin"], input="long-enough\n")
    assert bad.exit_code == 2 and "role" in bad.output


def test_demo_users_get_random_passwords_remembered_privately(env: Settings) -> None:
    with context.Pipeline.create(env) as pipe:
        assert accounts.list_users(pipe) == []  # a production start has no users at all
        first = demo.ensure_users(pipe)
        again = demo.ensure_users(pipe)
        assert first == again and set(first) == {"inspector", "engineer", "admin"}
        assert len(set(first.values())) == 3
        path = env.data_dir / demo.CREDENTIALS_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text()) == first
        for name, role in demo.DEMO_USERS:
            assert accounts.login(pipe, name=name, password=first[name]) == accounts.User(name, role)
