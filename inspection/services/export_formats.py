"""Export formats: the record every format writes, and the writers (imagefolder, csv, jsonl, coco)
that stream records into OUT (Label Studio's writer is in `labelstudio`).

Never writes outside OUT: OUT is resolved once, every name written is generated here (ids, hashes,
fixed file names, the two class names), and existing symlinks or files at a target are refused.
Atomic: each output is written under a hidden `.….partial` name inside OUT and renamed to its final
name only at the end, so an interrupted export never leaves a file that looks complete.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from inspection.services.image_store import ImageStore

__all__ = [
    "CLASSES",
    "CSV_FIELDS",
    "ExportError",
    "ExportRecord",
    "ImageCopier",
    "OutDir",
    "boxes",
    "write",
]

CLASSES = ("scratch", "ok")
_SUFFIX_RE = re.compile(r"^\.[a-z0-9]{1,5}$")

class ExportError(ValueError):
    """The export cannot be written as asked (bad option, OUT not writable, a target exists …)."""


@dataclass(frozen=True)
class ExportRecord:
    """One exported item: every field that made its decision, and its label."""

    inspection_id: int
    station: str
    received_at: str
    decided_at: str | None
    image_sha256: str
    image_path: str  # relative to the data directory
    source_name: str | None
    width: int | None
    height: int | None
    level: str
    policy_version: int
    model_version: str | None
    score: float | None
    route: str
    decided_by: str | None
    decision_label: str | None  # the decision as stored (model or inspector); None while pending
    audit: bool
    reason: str
    error: str | None
    inspector: str | None
    review_label: str | None
    reviewed_at: str | None
    review_seconds: float | None
    blind: bool | None
    label: str  # human truth if any, else the automatic decision
    label_source: str  # human | audit | model
    regions: list[dict[str, Any]] = field(default_factory=list)  # the deciding model's highlights
    # Which human label is final (quality control): "label" (one inspector, or two who agreed) or
    # "adjudication" (an engineer decided between two); None for a model decision. Each item is
    # exported once, with `labels_given` inspector labels behind it (gold answers never appear).
    review_kind: str | None = None
    labels_given: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


CSV_FIELDS = [f for f in ExportRecord.__dataclass_fields__]


class OutDir:
    """OUT resolved once; staged files and folders inside it, renamed into place by `commit`."""

    def __init__(self, out: Path, *, overwrite: bool) -> None:
        try:
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            self.root = out.resolve(strict=True)
        except OSError as exc:
            raise ExportError(f"cannot create {out}: {exc.strerror or exc}") from None
        if not self.root.is_dir():
            raise ExportError(f"{out} is not a folder")
        if not os.access(self.root, os.W_OK):
            raise ExportError(f"{self.root} is not writable")
        self.overwrite = overwrite
        self.staged: list[tuple[Path, Path]] = []  # (staging path, final path)
        self.stages: list[Path] = []  # staging folders, removed at the end

    def target(self, name: str) -> Path:
        """A final path directly inside OUT; refuses symlinks, and existing entries unless
        overwrite (files only: a folder is never replaced)."""
        if "/" in name or name in ("", ".", "..") or name.startswith("."):
            raise ExportError(f"refusing to write {name!r}: not a plain name inside {self.root}")
        path = self.root / name
        if path.is_symlink():
            raise ExportError(
                f"refusing to write through the symbolic link {path} (it may point outside OUT)"
            )
        if path.exists() and (path.is_dir() or not self.overwrite):
            raise ExportError(f"{path} already exists; choose an empty OUT folder")
        if path.resolve().parent != self.root:
            raise ExportError(f"{path} resolves outside {self.root}")
        return path

    def file(self, name: str) -> tuple[IO[str], Path]:
        final = self.target(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd, tmp = _mkstemp(self.root, f".{name}.", ".partial", flags)
        self.staged.append((tmp, final))
        return os.fdopen(fd, "w", encoding="utf-8", newline=""), tmp

    def scratch_file(self, name: str) -> tuple[IO[str], Path]:
        """A hidden helper file removed at the end (never renamed)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd, tmp = _mkstemp(self.root, f".{name}.", ".partial", flags)
        return os.fdopen(fd, "w+", encoding="utf-8", newline=""), tmp

    def folder(self, names: tuple[str, ...]) -> Path:
        """A hidden staging folder; its sub-folders `names` become OUT/<name> at commit."""
        for n in names:
            self.target(n)
        stage = Path(tempfile.mkdtemp(dir=self.root, prefix=".export-", suffix=".partial"))
        self.stages.append(stage)
        for n in names:
            self.staged.append((stage / n, self.root / n))
        return stage

    def commit(self) -> list[Path]:
        done = []
        for tmp, final in self.staged:
            if not tmp.exists():
                continue  # e.g. a class with no items: no empty folder
            self.target(final.name)  # nothing appeared there meanwhile
            os.replace(tmp, final)
            done.append(final)
        self._cleanup()
        return done

    def _cleanup(self) -> None:
        for stage in self.stages:
            shutil.rmtree(stage, ignore_errors=True)

    def abort(self) -> None:
        for tmp, _ in self.staged:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        self._cleanup()


