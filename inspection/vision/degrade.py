"""Degraded and out-of-domain image files, for the domain gate's benchmark and tests.

Each kind of degradation has three strengths (1 mild .. 3 severe). Phone degradations start from a
synthetic lab photo (`synth.render`); no-phone scenes are drawn from scratch. All randomness is seeded.
Everything returns encoded file bytes, as a camera or a person would send them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["NO_PHONE", "PHONE_KINDS", "Degraded", "degrade", "jpeg", "no_phone"]

Image = np.ndarray
JPEG_QUALITY = 95


def jpeg(image: Image, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    assert ok
    return bytes(buf.tobytes())


@dataclass(frozen=True)
class Degraded:
    kind: str
    strength: int  # 1 mild, 2 medium, 3 severe
    data: bytes


def _gaussian(img: Image, s: int) -> bytes:
    sigma = (3.0, 6.0, 12.0)[s - 1]
    return jpeg(cv2.GaussianBlur(img, (0, 0), sigma))


def _motion(img: Image, s: int) -> bytes:
    length = (21, 41, 81)[s - 1]
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length  # horizontal camera shake
    return jpeg(cv2.filter2D(img, -1, kernel))


def _under(img: Image, s: int) -> bytes:
    gain = (0.3, 0.15, 0.06)[s - 1]
    return jpeg(np.clip(img.astype(np.float32) * gain, 0, 255).astype(np.uint8))


def _over(img: Image, s: int) -> bytes:
    gain, offset = ((2.5, 40.0), (4.0, 80.0), (6.0, 140.0))[s - 1]
    return jpeg(np.clip(img.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8))


def _lowres(img: Image, s: int) -> bytes:
    width = (480, 320, 240)[s - 1]
    h, w = img.shape[:2]
    return jpeg(cv2.resize(img, (width, round(h * width / w)), interpolation=cv2.INTER_AREA))


def _heavy_jpeg(img: Image, s: int) -> bytes:
    return jpeg(img, (5, 4, 3)[s - 1])


def _cut(img: Image, s: int) -> bytes:
    """The file cut short with an end-of-image marker appended (decoders fill the rest with grey)."""
    data = jpeg(img)
    keep = (0.7, 0.5, 0.3)[s - 1]
    return data[: int(len(data) * keep)] + b"\xff\xd9"


def _spliced(img: Image, s: int) -> bytes:
    """Random bytes written over the middle of the file."""
    data = bytearray(jpeg(img))
    n = (1000, 3000, 10000)[s - 1]
    mid = len(data) // 2
    rng = np.random.default_rng(n)
    junk = rng.integers(0, 255, n, dtype=np.uint8).tobytes().replace(b"\xff", b"\x00")
    data[mid : mid + n] = junk
    return bytes(data)


def _partial(img: Image, s: int, box: tuple[int, int, int, int]) -> bytes:
    """The frame cut so that a share of the phone lies outside it (left edge through the phone)."""
    x, _, w, _ = box
    outside = (0.25, 0.45, 0.65)[s - 1]
    return jpeg(np.ascontiguousarray(img[:, x + int(w * outside) :]))


PHONE_KINDS: dict[str, Callable[[Image, int], bytes]] = {
    "gaussian_blur": _gaussian,
    "motion_blur": _motion,
    "under_exposed": _under,
    "over_exposed": _over,
    "low_resolution": _lowres,
    "heavy_jpeg": _heavy_jpeg,
    "cut_file": _cut,
    "spliced_file": _spliced,
}


def degrade(image: Image, kind: str, strength: int, *, phone_box: tuple[int, int, int, int]) -> Degraded:
    if kind == "partial_phone":
        return Degraded(kind, strength, _partial(image, strength, phone_box))
    return Degraded(kind, strength, PHONE_KINDS[kind](image, strength))


# -- no-phone scenes ---------------------------------------------------------------------------


def _texture(rng: np.random.Generator, w: int, h: int, s: int) -> Image:
    """A plain table texture: grey with low-frequency shading and grain (strength: darker)."""
    base = (150.0, 110.0, 70.0)[s - 1]
    small = rng.normal(0, 12, (h // 60 + 1, w // 60 + 1)).astype(np.float32)
    shade = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    img = base + shade + rng.normal(0, 4, (h, w)).astype(np.float32)
    return cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _notebook(rng: np.random.Generator, w: int, h: int, s: int) -> Image:
    """A dark closed notebook on the table (A-series aspect 1.41; strength: bigger and rotated)."""
    img = _texture(rng, w, h, 1)
    side = (0.35, 0.5, 0.7)[s - 1] * h
    rect = ((w / 2, h / 2), (side / 1.41, side), (0.0, 15.0, 35.0)[s - 1])
    pts = cv2.boxPoints(rect).astype(np.int32)
    cv2.fillConvexPoly(img, pts, (30, 28, 25))
    noise = rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _board(rng: np.random.Generator, w: int, h: int, s: int) -> Image:
    """A circuit board filling the frame: green, traces, dark chips (strength: more chips)."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = (40, 110, 30)
    for _ in range(120):
        y = int(rng.integers(0, h))
        x0, x1 = sorted(int(v) for v in rng.integers(0, w, 2))
        cv2.line(img, (x0, y), (x1, y), (80, 170, 190), 3)
    for _ in range((6, 12, 24)[s - 1]):
        cw, ch = int(rng.integers(60, 260)), int(rng.integers(60, 500))
        x, y = int(rng.integers(0, w - cw)), int(rng.integers(0, h - ch))
        cv2.rectangle(img, (x, y), (x + cw, y + ch), (20, 20, 20), -1)
    return cv2.GaussianBlur(img, (3, 3), 0)


NO_PHONE: dict[str, Callable[[np.random.Generator, int, int, int], Image]] = {
    "texture": _texture,
    "notebook": _notebook,
    "circuit_board": _board,
}


def no_phone(kind: str, strength: int, *, seed: int, size: tuple[int, int] = (1920, 1080)) -> Degraded:
    rng = np.random.default_rng([seed, strength])
    w, h = size
    return Degraded(f"no_phone:{kind}", strength, jpeg(NO_PHONE[kind](rng, w, h, strength)))
