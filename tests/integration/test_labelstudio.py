"""Label Studio: tasks a stock server accepts (no unknown users, ground truth, predictions, image
URLs per export), and the round trip export → labels edited as Label Studio writes them → import."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services import export, ingest, labelstudio, policies
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.export import ExportError
from tests.engineer_fixtures import eng_app, fake_model_dirs, fake_pipeline, label_queue, png_bytes  # noqa: F401
from tests.fakes import BrightnessScorer, Models

LEVELS = [10, 240, 128, 128, 10, 240]  # auto pass, auto reject, review


def _stock(app: Pipeline) -> Pipeline:
    policies.set_policy(
        app, station="s1", by="erin", reason="t", level="partial", pass_below=0.2, reject_above=0.8, audit_rate=0.0
    )
    truth = {}
    for i, lv in enumerate(LEVELS):
        res = ingest.inspect(app, data=png_bytes(lv, seed=i), station="s1")
        truth[res.inspection.id] = "scratch" if lv >= 128 else "ok"
    label_queue(app, truth=truth, station="s1")
    return app


@pytest.fixture
def stocked(eng_app: Pipeline) -> Pipeline:  # noqa: F811
    return _stock(eng_app)


def _tasks(app: Pipeline, out: Path, **kw: Any) -> list[dict[str, Any]]:
    export.export(app, out=out, fmt="labelstudio", progress=False, **kw)
    return list(json.loads((out / "labelstudio.json").read_text()))


def _labels(app: Pipeline, out: Path) -> dict[int, tuple[str, str, str | None]]:
    export.export(app, out=out, fmt="jsonl", progress=False)
    rows = [json.loads(line) for line in (out / "inspections.jsonl").read_text().splitlines()]
    return {r["inspection_id"]: (r["label"], r["label_source"], r["inspector"]) for r in rows}


def test_tasks_hold_no_user_reference_and_mark_human_labels_as_ground_truth(stocked: Pipeline, tmp_path: Path) -> None:
    tasks = _tasks(stocked, tmp_path / "batch-7")
    assert "completed_by" not in json.dumps(tasks)
    human = [t for t in tasks if t["annotations"]]
    assert len(human) == 2 and all(t["meta"]["inspector"] == "ines" for t in human)
    assert all(a["ground_truth"] is True and a["was_cancelled"] is False for t in human for a in t["annotations"])
    assert all(p["model_version"] == "v1" and 0 <= p["score"] <= 1 for t in tasks for p in t["predictions"])
    assert all(t["data"]["image"].startswith("/data/local-files/?d=batch-7/images/") for t in tasks)
    # LOCAL_FILES_DOCUMENT_ROOT = the folder holding the export: the path after ?d= is a file there.
    assert all((tmp_path / t["data"]["image"].split("?d=", 1)[1]).is_file() for t in tasks)
    assert (tmp_path / "batch-7" / "labelstudio_config.xml").read_text() == labelstudio.CONFIG


def test_image_url_prefix_points_tasks_at_served_images(stocked: Pipeline, tmp_path: Path) -> None:
    tasks = _tasks(stocked, tmp_path / "o", image_url_prefix="http://files.local:8081/batch/images/")
    for t in tasks:
        url = t["data"]["image"]
        assert url.startswith("http://files.local:8081/batch/images/")
        assert (tmp_path / "o" / "images" / url.rsplit("/", 1)[1]).is_file()
    with pytest.raises(ExportError, match="image-url-prefix"):
        export.export(stocked, out=tmp_path / "x", fmt="labelstudio", progress=False, image_url_prefix="ftp://a")
    assert not (tmp_path / "x").exists() or list((tmp_path / "x").iterdir()) == []


def _as_label_studio_exports(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Label Studio's JSON export gives back for imported tasks: ids, completed_by as a user id,
    timestamps; the predictions as they were."""
    out = copy.deepcopy(tasks)
    for n, t in enumerate(out, start=1):
        t["id"] = n
        for k, a in enumerate(t["annotations"]):
            a.update(
                id=100 * n + k,
                completed_by=1,
                created_at="2030-01-01T10:00:00.000000Z",
                updated_at="2030-01-01T10:00:00.000000Z",
                task=n,
                project=1,
            )
    return out


