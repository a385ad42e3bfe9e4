"""Imaging setups for the synthetic phone photos (`inspection.vision.synth --setup`).

- ``lab``: the original scene (`scene`): a grey matte table, a graphite/silver phone with dark glass,
  portrait within ±4°, the phone ~85 % of the frame height, mild camera. Byte-for-byte what the shipped
  baseline was trained on; this module is not used for it.
- ``varied``: what real lines look like. Tables from near-black through grey to white, plain or textured
  (mottled, wood grain, fabric), optionally tinted; black, white, silver and coloured phone bodies; a black
  or white bezel of any width under the glass; portrait, landscape or any in-plane rotation; the phone's
  bounding box covering 15-95 % of the frame; exposure from dark to bright, defocus, motion blur,
  vignetting, colour casts, sensor noise and JPEG quality 75-98.
- ``closeup``: the camera sees the screen: the glass spans 88-106 % of the frame's long side, in landscape
  (or portrait in a portrait frame), with the varied table, phone and camera.
- Drifts of the lab scene (`DRIFTS`, issue 14's drift simulation): the lab photo itself (its phone, pose,
  scratches, look-alikes and camera, from the lab's own streams) with one thing a line really changes:
  ``lab-dark-table`` a near-black mat under the phone; ``lab-blue-mat`` a blue ESD mat; ``lab-dim-light`` a
  weaker, warmer lamp (55-70 % of the light); ``lab-dark-dim`` the near-black mat under that lamp. Each image
  differs from its lab twin (same seed and index) only there: the table's pixels, or the light's gain.

A `Look` or a `Drift` is drawn from its own seeded stream, so the lab streams are untouched by the other setups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from inspection.vision.drawing import U8, Phone, Rng, loguniform, smooth_noise

LOOKS = ("varied", "closeup")  # setups drawn from a `Look`
DRIFTS = ("lab-dark-table", "lab-blue-mat", "lab-dim-light", "lab-dark-dim")  # the lab scene with one change
SETUPS = ("lab", *LOOKS, *DRIFTS)
TEXTURES = ("plain", "mottled", "wood", "fabric")
# Phone bodies (BGR): black/graphite, white, silver, and a few anodised colours.
BODIES: dict[str, tuple[float, float, float]] = {
    "black": (28.0, 28.0, 30.0),
    "graphite": (70.0, 68.0, 66.0),
    "white": (228.0, 230.0, 232.0),
    "silver": (176.0, 178.0, 180.0),
    "gold": (140.0, 190.0, 214.0),
    "blue": (150.0, 90.0, 40.0),
    "red": (40.0, 40.0, 170.0),
    "green": (90.0, 130.0, 70.0),
}
# Table grey-level bands: near-black, dark grey, mid grey, light grey, white.
_TABLE_BANDS = ((6.0, 30.0), (30.0, 80.0), (80.0, 160.0), (160.0, 215.0), (215.0, 248.0))


@dataclass(frozen=True)
class Look:
    """Everything that differs from the lab scene for one image."""

    setup: str
    table_level: float  # mean grey level of the table
    table_tint: tuple[float, float, float]  # BGR offset (coloured mats)
    texture: str  # one of TEXTURES
    texture_amp: float  # grey levels
    body: str  # key of BODIES
    bezel_white: bool  # white border under the glass around the (dark) display
    bezel_frac: float  # bezel width / phone width
    rim_frac: float  # visible metal rim / phone width
    aspect: float  # phone width / height
    angle: float  # degrees, in-plane rotation (0 = portrait, upright)
    cover: float  # varied: bounding box / frame (max over both axes); closeup: glass long side / frame long side
    exposure: float  # gain
    defocus: float  # Gaussian sigma, reference px
    motion: float  # motion blur length, reference px (0 = none)
    motion_angle: float  # degrees
    vignette: float  # corner darkening share
    cast: tuple[float, float, float]  # per-channel gains
    noise: float  # grey levels
    jpeg_quality: int


def _angle(rng: Rng, setup: str, width: int, height: int) -> float:
    if setup == "closeup":  # the glass lies along the frame's long side
        base = 90.0 if width >= height else 0.0
        return base + float(rng.choice([0.0, 180.0])) + rng.uniform(-3.0, 3.0)
    kind = rng.random()
    if kind < 0.35:
        return float(rng.choice([0.0, 180.0])) + rng.uniform(-6.0, 6.0)  # portrait
    if kind < 0.7:
        return float(rng.choice([90.0, 270.0])) + rng.uniform(-6.0, 6.0)  # landscape
    return rng.uniform(0.0, 360.0)  # anything


def sample_look(rng: Rng, setup: str, width: int, height: int) -> Look:
    """The look of one image of a ``varied`` or ``closeup`` dataset."""
    if setup not in LOOKS:
        raise ValueError(f"no look for setup {setup!r}")
    lo, hi = _TABLE_BANDS[int(rng.integers(0, len(_TABLE_BANDS)))]
    tint = rng.normal(0.0, 12.0, 3) if rng.random() < 0.3 else rng.normal(0.0, 2.0, 3)
    angle = _angle(rng, setup, width, height)
    cover = rng.uniform(0.88, 1.06) if setup == "closeup" else rng.uniform(0.15, 0.95)
    motion = loguniform(rng, 2.0, 14.0) if rng.random() < 0.3 else 0.0
    return Look(
        setup=setup,
        table_level=rng.uniform(lo, hi),
        table_tint=(float(tint[0]), float(tint[1]), float(tint[2])),
        texture=TEXTURES[int(rng.integers(0, len(TEXTURES)))],
        texture_amp=rng.uniform(2.0, 14.0),
        body=list(BODIES)[int(rng.integers(0, len(BODIES)))],
        bezel_white=bool(rng.random() < 0.3),
        bezel_frac=rng.uniform(0.01, 0.09),
        rim_frac=rng.uniform(0.005, 0.02),
        aspect=rng.uniform(0.44, 0.55),
        angle=angle,
        cover=cover,
        exposure=loguniform(rng, 0.5, 1.8),
        defocus=loguniform(rng, 0.3, 3.0),
        motion=motion,
        motion_angle=rng.uniform(0.0, 180.0),
        vignette=rng.uniform(0.0, 0.45),
        cast=tuple(float(v) for v in np.exp(rng.normal(0.0, 0.07, 3))),  # type: ignore[arg-type]
        noise=rng.uniform(1.5, 6.0),
        jpeg_quality=int(rng.integers(75, 99)),
    )


def pose(rng: Rng, look: Look, width: int, height: int) -> Phone:
    """The phone's geometry and placement for a look (any rotation; closeups may overflow the frame)."""
    a = math.radians(look.angle)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    if look.setup == "closeup":
        ph = look.cover * max(width, height) / (1.0 - 2.0 * look.rim_frac * look.aspect)
    else:  # scale so that the rotated bounding box covers `cover` of the frame (the tighter axis)
        unit_w, unit_h = c * look.aspect + s, s * look.aspect + c  # bounding box of a phone 1 px tall
        ph = look.cover / max(unit_w / (0.96 * width), unit_h / (0.96 * height))
    pw = look.aspect * ph
    u = ph / 920.0
    rim = max(1.0, look.rim_frac * pw)
    pad = 3
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    ex, ey = (c * pw + s * ph) / 2 + 2, (s * pw + c * ph) / 2 + 2
    if look.setup == "closeup":
        centre = np.array([width / 2, height / 2]) + rng.uniform(-0.02, 0.02, 2) * (width, height)
    else:  # anywhere wholly inside the frame, clear of its edges by 2 % (the field of view's margin)
        ex, ey = ex + 0.02 * width, ey + 0.02 * height
        centre = np.array([rng.uniform(min(ex, width / 2), max(width - ex, width / 2)),
                           rng.uniform(min(ey, height / 2), max(height - ey, height / 2))])
    centre_local = np.array([pad + pw / 2, pad + ph / 2])
    matrix = np.hstack([rot, (centre - rot @ centre_local)[:, None]])
    radius = rng.uniform(0.06, 0.13) * pw
    bezel = max(1.0, look.bezel_frac * pw)
    return Phone(pw=pw, ph=ph, pad=pad, radius=radius, rim=rim, bezel=bezel, u=u, matrix=matrix)


