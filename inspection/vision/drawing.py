"""Drawing primitives for the synthetic phone photos (`inspection.vision.synth`): the phone's
geometry, anti-aliased sub-pixel shapes stamped into small windows, and smooth random fields.

Shared by `scene` (table, phone, camera) and `defects` (scratches and look-alikes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

# OpenCV's stubs type every result as a generic array, so the dtype lives in the alias name only.
F32 = npt.NDArray[Any]  # float32 images
U8 = npt.NDArray[Any]  # uint8 images and masks
F64 = npt.NDArray[np.float64]
Rng = np.random.Generator

SHIFT = 4  # cv2 drawing uses fixed-point coordinates with 4 fractional bits (1/16 px)
ONE = 1 << SHIFT
AA = cv2.LINE_AA


@dataclass(frozen=True)
class Phone:
    """Phone geometry. "Local" coordinates are those of the upright phone canvas."""

    pw: float  # phone width, px
    ph: float  # phone height (long side), px
    pad: int  # canvas margin around the phone, px
    radius: float  # outer corner radius, px
    rim: float  # visible metal rim width, px
    bezel: float  # black border under the glass around the display, px
    u: float  # phone scale: px per reference px (a 1080p phone is ~920 px tall)
    matrix: F64  # 2x3 affine, local -> frame

    @property
    def canvas_size(self) -> tuple[int, int]:
        return math.ceil(self.pw) + 2 * self.pad, math.ceil(self.ph) + 2 * self.pad

    def glass_rect(self) -> tuple[float, float, float, float, float]:
        """Centre x, y, half-width, half-height and corner radius of the glass, local px."""
        cx, cy = self.pad + self.pw / 2, self.pad + self.ph / 2
        r = max(1.0, self.radius - self.rim)
        return cx, cy, self.pw / 2 - self.rim, self.ph / 2 - self.rim, r

    def to_frame(self, pts: F64) -> F64:
        return pts @ self.matrix[:, :2].T + self.matrix[:, 2]



@dataclass(frozen=True)
class Frame:
    """The part of the frame the phone covers, as float32 being drawn on (pasted back at the end)."""

    roi: F32  # HxWx3 float32 BGR of the box
    glass: F32  # HxW float32 0..1 glass coverage of the box
    glass_u8: U8  # the same coverage as warped (uint8), for the frame-sized glass mask
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the box in the frame
    body_u8: U8 | None = None  # the phone body's coverage of the box (uint8), for the frame-sized phone mask

    @property
    def origin(self) -> F64:
        return np.array([self.box[0], self.box[1]], np.float64)


def fixed(pts: F64) -> npt.NDArray[np.int32]:
    """Float px -> cv2 fixed-point int32 points (sub-pixel accurate anti-aliased drawing)."""
    return np.round(pts * ONE).astype(np.int32).reshape(-1, 1, 2)


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, per_corner: int = 16) -> F64:
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    corners = (
        (x1 - r, y1 - r, 0.0),
        (x0 + r, y1 - r, 90.0),
        (x0 + r, y0 + r, 180.0),
        (x1 - r, y0 + r, 270.0),
    )
    pts = []
    for cx, cy, start in corners:
        a = np.deg2rad(start + np.linspace(0.0, 90.0, per_corner))
        pts.append(np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1))
    return np.concatenate(pts)


def inside_rrect(pts: F64, rect: tuple[float, float, float, float, float], margin: float) -> bool:
    """True if every point lies inside the rounded rectangle shrunk by `margin` px (signed distance)."""
    cx, cy, hx, hy, r = rect
    q = np.abs(pts - (cx, cy)) - (hx - r, hy - r)
    dist = np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0) - r
    return bool(np.all(dist <= -margin))


def glass_point(rng: Rng, phone: Phone, margin: float) -> F64:
    """A uniform random point (local px) at least `margin` px inside the glass edge."""
    rect = phone.glass_rect()
    cx, cy, hx, hy, _ = rect
    mx, my = max(0.0, hx - margin), max(0.0, hy - margin)
    for _ in range(50):
        p = np.array([[cx + rng.uniform(-mx, mx), cy + rng.uniform(-my, my)]])
        if inside_rrect(p, rect, margin):
            return p[0]
    return np.array([cx, cy])


def sub_box(img: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
    """Integer box (x0, y0, x1, y1) clipped to the image, or None when empty."""
    h, w = img.shape[:2]
    bx0, by0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    bx1, by1 = min(w, math.ceil(x1)), min(h, math.ceil(y1))
    if bx1 <= bx0 or by1 <= by0:
        return None
    return bx0, by0, bx1, by1


def around(img: np.ndarray, pts: F64, pad: float) -> tuple[int, int, int, int] | None:
    """Bounding box of `pts` grown by `pad` px, clipped to the image."""
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    return sub_box(img, lo[0], lo[1], hi[0], hi[1])


def stamp(
    img: F32,
    pts: F64,
    pad: float,
    draw: Callable[[U8, F64], None],
    apply: Callable[[F32, F32], None],
) -> None:
    """Draw a shape (uint8 anti-aliased, 255 = full coverage) in a small window around `pts` and let
    `apply(region, alpha)` composite it; keeps every mark's cost proportional to its size."""
    box = around(img, pts, pad)
    if box is None:
        return
    x0, y0, x1, y1 = box
    layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw(layer, np.array([x0, y0], np.float64))
    apply(img[y0:y1, x0:x1], layer.astype(np.float32) * (1.0 / 255.0))


def add(delta: Sequence[float] | float) -> Callable[[F32, F32], None]:
    """Additive composite: region += alpha * delta (grey levels, per BGR channel)."""
    d = np.asarray(delta, np.float32).reshape(1, 1, -1)

    def apply(region: F32, alpha: F32) -> None:
        region += alpha[..., None] * d

    return apply


def blend(colour: Sequence[float], opacity: float = 1.0) -> Callable[[F32, F32], None]:
    """Over-composite towards a colour: region = region * (1 - a) + colour * a."""
    c = np.asarray(colour, np.float32).reshape(1, 1, 3)

    def apply(region: F32, alpha: F32) -> None:
        a = alpha[..., None] * opacity
        region += (c - region) * a

    return apply


def smooth_noise(rng: Rng, shape: tuple[int, int], cells: int) -> F32:
    """Zero-mean, unit-ish smooth random field: `cells` random values across the longer side, upsampled."""
    h, w = shape
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def loguniform(rng: Rng, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))
