"""The scene of a synthetic phone photo (`inspection.vision.synth`): the phone's pose, the matte
inspection table with its shadow, the phone itself (rim, glass, display, earpiece, camera hole) and
the camera (blur, exposure, white balance, sensor noise). No defects: those are `defects`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

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
    blend,
    fixed,
    rounded_rect,
    smooth_noise,
    stamp,
)
from inspection.vision.setups import BODIES, Look


def pose(rng: Rng, width: int, height: int) -> Phone:
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
    return Phone(pw=pw, ph=ph, pad=pad, radius=radius, rim=rim, bezel=bezel, u=u, matrix=matrix)


def _outline(phone: Phone) -> F64:
    p = phone.pad
    return rounded_rect(p, p, p + phone.pw, p + phone.ph, phone.radius)


def frame_outline(phone: Phone) -> F64:
    """The phone's outline in frame pixels."""
    return phone.to_frame(_outline(phone))


def phone_box(phone: Phone, width: int, height: int) -> tuple[int, int, int, int]:
    pts = phone.to_frame(_outline(phone))
    x0, y0 = max(0, math.floor(pts[:, 0].min())), max(0, math.floor(pts[:, 1].min()))
    x1, y1 = min(width, math.ceil(pts[:, 0].max())), min(height, math.ceil(pts[:, 1].max()))
    return x0, y0, x1 - x0, y1 - y0


