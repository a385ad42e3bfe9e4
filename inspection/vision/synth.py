"""Synthetic phone photos: a phone lying face-up on a matte grey inspection table, seen from straight
above under diffuse light, with optional scratches on the glass (label ``scratch``) and look-alike
marks that are not scratches (oil drops, smudges, dust, lint, edge reflections).

All randomness comes from numpy Generators seeded per image from (seed, index), so an image depends
only on (seed, index, label, size): never on the worker count or the order of generation.
Sizes are in pixels of the rendered frame; "reference" sizes are for a 1920x1080 frame and scale
with ``min(W / 1920, H / 1080)``.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

REF_W, REF_H = 1920, 1080
MIN_SIDE = 64
JPEG_QUALITY = 95
DISTRACTORS = ("oil_drop", "stain", "dust", "lint", "reflection")
MANIFEST_COLUMNS = ("file", "mask", "label", "seed", "index", "width", "height", "drawn", "phone_box")

# OpenCV's stubs type every result as a generic array, so the dtype lives in the alias name only.
F32 = npt.NDArray[Any]  # float32 images
U8 = npt.NDArray[Any]  # uint8 images and masks
F64 = npt.NDArray[np.float64]
Rng = np.random.Generator

_SHIFT = 4  # cv2 drawing uses fixed-point coordinates with 4 fractional bits (1/16 px)
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA

# Entropy tags keep the per-image streams and the label permutation apart.
_TAG_IMAGE, _TAG_LABELS = 1, 2


@dataclass(frozen=True)
class Sample:
    """One rendered image with its ground truth."""

    image: np.ndarray  # HxWx3 uint8 BGR
    mask: np.ndarray  # HxW uint8 {0,255}: 255 where a scratch was drawn
    label: str  # "scratch" | "ok"
    drawn: tuple[str, ...]  # e.g. ("scratch:w2:len310:contrast45", "oil_drop", "dust")
    phone_box: tuple[int, int, int, int]  # x, y, w, h of the phone's axis-aligned bounding box


@dataclass(frozen=True)
class SynthReport:
    count: int
    positives: int
    seconds: float
    images_per_second: float
    out: Path


@dataclass(frozen=True)
class _Scene:
    """What render() returns plus the frame-sized glass mask (for tests and debugging)."""

    sample: Sample
    glass: U8  # HxW uint8 {0,255}: the phone's glass area


@dataclass(frozen=True)
class _Phone:
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


# ----------------------------------------------------------------------------------------------
# small geometry and drawing helpers


def _fixed(pts: F64) -> npt.NDArray[np.int32]:
    """Float px -> cv2 fixed-point int32 points (sub-pixel accurate anti-aliased drawing)."""
    return np.round(pts * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, per_corner: int = 16) -> F64:
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


def _inside_rrect(pts: F64, rect: tuple[float, float, float, float, float], margin: float) -> bool:
    """True if every point lies inside the rounded rectangle shrunk by `margin` px (signed distance)."""
    cx, cy, hx, hy, r = rect
    q = np.abs(pts - (cx, cy)) - (hx - r, hy - r)
    dist = np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0) - r
    return bool(np.all(dist <= -margin))


def _glass_point(rng: Rng, phone: _Phone, margin: float) -> F64:
    """A uniform random point (local px) at least `margin` px inside the glass edge."""
    rect = phone.glass_rect()
    cx, cy, hx, hy, _ = rect
    mx, my = max(0.0, hx - margin), max(0.0, hy - margin)
    for _ in range(50):
        p = np.array([[cx + rng.uniform(-mx, mx), cy + rng.uniform(-my, my)]])
        if _inside_rrect(p, rect, margin):
            return p[0]
    return np.array([cx, cy])


def _sub(img: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
    """Integer box (x0, y0, x1, y1) clipped to the image, or None when empty."""
    h, w = img.shape[:2]
    bx0, by0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    bx1, by1 = min(w, math.ceil(x1)), min(h, math.ceil(y1))
    if bx1 <= bx0 or by1 <= by0:
        return None
    return bx0, by0, bx1, by1


def _around(img: np.ndarray, pts: F64, pad: float) -> tuple[int, int, int, int] | None:
    """Bounding box of `pts` grown by `pad` px, clipped to the image."""
    lo, hi = pts.min(axis=0) - pad, pts.max(axis=0) + pad
    return _sub(img, lo[0], lo[1], hi[0], hi[1])


def _stamp(
    img: F32,
    pts: F64,
    pad: float,
    draw: Callable[[U8, F64], None],
    apply: Callable[[F32, F32], None],
) -> None:
    """Draw a shape (uint8 anti-aliased, 255 = full coverage) in a small window around `pts` and let
    `apply(region, alpha)` composite it; keeps every mark's cost proportional to its size."""
    box = _around(img, pts, pad)
    if box is None:
        return
    x0, y0, x1, y1 = box
    layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
    draw(layer, np.array([x0, y0], np.float64))
    apply(img[y0:y1, x0:x1], layer.astype(np.float32) * (1.0 / 255.0))


def _add(delta: Sequence[float] | float) -> Callable[[F32, F32], None]:
    """Additive composite: region += alpha * delta (grey levels, per BGR channel)."""
    d = np.asarray(delta, np.float32).reshape(1, 1, -1)

    def apply(region: F32, alpha: F32) -> None:
        region += alpha[..., None] * d

    return apply


