"""Safe decoding of untrusted image bytes: one case per kind of bad input, plus reduce and metrics.
All images are generated here; nothing is downloaded."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inspection.vision.images import (
    ImageError,
    decode_image,
    image_metrics,
    image_size,
    read_image_file,
    sha256_hex,
)


def _scene(w: int = 96, h: int = 64) -> np.ndarray:
    """A smooth colourful BGR test image."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) % 256], axis=2)
    return img.astype(np.uint8)


def _encode(ext: str, img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def _jpeg(w: int = 96, h: int = 64) -> bytes:
    return _encode(".jpg", _scene(w, h))


def _png(img: np.ndarray) -> bytes:
    return _encode(".png", img)


def _png_claiming(width: int, height: int) -> bytes:
    """A valid small PNG whose IHDR (with a correct CRC) claims another size: a decompression bomb."""
    data = bytearray(_png(_scene(40, 40)))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def _pil(mode: str, fmt: str, colour: tuple[int, ...] | int, size: tuple[int, int] = (48, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt)
    return buf.getvalue()


def _cmyk_red_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 48), (255, 0, 0)).convert("CMYK").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _corrupt_png_data() -> bytes:
    data = bytearray(_png(_scene()))
    start = data.index(b"IDAT") + 8
    data[start : start + 40] = bytes(40)  # zeroed deflate stream, chunk lengths intact
    return bytes(data)


# (id, bytes factory, expected error substring)
BAD: list[tuple[str, Callable[[], bytes], str]] = [
    ("empty", lambda: b"", "empty file"),
    ("truncated_jpeg_half", lambda: _jpeg()[: len(_jpeg()) // 2], "truncated JPEG"),
    ("truncated_jpeg_no_eoi", lambda: _jpeg()[:-2], "truncated JPEG"),
    ("jpeg_header_only", lambda: _jpeg()[:20], "truncated JPEG"),
    (
        "text",
        lambda: b"station,score\nA1,0.93\nthis is a CSV, not a picture\n" * 4,
        "not an image (looks like text)",
    ),
    ("utf8_text", lambda: "Prüfbericht: Kratzer gefunden – bitte prüfen.\n".encode() * 3, "looks like text"),
    ("svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
    (
        "binary_garbage",
        lambda: bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8)),
        "unknown format",
    ),
    (
        "heic",
        lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100),
        "unsupported image format",
    ),
    ("one_pixel_png", lambda: _png(np.zeros((1, 1, 3), np.uint8)), "image too small: 1x1 (minimum 32x32)"),
    ("thin_png", lambda: _png(np.zeros((10, 400, 3), np.uint8)), "image too small: 400x10"),
    (
        "png_bomb",
        lambda: _png_claiming(30000, 30000),
        "image too large: 30000x30000 = 900.0 Mpx (limit 50.0 Mpx)",
    ),
    (
        "bmp_bomb",
        lambda: b"BM" + bytes(12) + struct.pack("<Iii", 40, 100000, -100000) + bytes(40),
        "too large",
    ),
    # GIF is refused by every path (ingest too: tests/integration/test_image_formats.py), bomb or not.
    ("gif_bomb", lambda: b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes(20), "GIF is not a supported"),
    ("gif", lambda: _pil("RGB", "GIF", (0, 0, 255)), "GIF is not a supported image type (JPEG, PNG, BMP, TIFF, WebP)"),
    ("truncated_png", lambda: _png(_scene())[:200], "truncated PNG"),
    ("png_zero_size", lambda: _png_claiming(0, 40), "corrupt PNG"),
]


@pytest.mark.parametrize(("data_fn", "message"), [(f, m) for _, f, m in BAD], ids=[i for i, _, _ in BAD])
def test_bad_input_gives_clear_error(
    data_fn: Callable[[], bytes], message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    data = data_fn()
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        decode_image(data)
    assert capfd.readouterr().err == ""  # refused before the decoder could print anything


def test_corrupt_pixel_data_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="corrupt"):
        decode_image(_corrupt_png_data())


