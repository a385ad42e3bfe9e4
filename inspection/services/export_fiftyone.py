"""`--format fiftyone`: FiftyOne's own dataset layout (`fo.types.FiftyOneDataset`), written without
FiftyOne, for `fo.Dataset.from_dir(OUT, dataset_type=fo.types.FiftyOneDataset)`.

The layout, as FiftyOne's `FiftyOneDatasetImporter` reads it:
- `metadata.json`: the dataset document. The importer puts it in place of the new dataset's own
  (keeping only its name, ids and dates), so it must declare every sample field FiftyOne itself
  has (id, filepath, tags, metadata, created_at …) besides ours, each with its type.
- `samples.json`: `{"samples": [...]}` in MongoDB extended JSON, `filepath` relative to OUT.
- `data/`: the images.

Each sample: `ground_truth` (Classification: the export's `label`, the same as imagefolder's class;
`label_source` says whether a person or the model gave it), `prediction` (Classification: the model's
call at 0.5 with the confidence of that call; null without a model), `regions` (Detections: the deciding
model's highlights, boxes relative [x, y, w, h] in 0..1, confidence the region's score), and plain
fields `inspection_id`, `station`, `score` (the model's scratch score), `model_version`, `decided_by`,
`inspector`, `label_source`, `audit`, `route`, `received_at` (a date), `image_sha256`.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Iterator
from datetime import datetime
from itertools import count
from typing import Any

from inspection.services.export_formats import CLASSES, ExportRecord, ImageCopier, OutDir, boxes

__all__ = ["LAYOUT_VERSION", "write_fiftyone"]

# The FiftyOne release whose layout this is: a newer FiftyOne migrates the dataset up on import.
LAYOUT_VERSION = "1.22.1"
PREDICTION_THRESHOLD = 0.5  # the model's call, as in the Label Studio predictions

_F = "fiftyone.core.fields."
_L = "fiftyone.core.labels."


def _field(
    name: str, ftype: str, *, doc: str | None = None, sub: str | None = None,
    fields: tuple[dict[str, Any], ...] = (), db: str | None = None, read_only: bool = False,
) -> dict[str, Any]:
    """One SampleFieldDocument as FiftyOne stores it (created_at is set by the importer)."""
    return {
        "name": name,
        "ftype": _F + ftype,
        "embedded_doc_type": doc,
        "subfield": None if sub is None else _F + sub,
        "fields": list(fields),
        "db_field": db or name,
        "description": None,
        "info": None,
        "read_only": read_only,
        "created_at": None,
    }


def _label_base() -> tuple[dict[str, Any], ...]:
    return (_field("id", "ObjectIdField", db="_id"), _field("tags", "ListField", sub="StringField"))


def _classification(name: str) -> dict[str, Any]:
    sub = (*_label_base(), _field("label", "StringField"), _field("confidence", "FloatField"),
           _field("logits", "VectorField"))
    return _field(name, "EmbeddedDocumentField", doc=_L + "Classification", fields=sub)


def _detections(name: str) -> dict[str, Any]:
    detection = (
        *_label_base(),
        _field("attributes", "DictField", doc=_L + "Attribute", sub="EmbeddedDocumentField"),
        _field("label", "StringField"),
        _field("bounding_box", "ListField", sub="FloatField"),
        _field("mask", "ArrayField"),
        _field("mask_path", "StringField"),
        _field("confidence", "FloatField"),
        _field("index", "IntField"),
    )
    items = _field("detections", "ListField", doc=_L + "Detection", sub="EmbeddedDocumentField", fields=detection)
    return _field(name, "EmbeddedDocumentField", doc=_L + "Detections", fields=(items,))


def _builtin_fields() -> list[dict[str, Any]]:
    """The fields every FiftyOne image dataset has."""
    meta = tuple(_field(n, t) for n, t in (("size_bytes", "IntField"), ("mime_type", "StringField"),
                                           ("width", "IntField"), ("height", "IntField"),
                                           ("num_channels", "IntField")))
    return [
        _field("id", "ObjectIdField", db="_id"),
        _field("filepath", "StringField"),
        _field("tags", "ListField", sub="StringField"),
        _field("metadata", "EmbeddedDocumentField", doc="fiftyone.core.metadata.ImageMetadata", fields=meta),
        _field("created_at", "DateTimeField", read_only=True),
        _field("last_modified_at", "DateTimeField", read_only=True),
        _field("_media_type", "StringField"),
        _field("_rand", "FloatField"),
        _field("_dataset_id", "ObjectIdField"),
    ]


# Our plain fields: name -> FiftyOne field type.
PLAIN_FIELDS = {
    "inspection_id": "IntField",
    "station": "StringField",
    "score": "FloatField",
    "model_version": "StringField",
    "decided_by": "StringField",
    "inspector": "StringField",
    "label_source": "StringField",
    "audit": "BooleanField",
    "route": "StringField",
    "received_at": "DateTimeField",
    "image_sha256": "StringField",
}


def dataset_document(now: datetime) -> dict[str, Any]:
    fields = [
        *_builtin_fields(),
        _classification("ground_truth"),
        _classification("prediction"),
        _detections("regions"),
        *(_field(n, t) for n, t in PLAIN_FIELDS.items()),
    ]
    return {
        "version": LAYOUT_VERSION,
        "media_type": "image",
        "tags": [],
        "info": {"description": "smartphone scratch inspection export", "date_created": now.isoformat()},
        "classes": {},
        "default_classes": list(CLASSES),
        "mask_targets": {},
        "default_mask_targets": {},
        "skeletons": {},
        "sample_fields": fields,
        "frame_fields": [],
        "saved_views": [],
        "workspaces": [],
        "annotation_runs": {},
        "brain_methods": {},
        "evaluations": {},
        "runs": {},
    }


class _ObjectIds:
    """ObjectIds as MongoDB makes them (time, random, counter): unique per export and label, so the
    same export can be imported twice into one dataset."""

    def __init__(self, now: datetime) -> None:
        self.prefix = f"{int(now.timestamp()) & 0xFFFFFFFF:08x}{os.urandom(5).hex()}"
        self.counter = count()

    def __call__(self) -> dict[str, str]:
        return {"$oid": f"{self.prefix}{next(self.counter) & 0xFFFFFF:06x}"}


def _classification_value(oid: dict[str, str], label: str, confidence: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"_id": oid, "_cls": "Classification", "tags": [], "label": label}
    if confidence is not None:
        out["confidence"] = confidence
    return out


def _regions(rec: ExportRecord, oid: _ObjectIds) -> dict[str, Any] | None:
    if not (rec.width and rec.height and rec.model_version):
        return None
    W, H = float(rec.width), float(rec.height)  # noqa: N806
    dets = [
        {"_id": oid(), "_cls": "Detection", "attributes": {}, "tags": [], "label": "scratch",
         "bounding_box": [x / W, y / H, w / W, h / H], "confidence": s}
        for x, y, w, h, s in boxes(rec)
    ]
    return {"_cls": "Detections", "detections": dets}


def sample(rec: ExportRecord, name: str, size: int, oid: _ObjectIds) -> dict[str, Any]:
    """One sample document (extended JSON) for the image `data/<name>` of `size` bytes."""
    prediction = None
    if rec.score is not None and rec.model_version:
        call = "scratch" if rec.score >= PREDICTION_THRESHOLD else "ok"
        prediction = _classification_value(oid(), call, rec.score if call == "scratch" else 1.0 - rec.score)
    plain = {k: getattr(rec, k) for k in PLAIN_FIELDS}
    plain["received_at"] = {"$date": rec.received_at} if rec.received_at else None
    return {
        "filepath": f"data/{name}",
        "tags": [],
        "_media_type": "image",
        "_rand": int(rec.image_sha256[:13], 16) / 16**13 if rec.image_sha256 else 0.5,  # stable shuffles
        "metadata": {"_cls": "ImageMetadata", "size_bytes": size, "mime_type": mimetypes.guess_type(name)[0],
                     "width": rec.width, "height": rec.height},
        "ground_truth": _classification_value(oid(), rec.label),
        "prediction": prediction,
        "regions": _regions(rec, oid),
        **plain,
    }


def write_fiftyone(out: OutDir, records: Iterator[ExportRecord], images: ImageCopier, *, now: datetime) -> int:
    """`metadata.json`, `samples.json` and `data/` into OUT (staged); the number of samples."""
    stage = out.folder(("data",))
    meta, _ = out.file("metadata.json")
    with meta:
        json.dump(dataset_document(now), meta, indent=1)
    fh, _ = out.file("samples.json")
    oid = _ObjectIds(now)
    n = 0
    with fh:
        fh.write('{"samples":[')
        for rec in records:
            name = images.put(rec, stage / "data")
            if name is None:
                continue
            size = (stage / "data" / name).stat().st_size
            fh.write(("," if n else "") + "\n" + json.dumps(sample(rec, name, size, oid), allow_nan=False))
            n += 1
        fh.write("\n]}\n")
    return n
