"""Labelled image folders: listing, stratified splits, data hashes and ground-truth masks.

An ImageFolder has one sub-folder per class; the positive class is named by the caller and every
other class folder is a negative. Optional ground truth: `masks/<stem>.png` (pixel masks, as the
synthetic generator writes) or `annotations/<stem>.xml` (Pascal VOC boxes, as NEU-DET ships), beside
the class folders or one level above them.
"""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
NOT_CLASSES = {"masks", "annotations", "regions"}  # regions: the generator's phone/glass masks


class DatasetError(ValueError):
    """The folder is not a usable labelled dataset."""


@dataclass(frozen=True)
class Example:
    path: Path
    label: int  # 1 = positive (scratch)
    cls: str


def list_imagefolder(root: Path, *, positive: str = "scratch") -> list[Example]:
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in NOT_CLASSES)
    if positive not in classes:
        raise DatasetError(f"{root} has no positive class folder {positive!r} (found: {', '.join(classes) or 'none'})")
    if len(classes) < 2:
        raise DatasetError(f"{root} needs at least one negative class folder besides {positive!r}")
    examples = [
        Example(path, int(cls == positive), cls)
        for cls in classes
        for path in sorted((root / cls).iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]
    if not any(e.label for e in examples) or all(e.label for e in examples):
        raise DatasetError(f"{root} needs images of both the positive and a negative class")
    return examples


def data_hash(examples: Sequence[Example]) -> str:
    """sha256 over (class, file name, file content hash): the exact data a model was trained on."""
    h = hashlib.sha256()
    for e in sorted(examples, key=lambda e: (e.cls, e.path.name)):
        try:
            content = hashlib.sha256(e.path.read_bytes()).hexdigest()
        except OSError:
            content = "unreadable"
        h.update(f"{e.cls}/{e.path.name}:{content}\n".encode())
    return h.hexdigest()


def stratified_split(labels: Sequence[int], *, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (rest, held-out) with `fraction` of each class held out, reproducibly."""
    rng = np.random.default_rng(seed)
    rest: list[int] = []
    held: list[int] = []
    for cls in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == cls]
        rng.shuffle(idx)
        k = max(1, round(len(idx) * fraction)) if len(idx) > 1 else 0
        held += idx[:k]
        rest += idx[k:]
    return sorted(rest), sorted(held)


# LabelMe shape labels that mark the positive defect: "scratch", and its pinyin "ca_shang" (擦伤), as the
# aluminum-defect dataset and other Chinese-labelled factory sets name it
TRUTH_LABELS = frozenset({"scratch", "ca_shang"})


def _sibling(root: Path, folder: str, name: str) -> Path | None:
    """`root/folder/name`, or one level up (NEU-DET, goggles: images/<class>/ beside annotations/)."""
    return next((p for p in (root / folder / name, root.parent / folder / name) if p.is_file()), None)


def truth_mask(
    root: Path, example: Example, frame_wh: tuple[int, int], *, labels: frozenset[str] = TRUTH_LABELS
) -> np.ndarray | None:
    """Ground-truth scratch mask (uint8, 255 = scratch) at the original frame size, or None if the
    dataset has none for this image. Negatives with ground truth get an empty mask.

    Sources, first found wins: a binary `masks/<stem>.png` (0/255), LabelMe `annotations/<stem>.json`
    (shapes whose label is in `labels`: polygons, rectangles, line strips drawn 3 px wide), Pascal VOC
    `annotations/<stem>.xml` boxes. A class-index mask (values < 128, e.g. aluminum's 2 = scratch) says
    nothing about which class is ours, so it is skipped in favour of the LabelMe file beside it."""
    stem = example.path.stem
    mask_path = _sibling(root, "masks", f"{stem}.png")
    if mask_path is not None:
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is not None and (mask.max() > 127 or _sibling(root, "annotations", f"{stem}.json") is None):
            if mask.shape[::-1] != frame_wh:
                mask = cv2.resize(mask, frame_wh, interpolation=cv2.INTER_NEAREST)
            return np.where(mask > 127, 255, 0).astype(np.uint8)
    json_path = _sibling(root, "annotations", f"{stem}.json")
    if json_path is not None:
        return labelme_mask(json_path, frame_wh, labels=labels if example.label else frozenset())
    xml_path = _sibling(root, "annotations", f"{stem}.xml")
    if xml_path is not None:
        mask = np.zeros(frame_wh[::-1], np.uint8)
        if example.label:
            for x0, y0, x1, y1 in voc_boxes(xml_path):
                mask[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1] = 255
        return mask
    return None


def labelme_mask(path: Path, frame_wh: tuple[int, int], *, labels: frozenset[str]) -> np.ndarray:
    """Rasterise the LabelMe shapes named in `labels`, rescaled when the JSON's image size differs."""
    data = json.loads(path.read_text())
    mask = np.zeros(frame_wh[::-1], np.uint8)
    sx = frame_wh[0] / float(data.get("imageWidth") or frame_wh[0])
    sy = frame_wh[1] / float(data.get("imageHeight") or frame_wh[1])
    for shape in data.get("shapes", []):
        if shape.get("label") not in labels or len(shape.get("points", [])) < 1:
            continue
        pts = np.round(np.array(shape["points"], np.float64) * (sx, sy)).astype(np.int32)
        kind = shape.get("shape_type") or "polygon"
        if kind == "rectangle" and len(pts) == 2:
            cv2.rectangle(mask, tuple(map(int, pts[0])), tuple(map(int, pts[1])), 255, thickness=-1)
        elif kind == "polygon" and len(pts) >= 3:
            cv2.fillPoly(mask, [pts], 255)
        else:  # line strips, lines, points, short polygons: a thin scratch is a line
            cv2.polylines(mask, [pts], isClosed=False, color=255, thickness=3)
    return mask


def voc_boxes(path: Path) -> list[tuple[int, int, int, int]]:
    root = ET.parse(path).getroot()
    boxes = []
    for box in root.iter("bndbox"):
        vals = [box.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        if all(v is not None for v in vals):
            x0, y0, x1, y1 = (round(float(v)) for v in vals if v is not None)
            boxes.append((x0, y0, x1, y1))
    return boxes