def _contractor(label: str, at: str) -> dict[str, Any]:
    result = [{"id": "x1", "from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}]
    return {
        "id": 999,
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": at,
        "updated_at": at,
        "completed_by": {"id": 7, "email": "carla@contractor.example"},
        "lead_time": 3.2,
    }


def test_round_trip_export_edit_in_label_studio_import_labels_match(stocked: Pipeline, tmp_path: Path) -> None:
    tasks = _as_label_studio_exports(_tasks(stocked, tmp_path / "ls"))
    human = [t for t in tasks if t["annotations"]]
    auto = [t for t in tasks if not t["annotations"]]
    flip = human[0]
    old = flip["annotations"][0]["result"][0]["value"]["choices"][0]
    new = "ok" if old == "scratch" else "scratch"
    flip["annotations"][0]["result"][0]["value"]["choices"] = [new]  # an annotator changed the label
    flip["annotations"][0]["updated_at"] = "2030-01-02T09:00:00Z"
    auto[0]["annotations"].append(_contractor("scratch", "2030-01-03T08:00:00Z"))  # labelled in Label Studio
    auto[1]["annotations"].append({**_contractor("ok", "2030-01-03T08:00:00Z"), "was_cancelled": True})  # skipped
    stranger = copy.deepcopy(auto[0])
    stranger["data"]["inspection_id"] = 99999  # an item this store does not know
    other_image = copy.deepcopy(auto[0])
    other_image["data"]["sha256"] = "0" * 64  # same id, another image: another store's export
    ls_file = tmp_path / "project-1-at-2030.json"
    ls_file.write_text(json.dumps([*tasks, stranger, other_image]))

    before = _labels(stocked, tmp_path / "before")
    report = labelstudio.import_labelstudio(stocked, path=ls_file)
    assert (report.tasks, report.imported, report.unchanged, len(report.refused)) == (len(tasks) + 2, 2, 1, 2)
    assert report.unlabelled == len(auto) - 1
    assert "99999" in report.refused[0] and "another image" in report.refused[1]

    after = _labels(stocked, tmp_path / "after")
    iid = flip["data"]["inspection_id"]
    assert after[iid] == (new, "human", "labelstudio-user-1")
    assert after[auto[0]["data"]["inspection_id"]] == ("scratch", "human", "carla@contractor.example")
    assert after[human[1]["data"]["inspection_id"]] == before[human[1]["data"]["inspection_id"]]  # untouched
    for t in tasks:  # every label in the Label Studio file is now the store's label
        if t["annotations"] and not all(a.get("was_cancelled") for a in t["annotations"]):
            assert after[t["data"]["inspection_id"]][0] == labelstudio._label_of(
                labelstudio._latest(t["annotations"]) or {}
            )
    again = labelstudio.import_labelstudio(stocked, path=ls_file, by="carla")
    assert (again.imported, again.unchanged) == (0, 3)  # idempotent


def test_import_refuses_what_is_not_a_label_studio_export(stocked: Pipeline, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": 1}')
    with pytest.raises(InputError, match="list of tasks"):
        labelstudio.import_labelstudio(stocked, path=bad)
    bad.write_text("[{}]")
    assert labelstudio.import_labelstudio(stocked, path=bad).refused == ["not a Label Studio task (no data object)"]
    with pytest.raises(InputError, match="cannot read"):
        labelstudio.import_labelstudio(stocked, path=tmp_path / "missing.json")


@pytest.fixture
def cli(db_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[typer.Typer, Pipeline]]:
    monkeypatch.setenv("INSPECTION_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("INSPECTION_MODELS_DIR", str(db_settings.models_dir))
    monkeypatch.setenv("INSPECTION_DATABASE_URL", db_settings.database_url)
    monkeypatch.setenv("INSPECTION_DEFAULT_MODEL", "v1")
    fake_model_dirs(db_settings, ["v1"])
    app = build_app(scorer_factory=lambda _s: Models({"v1": BrightnessScorer("v1")}))
    with fake_pipeline(db_settings, ["v1"]) as p:
        yield app, _stock(p)


def test_cli_export_then_import_reports_counts_and_exits_1_on_refusals(
    cli: tuple[typer.Typer, Pipeline], tmp_path: Path
) -> None:
    app, pipe = cli
    res = CliRunner().invoke(app, ["export", str(tmp_path / "e"), "--format", "labelstudio"])
    assert res.exit_code == 0, res.output
    tasks = _as_label_studio_exports(json.loads((tmp_path / "e" / "labelstudio.json").read_text()))
    auto = next(t for t in tasks if not t["annotations"])
    auto["annotations"].append(_contractor("ok", "2030-01-03T08:00:00Z"))
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    res = CliRunner().invoke(app, ["import", "labelstudio", str(tmp_path / "ls.json"), "--by", "carla", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) | {"refusals": []} == {
        "tasks": len(tasks),
        "imported": 1,
        "unchanged": 2,
        "unlabelled": len(tasks) - 3,
        "refused": 0,
        "refusals": [],
    }
    assert _labels(pipe, tmp_path / "j")[auto["data"]["inspection_id"]] == ("ok", "human", "carla")
    auto["data"]["inspection_id"] = 4242
    (tmp_path / "ls.json").write_text(json.dumps([auto]))
    res = CliRunner().invoke(app, ["import", "labelstudio", str(tmp_path / "ls.json")])
    assert res.exit_code == 1 and "1 refused" in res.output and "4242" in res.output