def _texture(rng: Rng, look: Look, lh: int, lw: int) -> np.ndarray:
    """Zero-mean texture field at low resolution (grey levels)."""
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    if look.texture == "mottled":
        return smooth_noise(rng, (lh, lw), 12) * look.texture_amp
    if look.texture == "wood":  # grain: warped stripes along a random direction
        d = math.radians(rng.uniform(0.0, 180.0))
        along = xx * math.cos(d) + yy * math.sin(d)
        warp_field = smooth_noise(rng, (lh, lw), 6) * rng.uniform(3.0, 10.0)
        period = rng.uniform(3.0, 9.0)
        return np.sin((along + warp_field) * (2 * math.pi / period)).astype(np.float32) * look.texture_amp * 0.6
    if look.texture == "fabric":  # woven: a fine checker plus grain
        period = rng.uniform(2.2, 4.0)
        weave = np.sin(xx * (2 * math.pi / period)) * np.sin(yy * (2 * math.pi / period))
        grain = rng.standard_normal((lh, lw)).astype(np.float32)
        return (weave * 0.5 + grain * 0.5).astype(np.float32) * look.texture_amp * 0.5
    return smooth_noise(rng, (lh, lw), 6) * min(look.texture_amp, 3.0)  # plain: faint shading


def table(rng: Rng, look: Look, width: int, height: int, outline: np.ndarray, u: float) -> U8:
    """The table with its texture and the phone's soft contact shadow (`outline`: the phone in frame px).
    Built at 1/4 resolution and upsampled, like the lab table."""
    lw, lh = max(16, width // 4), max(16, height // 4)
    k = lw / width
    lum = np.full((lh, lw), look.table_level, np.float32) + _texture(rng, look, lh, lw)
    lum += cv2.GaussianBlur(rng.standard_normal((lh, lw)).astype(np.float32), (0, 0), 0.7) * 1.5
    shadow = np.zeros((lh, lw), np.uint8)
    shifted = outline * k + rng.uniform(-1.0, 3.0, 2) * k * u
    cv2.fillPoly(shadow, [np.round(shifted * 16).astype(np.int32).reshape(-1, 1, 2)], 255, cv2.LINE_AA, 4)
    blur = max(0.8, rng.uniform(6.0, 14.0) * u * k)
    soft = cv2.GaussianBlur(shadow.astype(np.float32) * (1.0 / 255.0), (0, 0), blur)
    lum *= 1.0 - rng.uniform(0.1, 0.35) * soft
    low = np.clip(lum[..., None] + np.array(look.table_tint, np.float32) + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)


def camera(rng: Rng, look: Look, img: U8, scale: float) -> U8:
    """Defocus, motion blur, vignetting, exposure x colour cast, then sensor noise."""
    img = cv2.GaussianBlur(img, (0, 0), max(0.3, look.defocus * scale))
    length = look.motion * scale
    if length >= 1.5:
        n = int(math.ceil(length)) | 1
        kernel = np.zeros((n, n), np.float32)
        c = n // 2
        d = math.radians(look.motion_angle)
        dx, dy = math.cos(d) * length / 2, math.sin(d) * length / 2
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
        img = cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6))
    h, w = img.shape[:2]
    lw, lh = max(8, w // 8), max(8, h // 8)
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    r2 = ((xx - lw / 2) / (lw / 2)) ** 2 * 0.5 + ((yy - lh / 2) / (lh / 2)) ** 2 * 0.5
    gain_low = (1.0 - look.vignette * r2) * look.exposure
    gain = cv2.resize(gain_low.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    out = img.astype(np.float32) * gain[..., None] * np.array(look.cast, np.float32)
    out += cv2.resize(rng.standard_normal((h // 2 + 1, w // 2 + 1)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_NEAREST)[..., None] * (look.noise * 0.6)
    out += rng.standard_normal(out.shape, dtype=np.float32) * (look.noise * 0.6)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Drift:
    """What differs from the lab scene for one image of a `DRIFTS` setup."""

    setup: str
    table: tuple[float, float, float] | None  # mean BGR of the new table (None: the lab's grey table)
    lamp: tuple[float, float, float]  # per-channel gain of the light on the scene ((1, 1, 1): the lab's lamp)


def sample_drift(rng: Rng, setup: str) -> Drift:
    """The drift of one image of a ``lab-*`` drift setup."""
    if setup not in DRIFTS:
        raise ValueError(f"no drift for setup {setup!r}")
    table: tuple[float, float, float] | None = None
    lamp = (1.0, 1.0, 1.0)
    if setup in ("lab-dark-table", "lab-dark-dim"):  # a black rubber mat: grey 8-28, nearly neutral
        level = rng.uniform(8.0, 28.0) + rng.normal(0.0, 1.0, 3)
        table = (float(level[0]), float(level[1]), float(level[2]))
    elif setup == "lab-blue-mat":  # an anti-static mat: blue, darker than the lab's grey
        blue = np.array([150.0, 105.0, 55.0]) * rng.uniform(0.8, 1.1) + rng.normal(0.0, 4.0, 3)
        table = (float(blue[0]), float(blue[1]), float(blue[2]))
    if setup in ("lab-dim-light", "lab-dark-dim"):  # a weaker, warmer lamp: less blue than red
        gain = rng.uniform(0.55, 0.7) * np.array([0.9, 1.0, 1.1]) * np.exp(rng.normal(0.0, 0.03, 3))
        lamp = (float(gain[0]), float(gain[1]), float(gain[2]))
    return Drift(setup=setup, table=table, lamp=lamp)


def retable(table_image: U8, drift: Drift) -> U8:
    """The lab table (`scene.table`: its grain, blotches, vignetting and the phone's shadow) re-coloured to
    the drift's table: every channel scaled so that its mean is the new table's; shading stays relative."""
    if drift.table is None:
        return table_image
    lum = table_image.astype(np.float32).mean(axis=2, keepdims=True)
    target = np.array(drift.table, np.float32) / max(float(lum.mean()), 1.0)
    return np.clip(lum * target + 0.5, 0, 255).astype(np.uint8)  # type: ignore[no-any-return]


def relight(image: U8, drift: Drift) -> U8:
    """The scene under the drift's lamp (before the camera: its exposure, blur and noise are the lab's)."""
    if drift.lamp == (1.0, 1.0, 1.0):
        return image
    return np.clip(image.astype(np.float32) * np.array(drift.lamp, np.float32) + 0.5, 0, 255).astype(np.uint8)  # type: ignore[no-any-return]