def _blend(colour: Sequence[float], opacity: float = 1.0) -> Callable[[F32, F32], None]:
    """Over-composite towards a colour: region = region * (1 - a) + colour * a."""
    c = np.asarray(colour, np.float32).reshape(1, 1, 3)

    def apply(region: F32, alpha: F32) -> None:
        a = alpha[..., None] * opacity
        region += (c - region) * a

    return apply


def _smooth_noise(rng: Rng, shape: tuple[int, int], cells: int) -> F32:
    """Zero-mean, unit-ish smooth random field: `cells` random values across the longer side, upsampled."""
    h, w = shape
    gh = max(2, round(cells * h / max(h, w)))
    gw = max(2, round(cells * w / max(h, w)))
    small = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _loguniform(rng: Rng, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


# ----------------------------------------------------------------------------------------------
# scene: table, phone, pose


def _pose(rng: Rng, width: int, height: int) -> _Phone:
    frac = rng.uniform(0.80, 0.88)  # long side / frame height (includes the ±5 % scale variation)
    aspect = rng.uniform(0.455, 0.485)  # phone width / height
    ph = frac * height
    pw = aspect * ph
    if pw > 0.8 * width:  # very narrow frames: fit the width instead
        pw = 0.8 * width
        ph = pw / aspect
    u = ph / 920.0
    angle = rng.uniform(-4.0, 4.0)  # degrees
    shift = rng.uniform(-0.03, 0.03, 2) * (width, height)
    radius = rng.uniform(0.085, 0.12) * pw
    rim = max(1.0, rng.uniform(4.0, 7.0) * u)
    bezel = max(1.0, rng.uniform(5.0, 12.0) * u)
    pad = 3
    centre_local = np.array([pad + pw / 2, pad + ph / 2])
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    centre = np.array([width / 2, height / 2]) + shift
    # Keep the whole phone in the frame: half extents of the rotated rectangle.
    ex = (abs(rot[0, 0]) * pw + abs(rot[0, 1]) * ph) / 2 + 2
    ey = (abs(rot[1, 0]) * pw + abs(rot[1, 1]) * ph) / 2 + 2
    centre[0] = min(max(centre[0], ex), width - ex) if 2 * ex < width else width / 2
    centre[1] = min(max(centre[1], ey), height - ey) if 2 * ey < height else height / 2
    matrix = np.hstack([rot, (centre - rot @ centre_local)[:, None]])
    return _Phone(pw=pw, ph=ph, pad=pad, radius=radius, rim=rim, bezel=bezel, u=u, matrix=matrix)


def _outline(phone: _Phone) -> F64:
    p = phone.pad
    return _rounded_rect(p, p, p + phone.pw, p + phone.ph, phone.radius)


def _phone_box(phone: _Phone, width: int, height: int) -> tuple[int, int, int, int]:
    pts = phone.to_frame(_outline(phone))
    x0, y0 = max(0, math.floor(pts[:, 0].min())), max(0, math.floor(pts[:, 1].min()))
    x1, y1 = min(width, math.ceil(pts[:, 0].max())), min(height, math.ceil(pts[:, 1].max()))
    return x0, y0, x1 - x0, y1 - y0


def _table(rng: Rng, width: int, height: int, phone: _Phone) -> U8:
    """Matte grey table with mottled texture, vignetting and the phone's soft contact shadow.
    Built at 1/4 resolution (everything here is smooth) and upsampled."""
    lw, lh = max(16, width // 4), max(16, height // 4)
    k = lw / width  # frame px -> low-res px
    base = rng.uniform(105.0, 150.0)  # grey level of the table
    lum = np.full((lh, lw), base, np.float32)
    lum += _smooth_noise(rng, (lh, lw), 10) * rng.uniform(2.0, 5.0)  # large blotches
    fine = rng.standard_normal((lh, lw)).astype(np.float32)
    lum += cv2.GaussianBlur(fine, (0, 0), 0.7) * rng.uniform(1.0, 2.5)  # mat grain
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    cx, cy = lw * rng.uniform(0.4, 0.6), lh * rng.uniform(0.4, 0.6)
    r2 = ((xx - cx) / (lw / 2)) ** 2 * 0.6 + ((yy - cy) / (lh / 2)) ** 2
    lum *= 1.0 - rng.uniform(0.08, 0.2) * r2 / 2.0  # vignetting: darker corners
    # Diffuse light: a soft, slightly offset shadow around the phone.
    shadow = np.zeros((lh, lw), np.uint8)
    outline = phone.to_frame(_outline(phone)) * k + rng.uniform(-1.0, 3.0, 2) * k * phone.u
    cv2.fillPoly(shadow, [_fixed(outline)], 255, _AA, _SHIFT)
    blur = max(0.8, rng.uniform(6.0, 14.0) * phone.u * k)
    soft = cv2.GaussianBlur(shadow.astype(np.float32) * (1.0 / 255.0), (0, 0), blur)
    lum *= 1.0 - rng.uniform(0.15, 0.3) * soft
    tint = rng.normal(0.0, 1.5, 3).astype(np.float32)
    low = np.clip(lum[..., None] + tint + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)


def _linear_field(shape: tuple[int, int], angle: float) -> F32:
    """-1..1 ramp along direction `angle` (radians) across an array of the given shape."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (xx / max(1, w - 1) - 0.5) * math.cos(angle) + (yy / max(1, h - 1) - 0.5) * math.sin(angle)
    return (d / max(1e-6, float(np.abs(d).max()))).astype(np.float32)


def _phone_canvas(rng: Rng, phone: _Phone) -> tuple[U8, U8, U8]:
    """Upright phone colours (BGR), body coverage and glass coverage (uint8, anti-aliased)."""
    cw, ch = phone.canvas_size
    lw, lh = max(8, cw // 8), max(8, ch // 8)  # smooth fields are built at 1/8 resolution
    light = rng.uniform(math.radians(200), math.radians(250))  # light from the upper left
    # Metal rim: graphite to silver, optionally tinted; lit side lighter.
    level = rng.uniform(55.0, 105.0)
    tint = np.array([(0, 0, 0), (6, 1, -4), (-8, 2, 8), (3, 0, 3)][rng.integers(0, 4)], np.float32)
    metal = level + tint + rng.normal(0, 1.5, 3).astype(np.float32)
    ramp = _linear_field((lh, lw), light + math.pi)
    metal_low = metal * (1.0 + 0.15 * ramp[..., None])
    # Glass (screen off): dark, slightly blue, with a gradient and a broad soft sheen.
    gl = rng.uniform(14.0, 30.0) + np.array([3.0, 1.0, 0.0], np.float32) * rng.uniform(0.5, 1.5)
    ramp2 = _linear_field((lh, lw), rng.uniform(0, 2 * math.pi))
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    bx, by = rng.uniform(0.1, 0.9) * lw, rng.uniform(0.1, 0.9) * lh
    sx, sy = rng.uniform(0.3, 0.7) * lw, rng.uniform(0.2, 0.5) * lh
    sheen = np.exp(-(((xx - bx) / sx) ** 2) - ((yy - by) / sy) ** 2)
    glass_low = (gl + (rng.uniform(2.0, 8.0) * ramp2 + rng.uniform(3.0, 12.0) * sheen)[..., None]).astype(
        np.float32
    )
    canvas = cv2.resize(metal_low.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
    glass_col = cv2.resize(glass_low, (cw, ch), interpolation=cv2.INTER_LINEAR)

    p = phone.pad
    body = np.zeros((ch, cw), np.uint8)
    cv2.fillPoly(body, [_fixed(_outline(phone))], 255, _AA, _SHIFT)
    gx, gy, hx, hy, gr = phone.glass_rect()
    glass_poly = _rounded_rect(gx - hx, gy - hy, gx + hx, gy + hy, gr)
    glass = np.zeros((ch, cw), np.uint8)
    cv2.fillPoly(glass, [_fixed(glass_poly)], 255, _AA, _SHIFT)
    # Display area (off) under the glass differs by a few levels from the black bezel around it.
    b = phone.bezel
    disp_poly = _rounded_rect(gx - hx + b, gy - hy + b, gx + hx - b, gy + hy - b, max(1.0, gr - b * 0.6))
    disp = np.zeros((ch, cw), np.uint8)
    cv2.fillPoly(disp, [_fixed(disp_poly)], 255, _AA, _SHIFT)
    glass_col += (disp.astype(np.float32) * (rng.uniform(-4.0, 3.0) / 255.0))[..., None]
    ga = (glass.astype(np.float32) * (1.0 / 255.0))[..., None]
    canvas += (glass_col - canvas) * ga

    _phone_details(rng, phone, canvas, (gx, gy - hy))
    out = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    # Edges, drawn straight onto the 8-bit canvas (cheap): a bright chamfer along the outer rim and a
    # dark seam where glass meets metal.
    chamfer = _rounded_rect(p + 1.2, p + 1.2, p + phone.pw - 1.2, p + phone.ph - 1.2, phone.radius - 1.2)
    bright = tuple(float(v) for v in np.clip(metal + rng.uniform(15.0, 35.0), 0, 255))
    dark = tuple(float(v) for v in np.clip(gl - rng.uniform(5.0, 12.0), 0, 255))
    cv2.polylines(out, [_fixed(chamfer)], True, bright, 1, _AA, _SHIFT)
    cv2.polylines(out, [_fixed(glass_poly)], True, dark, 1, _AA, _SHIFT)
    return out, body, glass


def _phone_details(rng: Rng, phone: _Phone, canvas: F32, top: tuple[float, float]) -> None:
    """Earpiece slit, front camera hole and sensor holes near the top edge of the glass."""
    u = phone.u
    cx, gy0 = top
    # Earpiece: a thin rounded slot right at the top edge of the glass.
    sw, sh = rng.uniform(55.0, 95.0) * u, max(1.0, rng.uniform(2.5, 5.0) * u)
    sy = gy0 + rng.uniform(2.0, 4.0) * u + sh / 2
    slot = _rounded_rect(cx - sw / 2, sy - sh / 2, cx + sw / 2, sy + sh / 2, sh / 2, 6)

    def fill(poly: F64) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            cv2.fillPoly(layer, [_fixed(poly - off)], 255, _AA, _SHIFT)

        return draw

    _stamp(canvas, slot, 2, fill(slot), _blend((7.0, 7.0, 8.0), 0.9))
    lip = slot + (0.0, max(0.6, 0.8 * u))
    _stamp(canvas, lip, 2, fill(lip), _add([rng.uniform(6.0, 14.0)] * 3))
    _stamp(canvas, slot, 2, fill(slot), _blend((9.0, 9.0, 10.0), 0.85))
    # Front camera: a very dark round hole with a faint ring and a tiny lens glint.
    r = max(1.0, rng.uniform(9.0, 13.0) * u)
    cy = gy0 + phone.bezel + rng.uniform(14.0, 24.0) * u
    side = 0.0 if rng.random() < 0.7 else rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.32)  # mostly centred
    hole_x = cx + side * phone.pw
    centre = np.array([[hole_x, cy]])

    def disc(c: F64, rad: float, thickness: int = -1) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            x, y = _fixed(c - off).reshape(2)
            cv2.circle(layer, (int(x), int(y)), max(1, round(rad * _ONE)), 255, thickness, _AA, _SHIFT)

        return draw

    _stamp(canvas, centre, r + 3, disc(centre, r + 1.0, max(1, round(u))), _add([rng.uniform(8.0, 20.0)] * 3))
    _stamp(canvas, centre, r + 3, disc(centre, r), _blend((4.0, 4.0, 5.0)))
    glint = centre + (-0.3 * r, -0.3 * r)
    _stamp(canvas, glint, r, disc(glint, max(0.6, 0.22 * r)), _add([rng.uniform(20.0, 50.0)] * 3))
    # Proximity/light sensor holes beside the earpiece.
    for _ in range(int(rng.integers(1, 3))):
        sx = cx + rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 0.75) * sw
        c = np.array([[sx, sy + rng.uniform(-1.0, 3.0) * u]])
        rad = max(0.7, rng.uniform(1.5, 3.0) * u)
        # A faint lighter ring (the hole's edge catches light) around a dark centre.
        _stamp(canvas, c, rad + 3, disc(c, rad + 0.8, 1), _add([rng.uniform(6.0, 14.0)] * 3))
        _stamp(canvas, c, rad + 2, disc(c, rad), _blend((6.0, 6.0, 7.0), rng.uniform(0.6, 0.9)))


# ----------------------------------------------------------------------------------------------
# scratches (positives)


@dataclass(frozen=True)
class _Scratch:
    pts: F64  # local px, polyline
    width: int  # px
    length: float  # px along the curve
    contrast: float  # peak grey levels above the glass
    profile: F64  # 0..1 intensity per point


def _scratch_curve(rng: Rng, phone: _Phone, scale: float) -> _Scratch:
    width = max(1, round(float(rng.choice([1, 2, 3, 4], p=[0.35, 0.3, 0.2, 0.15])) * scale))
    length = max(3.0, _loguniform(rng, 40.0, 600.0) * scale)
    contrast = _loguniform(rng, 15.0, 120.0)
    rect = phone.glass_rect()
    margin = width + 2.0  # the anti-aliased stroke stays clear of the glass edge
    pts = np.array([rect[:2]])
    for attempt in range(60):
        if attempt and attempt % 12 == 0:
            length *= 0.75  # does not fit: try shorter
        centre = _glass_point(rng, phone, margin)
        theta = rng.uniform(0.0, math.pi)
        d = np.array([math.cos(theta), math.sin(theta)])
        n = np.array([-d[1], d[0]])
        straight = rng.random() < 0.35
        bend = 0.02 if straight else 0.12  # control-point offset as a share of the length
        b1, b2 = rng.uniform(-bend, bend, 2) * length
        p0, p3 = centre - d * length / 2, centre + d * length / 2
        p1, p2 = p0 + d * length / 3 + n * b1, p0 + d * 2 * length / 3 + n * b2
        k = max(6, int(length / 4) + 2)
        t = np.linspace(0.0, 1.0, k)[:, None]
        cand = (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3
        if _inside_rrect(cand, rect, margin):
            pts = cand
            break
    t1 = np.linspace(0.0, 1.0, len(pts))
    knots = rng.uniform(0.55, 1.0, 6)
    taper = np.clip(np.minimum(t1, 1 - t1) / rng.uniform(0.03, 0.12), 0.0, 1.0)
    profile = np.interp(t1, np.linspace(0.0, 1.0, 6), knots) * (0.4 + 0.6 * taper)
    real_len = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) if len(pts) > 1 else 1.0
    return _Scratch(pts=pts, width=width, length=real_len, contrast=contrast, profile=profile)


def _draw_scratch(
    roi: F32, mask: U8, origin: F64, sc: _Scratch, phone: _Phone, tint: F32, draw: bool
) -> None:
    frame_pts = phone.to_frame(sc.pts)
    cv2.polylines(mask, [_fixed(frame_pts)], False, 255, sc.width, cv2.LINE_8, _SHIFT)
    if not draw:
        return
    pts = frame_pts - origin
    pad = sc.width + 4
    box = _around(roi, pts, pad)
    if box is None:
        return
    x0, y0, x1, y1 = box
    fx = _fixed(pts - (x0, y0))
    # Coverage from one anti-aliased polyline (crisp edges, no bead where segments overlap) times an
    # intensity field that varies slowly along the length (non-AA, later segments overwrite).
    cover = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.polylines(cover, [fx], False, 255, sc.width, _AA, _SHIFT)
    level = np.zeros(cover.shape, np.float32)
    flat = fx.reshape(-1, 2)
    if len(flat) == 1:
        flat = np.vstack([flat, flat])
    for i in range(len(flat) - 1):
        a, b = (int(flat[i, 0]), int(flat[i, 1])), (int(flat[i + 1, 0]), int(flat[i + 1, 1]))
        cv2.line(level, a, b, float(sc.profile[i]), sc.width + 4, cv2.LINE_8, _SHIFT)
    alpha = cover.astype(np.float32) * (1.0 / 255.0) * level
    roi[y0:y1, x0:x1] += alpha[..., None] * (tint * sc.contrast).reshape(1, 1, 3)


# ----------------------------------------------------------------------------------------------
# distractors (look-alikes that are not scratches)


def _oil_drop(rng: Rng, roi: F32, origin: F64, phone: _Phone, scale: float) -> None:
    diameter = max(3.0, rng.uniform(8.0, 40.0) * scale)
    a = diameter / 2
    b = a * rng.uniform(0.65, 1.0)
    angle = rng.uniform(0, 180)
    c = phone.to_frame(_glass_point(rng, phone, a + 2)[None]) - origin

    def ellipse(centre: F64, ax: float, bx: float, thickness: int) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            x, y = _fixed(centre - off).reshape(2)
            axes = (max(1, round(ax * _ONE)), max(1, round(bx * _ONE)))
            cv2.ellipse(layer, (int(x), int(y)), axes, angle, 0, 360, 255, thickness, _AA, _SHIFT)

        return draw

    def soft(apply: Callable[[F32, F32], None], sigma: float) -> Callable[[F32, F32], None]:
        return lambda region, alpha: apply(region, cv2.GaussianBlur(alpha, (0, 0), sigma))

    # Oily film: faintly brighter and warm.
    film = (rng.uniform(2.0, 8.0) * np.array([1.1, 1.0, 0.9])).tolist()
    _stamp(roi, c, a + 4, ellipse(c, a, b, -1), soft(_add(film), max(0.5, 0.05 * diameter)))
    ring = max(1, round(0.07 * diameter))
    _stamp(roi, c, a + 4, ellipse(c, a, b, ring), soft(_add([rng.uniform(4.0, 12.0)] * 3), 0.7))
    # Specular highlight towards the light (upper left), rotated with the drop.
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    h = c + rot @ np.array([-0.35 * a, -0.35 * b])
    hl = ellipse(h, max(0.7, 0.2 * a), max(0.6, 0.15 * b), -1)
    _stamp(roi, h, 0.3 * a + 3, hl, soft(_add([rng.uniform(60.0, 150.0)] * 3), 0.6))


def _pixel_mass(centre: float, sigma: float, n: int, start: int) -> F64:
    """Share of a 1-D Gaussian falling in each of n pixels from `start` (area sampling: no aliasing
    for sub-pixel spots)."""
    edges = (np.arange(start, start + n + 1, dtype=np.float64) - centre) / (sigma * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + np.array([math.erf(v) for v in edges]))
    return np.diff(cdf)


def _spot(img: F32, centre: F64, sigma: float, peak: float) -> None:
    """Add a round Gaussian spot of `peak` grey levels (as if it were wide; tiny ones are dimmer)."""
    r = math.ceil(3 * sigma) + 1
    box = _sub(img, centre[0] - r, centre[1] - r, centre[0] + r + 1, centre[1] + r + 1)
    if box is None:
        return
    x0, y0, x1, y1 = box
    gx = _pixel_mass(centre[0] - 0.5, sigma, x1 - x0, x0)  # pixel i covers [i - 0.5, i + 0.5]
    gy = _pixel_mass(centre[1] - 0.5, sigma, y1 - y0, y0)
    patch = np.outer(gy, gx) * (2 * math.pi * sigma * sigma * peak)
    img[y0:y1, x0:x1] += patch.astype(np.float32)[..., None]


def _dust(rng: Rng, roi: F32, origin: F64, phone: _Phone, scale: float) -> None:
    for _ in range(int(rng.integers(3, 25))):
        c = (phone.to_frame(_glass_point(rng, phone, 3)[None]) - origin)[0]
        diameter = max(0.8, rng.uniform(1.0, 4.0) * scale)  # px
        _spot(roi, c, diameter / 2.5, rng.uniform(40.0, 160.0))


def _lint(rng: Rng, roi: F32, origin: F64, phone: _Phone, scale: float) -> None:
    """A short fibre: a few twisted strands along a gently kinked path with hairy fibrils, soft
    (blurred) and greyish, with a soft shadow. Unlike a scratch it is fuzzy and wider (2-5 px)."""
    total = max(6.0, rng.uniform(20.0, 120.0) * scale)
    steps = max(4, int(total / max(1.0, 4.0 * scale)))
    step = total / steps
    turn = rng.normal(0.0, 0.12, steps)
    kinks = rng.random(steps) < 0.1
    turn[kinks] += rng.choice([-1.0, 1.0], int(kinks.sum())) * rng.uniform(0.6, 1.4, int(kinks.sum()))
    headings = rng.uniform(0, 2 * math.pi) + np.cumsum(turn)
    walk = np.cumsum(np.stack([np.cos(headings), np.sin(headings)], axis=1) * step, axis=0)
    start = _glass_point(rng, phone, total / 2 + 4)
    local = np.vstack([[0.0, 0.0], walk]) - walk.mean(axis=0) + start
    pts = phone.to_frame(local) - origin
    spread = max(0.5, rng.uniform(1.0, 2.5) * scale)  # half-width of the strand bundle, px
    normals = np.stack([-np.sin(headings), np.cos(headings)], axis=1)
    normals = np.vstack([normals[:1], normals])
    # Strands twist around each other: offsets oscillate along the fibre, 0.5-2 turns per 20 px.
    t = np.linspace(0.0, total, len(pts))[:, None]
    strands = []
    for _ in range(int(rng.integers(2, 5))):
        turns = rng.uniform(0.5, 2.0) / (20.0 * max(scale, 0.3))
        offset = spread * np.sin(2 * math.pi * turns * t + rng.uniform(0, 2 * math.pi))
        strands.append(pts + normals * offset)
    hairs = []
    for _ in range(int(rng.integers(6, 20))):  # loose fibrils sticking out: the fuzzy look
        p0 = pts[int(rng.integers(0, len(pts)))]
        ang = rng.uniform(0, 2 * math.pi)
        bend = rng.uniform(-0.6, 0.6)
        ln = rng.uniform(3.0, 12.0) * max(scale, 0.3)
        k = np.linspace(0.0, 1.0, 4)[:, None]
        dirs = np.stack([np.cos(ang + bend * k[:, 0]), np.sin(ang + bend * k[:, 0])], axis=1)
        hairs.append(p0 + dirs * ln * k)

    def fibre(shift: F64) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            for strand in strands:
                cv2.polylines(layer, [_fixed(strand + shift - off)], False, 230, 1, _AA, _SHIFT)
            for hair in hairs:
                cv2.polylines(layer, [_fixed(hair + shift - off)], False, 200, 1, _AA, _SHIFT)

        return draw

    fuzz = max(0.4, rng.uniform(0.5, 0.9) * scale)  # blur sigma, px
    pad = 2 * spread + 14 * max(scale, 0.3) + 6 * fuzz
    shadow_off = rng.uniform(1.5, 3.0) * max(scale, 0.5) * np.array([1.0, 1.0])

    def darken(region: F32, alpha: F32) -> None:
        region *= 1.0 - 0.3 * cv2.GaussianBlur(alpha, (0, 0), 2 * fuzz)[..., None]

    _stamp(roi, pts + shadow_off, pad, fibre(shadow_off), darken)
    grey = rng.uniform(40.0, 100.0) if rng.random() < 0.8 else rng.uniform(4.0, 12.0)
    colour = grey + rng.normal(0.0, 2.0, 3)
    blend = _blend(tuple(colour), rng.uniform(0.6, 0.95))
    _stamp(roi, pts, pad, fibre(np.zeros(2)), lambda r, a: blend(r, cv2.GaussianBlur(a, (0, 0), fuzz)))


def _stain(rng: Rng, roi: F32, glass: F32, origin: F64, phone: _Phone, scale: float) -> None:
    """A soft low-contrast blotch: a fingerprint (curved ridges) or a smeared smudge."""
    a = max(4.0, rng.uniform(35.0, 110.0) * scale)
    b = a * rng.uniform(0.6, 1.3)
    c = (phone.to_frame(_glass_point(rng, phone, 0)[None]) - origin)[0]
    r = max(a, b) + 2
    box = _sub(roi, c[0] - r, c[1] - r, c[0] + r, c[1] + r)
    if box is None:
        return
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    t = rng.uniform(0, math.pi)
    xr = (xx - c[0]) * math.cos(t) + (yy - c[1]) * math.sin(t)
    yr = -(xx - c[0]) * math.sin(t) + (yy - c[1]) * math.cos(t)
    rn = np.sqrt((xr / a) ** 2 + (yr / b) ** 2)
    shape = (y1 - y0, x1 - x0)
    envelope = np.clip(1.0 - rn, 0.0, 1.0) ** 0.7 * (0.7 + 0.3 * np.tanh(_smooth_noise(rng, shape, 4)))
    if rng.random() < 0.5:  # fingerprint: ridges about 4-7 px apart, bent by a smooth field
        period = max(2.0, rng.uniform(4.0, 7.0) * scale)
        warp = _smooth_noise(rng, shape, 3) * period * 1.5
        pattern = envelope * (0.5 + 0.5 * np.cos(2 * math.pi * (rn * a + warp) / period))
    else:  # smudge: streaks smeared along one direction
        white = rng.standard_normal(shape).astype(np.float32)
        streak = cv2.GaussianBlur(white, (0, 0), sigmaX=max(1.0, 6 * scale), sigmaY=max(0.5, scale))
        pattern = envelope * np.clip(0.6 + 2.0 * streak, 0.0, 1.5)
    delta = rng.uniform(6.0, 18.0) * np.array([1.0, 1.0, 0.95], np.float32)
    roi[y0:y1, x0:x1] += (pattern * glass[y0:y1, x0:x1])[..., None].astype(np.float32) * delta


def _reflection(rng: Rng, roi: F32, glass: F32, origin: F64, phone: _Phone, scale: float) -> None:
    """A long, straight, soft bright band (the reflection of a lamp or window edge) across the glass."""
    width = max(4.0, rng.uniform(15.0, 80.0) * scale)
    soft = rng.uniform(0.15, 0.35) * width
    angle = rng.uniform(math.radians(15), math.radians(75)) * rng.choice([-1.0, 1.0])
    nx, ny = -math.sin(angle), math.cos(angle)
    c = (phone.to_frame(_glass_point(rng, phone, 0)[None]) - origin)[0]
    h, w = roi.shape[:2]
    # The band is soft (edges >= 2 px): evaluate it on a half-resolution grid and upsample (4x cheaper).
    hw, hh = max(2, (w + 1) // 2), max(2, (h + 1) // 2)
    xs = np.arange(hw, dtype=np.float32) * (w / hw) + 0.5 - c[0]
    ys = np.arange(hh, dtype=np.float32) * (h / hh) + 0.5 - c[1]
    d = np.abs(xs[None, :] * nx + ys[:, None] * ny)
    band = 0.5 * (np.tanh((width / 2 - d) / soft) + 1.0)
    along = xs[None, :] * ny - ys[:, None] * nx  # slow variation along the band
    band *= 0.75 + 0.25 * np.cos(along * (2 * math.pi / rng.uniform(300, 900) / max(scale, 0.1)))
    band = cv2.resize(band.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    delta = rng.uniform(8.0, 25.0) * np.array([1.05, 1.0, 0.97], np.float32)
    roi += (band * glass)[..., None].astype(np.float32) * delta


def _distractor_types(rng: Rng, scratch: bool) -> list[str]:
    """Negatives: ~25 % clean, else 1-4 look-alike types. Positives: distractors ~50 % of the time."""
    if rng.random() < (0.5 if scratch else 0.25):
        return []
    k = int(rng.integers(1, 5))
    return [DISTRACTORS[i] for i in sorted(rng.choice(len(DISTRACTORS), size=k, replace=False))]


# ----------------------------------------------------------------------------------------------
# camera


def _camera(rng: Rng, img: U8) -> U8:
    """Optics blur, exposure and white balance, then sensor noise (uint8 all the way, for speed)."""
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8))
    gain = rng.uniform(0.85, 1.15) * np.exp(rng.normal(0.0, 0.02, 3))  # exposure x white balance
    levels = np.arange(256, dtype=np.float64)
    lut = np.clip(levels[:, None] * gain[None, :] + 0.5, 0, 255).astype(np.uint8).reshape(1, 256, 3)
    img = cv2.LUT(img, lut)
    # Gaussian noise via a 256-entry quantile table on random bytes: ~10x faster than
    # standard_normal at 1080p, same distribution up to ±2.7 sigma.
    sigma = rng.uniform(2.0, 4.0)  # grey levels
    nd = NormalDist()
    q = np.array([round(sigma * nd.inv_cdf((i + 0.5) / 256)) for i in range(256)])
    pos = np.clip(q, 0, 255).astype(np.uint8)
    neg = np.clip(-q, 0, 255).astype(np.uint8)
    # Raw 64-bit generator output viewed as bytes: ~3x faster than integers(0, 256) at 1080p.
    raw = rng.bit_generator.random_raw(math.ceil(img.size / 8)).view(np.uint8)
    noise = raw[: img.size].reshape(img.shape)
    return cv2.subtract(cv2.add(img, cv2.LUT(noise, pos)), cv2.LUT(noise, neg))


# ----------------------------------------------------------------------------------------------
# rendering


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    width, height = int(size[0]), int(size[1])
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValueError(f"size must be at least {MIN_SIDE}x{MIN_SIDE}, got {width}x{height}")
    return width, height


def _streams(seed: int, index: int) -> list[Rng]:
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    children = np.random.SeedSequence([_TAG_IMAGE, index, seed]).spawn(5)
    return [np.random.default_rng(s) for s in children]


def _render(
    seed: int,
    index: int,
    *,
    scratch: bool,
    size: tuple[int, int] = (REF_W, REF_H),
    draw_scratches: bool = True,
) -> _Scene:
    width, height = _check_size(size)
    scale = min(width / REF_W, height / REF_H)
    r_pose, r_scene, r_scratch, r_marks, r_camera = _streams(seed, index)
    phone = _pose(r_pose, width, height)
    image = _table(r_scene, width, height, phone)
    canvas, body, glass_local = _phone_canvas(r_scene, phone)

    # Paste the phone into the frame region that it covers.
    cw, ch = phone.canvas_size
    corners = phone.to_frame(np.array([[0.0, 0.0], [cw, 0.0], [0.0, ch], [cw, ch]]))
    x0, y0 = max(0, math.floor(corners[:, 0].min())), max(0, math.floor(corners[:, 1].min()))
    x1, y1 = min(width, math.ceil(corners[:, 0].max())), min(height, math.ceil(corners[:, 1].max()))
    m = phone.matrix.copy()
    m[:, 2] -= (x0, y0)
    dsize = (x1 - x0, y1 - y0)
    colour = cv2.warpAffine(canvas, m, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(body, m, dsize, flags=cv2.INTER_LINEAR).astype(np.float32) * (1.0 / 255.0)
    glass_u8 = cv2.warpAffine(glass_local, m, dsize, flags=cv2.INTER_LINEAR)
    glass = glass_u8.astype(np.float32) * (1.0 / 255.0)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    roi += (colour.astype(np.float32) - roi) * alpha[..., None]

    origin = np.array([x0, y0], np.float64)
    mask = np.zeros((height, width), np.uint8)
    drawn: list[str] = []
    kinds = _distractor_types(r_marks, scratch)
    # Broad surface marks first, scratches, then things lying on top of the glass.
    for kind in kinds:
        if kind == "reflection":
            for _ in range(int(r_marks.integers(1, 3))):
                _reflection(r_marks, roi, glass, origin, phone, scale)
                drawn.append(kind)
        elif kind == "stain":
            for _ in range(int(r_marks.integers(1, 3))):
                _stain(r_marks, roi, glass, origin, phone, scale)
                drawn.append(kind)
    if scratch:
        tint = (1.0 + r_scratch.normal(0.0, 0.03, 3)).astype(np.float32)
        for _ in range(int(r_scratch.integers(1, 4))):
            sc = _scratch_curve(r_scratch, phone, scale)
            _draw_scratch(roi, mask, origin, sc, phone, tint, draw_scratches)
            drawn.append(f"scratch:w{sc.width}:len{round(sc.length)}:contrast{round(sc.contrast)}")
    for kind in kinds:
        if kind == "oil_drop":
            for _ in range(int(r_marks.integers(1, 4))):
                _oil_drop(r_marks, roi, origin, phone, scale)
                drawn.append(kind)
        elif kind == "lint":
            for _ in range(int(r_marks.integers(1, 3))):
                _lint(r_marks, roi, origin, phone, scale)
                drawn.append(kind)
        elif kind == "dust":
            _dust(r_marks, roi, origin, phone, scale)
            drawn.append(kind)

    image[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
    image = _camera(r_camera, image)
    glass_frame = np.zeros((height, width), np.uint8)
    glass_frame[y0:y1, x0:x1] = np.where(glass_u8 >= 128, 255, 0).astype(np.uint8)
    sample = Sample(
        image=np.ascontiguousarray(image),
        mask=mask,
        label="scratch" if scratch else "ok",
        drawn=tuple(drawn),
        phone_box=_phone_box(phone, width, height),
    )
    return _Scene(sample=sample, glass=glass_frame)


def render(
    seed: int,
    index: int,
    *,
    scratch: bool,
    size: tuple[int, int] = (REF_W, REF_H),
    draw_scratches: bool = True,
) -> Sample:
    """Render image `index` of dataset `seed`. `size` is (width, height) in px.

    draw_scratches=False renders the identical scene with the scratches left out of the image (the
    mask and `drawn` still describe them): tests use it to check where a scratch changes pixels."""
    return _render(seed, index, scratch=scratch, size=size, draw_scratches=draw_scratches).sample


# ----------------------------------------------------------------------------------------------
# dataset generation


def scratch_labels(seed: int, count: int, scratch_fraction: float) -> npt.NDArray[np.bool_]:
    """Exactly round(count * fraction) positives, placed by a seeded permutation."""
    positives = round(count * scratch_fraction)
    perm = np.random.default_rng(np.random.SeedSequence([_TAG_LABELS, 0, seed])).permutation(count)
    labels = np.zeros(count, bool)
    labels[perm[:positives]] = True
    return labels


@dataclass(frozen=True)
class _Task:
    out: Path
    seed: int
    index: int
    scratch: bool
    size: tuple[int, int]


def _name(seed: int, index: int) -> str:
    return f"s{seed}_{index:05d}"


def _write_one(task: _Task) -> dict[str, str]:
    """Render, encode and write one image and its mask; returns its manifest row."""
    sample = render(task.seed, task.index, scratch=task.scratch, size=task.size)
    name = _name(task.seed, task.index)
    rel = f"{sample.label}/{name}.jpg"
    ok, jpg = cv2.imencode(".jpg", sample.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    # Masks are mostly zero: no PNG filtering and light deflate is ~4x faster than the default.
    png_args = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    ok2, png = cv2.imencode(".png", sample.mask, png_args)
    if not (ok and ok2):
        raise RuntimeError(f"could not encode image {name}")
    (task.out / rel).write_bytes(jpg.tobytes())
    (task.out / "masks" / f"{name}.png").write_bytes(png.tobytes())
    return {
        "file": rel,
        "mask": f"masks/{name}.png",
        "label": sample.label,
        "seed": str(task.seed),
        "index": str(task.index),
        "width": str(task.size[0]),
        "height": str(task.size[1]),
        "drawn": ";".join(sample.drawn),
        "phone_box": ",".join(str(v) for v in sample.phone_box),
    }


def _worker_init() -> None:
    cv2.setNumThreads(1)  # parallelism comes from the processes; avoid oversubscribing cores


def _validate(
    out: Path, count: int, seed: int, scratch_fraction: float, size: tuple[int, int], workers: int
) -> None:
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not (0.0 <= scratch_fraction <= 1.0):
        raise ValueError(f"scratch fraction must be within [0, 1], got {scratch_fraction}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _check_size(size)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"output folder {out} exists and is not empty; choose a new one")


def generate(
    out: Path,
    *,
    count: int,
    seed: int,
    scratch_fraction: float = 0.5,
    size: tuple[int, int] = (REF_W, REF_H),
    workers: int = 1,
    progress: bool = True,
) -> SynthReport:
    """Write an ImageFolder (`out/scratch`, `out/ok`), one mask per image (`out/masks`) and
    `out/manifest.csv`. Raises ValueError for bad arguments or a non-empty output folder."""
    from tqdm import tqdm

    out = Path(out)
    _validate(out, count, seed, scratch_fraction, size, workers)
    for sub in ("scratch", "ok", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    labels = scratch_labels(seed, count, scratch_fraction)
    tasks = [_Task(out, seed, i, bool(labels[i]), (int(size[0]), int(size[1]))) for i in range(count)]
    start = time.perf_counter()
    rows: list[dict[str, str]] = []
    with tqdm(total=count, disable=not progress, file=sys.stderr, unit="img", desc="synth") as bar:
        for row in _run(tasks, workers):
            rows.append(row)
            bar.update(1)
    with (out / "manifest.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    seconds = time.perf_counter() - start
    return SynthReport(
        count=count,
        positives=int(labels.sum()),
        seconds=seconds,
        images_per_second=count / seconds if seconds > 0 else float("inf"),
        out=out,
    )


def _run(tasks: list[_Task], workers: int) -> Iterator[dict[str, str]]:
    """Rows in index order; images do not depend on the worker count."""
    if workers == 1 or len(tasks) == 1:
        yield from map(_write_one, tasks)
        return
    # spawn, not fork: forking a process whose OpenCV thread pool already ran can deadlock.
    ctx: Any = multiprocessing.get_context("spawn")
    with ctx.Pool(min(workers, len(tasks)), initializer=_worker_init) as pool:
        yield from pool.imap(_write_one, tasks, chunksize=4)
