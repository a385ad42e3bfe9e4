"""Display images for the review screen: downscaled JPEGs, with or without the model's highlight,
rendered once and kept in a small in-memory cache so that the next image is ready before it is asked
for (the review screen pre-renders the likely next item while the inspector looks at this one).

Blind items (shadow, human_only, audit, fail-safe) never get a highlight: `render(..., overlay=True)`
refuses them, whatever the caller asks.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection import store
from inspection.core.domain import Region
from inspection.services.context import Pipeline
from inspection.vision.preprocess import overlay as draw_overlay

DISPLAY_MAX_W = 1600  # wide enough for a 1080p screen, small enough to encode in a few ms
JPEG_QUALITY = 88


class MediaError(LookupError):
    """No displayable image for this request (unknown item, blind item asked with overlay …)."""


@dataclass(frozen=True)
class MediaInfo:
    inspection_id: int
    image_path: Path
    show_model: bool
    heatmap_path: Path | None
    regions: tuple[Region, ...]


def media_info(app: Pipeline, *, inspection_id: int) -> MediaInfo | None:
    """What is needed to draw an item (read-only)."""
    with app.read() as session:
        row = store.get_inspection(session, inspection_id=inspection_id)
        if row is None:
            return None
        image = store.get_image(session, image_id=row.image_id)
        if image is None:
            return None
        heatmap: Path | None = None
        regions: tuple[Region, ...] = ()
        if row.show_model:
            preds = store.predictions_for(session, inspection_id=inspection_id)
            decision = next((p for p in preds if p.model_version == row.model_version and p.role != "shadow"), None)
            if decision is not None:
                regions = tuple(Region(**r) for r in decision.regions or [])
                heatmap = app.resolve(decision.heatmap_path) if decision.heatmap_path else None
        return MediaInfo(inspection_id, app.resolve(image.path), row.show_model, heatmap, regions)


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------


def _read_image(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), dtype=np.uint8) if path.exists() else np.empty(0, np.uint8)
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


def _placeholder(text: str) -> np.ndarray:
    img = np.full((720, 1280, 3), 40, np.uint8)
    cv2.putText(img, text[:60], (40, 370), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (230, 230, 230), 3)
    return img


def render(info: MediaInfo, *, overlay: bool) -> bytes:
    """A display JPEG of the item; with the heat tint and region boxes when `overlay`."""
    if overlay and not info.show_model:
        raise MediaError("no model information for blind items")
    img = _read_image(info.image_path)
    if img is None:
        img = _placeholder("image could not be decoded")
        scale = 1.0
    else:
        h, w = img.shape[:2]
        scale = min(1.0, DISPLAY_MAX_W / w)
        if scale < 1.0:
            img = cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    if overlay:
        heat: np.ndarray | None = None
        if info.heatmap_path is not None and info.heatmap_path.exists():
            raw = cv2.imread(str(info.heatmap_path), cv2.IMREAD_GRAYSCALE)
            heat = None if raw is None else raw.astype(np.float32) / 255.0
        regions = tuple(
            Region(round(r.x * scale), round(r.y * scale), round(r.w * scale), round(r.h * scale), r.score)
            for r in info.regions
        )
        img = draw_overlay(img, heat, regions)
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise MediaError("could not encode the display image")
    return jpg.tobytes()


class MediaCache:
    """Rendered display images by (inspection id, overlay); LRU; thread-safe; background pre-render."""

    def __init__(self, app: Pipeline, *, capacity: int = 96) -> None:
        self.app = app
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, bool], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._busy: dict[tuple[int, bool], threading.Event] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")

    def get(self, inspection_id: int, *, overlay: bool) -> bytes:
        key = (inspection_id, overlay)
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
                pending = self._busy.get(key)
                if pending is None:
                    done = threading.Event()
                    self._busy[key] = done
                    break
            pending.wait(10.0)  # another thread renders it: wait for that instead of rendering twice
        try:
            info = media_info(self.app, inspection_id=inspection_id)
            if info is None:
                raise MediaError(f"inspection {inspection_id} not found")
            data = render(info, overlay=overlay)
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
            return data
        finally:
            with self._lock:
                self._busy.pop(key, None)
            done.set()

    def prerender(self, inspection_id: int, *, overlay: bool) -> None:
        """Render in the background (errors ignored: the request path renders again and reports)."""

        def work() -> None:
            with contextlib.suppress(Exception):  # a hint only: the request path renders and reports
                self.get(inspection_id, overlay=overlay)

        with self._lock:
            if (inspection_id, overlay) in self._items or (inspection_id, overlay) in self._busy:
                return
        self._pool.submit(work)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
