"""Label Studio: the export's tasks (`--format labelstudio`) and the import of labels made there.

Export, for a stock Label Studio server (no server flags):
- annotations carry no `completed_by`: Label Studio refuses an email it does not know unless
  ALLOW_IMPORT_TASKS_WITH_UNKNOWN_EMAILS is set, and assigns an annotation without one to the user
  who imports. Who labelled it is kept in the task's `meta` (`inspector`), which Label Studio keeps.
- a stored human label is the live (final) review of its item: `ground_truth: true`.
- the model's call is a prediction with `model_version` and `score`.
- `labelstudio_config.xml` beside the tasks is the labelling config they match.
- images: `/data/local-files/?d=<OUT folder name>/images/<file>` (Label Studio's local files, with
  LOCAL_FILES_DOCUMENT_ROOT the folder that holds OUT and a Local Files storage on OUT/images), so
  one server can serve many exports; or `<image_url_prefix>/<file>` for images served over HTTP.

Import (`inspection import labelstudio FILE`): a Label Studio JSON export of such tasks, read back
as labels with who and when. Items are found by the `inspection_id` and `sha256` the export put in
`data`; a task naming an unknown item, or an image that is not that item's, is refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from inspection import store
from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.services.export_formats import ExportError, ExportRecord, ImageCopier, OutDir, boxes
from inspection.services.validation import validate_name

__all__ = ["CONFIG", "ImportReport", "import_labelstudio", "parse_tasks", "write_tasks"]

CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <Choices name="label" toName="image" choice="single" showInline="true">
    <Choice value="scratch"/>
    <Choice value="ok"/>
  </Choices>
  <RectangleLabels name="regions" toName="image">
    <Label value="scratch" background="red"/>
  </RectangleLabels>
</View>
"""
LABELS = ("scratch", "ok")


# Export


def image_url(out: OutDir, name: str, prefix: str | None) -> str:
    if prefix:
        return f"{prefix.rstrip('/')}/{quote(name)}"
    return "/data/local-files/?d=" + quote(f"{out.root.name}/images/{name}", safe="/")


def check_prefix(prefix: str | None) -> None:
    if prefix is not None and not prefix.startswith(("http://", "https://", "/")):
        raise ExportError(f"--image-url-prefix must start with http://, https:// or /, got {prefix!r}")


