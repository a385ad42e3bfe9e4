"""Export: every format read back by the loader its users would use; streaming order, filters,
refusal to write outside OUT, and no complete-looking file after an interruption."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from inspection.services import context, export, ingest, policies
from inspection.services.context import Pipeline
from inspection.services.export import ExportError, ExportFilter
from tests.engineer_fixtures import eng_app, label_queue, png_bytes  # noqa: F401  (pytest fixtures)

LEVELS = [10, 240, 128] * 4  # auto pass, auto reject, review


@pytest.fixture
def stocked(eng_app: Pipeline) -> Pipeline:  # noqa: F811
    """12 items on s1 under partial with 50 % audits (+ 2 on s2), all people's work done."""
    policies.set_policy(
        eng_app, station="s1", by="erin", reason="t", level="partial", pass_below=0.2, reject_above=0.8, audit_rate=0.5
    )
    truth: dict[int, str] = {}
    for i, lv in enumerate(LEVELS):
        res = ingest.inspect(eng_app, data=png_bytes(lv, seed=i), station="s1")
        truth[res.inspection.id] = "scratch" if lv >= 128 else "ok"
    label_queue(eng_app, truth=truth, station="s1")
    for i in range(2):  # human_only station: labelled by people only
        res = ingest.inspect(eng_app, data=png_bytes(60, seed=100 + i), station="s2")
        truth[res.inspection.id] = "ok"
    label_queue(eng_app, truth=truth, station="s2")
    return eng_app


def _no_partials(out: Path) -> None:
    assert [p.name for p in out.rglob("*") if ".partial" in p.name] == []


def test_csv_has_one_row_per_item_with_every_decision_field_in_a_deterministic_order(
    stocked: Pipeline, tmp_path: Path
) -> None:
    res = export.export(stocked, out=tmp_path / "a", fmt="csv", progress=False)
    rows = list(csv.DictReader((tmp_path / "a" / "inspections.csv").open()))
    assert res.records == len(rows) == 14
    ids = [int(r["inspection_id"]) for r in rows]
    assert ids == sorted(ids)
    needed = {
        "image_sha256",
        "image_path",
        "station",
        "received_at",
        "model_version",
        "score",
        "route",
        "decided_by",
        "policy_version",
        "inspector",
        "label",
        "label_source",
    }
    assert needed <= set(rows[0])
    auto = [r for r in rows if r["decided_by"] == "model"]
    assert auto and all(r["model_version"] == "v1" and float(r["score"]) >= 0 for r in auto)
    export.export(stocked, out=tmp_path / "b", fmt="csv", progress=False, page=3)  # small pages, same bytes
    assert (tmp_path / "a" / "inspections.csv").read_bytes() == (tmp_path / "b" / "inspections.csv").read_bytes()
    _no_partials(tmp_path)


def test_jsonl_filters_by_source_station_time_and_model_version(stocked: Pipeline, tmp_path: Path) -> None:
    def rows(name: str, flt: ExportFilter) -> list[dict[str, object]]:
        export.export(stocked, out=tmp_path / name, fmt="jsonl", flt=flt, progress=False)
        return [json.loads(line) for line in (tmp_path / name / "inspections.jsonl").read_text().splitlines()]

    human = rows("h", ExportFilter(source="human"))
    audit = rows("a", ExportFilter(source="audit"))
    assert human and all(r["label_source"] == "human" and r["inspector"] == "ines" for r in human)
    assert audit and all(r["label_source"] == "audit" and r["audit"] for r in audit)
    assert {r["label"] for r in audit} <= {"ok", "scratch"}
    assert {r["station"] for r in rows("s", ExportFilter(station="s2"))} == {"s2"}
    assert rows("m", ExportFilter(model_version="nope")) == []
    assert len(rows("t", ExportFilter(until=context._utcnow().replace(year=2000)))) == 0
    regions = [r["regions"] for r in human if r["model_version"]]
    assert regions and regions[0] == [{"x": 1, "y": 2, "w": 3, "h": 4, "score": pytest.approx(128 / 255, abs=0.01)}]


def test_imagefolder_loads_with_torchvision_and_matches_the_classification_tree(
    stocked: Pipeline, tmp_path: Path
) -> None:
    from torchvision.datasets import ImageFolder

    out = tmp_path / "if"
    res = export.export(stocked, out=out, fmt="imagefolder", progress=False)
    ds = ImageFolder(str(out))
    assert ds.classes == ["ok", "scratch"] and len(ds) == res.records == 14
    image, target = ds[0]
    assert image.size == (64, 64) and ds.classes[target] in ("ok", "scratch")
    # FiftyOne's ImageClassificationDirectoryTree: <root>/<class>/<image>, nothing else at the root.
    assert sorted(p.name for p in out.iterdir()) == ["ok", "scratch"]
    assert all(p.parent.parent == out for p in out.rglob("*.png"))


