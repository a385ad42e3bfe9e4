"""Batch export of labelled inspections: imagefolder, csv, jsonl, coco, labelstudio, fiftyone.

- Streams: keyset pagination over inspection ids (`store.export_page`: deterministic order, bounded
  memory, same SQL on SQLite and PostgreSQL); every writer writes row by row.
- Never writes outside OUT, and atomically: see `export_formats` (the writers and OUT handling).

Which label: `label` is the human truth where there is one (ordinary review or blind audit), else
the model's automatic decision (`--source all` only); `label_source` says which. Quality control:
only the final label is exported (`review_kind`: label or adjudication), once per item; gold answers
and second labels never are (`labels_given` counts the inspectors' labels behind it).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inspection import store
from inspection.services import labelstudio
from inspection.services.context import Pipeline
from inspection.services.export_fiftyone import write_fiftyone
from inspection.services.export_formats import (
    CSV_FIELDS,
    ExportError,
    ExportRecord,
    ImageCopier,
    OutDir,
    write,
)

__all__ = [
    "CSV_FIELDS",
    "FORMATS",
    "SOURCES",
    "ExportError",
    "ExportFilter",
    "ExportRecord",
    "ExportResult",
    "count_records",
    "export",
    "export_zip",
    "iter_records",
]

FORMATS = ("imagefolder", "csv", "jsonl", "coco", "labelstudio", "fiftyone")
SOURCES = ("human", "audit", "all")
PAGE = 2000


@dataclass(frozen=True)
class ExportFilter:
    station: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    source: str = "all"
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ExportError(f"--source must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if self.since and self.until and _utc(self.since) >= _utc(self.until):
            raise ExportError("--since must be before --until")

    def where(self) -> store.ExportWhere:
        return store.ExportWhere(
            source=self.source,
            station=self.station,
            since=None if self.since is None else _utc(self.since),
            until=None if self.until is None else _utc(self.until),
            model_version=self.model_version,
        )


@dataclass(frozen=True)
class ExportResult:
    out: Path
    format: str
    records: int
    files: list[Path]
    skipped: int  # items left out of image formats (image missing or undecodable)
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "format": self.format,
            "records": self.records,
            "files": [str(f) for f in self.files],
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
        }


# Reading: keyset pagination


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else _utc(dt).isoformat()


def count_records(app: Pipeline, flt: ExportFilter) -> int:
    with app.read() as session:
        return store.count_export_rows(session, where=flt.where())


def iter_records(app: Pipeline, flt: ExportFilter, *, page: int = PAGE) -> Iterator[ExportRecord]:
    """Matching records in inspection-id order, `page` rows per query (memory stays flat)."""
    last = 0
    where = flt.where()
    while True:
        with app.read() as session:
            rows = store.export_page(session, where=where, after_id=last, limit=page)
            if not rows:
                return
            regions = store.export_regions(session, inspection_ids=[r.inspection_id for r in rows])
        for r in rows:
            yield _record(r, regions)
        last = rows[-1].inspection_id
        if len(rows) < page:
            return


# Fields a record takes from its stored row unchanged (the others are converted in `_record`).
_CONVERTED = {"received_at", "decided_at", "reviewed_at", "audit", "blind", "review_kind", "labels_given"}
_SHARED = ExportRecord.__dataclass_fields__.keys() & store.ExportRow.__dataclass_fields__.keys()
_AS_STORED = [f for f in ExportRecord.__dataclass_fields__ if f in _SHARED - _CONVERTED]


def _record(row: store.ExportRow, regions: dict[tuple[int, str], list[dict[str, Any]]]) -> ExportRecord:
    if row.review_id is not None:
        label, source = row.review_label, ("audit" if row.review_audit else "human")
    else:
        label, source = row.decision_label, "model"
    mv = row.model_version
    return ExportRecord(
        **{f: getattr(row, f) for f in _AS_STORED},
        received_at=_iso(row.received_at) or "",
        decided_at=_iso(row.decided_at),
        reviewed_at=_iso(row.reviewed_at),
        audit=bool(row.audit),
        blind=None if row.blind is None else bool(row.blind),
        label=label or "",
        label_source=source,
        review_kind=row.review_kind if row.review_id is not None else None,
        labels_given=int(row.labels_given or 0),
        regions=regions.get((row.inspection_id, mv), []) if mv else [],
    )


# The use case


def _progress(records: Iterator[ExportRecord], total: int, enabled: bool, desc: str) -> Iterator[ExportRecord]:
    with tqdm(total=total, disable=not enabled, unit="rec", desc=desc, file=sys.stderr, mininterval=0.5) as bar:
        pending = 0
        for rec in records:
            yield rec
            pending += 1
            if pending == 1000:
                bar.update(pending)
                pending = 0
        bar.update(pending)


def export(
    app: Pipeline,
    *,
    out: Path,
    fmt: str,
    flt: ExportFilter | None = None,
    progress: bool = True,
    actor: str | None = None,
    overwrite: bool = False,
    link_images: bool = False,
    page: int = PAGE,
    image_url_prefix: str | None = None,
) -> ExportResult:
    """Write the matching labelled records to OUT in `fmt`. Raises ExportError before writing
    anything for bad options or a target that exists or is a symbolic link.
    `image_url_prefix` (labelstudio): where the images will be served; default Label Studio's local files."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    labelstudio.check_prefix(image_url_prefix)
    flt = flt or ExportFilter()
    t0 = time.perf_counter()
    target = OutDir(out, overwrite=overwrite)
    images = ImageCopier(app.images, link=link_images)
    total = count_records(app, flt)
    records = _progress(iter_records(app, flt, page=page), total, progress, f"export {fmt}")
    try:
        if fmt == "labelstudio":
            n = labelstudio.write_tasks(target, records, images, url_prefix=image_url_prefix)
        elif fmt == "fiftyone":
            n = write_fiftyone(target, records, images, now=app.clock())
        else:
            n = write(fmt, target, records, images, now=app.clock())
        files = target.commit()
    except BaseException:
        target.abort()
        raise
    detail = {
        "format": fmt,
        "records": n,
        "out": str(target.root),
        "source": flt.source,
        "model_version": flt.model_version,
        "skipped": images.skipped,
    }
    with suppress(Exception), app.write() as session:  # the record of an export must not fail it
        store.add_event(session, kind="export.written", at=app.clock(), actor=actor, station=flt.station, detail=detail)
    return ExportResult(target.root, fmt, n, files, images.skipped, time.perf_counter() - t0)


def export_zip(
    app: Pipeline, *, fmt: str, flt: ExportFilter | None = None, work: Path, actor: str | None = None
) -> tuple[Path, ExportResult]:
    """Export into a fresh folder under `work` and pack it as one zip (for downloads)."""
    work.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=work, prefix=f"export-{fmt}-"))
    result = export(app, out=folder / "export", fmt=fmt, flt=flt, progress=False, actor=actor)
    stamp = app.clock().strftime("%Y%m%d-%H%M%S")
    zpath = folder / f"inspection-{fmt}-{stamp}.zip"
    tmp = folder / f".{zpath.name}.partial"
    with ExitStack() as stack:
        zf = stack.enter_context(zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED))
        for path in sorted(result.out.rglob("*")):
            if path.is_file() and not path.is_symlink():
                zf.write(path, path.relative_to(result.out).as_posix())
    os.replace(tmp, zpath)
    shutil.rmtree(result.out, ignore_errors=True)
    return zpath, result
