"""Display images for the review screen, rendered once and kept in a small in-memory cache so that the
next image is ready before it is asked for (the screen pre-renders and pre-loads the likely next items,
plain and highlighted, while the inspector looks at this one).

Views of an item (`VIEWS`):
    crop            the phone straightened and cut out at full resolution (the station's region, or the
                    localisation the model used: the same `locate_phone` / station rectangle as scoring)
    frame           the whole frame, downscaled to DISPLAY_MAX_W
    thumb           the crop at THUMB_H px high (defect book)
and `overlay=True` adds the model's highlight to crop and frame: thin outlines around the heat and the
regions, numbered (the sidebar's legend gives each number's region score); no colour wash over the
defect itself.

Blind items (shadow, human_only, audit, fail-safe) never get a highlight: `render(..., overlay=True)`
refuses them, whatever the caller asks.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from inspection.services.context import Pipeline
from ui.media_render import (
    VIEWS,
    Crop,
    MediaError,
    MediaInfo,
    crop_of,
    media_info,
    read_image,
    render_view,
)

__all__ = ["VIEWS", "MediaCache", "MediaError", "MediaInfo", "media_info", "render"]


def render(info: MediaInfo, *, overlay: bool, view: str = "frame") -> bytes:
    """A display JPEG of one view of the item (see the module docstring)."""
    data, _ = render_view(info, view=view, overlay=overlay)
    return data


Key = tuple[int, str, bool]


class MediaCache:
    """Rendered display images by (inspection id, view, overlay); LRU; thread-safe; background pre-render.
    Also keeps each item's crop geometry, so that marks drawn on the crop map back to the frame."""

    def __init__(self, app: Pipeline, *, capacity: int = 160) -> None:
        self.app = app
        self.capacity = capacity
        self._items: OrderedDict[Key, bytes] = OrderedDict()
        self._crops: OrderedDict[int, Crop] = OrderedDict()
        self._lock = threading.Lock()
        self._busy: dict[Key, threading.Event] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")

    def get(self, inspection_id: int, *, overlay: bool, view: str = "frame") -> bytes:
        if view not in VIEWS:
            raise MediaError(f"unknown view {view!r}")
        key = (inspection_id, view, overlay)
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
            data, crop = render_view(info, view=view, overlay=overlay)
            with self._lock:
                self._items[key] = data
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
                if crop is not None:
                    self._remember(inspection_id, crop)
            return data
        finally:
            with self._lock:
                self._busy.pop(key, None)
            done.set()

    def _remember(self, inspection_id: int, crop: Crop) -> None:
        self._crops[inspection_id] = crop
        self._crops.move_to_end(inspection_id)
        while len(self._crops) > self.capacity:
            self._crops.popitem(last=False)

    def crop(self, inspection_id: int) -> Crop:
        """The item's crop geometry (computed when not rendered yet)."""
        with self._lock:
            known = self._crops.get(inspection_id)
        if known is not None:
            return known
        info = media_info(self.app, inspection_id=inspection_id)
        if info is None:
            raise MediaError(f"inspection {inspection_id} not found")
        img = read_image(info.image_path)
        crop = crop_of(img, info) if img is not None else Crop.none()
        with self._lock:
            self._remember(inspection_id, crop)
        return crop

    def to_frame(self, inspection_id: int, view: str, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """Points drawn on a view's image (its pixels) -> original-frame pixels."""
        crop = self.crop(inspection_id)
        if view == "crop":
            inv = crop.from_view
        elif view == "frame":
            inv = np.array([[1 / crop.frame_scale, 0, 0], [0, 1 / crop.frame_scale, 0]], np.float64)
        else:
            raise MediaError(f"marks are drawn on the crop or the frame, not on {view!r}")
        if not points:
            return []
        pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
        return [(float(x), float(y)) for x, y in cv2.transform(pts, inv).reshape(-1, 2)]

    def view_scale(self, inspection_id: int, view: str) -> float:
        """View pixels per frame pixel (a stroke's width drawn on the view, in frame pixels, is w / this)."""
        crop = self.crop(inspection_id)
        if view == "frame":
            return crop.frame_scale
        return float(np.sqrt(abs(np.linalg.det(crop.to_view[:, :2])))) or 1.0

    def prerender(self, inspection_id: int, *, overlay: bool, view: str = "frame") -> None:
        """Render in the background (errors ignored: the request path renders again and reports)."""

        def work() -> None:
            with contextlib.suppress(Exception):  # a hint only: the request path renders and reports
                self.get(inspection_id, overlay=overlay, view=view)

        key = (inspection_id, view, overlay)
        with self._lock:
            if key in self._items or key in self._busy:
                return
        self._pool.submit(work)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