def table(rng: Rng, width: int, height: int, phone: Phone) -> U8:
    """Matte grey table with mottled texture, vignetting and the phone's soft contact shadow.
    Built at 1/4 resolution (everything here is smooth) and upsampled."""
    lw, lh = max(16, width // 4), max(16, height // 4)
    k = lw / width  # frame px -> low-res px
    base = rng.uniform(105.0, 150.0)  # grey level of the table
    lum = np.full((lh, lw), base, np.float32)
    lum += smooth_noise(rng, (lh, lw), 10) * rng.uniform(2.0, 5.0)  # large blotches
    fine = rng.standard_normal((lh, lw)).astype(np.float32)
    lum += cv2.GaussianBlur(fine, (0, 0), 0.7) * rng.uniform(1.0, 2.5)  # mat grain
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    cx, cy = lw * rng.uniform(0.4, 0.6), lh * rng.uniform(0.4, 0.6)
    r2 = ((xx - cx) / (lw / 2)) ** 2 * 0.6 + ((yy - cy) / (lh / 2)) ** 2
    lum *= 1.0 - rng.uniform(0.08, 0.2) * r2 / 2.0  # vignetting: darker corners
    # Diffuse light: a soft, slightly offset shadow around the phone.
    shadow = np.zeros((lh, lw), np.uint8)
    outline = phone.to_frame(_outline(phone)) * k + rng.uniform(-1.0, 3.0, 2) * k * phone.u
    cv2.fillPoly(shadow, [fixed(outline)], 255, AA, SHIFT)
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


def phone_canvas(rng: Rng, phone: Phone) -> tuple[U8, U8, U8]:
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
    body, glass, disp, glass_poly = _phone_masks(phone)
    gx, gy, _, hy, _ = phone.glass_rect()
    # Display area (off) under the glass differs by a few levels from the black bezel around it.
    glass_col += (disp.astype(np.float32) * (rng.uniform(-4.0, 3.0) / 255.0))[..., None]
    ga = (glass.astype(np.float32) * (1.0 / 255.0))[..., None]
    canvas += (glass_col - canvas) * ga

    _phone_details(rng, phone, canvas, (gx, gy - hy))
    out = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    # Edges, drawn straight onto the 8-bit canvas (cheap): a bright chamfer along the outer rim and a
    # dark seam where glass meets metal.
    chamfer = rounded_rect(p + 1.2, p + 1.2, p + phone.pw - 1.2, p + phone.ph - 1.2, phone.radius - 1.2)
    bright = tuple(float(v) for v in np.clip(metal + rng.uniform(15.0, 35.0), 0, 255))
    dark = tuple(float(v) for v in np.clip(gl - rng.uniform(5.0, 12.0), 0, 255))
    cv2.polylines(out, [fixed(chamfer)], True, bright, 1, AA, SHIFT)
    cv2.polylines(out, [fixed(glass_poly)], True, dark, 1, AA, SHIFT)
    return out, body, glass


def _phone_masks(phone: Phone) -> tuple[U8, U8, U8, np.ndarray]:
    """(body, glass, display) masks on the phone canvas (0/255, anti-aliased) and the glass outline."""
    cw, ch = phone.canvas_size

    def mask(poly: np.ndarray) -> U8:
        m = np.zeros((ch, cw), np.uint8)
        cv2.fillPoly(m, [fixed(poly)], 255, AA, SHIFT)
        return m

    gx, gy, hx, hy, gr = phone.glass_rect()
    glass_poly = rounded_rect(gx - hx, gy - hy, gx + hx, gy + hy, gr)
    b = phone.bezel
    disp_poly = rounded_rect(gx - hx + b, gy - hy + b, gx + hx - b, gy + hy - b, max(1.0, gr - b * 0.6))
    return mask(_outline(phone)), mask(glass_poly), mask(disp_poly), glass_poly


def phone_canvas_look(rng: Rng, phone: Phone, look: Look) -> tuple[U8, U8, U8]:
    """`phone_canvas` for a varied/closeup look: the body colour of the look, a black or white bezel
    around the dark display under the glass (the glass mask covers bezel and display)."""
    cw, ch = phone.canvas_size
    lw, lh = max(8, cw // 8), max(8, ch // 8)
    light = rng.uniform(0.0, 2 * math.pi)
    metal = np.array(BODIES[look.body], np.float32) + rng.normal(0, 4.0, 3).astype(np.float32)
    metal_low = metal * (1.0 + 0.12 * _linear_field((lh, lw), light))[..., None]
    dark = rng.uniform(10.0, 32.0) + np.array([3.0, 1.0, 0.0], np.float32) * rng.uniform(0.5, 1.5)
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    bx, by = rng.uniform(0.1, 0.9) * lw, rng.uniform(0.1, 0.9) * lh
    sx, sy = rng.uniform(0.3, 0.7) * lw, rng.uniform(0.2, 0.5) * lh
    sheen = np.exp(-(((xx - bx) / sx) ** 2) - ((yy - by) / sy) ** 2) * rng.uniform(3.0, 14.0)
    sheen += rng.uniform(2.0, 8.0) * _linear_field((lh, lw), rng.uniform(0, 2 * math.pi))
    canvas = cv2.resize(metal_low.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)
    sheen_full = cv2.resize(sheen.astype(np.float32), (cw, ch), interpolation=cv2.INTER_LINEAR)[..., None]
    border = np.array([rng.uniform(205.0, 240.0)] * 3, np.float32) if look.bezel_white else dark + 2.0
    body, glass, disp, glass_poly = _phone_masks(phone)
    gx, gy, _, hy, _ = phone.glass_rect()
    da = (disp.astype(np.float32) * (1.0 / 255.0))[..., None]
    glass_col = border + (dark - border) * da + sheen_full
    ga = (glass.astype(np.float32) * (1.0 / 255.0))[..., None]
    canvas += (glass_col - canvas) * ga
    _phone_details(rng, phone, canvas, (gx, gy - hy))
    out = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
    p = phone.pad
    chamfer = rounded_rect(p + 1.2, p + 1.2, p + phone.pw - 1.2, p + phone.ph - 1.2, phone.radius - 1.2)
    bright = tuple(float(v) for v in np.clip(metal + rng.uniform(10.0, 30.0), 0, 255))
    seam = tuple(float(v) for v in np.clip(np.minimum(metal, border) - rng.uniform(8.0, 20.0), 0, 255))
    cv2.polylines(out, [fixed(chamfer)], True, bright, 1, AA, SHIFT)
    cv2.polylines(out, [fixed(glass_poly)], True, seam, 1, AA, SHIFT)
    return out, body, glass


def _phone_details(rng: Rng, phone: Phone, canvas: F32, top: tuple[float, float]) -> None:
    """Earpiece slit, front camera hole and sensor holes near the top edge of the glass."""
    u = phone.u
    cx, gy0 = top
    # Earpiece: a thin rounded slot right at the top edge of the glass.
    sw, sh = rng.uniform(55.0, 95.0) * u, max(1.0, rng.uniform(2.5, 5.0) * u)
    sy = gy0 + rng.uniform(2.0, 4.0) * u + sh / 2
    slot = rounded_rect(cx - sw / 2, sy - sh / 2, cx + sw / 2, sy + sh / 2, sh / 2, 6)

    def fill(poly: F64) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            cv2.fillPoly(layer, [fixed(poly - off)], 255, AA, SHIFT)

        return draw

    stamp(canvas, slot, 2, fill(slot), blend((7.0, 7.0, 8.0), 0.9))
    lip = slot + (0.0, max(0.6, 0.8 * u))
    stamp(canvas, lip, 2, fill(lip), add([rng.uniform(6.0, 14.0)] * 3))
    stamp(canvas, slot, 2, fill(slot), blend((9.0, 9.0, 10.0), 0.85))
    # Front camera: a very dark round hole with a faint ring and a tiny lens glint.
    r = max(1.0, rng.uniform(9.0, 13.0) * u)
    cy = gy0 + phone.bezel + rng.uniform(14.0, 24.0) * u
    side = 0.0 if rng.random() < 0.7 else rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.32)  # mostly centred
    hole_x = cx + side * phone.pw
    centre = np.array([[hole_x, cy]])

    def disc(c: F64, rad: float, thickness: int = -1) -> Callable[[U8, F64], None]:
        def draw(layer: U8, off: F64) -> None:
            x, y = fixed(c - off).reshape(2)
            cv2.circle(layer, (int(x), int(y)), max(1, round(rad * ONE)), 255, thickness, AA, SHIFT)

        return draw

    stamp(canvas, centre, r + 3, disc(centre, r + 1.0, max(1, round(u))), add([rng.uniform(8.0, 20.0)] * 3))
    stamp(canvas, centre, r + 3, disc(centre, r), blend((4.0, 4.0, 5.0)))
    glint = centre + (-0.3 * r, -0.3 * r)
    stamp(canvas, glint, r, disc(glint, max(0.6, 0.22 * r)), add([rng.uniform(20.0, 50.0)] * 3))
    # Proximity/light sensor holes beside the earpiece.
    for _ in range(int(rng.integers(1, 3))):
        sx = cx + rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 0.75) * sw
        c = np.array([[sx, sy + rng.uniform(-1.0, 3.0) * u]])
        rad = max(0.7, rng.uniform(1.5, 3.0) * u)
        # A faint lighter ring (the hole's edge catches light) around a dark centre.
        stamp(canvas, c, rad + 3, disc(c, rad + 0.8, 1), add([rng.uniform(6.0, 14.0)] * 3))
        stamp(canvas, c, rad + 2, disc(c, rad), blend((6.0, 6.0, 7.0), rng.uniform(0.6, 0.9)))


