"""The engineer's controls for the inspector screen (issue 11) through the real command line, on both
databases: a station's highlight default switched with a reason (an event says who, why and the old
value) and the defect book added to, listed and pruned."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from inspection import store
from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import context, defect_book, errors, review
from tests.fakes import FakeClock, Models, enqueue


@pytest.fixture
def app(db_settings: Settings) -> Iterator[context.Pipeline]:
    ctx = context.Pipeline.create(db_settings, scorer_factory=Models(), clock=FakeClock())
    yield ctx
    ctx.close()


@pytest.fixture
def cli(db_settings: Settings) -> Iterator[tuple[CliRunner, dict[str, str]]]:
    env = {
        "INSPECTION_DATA_DIR": str(db_settings.data_dir), "INSPECTION_DATABASE_URL": db_settings.database_url,
        "INSPECTION_MODELS_DIR": str(db_settings.models_dir),
    }  # fmt: skip
    yield CliRunner(), env


def _run(cli: tuple[CliRunner, dict[str, str]], *args: str) -> tuple[int, str]:
    runner, env = cli
    res = runner.invoke(build_app(), list(args), env=env)
    return res.exit_code, res.output


def test_highlight_default_needs_a_reason_and_records_who_why_and_the_old_value(app: context.Pipeline) -> None:
    with pytest.raises(errors.InputError, match="reason is required"):
        review.set_highlight_default(app, station="s1", on=True, by="erin", reason="  ")
    assert review.set_highlight_default(app, station="s1", on=True, by="erin", reason="lint confusion") is False
    assert review.set_highlight_default(app, station="s1", on=False, by="eve", reason="outlines distract") is True
    changes = review.highlight_changes(app, station="s1")
    assert [(c.by, c.highlight, c.old, c.reason) for c in changes] == [
        ("eve", False, True, "outlines distract"), ("erin", True, False, "lint confusion"),
    ]  # fmt: skip
    assert review.highlight_changes(app, station="s2") == []


def test_cli_station_highlight_on_off_with_reason(app: context.Pipeline, cli: tuple[CliRunner, dict[str, str]]) -> None:
    enqueue(app.engine, n=1)
    code, out = _run(cli, "station", "highlight", "s1", "on", "--reason", "thin scratches missed", "--by", "erin")
    assert code == 0, out
    assert "s1: highlight on (was off)" in out
    assert review.highlight_default(app, station="s1") is True
    task = review.claim_next(app, inspector="ann")
    assert task is not None and task.highlight  # the screen opens the item with outlines
    with app.read() as s:
        (event,) = store.list_events(s, kind="review.display_changed")
    assert (event.actor, event.station) == ("erin", "s1")
    assert event.detail == {"highlight": True, "old": False, "reason": "thin scratches missed"}

    code, out = _run(cli, "station", "highlight", "s1", "off", "--reason", "back to plain", "--by", "eve", "--json")
    assert code == 0, out
    assert json.loads(out) == {"station": "s1", "highlight": False, "old": True, "reason": "back to plain"}
    assert review.highlight_default(app, station="s1") is False

    code, out = _run(cli, "station", "highlight", "s1", "maybe", "--reason", "x")
    assert code == 2 and "on or off" in out, out
    code, out = _run(cli, "station", "highlight", "s1", "on", "--reason", " ", "--by", "eve")
    assert code == 2 and "reason is required" in out, out
    code, out = _run(cli, "station", "highlight", "s1", "on")
    assert code == 2 and "--reason" in out, out
    assert review.highlight_default(app, station="s1") is False  # refused changes change nothing


def test_cli_defect_book_add_list_remove(app: context.Pipeline, cli: tuple[CliRunner, dict[str, str]]) -> None:
    a, b = enqueue(app.engine, n=2)
    code, out = _run(cli, "book", "add", str(a), "--class", "Lint", "--caption", "dust on the glass", "--by", "erin")
    assert code == 0 and "lint: item #" in out, out
    code, out = _run(cli, "book", "add", str(b), "--class", "scratch", "--caption", "thin line, top left",
                     "--by", "erin", "--json")  # fmt: skip
    assert code == 0, out
    scratch = json.loads(out)
    assert (scratch["inspection_id"], scratch["defect_class"], scratch["added_by"]) == (b, "scratch", "erin")

    code, out = _run(cli, "book", "list")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"#{scratch['id']} scratch")  # scratch first, then look-alikes
    assert "dust on the glass" in lines[1] and "erin" in lines[1]
    code, out = _run(cli, "book", "list", "--class", "lint", "--json")
    assert code == 0 and [e["inspection_id"] for e in json.loads(out)] == [a], out

    for args, words in [
        (["book", "add", str(a), "--class", "crack", "--caption", "not a class"], "defect class must be one of"),
        (["book", "add", "999999", "--class", "oil", "--caption", "missing item"], "not found"),
        (["book", "add", str(a), "--class", "oil", "--caption", "x"], "caption"),
        (["book", "remove", "999999"], "not found"),
    ]:
        code, out = _run(cli, *args)
        assert code == 2 and words in out, (args, out)

    lint = defect_book.entries(app, defect_class="lint")[0]
    code, out = _run(cli, "book", "remove", str(lint.id), "--by", "eve")
    assert code == 0 and f"removed entry #{lint.id}" in out, out
    assert [e.defect_class for e in defect_book.entries(app)] == ["scratch"]
    with app.read() as s:
        kinds = [e.kind for e in store.list_events(s)]
    assert kinds.count("book.added") == 2 and kinds.count("book.removed") == 1
    code, out = _run(cli, "book", "list", "--class", "lint")
    assert code == 0 and "no lint entries" in out, out