def test_damaged_jpeg_never_escapes_as_another_exception() -> None:
    """Bytes flipped inside the scan: the decoder may repair or refuse, but never crash."""
    good = bytearray(_jpeg(160, 120))
    rng = np.random.default_rng(1)
    for _ in range(20):
        data = bytearray(good)
        for pos in rng.integers(len(data) // 3, len(data) - 10, 8):
            data[int(pos)] = int(rng.integers(0, 256))
        try:
            out = decode_image(bytes(data))
        except ImageError:
            continue
        assert out.shape == (120, 160, 3) and out.dtype == np.uint8


# (id, bytes factory, expected shape, check on the decoded BGR image)
GOOD: list[tuple[str, Callable[[], bytes], tuple[int, int, int], Callable[[np.ndarray], bool]]] = [
    ("jpeg", lambda: _jpeg(), (64, 96, 3), lambda im: abs(int(im[32, 95, 0]) - 255) < 12),
    ("jpeg_trailing_bytes", lambda: _jpeg() + b"vendor trailer", (64, 96, 3), lambda im: True),
    (
        "png_16bit",
        lambda: _png(np.full((40, 50, 3), 40000, np.uint16)),
        (40, 50, 3),
        lambda im: bool(np.all(im == 40000 >> 8)),  # scaled (>>8), not clipped to 255
    ),
    (
        "png_16bit_grey",
        lambda: _png(np.full((40, 50), 1000, np.uint16)),
        (40, 50, 3),
        lambda im: bool(np.all(im == 1000 >> 8)),
    ),
    (
        "png_grey",
        lambda: _png(np.full((40, 50), 77, np.uint8)),
        (40, 50, 3),
        lambda im: bool(np.all(im == 77)),
    ),
    (
        "png_rgba",
        lambda: _png(
            np.dstack([np.full((40, 50, 3), (10, 20, 200), np.uint8), np.full((40, 50), 128, np.uint8)])
        ),
        (40, 50, 3),
        lambda im: tuple(im[0, 0]) == (10, 20, 200),
    ),
    ("png_palette", lambda: _pil("P", "PNG", 3), (40, 48, 3), lambda im: True),
    ("png_grey_alpha", lambda: _pil("LA", "PNG", (90, 255)), (40, 48, 3), lambda im: bool(np.all(im == 90))),
    (
        "jpeg_cmyk_red",
        _cmyk_red_jpeg,
        (48, 48, 3),
        lambda im: im[24, 24, 2] > 200 and im[24, 24, 1] < 60 and im[24, 24, 0] < 60,  # BGR: red
    ),
    ("jpeg_grey", lambda: _pil("L", "JPEG", 120), (40, 48, 3), lambda im: abs(int(im[5, 5, 1]) - 120) < 3),
    ("bmp", lambda: _encode(".bmp", _scene()), (64, 96, 3), lambda im: bool(np.array_equal(im, _scene()))),
    ("tiff", lambda: _encode(".tiff", _scene()), (64, 96, 3), lambda im: bool(np.array_equal(im, _scene()))),
    ("tiff_big_endian", lambda: _pil("RGB", "TIFF", (0, 255, 0)), (40, 48, 3), lambda im: im[3, 3, 1] == 255),
    ("webp_lossy", lambda: _pil("RGB", "WEBP", (0, 128, 255)), (40, 48, 3), lambda im: im[3, 3, 0] > 200),
    ("webp_lossless", lambda: _encode(".webp", _scene()), (64, 96, 3), lambda im: True),
]


@pytest.mark.parametrize(("data_fn", "shape", "check"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_good_input_decodes_to_bgr_uint8(
    data_fn: Callable[[], bytes], shape: tuple[int, int, int], check: Callable[[np.ndarray], bool]
) -> None:
    data = data_fn()
    image = decode_image(data)
    assert image.shape == shape and image.dtype == np.uint8 and image.flags.c_contiguous
    assert check(image)
    assert image_size(data) == (shape[1], shape[0])


def test_tiff_big_endian_header_is_parsed() -> None:
    data = _pil("RGB", "TIFF", (0, 255, 0))
    if not data.startswith(b"MM"):  # Pillow writes the machine order; build a big-endian one by hand
        data = _big_endian_tiff(48, 40)
    assert image_size(data) == (48, 40)


def _big_endian_tiff(w: int, h: int) -> bytes:
    entries = [(256, 3, 1, w), (257, 3, 1, h)]
    ifd = struct.pack(">H", len(entries)) + b"".join(
        struct.pack(">HHIHH", tag, typ, n, value, 0) for tag, typ, n, value in entries
    )
    return b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0)


@pytest.mark.parametrize("fmt", [".jpg", ".png"])
@pytest.mark.parametrize(
    ("reduce", "expected"), [(1, (80, 100)), (2, (40, 50)), (4, (20, 25)), (8, (10, 13))]
)
def test_reduce_decodes_smaller(fmt: str, reduce: int, expected: tuple[int, int]) -> None:
    data = _encode(fmt, _scene(100, 80))
    image = decode_image(data, reduce=reduce)
    assert image.shape == (*expected, 3) and image.dtype == np.uint8 and image.flags.c_contiguous
    # Same picture, only smaller: compare with a plain downscale of the full decode.
    full = cv2.resize(decode_image(data), expected[::-1], interpolation=cv2.INTER_AREA)
    assert np.abs(full.astype(int) - image.astype(int)).mean() < 12


def test_reduce_must_be_a_supported_factor() -> None:
    with pytest.raises(ValueError, match="reduce"):
        decode_image(_jpeg(), reduce=3)


def test_limits_are_configurable() -> None:
    data = _jpeg(96, 64)
    with pytest.raises(ImageError, match="limit 0.0 Mpx"):
        decode_image(data, max_pixels=5000)
    with pytest.raises(ImageError, match="minimum 100x100"):
        decode_image(data, min_side=100)
    assert decode_image(_png(np.zeros((1, 1, 3), np.uint8)), min_side=1).shape == (1, 1, 3)


def test_image_size_reads_header_only() -> None:
    # the bomb has no pixel data at all: only a header reader can answer
    assert image_size(_png_claiming(30000, 30000)) == (30000, 30000)
    assert image_size(_jpeg(96, 64)) == (96, 64)
    with pytest.raises(ImageError, match="looks like text"):
        image_size(b"hello, this is plainly text and no picture at all")
    with pytest.raises(ImageError, match="empty file"):
        image_size(b"")


def test_read_image_file(tmp_path: Path) -> None:
    good = tmp_path / "phone.jpg"
    good.write_bytes(_jpeg())
    assert read_image_file(good).shape == (64, 96, 3)
    assert read_image_file(good, reduce=2).shape == (32, 48, 3)
    fake = tmp_path / "photo.png"  # text with an image name
    fake.write_text("not really a png\n")
    with pytest.raises(ImageError, match="looks like text"):
        read_image_file(fake)
    with pytest.raises(ImageError, match="not found"):
        read_image_file(tmp_path / "missing.jpg")
    with pytest.raises(ImageError, match="not a regular file"):
        read_image_file(tmp_path)
    with pytest.raises(ImageError, match="file too large"):
        read_image_file(good, max_bytes=100)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty file"):
        read_image_file(tmp_path / "empty.jpg")


def test_metrics_respond_to_brightness_contrast_and_blur() -> None:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (600, 800, 3), dtype=np.uint8), (0, 0), 1.0)
    m = image_metrics(base)
    assert (m.width, m.height) == (800, 600)
    brighter = image_metrics(cv2.add(base, np.full_like(base, 60)))
    assert brighter.brightness > m.brightness + 40
    flat = image_metrics(np.full((100, 120, 3), 90, np.uint8))
    assert flat.contrast == pytest.approx(0.0) and flat.sharpness == pytest.approx(0.0)
    assert flat.brightness == pytest.approx(90.0)
    blurred = image_metrics(cv2.GaussianBlur(base, (0, 0), 4.0))
    assert blurred.sharpness < 0.5 * m.sharpness
    assert blurred.contrast < m.contrast
    assert image_metrics(cv2.cvtColor(base, cv2.COLOR_BGR2GRAY)).brightness == pytest.approx(
        m.brightness, abs=1
    )


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