def test_coco_export_reads_back_with_pycocotools(stocked: Pipeline, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    out = tmp_path / "coco"
    export.export(stocked, out=out, fmt="coco", progress=False)
    coco = COCO(str(out / "coco.json"))
    imgs = coco.loadImgs(coco.getImgIds())
    assert len(imgs) == 14 and all((out / i["file_name"]).is_file() for i in imgs)
    scratched = {i["id"] for i in imgs if i["label"] == "scratch"}
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns and {a["image_id"] for a in anns} <= scratched
    assert anns[0]["bbox"] == [1.0, 2.0, 3.0, 4.0] and coco.loadCats(1)[0]["name"] == "scratch"
    for a in anns:  # every annotation is a mask too (segmentation, iscrowd, area)
        assert a["iscrowd"] == 0 and a["area"] == a["bbox"][2] * a["bbox"][3]
        mask = coco.annToMask(a)
        img = coco.imgs[a["image_id"]]
        assert mask.shape == (img["height"], img["width"]) and mask.sum() > 0
    for i in imgs:  # the item's own fields, gathered under one documented key
        fields = i["inspection"]
        assert {"label", "score", "station", "model_version", "decided_by", "inspector"} <= set(fields)
        assert fields["label"] == i["label"] and fields["inspection_id"] == i["id"]
    assert {i["inspection"]["decided_by"] for i in imgs} == {"model", "inspector"}


def test_label_studio_tasks_carry_images_predictions_and_labels(stocked: Pipeline, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    out = tmp_path / "ls"
    export.export(stocked, out=out, fmt="labelstudio", progress=False)
    tasks = json.loads((out / "labelstudio.json").read_text())
    config = ET.fromstring((out / "labelstudio_config.xml").read_text())
    controls = {el.get("name"): el.tag for el in config if el.get("toName") == "image"}
    assert controls == {"label": "Choices", "regions": "RectangleLabels"}
    assert isinstance(tasks, list) and len(tasks) == 14
    with_pred = 0
    for t in tasks:
        assert t["data"]["image"].startswith("/data/local-files/?d=ls/images/")  # unique per export folder
        assert (out.parent / t["data"]["image"].split("?d=")[1]).is_file()
        for p in t["predictions"]:
            with_pred += 1
            assert isinstance(p["model_version"], str) and 0 <= p["score"] <= 1
            for r in p["result"]:
                assert r["to_name"] == "image" and controls[r["from_name"]].lower() == r["type"]
                if r["type"] == "rectanglelabels":
                    v = r["value"]
                    assert all(0 <= v[k] <= 100 for k in ("x", "y", "width", "height"))
                    assert r["original_width"] == 64
                else:
                    assert r["value"]["choices"][0] in ("scratch", "ok")
        for a in t["annotations"]:
            assert a["result"][0]["value"]["choices"][0] in ("scratch", "ok")
            assert a["ground_truth"] is True and "completed_by" not in a  # no unknown user for Label Studio
            assert t["meta"]["inspector"] == "ines"
    assert with_pred == 12  # the human_only station's items have no model output


def test_export_refuses_to_write_through_symlinks_or_over_existing_files(stocked: Pipeline, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "scratch").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ExportError, match="symbolic link"):
        export.export(stocked, out=out, fmt="imagefolder", progress=False)
    (out / "inspections.csv").symlink_to(outside / "victim.csv")
    (outside / "victim.csv").write_text("keep me")
    with pytest.raises(ExportError, match="symbolic link"):
        export.export(stocked, out=out, fmt="csv", progress=False)
    assert (outside / "victim.csv").read_text() == "keep me" and list(outside.iterdir()) == [outside / "victim.csv"]
    plain = tmp_path / "plain"
    export.export(stocked, out=plain, fmt="jsonl", progress=False)
    with pytest.raises(ExportError, match="already exists"):
        export.export(stocked, out=plain, fmt="jsonl", progress=False)
    export.export(stocked, out=plain, fmt="jsonl", progress=False, overwrite=True)
    _no_partials(tmp_path)


def test_an_image_path_outside_the_data_folder_is_never_copied(stocked: Pipeline, tmp_path: Path) -> None:
    from inspection import store

    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(1, seed=1))
    with stocked.write() as session:
        img = session.get(store.ImageRow, 1)
        assert img is not None
        img.path = os.path.relpath(secret, stocked.settings.data_dir)
        session.add(img)
    res = export.export(stocked, out=tmp_path / "x", fmt="imagefolder", progress=False)
    assert res.skipped == 1 and res.records == 13


def test_an_interrupted_export_leaves_nothing_that_looks_complete(
    stocked: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = export.iter_records

    def dying(app: Pipeline, flt: ExportFilter, *, page: int = 2000) -> Iterator[export.ExportRecord]:
        for n, rec in enumerate(real(app, flt, page=page)):
            if n == 3:
                raise KeyboardInterrupt
            yield rec

    monkeypatch.setattr(export, "iter_records", dying)
    for fmt in export.FORMATS:
        out = tmp_path / fmt
        with pytest.raises(KeyboardInterrupt):
            export.export(stocked, out=out, fmt=fmt, progress=False)
        assert list(out.iterdir()) == [], fmt


def test_export_zip_packs_the_export_for_download(stocked: Pipeline, tmp_path: Path) -> None:
    import zipfile

    zpath, res = export.export_zip(stocked, fmt="csv", work=tmp_path / "w")
    with zipfile.ZipFile(zpath) as zf:
        assert zf.namelist() == ["inspections.csv"]
    assert res.records == 14