def _mkstemp(root: Path, prefix: str, suffix: str, flags: int) -> tuple[int, Path]:
    for _ in range(100):
        name = f"{prefix}{os.urandom(6).hex()}{suffix}"
        try:
            return os.open(root / name, flags, 0o644), root / name
        except FileExistsError:
            continue
    raise ExportError(f"cannot create a temporary file in {root}")


def _image_name(rec: ExportRecord) -> str:
    suffix = Path(rec.image_path).suffix.lower()
    suffix = suffix if _SUFFIX_RE.match(suffix) else ".img"
    return f"{rec.inspection_id:08d}_{rec.image_sha256[:16]}{suffix}"


class ImageCopier:
    """Copies source images (from inside the image store's local root only) into a staged folder."""

    def __init__(self, images: ImageStore, *, link: bool) -> None:
        self.images = images
        self.data = images.local_root.resolve()
        self.link = link
        self.skipped = 0
        self.made: set[Path] = set()

    def source(self, rec: ExportRecord) -> Path | None:
        if rec.width is None or rec.label not in CLASSES:
            return None  # undecodable image or unknown label: no image dataset can use it
        try:  # an object store copies the object into its local cache here
            src = self.images.local_path(rec.image_path).resolve()
        except ValueError:  # not a store key (absolute, `..`): never copied
            return None
        if not src.is_relative_to(self.data) or not src.is_file():
            return None
        return src

    def put(self, rec: ExportRecord, folder: Path) -> str | None:
        src = self.source(rec)
        if src is None:
            self.skipped += 1
            return None
        if folder not in self.made:
            folder.mkdir(parents=True, exist_ok=True)
            self.made.add(folder)
        name = _image_name(rec)
        dst = folder / name
        if self.link:
            try:
                os.link(src, dst)
                return name
            except OSError:
                pass
        shutil.copyfile(src, dst)
        return name


# Format writers


def _csv_value(v: Any) -> Any:
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return "" if v is None else v


def write_csv(out: OutDir, records: Iterator[ExportRecord]) -> int:
    fh, _ = out.file("inspections.csv")
    n = 0
    with fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS)
        for rec in records:
            d = rec.__dict__
            w.writerow([_csv_value(d[k]) for k in CSV_FIELDS])
            n += 1
    return n


def write_jsonl(out: OutDir, records: Iterator[ExportRecord]) -> int:
    fh, _ = out.file("inspections.jsonl")
    n = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    with fh:
        for rec in records:
            fh.write(dumps(rec.__dict__))
            fh.write("\n")
            n += 1
    return n


