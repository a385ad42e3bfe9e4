"""Damaged PNG, TIFF, WebP and BMP files are refused with the reason instead of decoding to garbage pixels;
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


def _inserted(data: bytes) -> bytes:
    """16 zero bytes inserted in the middle: everything after them shifts."""
    mid = len(data) // 2
    return data[:mid] + bytes(16) + data[mid:]


DAMAGE: list[tuple[str, Callable[[bytes], bytes]]] = [
    (".png", _spliced),
    (".png", lambda d: d[: len(d) * 6 // 10]),
    (".tiff", _spliced),
    (".webp", _inserted),
    (".webp", lambda d: d[: len(d) * 6 // 10]),
    (".webp", lambda d: d + b"trailing"),
    (".bmp", _inserted),
    (".bmp", lambda d: d[: len(d) * 6 // 10]),
]
IDS = ["png-spliced", "png-cut", "tiff-spliced", "webp-inserted", "webp-cut", "webp-trailing-bytes", "bmp-inserted",
       "bmp-cut"]  # fmt: skip


@pytest.mark.parametrize(("ext", "damage"), DAMAGE, ids=IDS)
def test_a_damaged_file_is_refused_as_corrupt_or_truncated(ext: str, damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(ImageError, match="corrupt|truncated"):
        decode_image(damage(_encode(ext)))


@pytest.mark.parametrize("ext", [".png", ".tiff", ".webp", ".bmp"])  # OpenCV's WebP default is lossless
def test_an_intact_file_decodes_to_the_same_pixels(ext: str) -> None:
    assert np.array_equal(decode_image(_encode(ext)), _scene())


def test_opencv_alone_would_have_decoded_the_spliced_tiff() -> None:
    """Why the Pillow check exists: OpenCV's libtiff returns pixels for the damaged strip."""
    data = _spliced(_encode(".tiff"))
    assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None


@pytest.mark.parametrize("ext", [".webp", ".bmp"])
def test_opencv_alone_would_have_decoded_the_file_with_bytes_inserted(ext: str) -> None:
    """Why the sizes are checked: libwebp decodes the shifted lossless stream, OpenCV the sheared BMP rows."""
    data = _inserted(_encode(ext))
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and not np.array_equal(image, _scene())


def test_a_webp_whose_header_names_a_wrong_size_is_refused_with_both_sizes() -> None:
    data = _inserted(_encode(".webp"))
    with pytest.raises(ImageError, match=rf"header says {len(data) - 16} bytes, the file has {len(data)}"):
        decode_image(data)
