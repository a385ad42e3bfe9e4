"""Label Studio for real: `inspection export --format labelstudio` imported into a stock Label
Studio server through its API (no server flags), its images served by it, labels changed there,
and its own JSON exports read back by `inspection import labelstudio`."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from inspection.cli.main import build_app
from inspection.config import Settings
from inspection.services.context import Pipeline
from tests.engineer_fixtures import fake_model_dirs, fake_pipeline
from tests.fakes import BrightnessScorer, Models
from tests.integration.test_labelstudio import _labels, _stock
from tests.labelstudio_server import LabelStudio, label_studio  # noqa: F401  (pytest fixture)

pytestmark = pytest.mark.slow


@dataclass
class Project:
    """A store, its Label Studio export, and the project it was imported into."""

    cli: typer.Typer
    pipe: Pipeline
    out: Path
    tasks: list[dict[str, Any]]  # as exported
    id: int
    imported: dict[str, Any]  # the import API's answer
    tmp: Path


def _cli(cli: typer.Typer, *args: str) -> str:
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def project(label_studio: LabelStudio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:  # noqa: F811
    """Labelled items (SQLite store) exported by the CLI under the server's local-files root, a
    project made with the export's labelling config, and the tasks file posted to its import API."""
    tmp = tmp_path_factory.mktemp("ls-store")
    (tmp / "data").mkdir()
    settings = Settings(data_dir=tmp / "data", models_dir=tmp / "models", database_url=f"sqlite:///{tmp / 't.db'}")
    fake_model_dirs(settings, ["v1"])
    with pytest.MonkeyPatch.context() as mp, fake_pipeline(settings, ["v1"]) as pipe:
        for key, value in (
            ("INSPECTION_DATA_DIR", settings.data_dir),
            ("INSPECTION_MODELS_DIR", settings.models_dir),
            ("INSPECTION_DATABASE_URL", settings.database_url),
            ("INSPECTION_DEFAULT_MODEL", "v1"),
        ):
            mp.setenv(key, str(value))
        cli = build_app(scorer_factory=lambda _s: Models({"v1": BrightnessScorer("v1")}))
        _stock(pipe)
        out = label_studio.root / f"batch-{uuid.uuid4().hex[:8]}"
        _cli(cli, "export", str(out), "--format", "labelstudio")
        tasks = json.loads((out / "labelstudio.json").read_text())
        config = (out / "labelstudio_config.xml").read_text()
        made = label_studio.api("POST", "/api/projects", {"title": out.name, "label_config": config}, expect=201)
        imported = label_studio.api("POST", f"/api/projects/{made['id']}/import", tasks, expect=201)
        yield Project(cli, pipe, out, tasks, made["id"], imported, tmp)


def _server_tasks(ls: LabelStudio, p: Project) -> dict[int, dict[str, Any]]:
    """Every task of the project as the server holds it, by the inspection id in its data."""
    listed = ls.api("GET", f"/api/tasks?project={p.id}&page_size=1000")
    full = [ls.api("GET", f"/api/tasks/{t['id']}") for t in listed["tasks"]]
    return {t["data"]["inspection_id"]: t for t in full}


def _choice(result: list[dict[str, Any]]) -> str:
    [label] = [r["value"]["choices"] for r in result if r["from_name"] == "label"]
    assert len(label) == 1
    return str(label[0])


def test_every_task_annotation_and_prediction_arrives_with_its_labels(
    label_studio: LabelStudio,  # noqa: F811
    project: Project,
) -> None:
    labels = _labels(project.pipe, project.tmp / "truth")  # id -> (label, source, inspector)
    human = {i for i, (_, source, _) in labels.items() if source != "model"}
    assert len(labels) == len(project.tasks) == 6 and len(human) == 2
    assert (project.imported["task_count"], project.imported["annotation_count"]) == (6, 2)
    assert project.imported["prediction_count"] == 6

    got = _server_tasks(label_studio, project)
    assert set(got) == set(labels)
    for iid, t in got.items():
        label, _, inspector = labels[iid]
        assert t["meta"]["inspector"] == inspector
        [pred] = t["predictions"]
        assert pred["model_version"] == "v1" and 0 <= pred["score"] <= 1
        assert _choice(pred["result"]) == ("scratch" if pred["score"] >= 0.5 else "ok")
        if iid in human:
            [ann] = t["annotations"]
            assert _choice(ann["result"]) == label
            assert ann["ground_truth"] is True and ann["was_cancelled"] is False
        else:
            assert t["annotations"] == []


