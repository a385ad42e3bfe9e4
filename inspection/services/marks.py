"""Marks an inspector draws where the defect is (a box or a stroke), stored with the label, and the
retraining side of them: `marks_for` (the marks of an item) and `mark_mask` (a mask to supervise the
heatmap with).

Coordinates are original-frame pixels whatever view the inspector drew on (the screen maps its crop
back to the frame before storing), so a mask lines up with the stored image and its heatmap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inspection.services.context import Pipeline
from inspection.services.errors import InputError
from inspection.store import inspector as records

MARK_KINDS = ("box", "stroke")
MAX_MARKS = 20  # per label: more is a scribble, not a location
MAX_POINTS = 400  # per stroke (the screen thins a drag to a few dozen points)
DEFAULT_STROKE = 6.0  # frame pixels: a stroke's width when none is given


@dataclass(frozen=True)
class Mark:
    """One mark in original-frame pixels: a box is two opposite corners, a stroke a polyline."""

    kind: str
    points: tuple[tuple[float, float], ...]
    width: float = 0.0
    label: str | None = None  # the label it came with (None before storing)
    inspector: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "points": [list(p) for p in self.points], "width": self.width}


def parse_marks(raw: Sequence[Mapping[str, Any]] | None, *, frame_wh: tuple[int, int] | None = None) -> list[Mark]:
    """Validated marks from a request ({"kind", "points", "width"}); points are clipped to the frame."""
    if not raw:
        return []
    if len(raw) > MAX_MARKS:
        raise InputError(f"at most {MAX_MARKS} marks per label, got {len(raw)}")
    out = []
    for item in raw:
        kind = str(item.get("kind", ""))
        if kind not in MARK_KINDS:
            raise InputError(f"mark kind must be one of {list(MARK_KINDS)}, got {kind!r}")
        pts = _points(item.get("points"), frame_wh)
        if kind == "box" and len(pts) != 2:
            raise InputError("a box mark needs exactly two corners")
        if kind == "stroke" and not 1 <= len(pts) <= MAX_POINTS:
            raise InputError(f"a stroke mark needs 1-{MAX_POINTS} points")
        width = float(item.get("width") or (DEFAULT_STROKE if kind == "stroke" else 0.0))
        if not (math.isfinite(width) and 0 <= width <= 500):
            raise InputError("mark width must be between 0 and 500 pixels")
        out.append(Mark(kind, pts, width))
    return out


def _points(raw: Any, frame_wh: tuple[int, int] | None) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list | tuple):
        raise InputError("mark points must be a list of [x, y] pairs")
    pts = []
    for p in raw:
        if not (isinstance(p, list | tuple) and len(p) == 2):
            raise InputError("mark points must be [x, y] pairs")
        x, y = float(p[0]), float(p[1])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise InputError("mark points must be finite numbers")
        if frame_wh is not None:
            x, y = min(max(x, 0.0), float(frame_wh[0])), min(max(y, 0.0), float(frame_wh[1]))
        pts.append((round(x, 1), round(y, 1)))
    return tuple(pts)


def marks_for(app: Pipeline, *, inspection_id: int) -> list[Mark]:
    """The marks of an item's live labels, oldest first: the mask source for retraining.

    Each mark says which label it came with (a mark on an OK label is an inspector pointing at a
    look-alike, not a scratch: retraining uses the marks of scratch labels as positives)."""
    with app.read() as session:
        rows = records.marks_of(session, inspection_id=inspection_id)
    return [Mark(r.kind, r.points, r.width, r.label, r.inspector) for r in rows]


def mark_mask(marks: Sequence[Mark], frame_wh: tuple[int, int], *, step: int = 1) -> np.ndarray:
    """A uint8 mask (255 inside a mark) over the frame at 1/step resolution, e.g. step 8 to match the
    stored heatmaps (vision.preprocess.heatmap_to_frame)."""
    w, h = max(1, frame_wh[0] // step), max(1, frame_wh[1] // step)
    mask = np.zeros((h, w), np.uint8)
    for m in marks:
        pts = np.array([[x / step, y / step] for x, y in m.points], np.float64)
        if m.kind == "box":
            (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
            cv2.rectangle(mask, (round(x0), round(y0)), (round(x1), round(y1)), 255, thickness=cv2.FILLED)
        else:
            thick = max(1, round(m.width / step))
            poly = np.round(pts).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(mask, [poly], isClosed=False, color=255, thickness=thick)
            if len(pts) == 1:
                cv2.circle(mask, (int(poly[0, 0, 0]), int(poly[0, 0, 1])), max(1, thick // 2), 255, cv2.FILLED)
    return mask


def training_masks(app: Pipeline, *, labels: Mapping[int, str]) -> dict[int, np.ndarray]:
    """Masks (frame size, 255 where marked) for retraining: `labels` maps inspection id -> the label
    training uses. Only items trained as scratch get one, from the marks of their live scratch labels
    (a mark on an OK label points at a look-alike, which would teach the heatmap the opposite)."""
    wanted = [i for i, label in labels.items() if label == "scratch"]
    with app.read() as session:
        found = records.marks_of_items(session, inspection_ids=wanted)
    out: dict[int, np.ndarray] = {}
    for item, (frame, rows) in found.items():
        ours = [Mark(r.kind, r.points, r.width, r.label, r.inspector) for r in rows if r.label == "scratch"]
        if frame is None or not ours:
            continue
        mask = mark_mask(ours, frame)
        if mask.any():
            out[item] = mask
    return out


def save_mask(mask: np.ndarray, path: Path) -> None:
    """Write a mask as the PNG that vision.dataset.truth_mask reads (`masks/<stem>.png`, 0/255)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", mask)
    if not ok:
        raise ValueError(f"could not encode the mask for {path.name}")
    path.write_bytes(buf.tobytes())