def _choice(label: str, rid: str) -> dict[str, Any]:
    return {"id": rid, "from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}


def _rectangles(rec: ExportRecord, rid: str) -> list[dict[str, Any]]:
    if not (rec.width and rec.height):
        return []
    W, H = float(rec.width), float(rec.height)  # noqa: N806
    return [
        {
            "id": f"{rid}r{k}",
            "from_name": "regions",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": rec.width,
            "original_height": rec.height,
            "image_rotation": 0,
            "score": s,
            "value": {
                "x": 100 * x / W,
                "y": 100 * y / H,
                "width": 100 * w / W,
                "height": 100 * h / H,
                "rotation": 0,
                "rectanglelabels": ["scratch"],
            },
        }
        for k, (x, y, w, h, s) in enumerate(boxes(rec))
    ]


def task(rec: ExportRecord, url: str) -> dict[str, Any]:
    """One Label Studio task: the image and the ids that find the item again on import."""
    out: dict[str, Any] = {
        "data": {"image": url, "inspection_id": rec.inspection_id, "station": rec.station, "sha256": rec.image_sha256},
        "meta": {
            "inspection_id": rec.inspection_id,
            "inspector": rec.inspector,
            "label_source": rec.label_source,
            "reviewed_at": rec.reviewed_at,
            "decided_by": rec.decided_by,
        },
        "predictions": [],
        "annotations": [],
    }
    if rec.score is not None and rec.model_version:
        call = "scratch" if rec.score >= 0.5 else "ok"
        rid = f"p{rec.inspection_id}"
        result = [_choice(call, f"{rid}c"), *_rectangles(rec, rid)]
        out["predictions"].append({"model_version": rec.model_version, "score": rec.score, "result": result})
    if rec.label_source != "model" and rec.label in LABELS:
        out["annotations"].append(
            {
                "result": [_choice(rec.label, f"a{rec.inspection_id}c")],
                "ground_truth": True,  # the live review: the item's final human label
                "was_cancelled": False,
                "lead_time": rec.review_seconds,
            }
        )
    return out


def write_tasks(out: OutDir, records: Iterator[ExportRecord], images: ImageCopier, *, url_prefix: str | None) -> int:
    """`labelstudio.json` (a list of tasks), `labelstudio_config.xml` and `images/` into OUT."""
    check_prefix(url_prefix)
    stage = out.folder(("images",))
    cfg, _ = out.file("labelstudio_config.xml")
    with cfg:
        cfg.write(CONFIG)
    fh, _ = out.file("labelstudio.json")
    n = 0
    with fh:
        fh.write("[\n")
        for rec in records:
            name = images.put(rec, stage / "images")
            if name is None:
                continue
            fh.write((",\n" if n else "") + json.dumps(task(rec, image_url(out, name, url_prefix))))
            n += 1
        fh.write("\n]\n")
    return n


# Import


@dataclass(frozen=True)
class LabelIn:
    """One label read from a Label Studio task."""

    inspection_id: int
    sha256: str | None
    label: str
    who: str
    at: datetime | None


@dataclass
class ImportReport:
    tasks: int = 0
    imported: int = 0  # new or changed labels stored
    unchanged: int = 0  # the item already had this label
    unlabelled: int = 0  # no (uncancelled) scratch/ok choice in the task
    refused: list[str] = field(default_factory=list)  # why, one line per refused task

    def to_dict(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "imported": self.imported,
            "unchanged": self.unchanged,
            "unlabelled": self.unlabelled,
            "refused": len(self.refused),
            "refusals": self.refused,
        }


def _when(ann: dict[str, Any]) -> datetime | None:
    for key in ("updated_at", "created_at"):
        raw = ann.get(key)
        if isinstance(raw, str):
            try:
                dt = datetime.fromisoformat(raw)
            except ValueError:
                continue
            return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return None


def _label_of(ann: dict[str, Any]) -> str | None:
    for r in ann.get("result") or []:
        if isinstance(r, dict) and r.get("from_name") == "label" and r.get("type") == "choices":
            choices = (r.get("value") or {}).get("choices") or []
            if len(choices) == 1 and choices[0] in LABELS:
                return str(choices[0])
    return None


def _who(ann: dict[str, Any], by: str | None) -> str:
    """`--by`, else the Label Studio user: its email (export with completed_by expanded) or id."""
    if by:
        return by
    user = ann.get("completed_by")
    if isinstance(user, dict):
        if isinstance(user.get("email"), str) and user["email"]:
            return str(user["email"])[:64]
        user = user.get("id")
    return f"labelstudio-user-{user}" if isinstance(user, int) else "labelstudio"


def _latest(annotations: list[Any]) -> dict[str, Any] | None:
    """The most recent annotation that gives a label (Label Studio keeps one per annotator)."""
    usable = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled") and _label_of(a)]
    if not usable:
        return None
    floor = datetime.min.replace(tzinfo=UTC)
    return max(enumerate(usable), key=lambda ia: (_when(ia[1]) or floor, ia[0]))[1]


def _read_task(t: Any, by: str | None) -> LabelIn | str | None:
    """The task's label, None without one, or why the task is refused."""
    if not isinstance(t, dict) or not isinstance(t.get("data"), dict):
        return "not a Label Studio task (no data object)"
    data = t["data"]
    iid = data.get("inspection_id", (t.get("meta") or {}).get("inspection_id"))
    if isinstance(iid, str) and iid.isdigit():
        iid = int(iid)
    if not isinstance(iid, int) or isinstance(iid, bool):
        return f"task {t.get('id')}: no inspection_id in data (not exported by inspection)"
    ann = _latest(t.get("annotations") or [])
    if ann is None:
        return None
    label = _label_of(ann)
    assert label is not None
    sha = data.get("sha256")
    return LabelIn(iid, sha if isinstance(sha, str) else None, label, _who(ann, by), _when(ann))


def parse_tasks(path: Path) -> list[Any]:
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path} is not a Label Studio JSON export (a list of tasks)")
    return tasks


def import_labelstudio(app: Pipeline, *, path: Path, by: str | None = None) -> ImportReport:
    """Store the labels of a Label Studio JSON export; every known item in one transaction each."""
    by = validate_name(by, "--by") if by else None
    report = ImportReport()
    for t in parse_tasks(path):
        report.tasks += 1
        got = _read_task(t, by)
        if got is None:
            report.unlabelled += 1
            continue
        if isinstance(got, str):
            report.refused.append(got)
            continue
        try:
            with app.write() as session:
                created = store.import_label(
                    session,
                    inspection_id=got.inspection_id,
                    sha256=got.sha256,
                    inspector=validate_name(got.who, "annotator"),
                    label=got.label,
                    at=got.at or app.clock(),
                    now=app.clock(),
                    source=str(path.name),
                )
        except (LookupError, InputError, store.QueueConflict) as exc:
            report.refused.append(f"inspection {got.inspection_id}: {exc}")
            continue
        if created:
            report.imported += 1
        else:
            report.unchanged += 1
    return report