def test_images_load_over_http_once_a_local_files_storage_covers_the_export(
    label_studio: LabelStudio,  # noqa: F811
    project: Project,
) -> None:
    urls = {iid: t["data"]["image"] for iid, t in _server_tasks(label_studio, project).items()}
    first = next(iter(urls.values()))
    # Local-files serving alone is not enough: the server serves only folders a storage names.
    assert label_studio.request("GET", first)[0] == 404
    storage = {"project": project.id, "path": str(project.out / "images"), "use_blob_urls": False, "title": "export"}
    label_studio.api("POST", "/api/storages/localfiles", storage, expect=201)
    assert label_studio.request("GET", first, auth=False)[0] == 401
    for url in urls.values():
        status, body = label_studio.request("GET", url)
        assert status == 200, url
        assert body == (project.out / "images" / url.rsplit("/", 1)[1]).read_bytes()


def _snapshot_export(ls: LabelStudio, pid: int) -> bytes:
    """Label Studio's export snapshot with the annotators expanded (their emails), as its SDK makes it."""
    options = {"annotations__completed_by": {"only_id": False}}
    snap = ls.api(
        "POST", f"/api/projects/{pid}/exports", {"title": "inspection", "serialization_options": options}, expect=201
    )
    deadline = time.monotonic() + 30
    while (state := ls.api("GET", f"/api/projects/{pid}/exports/{snap['id']}"))["status"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline, f"export snapshot still {state['status']}"
        time.sleep(0.2)
    assert state["status"] == "completed", state
    status, body = ls.request("GET", f"/api/projects/{pid}/exports/{snap['id']}/download?exportType=JSON")
    assert status == 200, body[:500]
    return body


def test_labels_made_in_label_studio_come_back_with_import_labelstudio(
    label_studio: LabelStudio,  # noqa: F811
    project: Project,
) -> None:
    before = _labels(project.pipe, project.tmp / "before")
    got = _server_tasks(label_studio, project)
    human = sorted(i for i, t in got.items() if t["annotations"])
    auto = sorted(i for i, t in got.items() if not t["annotations"])
    flip = got[human[0]]["annotations"][0]
    new = "ok" if _choice(flip["result"]) == "scratch" else "scratch"
    relabel = [{**flip["result"][0], "value": {"choices": [new]}}]
    label_studio.api("PATCH", f"/api/annotations/{flip['id']}", {"result": relabel})  # a reviewer changed it
    choice = {"id": "c1", "from_name": "label", "to_name": "image", "type": "choices"}
    added = {"result": [{**choice, "value": {"choices": ["scratch"]}}], "was_cancelled": False, "lead_time": 2.5}
    # a contractor labelled an item the model decided:
    label_studio.api("POST", f"/api/tasks/{got[auto[0]]['id']}/annotations", added, expect=201)
    me = label_studio.api("GET", "/api/current-user/whoami")

    snapshot = project.tmp / "project-snapshot.json"
    snapshot.write_bytes(_snapshot_export(label_studio, project.id))
    report = json.loads(_cli(project.cli, "import", "labelstudio", str(snapshot), "--json"))
    counts = (report["tasks"], report["imported"], report["unchanged"], report["unlabelled"], report["refused"])
    assert counts == (6, 2, 1, 3, 0)  # a snapshot holds every task

    after = _labels(project.pipe, project.tmp / "after")
    assert after[human[0]] == (new, "human", me["email"])
    assert after[auto[0]] == ("scratch", "human", me["email"])
    assert {i: after[i] for i in after if i not in (human[0], auto[0])} == {
        i: before[i] for i in before if i not in (human[0], auto[0])
    }

    # The plain export (GET .../export, annotators as ids, every task): the same labels, nothing new.
    plain = project.tmp / "project-export.json"
    status, body = label_studio.request(
        "GET", f"/api/projects/{project.id}/export?exportType=JSON&download_all_tasks=true"
    )
    assert status == 200, body[:500]
    plain.write_bytes(body)
    exported = json.loads(body)
    assert len(exported) == len(project.tasks)
    for t in exported:
        if t["annotations"]:
            assert after[t["data"]["inspection_id"]][0] == _choice(t["annotations"][0]["result"])
    again = json.loads(_cli(project.cli, "import", "labelstudio", str(plain), "--json"))
    assert (again["tasks"], again["imported"], again["unchanged"], again["unlabelled"]) == (6, 0, 3, 3)