def place_phone(image: U8, phone: Phone, canvas: U8, body: U8, glass_local: U8) -> Frame:
    """Warp the upright phone canvas into the frame region that it covers and composite it there."""
    height, width = image.shape[:2]
    cw, ch = phone.canvas_size
    corners = phone.to_frame(np.array([[0.0, 0.0], [cw, 0.0], [0.0, ch], [cw, ch]]))
    x0, y0 = max(0, math.floor(corners[:, 0].min())), max(0, math.floor(corners[:, 1].min()))
    x1, y1 = min(width, math.ceil(corners[:, 0].max())), min(height, math.ceil(corners[:, 1].max()))
    m = phone.matrix.copy()
    m[:, 2] -= (x0, y0)
    dsize = (x1 - x0, y1 - y0)
    colour = cv2.warpAffine(canvas, m, dsize, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    body_u8 = cv2.warpAffine(body, m, dsize, flags=cv2.INTER_LINEAR)
    alpha = body_u8.astype(np.float32) * (1.0 / 255.0)
    glass_u8 = cv2.warpAffine(glass_local, m, dsize, flags=cv2.INTER_LINEAR)
    glass = glass_u8.astype(np.float32) * (1.0 / 255.0)
    roi = image[y0:y1, x0:x1].astype(np.float32)
    roi += (colour.astype(np.float32) - roi) * alpha[..., None]
    return Frame(roi=roi, glass=glass, glass_u8=glass_u8, box=(x0, y0, x1, y1), body_u8=body_u8)


def camera(rng: Rng, img: U8) -> U8:
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