def write_imagefolder(out: OutDir, records: Iterator[ExportRecord], images: ImageCopier) -> int:
    stage = out.folder(CLASSES)
    n = 0
    for rec in records:
        if images.put(rec, stage / rec.label) is not None:
            n += 1
    return n


def boxes(rec: ExportRecord) -> list[tuple[float, float, float, float, float]]:
    out = []
    for r in rec.regions:
        try:
            x, y, w, h = (float(r[k]) for k in ("x", "y", "w", "h"))
        except (KeyError, TypeError, ValueError):
            continue
        if w > 0 and h > 0:
            out.append((x, y, w, h, float(r.get("score", 0.0))))
    return out


# COCO: each image's own fields (label, score, station, model, who decided) are also gathered under
# this key of its image entry, one object that loaders keeping unknown image keys carry along whole.
COCO_IMAGE_KEY = "inspection"


def _coco_image(rec: ExportRecord, name: str) -> dict[str, Any]:
    fields = {
        "inspection_id": rec.inspection_id,
        "label": rec.label,
        "label_source": rec.label_source,
        "station": rec.station,
        "sha256": rec.image_sha256,
        "score": rec.score,
        "model_version": rec.model_version,
        "decided_by": rec.decided_by,
        "inspector": rec.inspector,
        "received_at": rec.received_at,
    }
    image = {"id": rec.inspection_id, "file_name": f"images/{name}", "width": rec.width, "height": rec.height}
    return {**image, **fields, COCO_IMAGE_KEY: fields}


def _coco_annotations(rec: ExportRecord) -> list[dict[str, Any]]:
    """The highlighted boxes, each with the polygon of its outline as `segmentation` (the regions
    are boxes: their outline is the scratch mask pycocotools' annToMask draws)."""
    return [
        {
            "image_id": rec.inspection_id,
            "category_id": 1,
            "bbox": [x, y, w, h],
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
            "area": w * h,
            "iscrowd": 0,
            "score": s,
        }
        for x, y, w, h, s in boxes(rec)
    ]


def write_coco(out: OutDir, records: Iterator[ExportRecord], images: ImageCopier, *, now: datetime) -> int:
    stage = out.folder(("images",))
    fh, _ = out.file("coco.json")
    anns, ann_path = out.scratch_file("coco-annotations")
    n = n_ann = 0
    try:
        with fh, anns:
            info = {
                "description": "smartphone scratch inspection export",
                "version": "1",
                "date_created": now.isoformat(),
            }
            fh.write('{"info":' + json.dumps(info) + ',"licenses":[],"images":[')
            for rec in records:
                name = images.put(rec, stage / "images")
                if name is None:
                    continue
                fh.write(("," if n else "") + json.dumps(_coco_image(rec, name)))
                n += 1
                if rec.label != "scratch":
                    continue  # the highlights stand for scratches only where a scratch is confirmed
                for ann in _coco_annotations(rec):
                    n_ann += 1
                    anns.write(("," if n_ann > 1 else "") + json.dumps({"id": n_ann, **ann}))
            fh.write('],"annotations":[')
            anns.flush()
            anns.seek(0)
            shutil.copyfileobj(anns, fh)
            cats = [{"id": 1, "name": "scratch", "supercategory": "defect"}]
            fh.write('],"categories":' + json.dumps(cats) + "}\n")
    finally:
        ann_path.unlink(missing_ok=True)
    return n


def write(fmt: str, out: OutDir, records: Iterator[ExportRecord], images: ImageCopier, *, now: datetime) -> int:
    """Write `records` in `fmt` into OUT (staged: `out.commit()` publishes); the number written."""
    if fmt == "csv":
        return write_csv(out, records)
    if fmt == "jsonl":
        return write_jsonl(out, records)
    if fmt == "imagefolder":
        return write_imagefolder(out, records, images)
    if fmt == "coco":
        return write_coco(out, records, images, now=now)
    raise ExportError(f"unknown format {fmt!r}")
