"""Labelled image folders: listing, stratified splits, data hashes and ground-truth masks.

An ImageFolder has one sub-folder per class; the positive class is named by the caller and every
other class folder is a negative. Optional ground truth: `masks/<stem>.png` (pixel masks, as the
synthetic generator writes) or `annotations/<stem>.xml` (Pascal VOC boxes, as NEU-DET ships), beside
the class folders or one level above them.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
NOT_CLASSES = {"masks", "annotations"}


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


def truth_mask(root: Path, example: Example, frame_wh: tuple[int, int]) -> np.ndarray | None:
    """Ground-truth scratch mask (uint8, 255 = scratch) at the original frame size, or None if the
    dataset has none for this image. Negatives with ground truth get an empty mask."""
    stem = example.path.stem
    mask_path = root / "masks" / f"{stem}.png"
    if mask_path.is_file():
        mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is not None:
            if mask.shape[::-1] != frame_wh:
                mask = cv2.resize(mask, frame_wh, interpolation=cv2.INTER_NEAREST)
            return np.where(mask > 127, 255, 0).astype(np.uint8)
    # VOC boxes beside the class folders, or one level up (NEU-DET: images/<class>/, annotations/)
    xml_path = next((p for p in (root / "annotations" / f"{stem}.xml", root.parent / "annotations" / f"{stem}.xml")
                     if p.is_file()), None)
    if xml_path is not None:
        mask = np.zeros(frame_wh[::-1], np.uint8)
        if example.label:
            for x0, y0, x1, y1 in voc_boxes(xml_path):
                mask[max(0, y0) : y1 + 1, max(0, x0) : x1 + 1] = 255
        return mask
    return None


def voc_boxes(path: Path) -> list[tuple[int, int, int, int]]:
    root = ET.parse(path).getroot()
    boxes = []
    for box in root.iter("bndbox"):
        vals = [box.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        if all(v is not None for v in vals):
            x0, y0, x1, y1 = (round(float(v)) for v in vals if v is not None)
            boxes.append((x0, y0, x1, y1))
    return boxes
