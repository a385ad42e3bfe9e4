"""Damaged PNG and TIFF files are refused with the reason instead of decoding to garbage pixels;
intact ones decode as before. (JPEG: tests/unit/test_corrupt_jpeg.py.)"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from inspection.vision.images import ImageError, decode_image


def _scene() -> np.ndarray:
    """Smooth content (compresses like a photo; noise would hide damage from nothing)."""
    rng = np.random.default_rng(7)
    img = (rng.random((160, 240, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (15, 15), 5)


def _encode(ext: str) -> bytes:
    ok, buf = cv2.imencode(ext, _scene())
    assert ok
    return buf.tobytes()


def _spliced(data: bytes) -> bytes:
    """200 random bytes over the middle of the file: lengths and markers stay, content breaks."""
    bad = bytearray(data)
    mid = len(data) // 2
    bad[mid : mid + 200] = np.random.default_rng(3).integers(0, 256, 200, dtype=np.uint8).tobytes()
    return bytes(bad)


DAMAGE: list[tuple[str, Callable[[bytes], bytes]]] = [
    (".png", _spliced),
    (".png", lambda d: d[: len(d) * 6 // 10]),
    (".tiff", _spliced),
]


@pytest.mark.parametrize(("ext", "damage"), DAMAGE, ids=["png-spliced", "png-cut", "tiff-spliced"])
def test_a_damaged_file_is_refused_as_corrupt_or_truncated(ext: str, damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ImageError, match="corrupt|truncated"):
        decode_image(damage(_encode(ext)))


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_an_intact_file_decodes_to_the_same_pixels(ext: str) -> None:
    assert np.array_equal(decode_image(_encode(ext)), _scene())


def test_opencv_alone_would_have_decoded_the_spliced_tiff() -> None:
    """Why the Pillow check exists: OpenCV's libtiff returns pixels for the damaged strip."""
    data = _spliced(_encode(".tiff"))
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
