"""JPEGs that libjpeg would decode with grey fill (it only warns) are refused with a reason (issue 12).
All files are generated here from one photo-like image; the random bytes are seeded."""

from __future__ import annotations

import io
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from inspection.vision.images import ImageError, decode_image

_EOI = b"\xff\xd9"


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    """A 320x240 noisy gradient at quality 90: enough entropy-coded data to cut and splice."""
    rng = np.random.default_rng(12)
    ramp = np.linspace(0, 200, 320, dtype=np.float32)[None, :, None]
    image = (rng.random((240, 320, 3), dtype=np.float32) * 50 + ramp).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def _splice(data: bytes) -> bytes:
    """3 KB of random bytes in the middle of the entropy-coded data, same file length."""
    noise = np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    mid = len(data) // 2
    return data[:mid] + noise + data[mid + len(noise) :]


CORRUPT: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("cut_30pct_with_eoi", lambda d: d[: int(len(d) * 0.3)] + _EOI),
    ("cut_60pct_with_eoi", lambda d: d[: int(len(d) * 0.6)] + _EOI),
    ("cut_30pct_no_eoi", lambda d: d[: int(len(d) * 0.3)]),
    ("random_3kb_spliced", _splice),
]


def test_valid_jpeg_decodes(jpeg: bytes) -> None:
    full = decode_image(jpeg)
    half = decode_image(jpeg, reduce=2)
    assert full.shape == (240, 320, 3) and full.dtype == np.uint8
    assert half.shape == (120, 160, 3)
    reference = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert int(np.abs(full.astype(np.int16) - reference).max()) <= 4  # same IDCT up to rounding


@pytest.mark.parametrize(("name", "damage"), CORRUPT, ids=[c[0] for c in CORRUPT])
@pytest.mark.parametrize("reduce", [1, 2])
def test_corrupt_jpeg_is_refused(jpeg: bytes, name: str, damage: Callable[[bytes], bytes], reduce: int) -> None:
    with pytest.raises(ImageError, match="corrupt"):
        decode_image(damage(jpeg), reduce=reduce)


def test_empty_file() -> None:
    with pytest.raises(ImageError, match="^empty file$"):
        decode_image(b"")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_opencv(orientation: int) -> None:
    """The strict decoder does not read EXIF; the rotation/flip must still be what OpenCV applied."""
    rgb = np.random.default_rng(orientation).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    pil = Image.fromarray(rgb)
    exif = pil.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pil.save(buf, "JPEG", exif=exif, quality=95)
    data = buf.getvalue()
    for reduce, flag in ((1, cv2.IMREAD_COLOR), (2, cv2.IMREAD_REDUCED_COLOR_2)):
        ours = decode_image(data, reduce=reduce, min_side=8)
        theirs = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        assert ours.shape == theirs.shape
        assert int(np.abs(ours.astype(np.int16) - theirs).max()) <= 4
