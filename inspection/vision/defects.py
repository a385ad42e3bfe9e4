"""Defects for the synthetic phone photos (`inspection.vision.synth`): scratches on the glass (the
positives, also drawn into the ground-truth mask) and look-alikes that are not scratches (oil drops,
fingerprints and smudges, dust, lint, reflections), drawn onto the phone's part of the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.vision.drawing import (
    AA,
    F32,
    F64,
    ONE,
    SHIFT,
    U8,
    Frame,
    Phone,
    Rng,
    add,
    around,
    blend,
    fixed,
    glass_point,
    inside_rrect,
    loguniform,
    smooth_noise,
    stamp,
    sub_box,
)

DISTRACTORS = ("oil_drop", "stain", "dust", "lint", "reflection")
_FIT_TRIES = 144  # placements tried for a scratch, shrinking every 12 (see _scratch_curve)


def draw_marks(
    frame: Frame,
    mask: U8,
    phone: Phone,
    scale: float,
    *,
    scratch: bool,
    streams: tuple[Rng, Rng],
    draw_scratches: bool = True,
) -> list[str]:
    """Draw the look-alikes (and the scratches of a positive, also into `mask`) onto `frame`; returns
    what was drawn, in order. `streams` are the scratch and the marks random streams."""
    r_scratch, r_marks = streams
    roi, glass, origin = frame.roi, frame.glass, frame.origin
    drawn: list[str] = []
    kinds = distractor_types(r_marks, scratch)
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
    return drawn


# ----------------------------------------------------------------------------------------------
# scratches (positives)


@dataclass(frozen=True)
class _Scratch:
    pts: F64  # local px, polyline
    width: int  # px
    length: float  # px along the curve
    contrast: float  # peak grey levels above the glass
    profile: F64  # 0..1 intensity per point


def _scratch_curve(rng: Rng, phone: Phone, scale: float) -> _Scratch:
    width = max(1, round(float(rng.choice([1, 2, 3, 4], p=[0.35, 0.3, 0.2, 0.15])) * scale))
    length = max(3.0, loguniform(rng, 40.0, 600.0) * scale)
    contrast = loguniform(rng, 15.0, 120.0)
    rect = phone.glass_rect()
    margin = width + 2.0  # the anti-aliased stroke stays clear of the glass edge
    pts: F64 | None = None
    # Lengths are drawn for the lab's phone (glass ~430x920 px); a varied phone can be 5x smaller, where a
    # 600 px scratch fits no way round. It shrinks by a quarter every 12 tries until it fits: 0.75^11 ~ 4 %.
    # (It used to give up after 60 tries, at 24 % of the length, and leave a dot at the glass centre labelled
    # a scratch: 7 of the 500 scratched phones of the varied test set, seed 777, 2 with nothing else. Lab
    # scratches always fit within 60 tries, so the lab scenes are unchanged byte for byte.)
    for attempt in range(_FIT_TRIES):
        if attempt and attempt % 12 == 0:
            length *= 0.75  # does not fit: try shorter
        centre = glass_point(rng, phone, margin)
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
        if inside_rrect(cand, rect, margin):
            pts = cand
            break
    if pts is None:  # a glass too small for every try: a straight scratch down the middle of its long side
        cx, cy, hx, hy, _ = rect
        half = max(1.0, min(length / 2, max(hx, hy) - margin - 1.0))
        along = np.array([0.0, half]) if hy >= hx else np.array([half, 0.0])
        pts = np.linspace((cx, cy) - along, (cx, cy) + along, max(6, int(2 * half / 4) + 2))
    t1 = np.linspace(0.0, 1.0, len(pts))
    knots = rng.uniform(0.55, 1.0, 6)
    taper = np.clip(np.minimum(t1, 1 - t1) / rng.uniform(0.03, 0.12), 0.0, 1.0)
    profile = np.interp(t1, np.linspace(0.0, 1.0, 6), knots) * (0.4 + 0.6 * taper)
    real_len = float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) if len(pts) > 1 else 1.0
    return _Scratch(pts=pts, width=width, length=real_len, contrast=contrast, profile=profile)


def _draw_scratch(
    roi: F32, mask: U8, origin: F64, sc: _Scratch, phone: Phone, tint: F32, draw: bool
) -> None:
    frame_pts = phone.to_frame(sc.pts)
    cv2.polylines(mask, [fixed(frame_pts)], False, 255, sc.width, cv2.LINE_8, SHIFT)
    if not draw:
        return
    pts = frame_pts - origin
    pad = sc.width + 4
    box = around(roi, pts, pad)
    if box is None:
        return
    x0, y0, x1, y1 = box
    fx = fixed(pts - (x0, y0))
    # Coverage from one anti-aliased polyline (crisp edges, no bead where segments overlap) times an
    # intensity field that varies slowly along the length (non-AA, later segments overwrite).
    cover = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.polylines(cover, [fx], False, 255, sc.width, AA, SHIFT)
    level = np.zeros(cover.shape, np.float32)
    flat = fx.reshape(-1, 2)
    if len(flat) == 1:
        flat = np.vstack([flat, flat])
    for i in range(len(flat) - 1):
        a, b = (int(flat[i, 0]), int(flat[i, 1])), (int(flat[i + 1, 0]), int(flat[i + 1, 1]))
        cv2.line(level, a, b, float(sc.profile[i]), sc.width + 4, cv2.LINE_8, SHIFT)
    alpha = cover.astype(np.float32) * (1.0 / 255.0) * level
    roi[y0:y1, x0:x1] += alpha[..., None] * (tint * sc.contrast).reshape(1, 1, 3)


# ----------------------------------------------------------------------------------------------
# distractors (look-alikes that are not scratches)


def _oil_drop(rng: Rng, roi: F32, origin: F64, phone: Phone, scale: float) -> None:
    diameter = max(3.0, rng.uniform(8.0, 40.0) * scale)
    a = diameter / 2
    b = a * rng.uniform(0.65, 1.0)
    angle = rng.uniform(0, 180)
    c = phone.to_frame(glass_point(rng, phone, a + 2)[None]) - origin

    def ellipse(centre: F64, ax: float, bx: float, thickness: int) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            x, y = fixed(centre - off).reshape(2)
            axes = (max(1, round(ax * ONE)), max(1, round(bx * ONE)))
            cv2.ellipse(layer, (int(x), int(y)), axes, angle, 0, 360, 255, thickness, AA, SHIFT)

        return draw

    def soft(apply: Callable[[F32, F32], None], sigma: float) -> Callable[[F32, F32], None]:
        return lambda region, alpha: apply(region, cv2.GaussianBlur(alpha, (0, 0), sigma))

    # Oily film: faintly brighter and warm.
    film = (rng.uniform(2.0, 8.0) * np.array([1.1, 1.0, 0.9])).tolist()
    stamp(roi, c, a + 4, ellipse(c, a, b, -1), soft(add(film), max(0.5, 0.05 * diameter)))
    ring = max(1, round(0.07 * diameter))
    stamp(roi, c, a + 4, ellipse(c, a, b, ring), soft(add([rng.uniform(4.0, 12.0)] * 3), 0.7))
    # Specular highlight towards the light (upper left), rotated with the drop.
    t = math.radians(angle)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    h = c + rot @ np.array([-0.35 * a, -0.35 * b])
    hl = ellipse(h, max(0.7, 0.2 * a), max(0.6, 0.15 * b), -1)
    stamp(roi, h, 0.3 * a + 3, hl, soft(add([rng.uniform(60.0, 150.0)] * 3), 0.6))


def _pixel_mass(centre: float, sigma: float, n: int, start: int) -> F64:
    """Share of a 1-D Gaussian falling in each of n pixels from `start` (area sampling: no aliasing
    for sub-pixel spots)."""
    edges = (np.arange(start, start + n + 1, dtype=np.float64) - centre) / (sigma * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + np.array([math.erf(v) for v in edges]))
    return np.diff(cdf)


def _spot(img: F32, centre: F64, sigma: float, peak: float) -> None:
    """Add a round Gaussian spot of `peak` grey levels (as if it were wide; tiny ones are dimmer)."""
    r = math.ceil(3 * sigma) + 1
    box = sub_box(img, centre[0] - r, centre[1] - r, centre[0] + r + 1, centre[1] + r + 1)
    if box is None:
        return
    x0, y0, x1, y1 = box
    gx = _pixel_mass(centre[0] - 0.5, sigma, x1 - x0, x0)  # pixel i covers [i - 0.5, i + 0.5]
    gy = _pixel_mass(centre[1] - 0.5, sigma, y1 - y0, y0)
    patch = np.outer(gy, gx) * (2 * math.pi * sigma * sigma * peak)
    img[y0:y1, x0:x1] += patch.astype(np.float32)[..., None]


def _dust(rng: Rng, roi: F32, origin: F64, phone: Phone, scale: float) -> None:
    for _ in range(int(rng.integers(3, 25))):
        c = (phone.to_frame(glass_point(rng, phone, 3)[None]) - origin)[0]
        diameter = max(0.8, rng.uniform(1.0, 4.0) * scale)  # px
        _spot(roi, c, diameter / 2.5, rng.uniform(40.0, 160.0))


def _lint(rng: Rng, roi: F32, origin: F64, phone: Phone, scale: float) -> None:
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
    start = glass_point(rng, phone, total / 2 + 4)
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
                cv2.polylines(layer, [fixed(strand + shift - off)], False, 230, 1, AA, SHIFT)
            for hair in hairs:
                cv2.polylines(layer, [fixed(hair + shift - off)], False, 200, 1, AA, SHIFT)

        return draw

    fuzz = max(0.4, rng.uniform(0.5, 0.9) * scale)  # blur sigma, px
    pad = 2 * spread + 14 * max(scale, 0.3) + 6 * fuzz
    shadow_off = rng.uniform(1.5, 3.0) * max(scale, 0.5) * np.array([1.0, 1.0])

    def darken(region: F32, alpha: F32) -> None:
        region *= 1.0 - 0.3 * cv2.GaussianBlur(alpha, (0, 0), 2 * fuzz)[..., None]

    stamp(roi, pts + shadow_off, pad, fibre(shadow_off), darken)
    grey = rng.uniform(40.0, 100.0) if rng.random() < 0.8 else rng.uniform(4.0, 12.0)
    colour = grey + rng.normal(0.0, 2.0, 3)
    over = blend(tuple(colour), rng.uniform(0.6, 0.95))
    stamp(roi, pts, pad, fibre(np.zeros(2)), lambda r, a: over(r, cv2.GaussianBlur(a, (0, 0), fuzz)))


def _stain(rng: Rng, roi: F32, glass: F32, origin: F64, phone: Phone, scale: float) -> None:
    """A soft low-contrast blotch: a fingerprint (curved ridges) or a smeared smudge."""
    a = max(4.0, rng.uniform(35.0, 110.0) * scale)
    b = a * rng.uniform(0.6, 1.3)
    c = (phone.to_frame(glass_point(rng, phone, 0)[None]) - origin)[0]
    r = max(a, b) + 2
    box = sub_box(roi, c[0] - r, c[1] - r, c[0] + r, c[1] + r)
    if box is None:
        return
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    t = rng.uniform(0, math.pi)
    xr = (xx - c[0]) * math.cos(t) + (yy - c[1]) * math.sin(t)
    yr = -(xx - c[0]) * math.sin(t) + (yy - c[1]) * math.cos(t)
    rn = np.sqrt((xr / a) ** 2 + (yr / b) ** 2)
    shape = (y1 - y0, x1 - x0)
    envelope = np.clip(1.0 - rn, 0.0, 1.0) ** 0.7 * (0.7 + 0.3 * np.tanh(smooth_noise(rng, shape, 4)))
    if rng.random() < 0.5:  # fingerprint: ridges about 4-7 px apart, bent by a smooth field
        period = max(2.0, rng.uniform(4.0, 7.0) * scale)
        warp = smooth_noise(rng, shape, 3) * period * 1.5
        pattern = envelope * (0.5 + 0.5 * np.cos(2 * math.pi * (rn * a + warp) / period))
    else:  # smudge: streaks smeared along one direction
        white = rng.standard_normal(shape).astype(np.float32)
        streak = cv2.GaussianBlur(white, (0, 0), sigmaX=max(1.0, 6 * scale), sigmaY=max(0.5, scale))
        pattern = envelope * np.clip(0.6 + 2.0 * streak, 0.0, 1.5)
    delta = rng.uniform(6.0, 18.0) * np.array([1.0, 1.0, 0.95], np.float32)
    roi[y0:y1, x0:x1] += (pattern * glass[y0:y1, x0:x1])[..., None].astype(np.float32) * delta


def _reflection(rng: Rng, roi: F32, glass: F32, origin: F64, phone: Phone, scale: float) -> None:
    """A long, straight, soft bright band (the reflection of a lamp or window edge) across the glass."""
    width = max(4.0, rng.uniform(15.0, 80.0) * scale)
    soft = rng.uniform(0.15, 0.35) * width
    angle = rng.uniform(math.radians(15), math.radians(75)) * rng.choice([-1.0, 1.0])
    nx, ny = -math.sin(angle), math.cos(angle)
    c = (phone.to_frame(glass_point(rng, phone, 0)[None]) - origin)[0]
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


def distractor_types(rng: Rng, scratch: bool) -> list[str]:
    """Negatives: ~25 % clean, else 1-4 look-alike types. Positives: distractors ~50 % of the time."""
    if rng.random() < (0.5 if scratch else 0.25):
        return []
    k = int(rng.integers(1, 5))
    return [DISTRACTORS[i] for i in sorted(rng.choice(len(DISTRACTORS), size=k, replace=False))]

