"""Rendering of the review screen's display images (ui.media caches them): the straightened phone crop,
the whole frame, a thumbnail, each with or without the model's highlight drawn as thin outlines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from inspection import store
from inspection.core.domain import Localisation, LocalisationMode, Region
from inspection.services import stations
from inspection.services.context import Pipeline
from inspection.vision.preprocess import PhoneFit, PreprocessError, fixed_region, locate_phone

VIEWS = ("crop", "frame", "thumb")
DISPLAY_MAX_W = 1600  # frame view: wide enough for a 1080p screen, small enough to encode in a few ms
CROP_MAX_SIDE = 2400  # crop view: full resolution up to this long side (a 4K phone crop is ~2000 px)
THUMB_H = 300
MARGIN = 0.05  # table shown around a found phone (a share of each side): the outline stays visible
JPEG_QUALITY = 90
HEAT_LEVEL = 0.5  # the heat outline: where the model's cell probability crosses one half
REGION_COLOUR = (255, 0, 255)  # BGR magenta: rare on phones and tables
HEAT_COLOUR = (0, 215, 255)  # BGR amber


class MediaError(LookupError):
    """No displayable image for this request (unknown item, blind item asked with overlay …)."""


@dataclass(frozen=True)
class MediaInfo:
    inspection_id: int
    image_path: Path
    show_model: bool
    heatmap_path: Path | None
    regions: tuple[Region, ...]
    localisation: Localisation | None = None  # the station's region; None: found like the model does


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
        station = row.station
    loc = stations.get_setup(app, station=station).localisation_arg
    return MediaInfo(inspection_id, app.resolve(image.path), row.show_model, heatmap, regions, loc)


@dataclass(frozen=True)
class Crop:
    """Where the crop view comes from: frame pixels -> crop pixels (`to_view`) and back."""

    to_view: np.ndarray  # 2x3 affine
    from_view: np.ndarray  # 2x3 affine
    size: tuple[int, int]  # crop width, height
    frame_scale: float  # frame view pixels per frame pixel
    found: bool  # False: no phone found, the crop is the whole frame
    note: str = ""

    @staticmethod
    def none() -> Crop:
        eye = np.array([[1.0, 0, 0], [0, 1.0, 0]])
        return Crop(eye, eye, (1, 1), 1.0, False, "the image could not be decoded")


def read_image(path: Path) -> np.ndarray | None:
    data = np.fromfile(str(path), dtype=np.uint8) if path.exists() else np.empty(0, np.uint8)
    if data.size == 0:
        return None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return img if img is not None and img.size else None


def _placeholder(text: str) -> np.ndarray:
    img = np.full((720, 1280, 3), 40, np.uint8)
    cv2.putText(img, text[:60], (40, 370), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (230, 230, 230), 3)
    return img


def _fit(img: np.ndarray, loc: Localisation | None) -> PhoneFit:
    if loc is None or loc.mode is LocalisationMode.AUTO:
        return locate_phone(img)
    return fixed_region(img, loc)


def crop_of(img: np.ndarray, info: MediaInfo) -> Crop:
    """The straightened phone (the region the model scored) at full resolution, with a small margin."""
    h, w = img.shape[:2]
    frame_scale = min(1.0, DISPLAY_MAX_W / w)
    try:
        fit = _fit(img, info.localisation)
    except PreprocessError as exc:
        s = min(1.0, CROP_MAX_SIDE / max(h, w))
        m = np.array([[s, 0, 0], [0, s, 0]], np.float64)
        return Crop(m, cv2.invertAffineTransform(m), (round(w * s), round(h * s)), frame_scale, False,
                    f"whole frame shown: {exc}")  # fmt: skip
    (cx, cy), (rw, rh), angle = fit.centre, fit.size, fit.angle
    if not fit.fixed:
        rw, rh = rw * (1 + 2 * MARGIN), rh * (1 + 2 * MARGIN)
    s = min(1.0, CROP_MAX_SIDE / max(rw, rh))
    cw, ch = max(1, round(rw * s)), max(1, round(rh * s))
    # as vision.preprocess.warp: turn about the region's centre until it stands upright, then cut it out
    rot = np.vstack([cv2.getRotationMatrix2D((cx, cy), angle, 1.0), [0, 0, 1]])
    m = np.array([[s, 0, cw / 2 - s * cx], [0, s, ch / 2 - s * cy]]) @ rot
    return Crop(m, cv2.invertAffineTransform(m), (cw, ch), frame_scale, True)


def _outline(img: np.ndarray, to_view: np.ndarray, frame_wh: tuple[int, int], info: MediaInfo) -> np.ndarray:
    """The model's highlight as thin outlines drawn just outside what they point at: the heat level line
    (amber) and the numbered regions (magenta); the pixels of the defect itself are left untouched."""
    out = img.copy()
    vh, vw = out.shape[:2]
    thick = 2 if max(vh, vw) >= 600 else 1
    pad = 3 + thick  # view pixels between the defect and the line around it
    heat = _heat(info)
    if heat is not None:
        hh, hw = heat.shape
        to_heat = np.array([[frame_wh[0] / hw, 0, 0], [0, frame_wh[1] / hh, 0], [0, 0, 1]], np.float64)
        level = cv2.warpAffine(heat, to_view @ to_heat, (vw, vh), flags=cv2.INTER_LINEAR, borderValue=0.0)
        mask = cv2.dilate((level >= HEAT_LEVEL).astype(np.uint8), np.ones((2 * pad + 1, 2 * pad + 1), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, HEAT_COLOUR, thick, cv2.LINE_AA)
    for n, r in enumerate(info.regions[:9], start=1):
        corners = np.array([[[r.x, r.y]], [[r.x + r.w, r.y]], [[r.x + r.w, r.y + r.h]], [[r.x, r.y + r.h]]], np.float64)
        x0, y0, bw, bh = cv2.boundingRect(np.round(cv2.transform(corners, to_view)).astype(np.int32))
        x0, y0, x1, y1 = x0 - pad, y0 - pad, x0 + bw + pad, y0 + bh + pad
        cv2.rectangle(out, (x0, y0), (x1, y1), REGION_COLOUR, thick, cv2.LINE_AA)
        _number(out, str(n), x0, y0)
    return out


def _number(img: np.ndarray, text: str, x: int, y: int) -> None:
    """A small numbered tag above a box's corner (outside it), dark on the outline's colour."""
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.55, 1)
    top = y - th - 8 if y - th - 8 >= 0 else y + 2
    cv2.rectangle(img, (x, top), (x + tw + 6, top + th + 6), REGION_COLOUR, cv2.FILLED)
    cv2.putText(img, text, (x + 3, top + th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1, cv2.LINE_AA)


def _heat(info: MediaInfo) -> np.ndarray | None:
    if info.heatmap_path is None or not info.heatmap_path.exists():
        return None
    raw = cv2.imread(str(info.heatmap_path), cv2.IMREAD_GRAYSCALE)
    return None if raw is None else raw.astype(np.float32) / 255.0


def render_view(info: MediaInfo, *, view: str, overlay: bool) -> tuple[bytes, Crop | None]:
    """(display JPEG, the crop geometry when it was computed)."""
    if overlay and not info.show_model:
        raise MediaError("no model information for blind items")
    if view not in VIEWS or (overlay and view == "thumb"):
        raise MediaError(f"no {view!r} view{' with highlight' if overlay else ''}")
    img = read_image(info.image_path)
    crop: Crop | None = None
    if img is None:
        out = _placeholder("image could not be decoded")
    elif view == "frame":
        h, w = img.shape[:2]
        s = min(1.0, DISPLAY_MAX_W / w)
        out = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1.0 else img
        if overlay:
            out = _outline(out, np.array([[s, 0, 0], [0, s, 0]], np.float64), (w, h), info)
    else:
        crop = crop_of(img, info)
        h, w = img.shape[:2]
        out = cv2.warpAffine(img, crop.to_view, crop.size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if overlay:
            out = _outline(out, crop.to_view, (w, h), info)
        if view == "thumb":
            s = THUMB_H / out.shape[0]
            out = cv2.resize(out, (max(1, round(out.shape[1] * s)), THUMB_H), interpolation=cv2.INTER_AREA)
    ok, jpg = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise MediaError("could not encode the display image")
    return jpg.tobytes(), crop
