"""FiftyOne (the real tool, its own environment and database) loads the `fiftyone` export with every
field of every item, the `imagefolder` export with its classes, and the COCO export's boxes (the item
fields joined from the image entries' `inspection` key: FiftyOne's COCO importer keeps no image keys)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inspection.services import export, ingest, policies
from inspection.services.context import Pipeline
from inspection.services.export import ExportFilter, ExportRecord
from tests import fiftyone_env
from tests.engineer_fixtures import eng_app, label_queue, png_bytes  # noqa: F401  (pytest fixtures)

LEVELS = [10, 240, 128] * 4  # auto pass, auto reject, review
PLAIN = ("inspection_id", "station", "score", "model_version", "decided_by", "inspector", "label_source",
         "audit", "route", "image_sha256")


@pytest.fixture
def stocked(eng_app: Pipeline) -> Pipeline:  # noqa: F811
    """12 items on s1 under partial with 50 % audits (+ 2 on s2, people only), all labelled."""
    policies.set_policy(
        eng_app, station="s1", by="erin", reason="t", level="partial", pass_below=0.2, reject_above=0.8, audit_rate=0.5
    )
    truth: dict[int, str] = {}
    for i, lv in enumerate(LEVELS):
        res = ingest.inspect(eng_app, data=png_bytes(lv, seed=i), station="s1")
        truth[res.inspection.id] = "scratch" if lv >= 128 else "ok"
    label_queue(eng_app, truth=truth, station="s1")
    for i in range(2):
        res = ingest.inspect(eng_app, data=png_bytes(60, seed=100 + i), station="s2")
        truth[res.inspection.id] = "ok"
    label_queue(eng_app, truth=truth, station="s2")
    return eng_app


def _ms(iso: str) -> datetime:
    """A time to the millisecond (MongoDB keeps milliseconds), naive UTC as FiftyOne returns it."""
    t = datetime.fromisoformat(iso)
    t = t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _check_sample(s: dict[str, Any], rec: ExportRecord) -> None:
    assert s["exists"] and s["file"].startswith(f"{rec.inspection_id:08d}_")
    assert {k: s[k] for k in PLAIN} == {k: getattr(rec, k) for k in PLAIN}
    assert _ms(s["received_at"]) == _ms(rec.received_at)
    assert s["ground_truth"]["label"] == rec.label and s["metadata"] == {"width": 64, "height": 64}
    if rec.model_version is None or rec.score is None:
        assert s["prediction"] is None and s["regions"] is None
        return
    call = "scratch" if rec.score >= 0.5 else "ok"
    assert s["prediction"]["label"] == call
    assert s["prediction"]["confidence"] == pytest.approx(rec.score if call == "scratch" else 1 - rec.score)
    expected = [([r["x"] / 64, r["y"] / 64, r["w"] / 64, r["h"] / 64], r["score"]) for r in rec.regions]
    got = [(d["bounding_box"], d["confidence"]) for d in s["regions"]]
    assert got == [(pytest.approx(b), pytest.approx(c)) for b, c in expected] and got


def test_fiftyone_loads_the_fiftyone_imagefolder_and_coco_exports_with_every_field(
    stocked: Pipeline, tmp_path: Path
) -> None:
    outs = {fmt: tmp_path / fmt for fmt in ("fiftyone", "imagefolder", "coco")}
    for fmt, out in outs.items():
        assert export.export(stocked, out=out, fmt=fmt, progress=False).records == 14
    assert sorted(p.name for p in outs["fiftyone"].iterdir()) == ["data", "metadata.json", "samples.json"]
    records = {r.inspection_id: r for r in export.iter_records(stocked, ExportFilter())}
    assert {r.decided_by for r in records.values()} == {"model", "inspector"}
    assert {r.model_version for r in records.values()} == {"v1", None}

    loaded = fiftyone_env.load(outs, tmp_path / "fo" / "db")

    fo = loaded["fiftyone"]
    assert fo["schema"]["ground_truth"] == fo["schema"]["prediction"] == "EmbeddedDocumentField:Classification"
    assert fo["schema"]["regions"] == "EmbeddedDocumentField:Detections"
    assert fo["schema"]["score"] == "FloatField" and fo["schema"]["received_at"] == "DateTimeField"
    assert fo["schema"]["inspection_id"] == "IntField" and fo["schema"]["audit"] == "BooleanField"
    assert len(fo["samples"]) == 14
    for s in fo["samples"]:
        _check_sample(s, records[s["inspection_id"]])
    label_ids = [s[k]["id"] for s in fo["samples"] for k in ("ground_truth", "prediction") if s[k]]
    label_ids += [d["id"] for s in fo["samples"] for d in s["regions"] or []]
    assert len(set(label_ids)) == len(label_ids)  # every label its own id
    q = fo["queries"]
    assert q["count_values"] == Counter(r.label for r in records.values())
    assert q["regions"] == sum(len(r.regions) for r in records.values() if r.model_version) > 0
    assert q["by_station"] == {"s1": 12, "s2": 2}
    scores = [r.score for r in records.values() if r.score is not None]
    assert q["bounds_score"] == pytest.approx([min(scores), max(scores)])

    folder = loaded["imagefolder"]
    assert folder["schema"]["ground_truth"] == "EmbeddedDocumentField:Classification"
    assert sorted(int(s["file"][:8]) for s in folder["samples"]) == sorted(records)
    for s in folder["samples"]:
        assert s["exists"] and s["ground_truth"]["label"] == records[int(s["file"][:8])].label

    coco = loaded["coco"]
    assert len(coco["samples"]) == 14
    for s in coco["samples"]:
        rec = records[s["coco_id"]]
        assert s["exists"] and s["label"] == rec.label and s["station"] == rec.station
        assert (s["score"], s["model_version"], s["decided_by"]) == (rec.score, rec.model_version, rec.decided_by)
        boxes = s["detections"] or []
        assert len(boxes) == (len(rec.regions) if rec.label == "scratch" else 0)
        assert all(d["label"] == "scratch" for d in boxes)


def test_the_fiftyone_layout_declares_every_field_it_writes(stocked: Pipeline, tmp_path: Path) -> None:
    """Without FiftyOne: each sample key has a declared field (the importer replaces the dataset's
    document with metadata.json, so an undeclared key would be invisible in FiftyOne)."""
    out = tmp_path / "fo"
    export.export(stocked, out=out, fmt="fiftyone", progress=False)
    meta = json.loads((out / "metadata.json").read_text())
    declared = {f["name"] for f in meta["sample_fields"]} | {"_id"}
    samples = json.loads((out / "samples.json").read_text())["samples"]
    assert len(samples) == 14 and all(set(s) <= declared for s in samples)
    assert all((out / s["filepath"]).is_file() and not Path(s["filepath"]).is_absolute() for s in samples)
    assert meta["media_type"] == "image" and meta["version"]
